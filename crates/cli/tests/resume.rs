//! A run killed midway and started again with the same arguments resumes from its journal and
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
