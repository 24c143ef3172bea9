//! `cryocube fetch` from the command line: sources of a recipe (file: URLs to the real polar
//! files) land in `--dir`, archives extracted, a second run downloads nothing; a broken recipe
//! exits 1 naming the JSON path.

mod common;

use common::{cryocube, p, shared, text};

#[test]
fn fetch_puts_the_sources_where_told_and_skips_them_next_time() {
    let tmp = tempfile::tempdir().unwrap();
    let polar = shared().join("data/polar");
    let recipe = tmp.path().join("cube.geojson");
    let mask = polar.join("masks/Thw70_SF2018_mask.tif");
    let zip = polar.join("vector/subglacial_lakes/DML_Lakes_Combined.zip");
    std::fs::write(
        &recipe,
        serde_json::json!({
            "type": "Feature",
            "geometry": null,
            "properties": {
                "spatial_ref": "EPSG:3031",
                "spatial_bbox": [-1800000, -700000, -1200000, -100000],
                "spatial_res": [1000, 1000],
                "variables": [{"name": "thw_70"}, {"name": "dml"}],
                "sources": [
                    {"name": "Thw 70", "variable_names": ["Thw 70"], "download_url": format!("file://{}", mask.display())},
                    {"name": "DML", "variable_names": ["dml"], "download_url": format!("file://{}", zip.display()),
                     "compressed": true, "compression_format": "zip"}
                ]
            }
        })
        .to_string(),
    )
    .unwrap();
    let dir = tmp.path().join("sources");
    let o = cryocube(&["fetch", p(&recipe), "--dir", p(&dir)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(dir.join("thw_70/Thw70_SF2018_mask.tif")).unwrap(),
        std::fs::read(&mask).unwrap()
    );
    assert!(dir.join("dml/extracted").read_dir().unwrap().count() >= 4);
    let o = cryocube(&["fetch", p(&recipe), "--dir", p(&dir)]);
    assert!(
        o.status.success() && text(&o).matches("already there").count() == 2,
        "{}",
        text(&o)
    );
    // Nothing written beside the recipe or in the working directory.
    let mut beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    beside.sort();
    assert_eq!(beside, ["cube.geojson", "sources"]);

    std::fs::write(&recipe, r#"{"type": "Feature", "properties": {"spatial_ref": "EPSG:3031", "spatial_bbox": [0, 0, 10], "spatial_res": [1]}}"#).unwrap();
    let o = cryocube(&["fetch", p(&recipe), "--dir", p(&dir)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("$.properties.spatial_bbox"),
        "{}",
        text(&o)
    );
}
