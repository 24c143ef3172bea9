//! `cryocube build --check [--fix]`: the recipe against the DeepESDL dataset specification
//! (`deepesdl/dataset-spec`, `dataset-spec/template.schema.json`) and our `processing` schema.
//!
//! The reference: a JSON Schema validator (Python `jsonschema` 4, Draft 2020-12, run on the
//! specification's schema at commit 4693561) reports errors at these places of the seed's
//! recipe (22) and of `examples/polar-standin` (34). `--check` must report the same places,
//! no more, no fewer, each with what is wrong in words.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use common::{cryocube, p, shared, text, venv};

/// The places the reference validator reports for the seed's recipe.
fn seed_places() -> Vec<String> {
    let mut v: Vec<String> = (0..12)
        .map(|i| format!("$.properties.variables[{i}].fill_value"))
        .collect();
    v.extend((0..10).map(|i| format!("$.properties.sources[{i}]")));
    v
}

/// The places the reference validator reports for `examples/polar-standin/cube.geojson`.
fn example_places() -> Vec<String> {
    let mut v: Vec<String> = (0..16)
        .map(|i| format!("$.properties.variables[{i}].fill_value"))
        .collect();
    v.extend((0..17).map(|i| format!("$.properties.sources[{i}]")));
    v.push("$.geometry".into());
    v
}

