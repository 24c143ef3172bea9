//! A run killed midway and started again with the same arguments resumes from its plan and
//! ends with the same chunk bytes and metadata as an uninterrupted run (only `date_created`
//! and `history`, which name the time of the run, may differ).

mod common;

use std::path::Path;

use common::{assert_same_store, cryocube, das, kill_after_blocks, p, text};

#[test]
fn killed_run_resumes_to_the_same_cube() {
    let tmp = tempfile::tempdir().unwrap();
    let input = das("synthetic");
    let whole = tmp.path().join("whole.zarr");
    let resumed = tmp.path().join("resumed.zarr");
    let args = |out: &Path| -> Vec<String> {
        ["das", p(&input), "-o", p(out), "--chunks", "8,4", "-q"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let (whole_args, resumed_args) = (args(&whole), args(&resumed));
    let o = cryocube(&argv(&whole_args));
    assert!(o.status.success(), "{}", text(&o));

    kill_after_blocks(&argv(&resumed_args), &resumed, 3);
    assert!(
        !resumed.join(".zmetadata").exists(),
        "a killed run leaves no complete-looking cube"
    );
    let info = cryocube(&["info", p(&resumed)]);
    assert!(text(&info).contains("INCOMPLETE"), "{}", text(&info));

    let o = cryocube(&argv(&resumed_args));
    assert!(o.status.success(), "{}", text(&o));
    assert_same_store(&whole, &resumed);
}

fn argv(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// `cryocube build` killed midway (the example recipe at 1 km in 128-cell chunks, parallel
/// workers) resumes from its plan to the same bytes as an uninterrupted build; a build
/// with another recipe refuses to take over the unfinished store.
#[test]
fn killed_build_resumes_to_the_same_cube() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/polar-standin/cube.geojson");
    let sources = tmp.path().join("sources");
    let args = |out: &Path| -> Vec<String> {
        let r = [
            "build",
            p(&recipe),
            "-o",
            p(out),
            "--sources",
            p(&sources),
            "--res",
            "1000",
            "--chunk",
            "128",
            "-q",
        ];
        r.iter().map(|s| s.to_string()).collect()
    };
    let whole = tmp.path().join("whole.zarr");
    let resumed = tmp.path().join("resumed.zarr");
    let (whole_args, resumed_args) = (args(&whole), args(&resumed));
    let o = cryocube(&argv(&whole_args));
    assert!(o.status.success(), "{}", text(&o));

    kill_after_blocks(&argv(&resumed_args), &resumed, 60);
    assert!(!resumed.join(".zmetadata").exists());

    // Another recipe must not continue this store.
    let other = tmp.path().join("other.geojson");
    std::fs::write(
        &other,
        std::fs::read_to_string(&recipe)
            .unwrap()
            .replace("Polar stand-in cube", "Another cube"),
    )
    .unwrap();
    let mut other_args = resumed_args.clone();
    other_args[1] = p(&other).to_string();
    let o = cryocube(&argv(&other_args));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("an unfinished build of another recipe"),
        "{}",
        text(&o)
    );

    let mut verbose = resumed_args.clone();
    verbose.pop();
    let o = cryocube(&argv(&verbose));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("resuming an interrupted build"),
        "{}",
        text(&o)
    );
    assert_same_store(&whole, &resumed);
}
