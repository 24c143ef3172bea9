//! The seed's `cube.geojson` is accepted as it is, its grid is the seed's (19530 x 21210 cells
//! of 100 m, centres, north-up), its real defects are reported, and broken recipes fail with
//! the JSON path of the problem. The documented schema of the `processing` block is the one
//! the code reads.

mod common;

use std::path::{Path, PathBuf};

use cryocube_geo::recipe::{normalise, processing_schema, Recipe, ValidRange};
use cryocube_geo::GeoError;

fn shared() -> PathBuf {
    common::shared("recipes/seed/cube.geojson");
    common::shared("")
}

fn seed() -> Recipe {
    Recipe::load(&shared().join("recipes/seed/cube.geojson")).expect("the seed recipe parses")
}

#[test]
fn the_seed_recipe_gives_the_seed_grid() {
    let r = seed();
    let g = r.grid();
    assert_eq!((g.nx, g.ny), (19530, 21210));
    assert_eq!(g.crs, "EPSG:3031");
    // Cell centres, first row north.
    assert_eq!(g.x(0), -2602500.0 + 50.0);
    assert_eq!(g.y(0), 495000.0 - 50.0);
    assert_eq!(g.y(g.ny - 1), -1626000.0 + 50.0);
    assert_eq!(
        g.geotransform(),
        [-2602500.0, 100.0, 0.0, 495000.0, 0.0, -100.0]
    );
    let km = g.with_resolution(1000.0).unwrap();
    assert_eq!((km.nx, km.ny), (1953, 2121));
    // A size that does not fit names the nearest that divide both extents (1953 x 2121 km:
    // divisors of 21 km).
    let (_, msg) = g.with_resolution(5000.0).unwrap_err();
    assert!(
        msg.ends_with("sizes that fit this extent: 3000, 3500, 4200, 5250"),
        "{msg}"
    );
    assert_eq!(r.properties().variables.len(), 12);
    assert!(!r.properties().sources.is_empty());
}

#[test]
fn the_seed_recipes_defects_are_reported() {
    let r = seed();
    let all = r.warnings.join("\n");
    // SEEDS.md: heat flow labelled in metres; the variable `ice_thicnkess` (sic).
    assert!(
        all.contains("geothermal_heat_flow_200km") && all.contains("is a heat flow"),
        "{all}"
    );
    assert!(all.contains("\"ice_thicnkess\""), "{all}");
    // Every warning points at a place in the recipe.
    assert!(
        r.warnings.iter().all(|w| w.starts_with("$.properties")),
        "{all}"
    );
}