/// Runs `build --check` (with `extra` arguments); returns the exit code, the places reported
/// (sorted) and the whole text.
fn check(recipe: &Path, extra: &[&str]) -> (Option<i32>, Vec<String>, String) {
    let mut args = vec!["build", p(recipe), "--check"];
    args.extend(extra);
    let o = cryocube(&args);
    let t = text(&o);
    assert!(!t.contains("panicked"), "{t}");
    let mut places: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("$"))
        .map(|l| l.split(": ").next().unwrap().to_string())
        .collect();
    places.sort();
    (o.status.code(), places, t)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn the_seed_recipe_departs_where_a_schema_validator_says() {
    let seed = shared().join("recipes/seed/cube.geojson");
    let before = std::fs::read(&seed).unwrap();
    let (code, places, t) = check(&seed, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert_eq!(places, sorted(seed_places()), "{t}");
    for words in [
        "$.properties.variables[0].fill_value: \"nan\" is a string, not a number",
        "a download source needs variables (a mapping of cube variable to the source's name",
        "a download source has no field variable_names",
        "22 place(s) depart from the DeepESDL dataset specification",
    ] {
        assert!(t.contains(words), "{words:?} missing: {t}");
    }
    // Our own reading of it is reported too (the seed's known defects), and nothing is written.
    assert!(
        t.contains("warning: $.properties.variables[2].units: \"m\" is a length"),
        "{t}"
    );
    assert_eq!(std::fs::read(&seed).unwrap(), before);
}

#[test]
fn check_fix_writes_the_coverage_polygon_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/polar-standin/cube.geojson");
    let recipe = tmp.path().join("cube.geojson");
    std::fs::copy(&example, &recipe).unwrap();
    let (code, places, t) = check(&recipe, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert_eq!(places, sorted(example_places()), "{t}");
    assert!(
        t.contains("$.geometry: null is null, not the coverage polygon"),
        "{t}"
    );

    let (code, places, t) = check(&recipe, &["--fix"]);
    assert_eq!(code, Some(1), "{t}");
    let mut want = example_places();
    want.retain(|p| p != "$.geometry");
    assert_eq!(places, sorted(want), "{t}");
    // Only the geometry changed.
    let read = |path: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let (mut before, mut after) = (read(&example), read(&recipe));
    let geometry = after["geometry"].take();
    before["geometry"] = Value::Null;
    assert_eq!(before, after);
    assert_eq!(geometry["type"], "Polygon");
    // The grid's corners, converted by pyproj (not GDAL), are vertices of the polygon.
    let bbox = &before["properties"]["spatial_bbox"];
    let script = format!(
        r#"
import json, pyproj
g = json.loads({geometry:?})
b = json.loads({bbox:?})
t = pyproj.Transformer.from_crs(3031, 4326, always_xy=True)
ring = g["coordinates"][0]
assert ring[0] == ring[-1] and len(ring) > 200, len(ring)
for x, y in [(b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3])]:
    lon, lat = t.transform(x, y)
    d = min(abs(p[0] - lon) + abs(p[1] - lat) for p in ring)
    assert d < 1e-5, (x, y, lon, lat, d)
# anticlockwise (RFC 7946): positive shoelace area
area = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:]))
assert area > 0, area
print("corners ok")
"#,
        geometry = geometry.to_string(),
        bbox = bbox.to_string(),
    );
    let o = Command::new(venv()).args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_conforming_recipe_passes_and_its_colour_bar_reaches_the_cube() {
    let tmp = tempfile::tempdir().unwrap();
    let tif = shared().join("data/polar/geotiff/ant4d_fa.tif");
    let recipe = tmp.path().join("cube.geojson");
    let doc = json!({
        "type": "Feature",
        "geometry": null,
        "properties": {
            "data_id": "ant4d-fa", "title": "Free-air anomaly", "description": "4D-Antarctica",
            "version": "1.0.0", "license": "CC-BY-4.0",
            "spatial_ref": "EPSG:3031",
            "spatial_bbox": [-1800000.0, -700000.0, -1200000.0, -100000.0],
            "spatial_res": 20000,
            "variables": [{"name": "fa", "long_name": "free-air anomaly", "dtype": "float32",
                           "dims": ["y", "x"], "units": "mGal", "fill_value": -32767,
                           "metadata": {"color_bar_name": "RdBu_r",
                                        "color_value_min": -80, "color_value_max": 80}}],
            "sources": [{"name": "4D-Antarctica", "variables": {"fa": "fa"},
                         "download_url": format!("file://{}", tif.display()),
                         "processing": {"nodata": -32767}}]
        }
    });
    std::fs::write(&recipe, doc.to_string()).unwrap();
    let (code, places, t) = check(&recipe, &["--fix"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(places.is_empty(), "{t}");
    assert!(
        t.contains("conforms to the DeepESDL dataset specification and builds"),
        "{t}"
    );
    // It builds (the spec's `variables` mapping and a single spatial_res number are read),
    // and the colour bar and the coverage are in the cube.
    let out = tmp.path().join("cube.zarr");
    let o = cryocube(&[
        "build",
        p(&recipe),
        "-o",
        p(&out),
        "--sources",
        p(&tmp.path().join("sources")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r = cryocube_cube::CubeReader::open(&out).unwrap();
    let a = &r.array("fa").unwrap().attrs;
    assert_eq!(a["color_bar_name"], "RdBu_r");
    assert_eq!(a["color_value_min"], -80);
    assert_eq!(a["color_value_max"], 80);
    assert_eq!(a["valid_fraction"], 1.0);
    let bounds = r.attrs()["geospatial_bounds"].as_str().unwrap().to_string();
    assert!(bounds.starts_with("POLYGON (("), "{bounds}");
    assert_eq!(r.attrs()["geospatial_bounds_crs"], "EPSG:4326");
}

#[test]
fn a_recipe_that_is_not_json_or_cannot_build_fails_check() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tmp.path().join("cube.geojson");
    std::fs::write(&recipe, "{ not json").unwrap();
    let (code, _, t) = check(&recipe, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(t.contains("cube.geojson") && t.contains("not JSON"), "{t}");
    // Valid JSON but a typo in a processing block: our schema's error, with its path.
    let mut doc: Value = serde_json::from_str(
        &std::fs::read_to_string(shared().join("recipes/seed/cube.geojson")).unwrap(),
    )
    .unwrap();
    doc["properties"]["sources"][0]["processing"] = json!({"bnad": 2});
    std::fs::write(&recipe, doc.to_string()).unwrap();
    let (code, _, t) = check(&recipe, &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(
        t.contains("error:")
            && t.contains("$.properties.sources[0].processing")
            && t.contains("bnad"),
        "{t}"
    );
    assert!(t.contains("cryocube cannot build it"), "{t}");
}
