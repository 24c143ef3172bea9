//! The Python package (`python/`): built into the test venv with maturin (as `pip install
//! ./python` does, in the workspace's dev profile so that the compiled crates are reused),
//! then its pytest suite (`python/tests`) run against the real files of shared/ and this
//! build's `cryocube` binary. A failing or missing import fails here; nothing is skipped.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn the_python_package_passes_its_tests() {
    let python = common::venv();
    let venv = python.parent().unwrap().parent().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = Command::new(venv.join("bin/maturin"))
        .args(["develop", "--quiet", "--manifest-path", "python/Cargo.toml"])
        .env("VIRTUAL_ENV", venv)
        .current_dir(&root)
        .output()
        .expect("maturin (in crates/cli/tests/requirements.lock)");
    assert!(o.status.success(), "maturin develop: {}", common::text(&o));
    let o = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "python/tests",
        ])
        .env("CRYOCUBE_SHARED", common::shared())
        .env("CRYOCUBE_BIN", env!("CARGO_BIN_EXE_cryocube"))
        .current_dir(&root)
        .output()
        .unwrap();
    let out = common::text(&o);
    println!("{out}");
    assert!(o.status.success(), "pytest failed:\n{out}");
    // Every test ran: none skipped, none deselected.
    assert!(!out.contains("skipped") && out.contains(" passed"), "{out}");
}