#[test]
fn unknown_fields_are_kept() {
    let text = std::fs::read_to_string(shared().join("recipes/seed/cube.geojson")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["properties"]["our_own_note"] = serde_json::json!({"a": 1});
    v["properties"]["sources"][0]["mirror"] = serde_json::json!("https://example.org/x.tar");
    let r = Recipe::parse(Path::new("x.geojson"), &v.to_string()).unwrap();
    let back = serde_json::to_value(&r.feature).unwrap();
    assert_eq!(
        back["properties"]["our_own_note"],
        serde_json::json!({"a": 1})
    );
    assert_eq!(
        back["properties"]["sources"][0]["mirror"],
        "https://example.org/x.tar"
    );
}

fn parse_error(edit: impl Fn(&mut serde_json::Value)) -> (String, String) {
    let text = std::fs::read_to_string(shared().join("recipes/seed/cube.geojson")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    match Recipe::parse(Path::new("bad.geojson"), &v.to_string()) {
        Err(GeoError::Recipe {
            json_path, message, ..
        }) => (json_path, message),
        other => panic!("expected a recipe error, got {other:?}"),
    }
}

#[test]
fn broken_recipes_name_the_json_path() {
    let (at, msg) = parse_error(|v| v["properties"]["spatial_bbox"] = serde_json::json!([0, 0, 1]));
    assert!(at.contains("spatial_bbox"), "{at}: {msg}");
    let (at, _) = parse_error(|v| {
        v["properties"]["sources"][2]["download_url"] = serde_json::json!(42);
    });
    assert_eq!(at, "$.properties.sources[2].download_url");
    let (at, msg) = parse_error(|v| {
        v["properties"]["sources"][1]["processing"] = serde_json::json!({"resampling": "cubic"});
    });
    assert_eq!(at, "$.properties.sources[1].processing.resampling", "{msg}");
    let (at, msg) = parse_error(|v| {
        v["properties"]["sources"][1]["processing"] = serde_json::json!({"nodatta": -32767});
    });
    assert!(
        at.starts_with("$.properties.sources[1].processing") && msg.contains("nodatta"),
        "{at}: {msg}"
    );
    let (at, msg) = parse_error(|v| v["properties"]["spatial_res"] = serde_json::json!([333, 333]));
    assert!(
        at.contains("spatial_bbox") && msg.contains("whole number"),
        "{at}: {msg}"
    );
    let (at, _) = parse_error(|v| v["type"] = serde_json::json!("FeatureCollection"));
    assert_eq!(at, "$.type");
}

#[test]
fn processing_blocks_read_and_drive_outputs() {
    let text = std::fs::read_to_string(shared().join("recipes/seed/cube.geojson")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sources = v["properties"]["sources"].as_array().unwrap().clone();
    let i = sources
        .iter()
        .position(|s| {
            s["variable_names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "Magnetic anomaly")
        })
        .unwrap();
    v["properties"]["sources"][i]["processing"] = serde_json::json!({
        "format": "gmt-grid",
        "valid": {"gt": -90000},
        "resampling": "bilinear",
        "outputs": [{"name": "magnetic_anomaly", "from": "z", "units": "nT"}]
    });
    let r = Recipe::parse(Path::new("x.geojson"), &v.to_string()).unwrap();
    let p = r.properties().sources[i].processing.as_ref().unwrap();
    assert_eq!(
        p.valid,
        Some(ValidRange {
            gt: Some(-90000.0),
            ..Default::default()
        })
    );
    assert!(p.valid.unwrap().contains(-89999.0) && !p.valid.unwrap().contains(-99999.0));
    assert!(r
        .outputs()
        .contains(&(i, "z".to_string(), "magnetic_anomaly".to_string())));
}

#[test]
fn names_normalise_like_the_seeds_renames() {
    assert_eq!(normalise("Thw 124"), "thw_124");
    assert_eq!(normalise("Magnetic anomaly"), "magnetic_anomaly");
    assert_eq!(normalise(" Curie depth (200 km) "), "curie_depth_200_km");
}

/// `schemas/processing.schema.json` documents the `processing` block; it must be what the code
/// reads. `CRYOCUBE_WRITE_SCHEMA=1 cargo test -p cryocube-geo` rewrites it.
#[test]
fn the_documented_schema_is_the_one_the_code_reads() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/processing.schema.json"
    ));
    let mut text = serde_json::to_string_pretty(&processing_schema()).unwrap();
    text.push('\n');
    if std::env::var_os("CRYOCUBE_WRITE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is stale: run CRYOCUBE_WRITE_SCHEMA=1 cargo test -p cryocube-geo",
        path.display()
    );
}

/// A file-system failure keeps its cause: callers can tell "not found" from "permission
/// denied" without parsing the message.
#[test]
fn io_failures_carry_their_cause() {
    use std::error::Error as _;
    let e = cryocube_geo::recipe::Recipe::load(std::path::Path::new("/nonexistent/cube.geojson"))
        .unwrap_err();
    let io = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("an io::Error as the source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("/nonexistent/cube.geojson"), "{e}");
}

/// GDAL's and the netCDF library's failures keep their cause as the error's source, and the
/// message says GDAL's own text without the binding's wrapping.
#[test]
fn library_failures_carry_their_cause() {
    use std::error::Error as _;
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("garbage.tif");
    std::fs::write(&bad, b"II*\0 this is not a GeoTIFF").unwrap();
    let e = cryocube_geo::read::prepare::read_gdal(bad.to_str().unwrap(), &bad, 1).unwrap_err();
    let text = e.to_string();
    assert!(
        e.source()
            .is_some_and(|s| s.is::<gdal::errors::GdalError>()),
        "{e:?}"
    );
    assert!(
        text.starts_with(&format!("{}: GDAL cannot read", bad.display())),
        "{text}"
    );
    assert!(!text.contains("CPL error class"), "{text}");

    let e = cryocube_geo::read::gmt::read(&bad).unwrap_err();
    assert!(e.source().is_some_and(|s| s.is::<netcdf::Error>()), "{e:?}");
    assert!(
        e.to_string()
            .contains("garbage.tif: not a readable netCDF file"),
        "{e}"
    );
}
