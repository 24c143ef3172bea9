//! The seed's `patch.yaml` applied with xcube semantics to a cube with some of its variables:
//! attributes replaced, `__delete__` honoured except for the attributes readers need (refused
//! without force), numeric units stored as strings, unknown variables warned about, the
//! consolidated metadata equal to the documents on disk, and a dry run changing nothing.

use std::path::{Path, PathBuf};

use cryocube_cube::cf::attrs;
use cryocube_cube::patch::{apply, load_patch};
use cryocube_cube::{ArraySpec, CubeWriter, DType, WriteOptions};
use serde_json::{json, Value};

fn seed_patch() -> PathBuf {
    let base = std::env::var_os("CRYOCUBE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    let p = base.join("recipes/seed/patch.yaml");
    assert!(
        p.is_file(),
        "{} not found (set CRYOCUBE_SHARED)",
        p.display()
    );
    p
}

fn cube(root: &Path) {
    let mut w = CubeWriter::create(root, WriteOptions::default()).unwrap();
    for name in ["magnetic_anomaly", "thw_70"] {
        w.add_array(ArraySpec {
            name: name.into(),
            dims: vec!["y".into(), "x".into()],
            shape: vec![4, 4],
            chunks: vec![4, 4],
            shard: None,
            dtype: DType::F32,
            attrs: attrs([
                ("grid_mapping", json!("crs")),
                ("coordinates", json!("crs")),
                ("units", json!("nT")),
            ]),
        })
        .unwrap();
        w.write_chunk(name, &[0, 0], &[1f32; 16]).unwrap();
    }
    w.add_array(ArraySpec::scalar(
        "crs",
        DType::I32,
        attrs([("spatial_ref", json!("EPSG:3031"))]),
    ))
    .unwrap();
    w.finish(attrs([("title", json!("before"))])).unwrap();
}

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn the_seed_patch_applies_with_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c.zarr");
    cube(&root);
    let patch = load_patch(&seed_patch()).unwrap();

    let before = std::fs::read(root.join(".zmetadata")).unwrap();
    let dry = apply(&root, &patch, false, true).unwrap();
    assert!(!dry.changes.is_empty());
    assert_eq!(
        std::fs::read(root.join(".zmetadata")).unwrap(),
        before,
        "dry run wrote"
    );

    let report = apply(&root, &patch, false, false).unwrap();
    let warnings = report.warnings.join("\n");
    assert!(
        warnings.contains("curie_depth_200km: no such variable"),
        "{warnings}"
    );
    assert!(
        warnings.contains("magnetic_anomaly: not deleting `grid_mapping`"),
        "{warnings}"
    );
    assert!(
        warnings.contains("thw_70: not deleting `coordinates`"),
        "{warnings}"
    );
    assert!(warnings.contains("units 1 is not a string"), "{warnings}");

    let global = read(&root.join(".zattrs"));
    assert_eq!(global["title"], "Polar Data Cube v1.0.1");
    assert_eq!(global["project"], "DeepESDL");
    let thw = read(&root.join("thw_70/.zattrs"));
    assert_eq!(thw["units"], "1");
    assert_eq!(thw["coordinates"], "crs");
    assert_eq!(thw["_ARRAY_DIMENSIONS"], json!(["y", "x"]));
    let mag = read(&root.join("magnetic_anomaly/.zattrs"));
    assert_eq!(mag["grid_mapping"], "crs");
    // The consolidated metadata says what the files say.
    let z = read(&root.join(".zmetadata"));
    assert_eq!(z["metadata"][".zattrs"], global);
    assert_eq!(z["metadata"]["thw_70/.zattrs"], thw);
    assert_eq!(z["metadata"]["magnetic_anomaly/.zattrs"], mag);
    assert_eq!(
        z["metadata"]["thw_70/.zarray"],
        read(&root.join("thw_70/.zarray"))
    );

    // With force, the deletions the seed asked for happen.
    let forced = apply(&root, &patch, true, false).unwrap();
    assert!(forced
        .changes
        .iter()
        .any(|c| c.to_string().contains("- grid_mapping")));
    assert!(read(&root.join("magnetic_anomaly/.zattrs"))
        .get("grid_mapping")
        .is_none());
}

#[test]
fn a_store_that_is_not_a_cube_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let e = apply(tmp.path(), &json!({"metadata": {}}), false, false).unwrap_err();
    assert!(e.to_string().contains("not a published cube"), "{e}");
}
