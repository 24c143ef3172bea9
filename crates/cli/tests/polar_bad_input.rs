//! Bad input to `cryocube build`: each case gets a message naming the file (or the recipe's
//! JSON path) and the problem, exit code 1, no panic, and no cube that looks complete.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_build_fails, cryocube, p, shared, text};

/// A one-variable recipe over the reference bbox at 10 km with `source` as its source.
fn recipe(dir: &Path, spatial_ref: &str, source: serde_json::Value) -> std::path::PathBuf {
    let path = dir.join("cube.geojson");
    let text = serde_json::json!({
        "type": "Feature", "geometry": null,
        "properties": {
            "spatial_ref": spatial_ref,
            "spatial_bbox": [-1800000.0, -700000.0, -1200000.0, -100000.0],
            "spatial_res": [10000, 10000],
            "variables": [{"name": "v", "dims": ["y", "x"]}],
            "sources": [source]
        }
    });
    std::fs::write(&path, text.to_string()).unwrap();
    path
}

fn polar(rel: &str) -> String {
    format!("file://{}", shared().join("data/polar").join(rel).display())
}

#[test]
fn missing_source_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "Gone", "variable_names": ["v"],
                           "download_url": polar("geotiff/no_such_file.tif")}),
    );
    assert_build_fails(tmp.path(), &r, &["no_such_file.tif", "No such file"]);
}

#[test]
fn unreadable_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("garbage.tif");
    std::fs::write(&bad, b"II*\0 this is not a GeoTIFF").unwrap();
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "Garbage", "variable_names": ["v"],
                           "download_url": format!("file://{}", bad.display())}),
    );
    assert_build_fails(tmp.path(), &r, &["garbage.tif", "GDAL cannot read it"]);
}

#[test]
fn file_without_crs_and_none_in_the_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "BedMachine", "variable_names": ["v"],
                           "download_url": polar("gmt_netcdf/BedMachine_bed_wgs_10k.nc")}),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &[
            "BedMachine_bed_wgs_10k.nc",
            "declares no CRS and the recipe gives none",
        ],
    );
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "GMT", "variable_names": ["v"],
                           "download_url": polar("gmt_netcdf/BEDMAP1_bed_5km_cf.nc")}),
    );
    assert_build_fails(tmp.path(), &r, &["BEDMAP1_bed_5km_cf.nc", "carries no CRS"]);
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "No prj", "variable_names": ["v"], "source_format": "shp",
                           "download_url": polar("vector/thwaites_grounding_zone_no_prj/GL_VARIABILITY.shp")}),
    );
    assert_build_fails(tmp.path(), &r, &["GL_VARIABILITY.shp", "no .prj"]);
}

#[test]
fn invalid_recipe_names_the_json_path() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "Typo", "variable_names": ["v"],
                           "download_url": polar("geotiff/ant4d_fa.tif"),
                           "processing": {"resample": "nearest"}}),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &[
            "cube.geojson",
            "$.properties.sources[0].processing",
            "unknown field `resample`",
        ],
    );
    std::fs::write(
        &r,
        std::fs::read_to_string(&r)
            .unwrap()
            .replace("[10000,10000]", "\"fast\""),
    )
    .unwrap();
    assert_build_fails(tmp.path(), &r, &["$.properties.spatial_res"]);
}

#[test]
fn broken_crs_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "BedMachine", "variable_names": ["v"],
                           "download_url": polar("gmt_netcdf/BedMachine_bed_wgs_10k.nc"),
                           "processing": {"crs": "EPSG:999999"}}),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &["BedMachine_bed_wgs_10k.nc", "\"EPSG:999999\" is not usable"],
    );
    let r = recipe(
        tmp.path(),
        "EPSG:nonsense",
        serde_json::json!({"name": "Gravity", "variable_names": ["v"],
                           "download_url": polar("geotiff/ant4d_fa.tif")}),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &[
            "$.properties.spatial_ref",
            "\"EPSG:nonsense\" is not a CRS GDAL knows",
        ],
    );
}

#[test]
fn archive_with_a_traversal_entry_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("evil.tar");
    let payload = tmp.path().join("payload.txt");
    std::fs::write(&payload, b"evil").unwrap();
    let s = Command::new("python3")
        .args([
            "-c",
            "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'w') as t: t.add(sys.argv[2], arcname='../../evil.txt')",
            p(&tar),
            p(&payload),
        ])
        .status()
        .expect("python3 makes the archive");
    assert!(s.success());
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "Evil", "variable_names": ["v"], "compressed": true,
                           "compression_format": "tar",
                           "download_url": format!("file://{}", tar.display()),
                           "processing": {"files": [{"path": "*.tif"}]}}),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &["evil.tar", "archive refused", "../../evil.txt"],
    );
    assert!(!tmp.path().join("evil.txt").exists());
    assert!(!tmp.path().join("sources/evil.txt").exists());
}

#[test]
fn bbox_outside_a_source_warns_and_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "REMA clip", "variable_names": ["v"],
                           "download_url": polar("geotiff/ClippedDEMforPartialFillingAnalysis.tif")}),
    );
    let out = tmp.path().join("out.zarr");
    let o = cryocube(&[
        "build",
        p(&r),
        "-o",
        p(&out),
        "--sources",
        p(&tmp.path().join("s")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o)
            .contains("v: no cell of the grid has data (does the bbox lie outside its source?)"),
        "{}",
        text(&o)
    );
    let c = cryocube_cube::CubeReader::open(&out).unwrap();
    assert_eq!(c.array("v").unwrap().attrs["valid_fraction"], 0.0);
}

/// `cryocube` hands `build` (and every command that needs GDAL) to `cryocube-geo` beside it,
/// which every other test here runs through. Without it: a message naming both programs and
/// what to install, exit 1, nothing written.
#[test]
fn build_without_cryocube_geo_beside_cryocube_says_what_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let alone = tmp.path().join("cryocube");
    std::fs::copy(env!("CARGO_BIN_EXE_cryocube"), &alone).unwrap();
    let r = recipe(
        tmp.path(),
        "EPSG:3031",
        serde_json::json!({"name": "BedMachine", "variable_names": ["v"],
                           "download_url": polar("gmt_netcdf/BedMachine_bed_wgs_10k.nc")}),
    );
    let out = tmp.path().join("cube.zarr");
    let o = Command::new(&alone)
        .args(["build", p(&r), "-o", p(&out)])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let helper = tmp.path().join("cryocube-geo");
    assert!(
        t.contains(&format!("needs GDAL, which {}", helper.display())),
        "{t}"
    );
    assert!(
        t.contains("cannot be started") && t.contains("install both programs"),
        "{t}"
    );
    assert!(!out.exists(), "nothing is written");
    // A DAS command needs no helper.
    let o = Command::new(&alone)
        .args(["info", p(&tmp.path().join("none.zarr"))])
        .output()
        .unwrap();
    assert!(!text(&o).contains("cryocube-geo"), "{}", text(&o));
}
