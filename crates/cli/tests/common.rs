//! Helpers for the command-line tests: the real data folder and running the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `shared/` beside the checkout (or `CRYOCUBE_SHARED`); missing data fails loudly.
pub fn shared() -> PathBuf {
    let base = std::env::var_os("CRYOCUBE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    assert!(
        base.join("data/das/MANIFEST.md").is_file(),
        "real data not found at {} (set CRYOCUBE_SHARED to the shared/ folder)",
        base.display()
    );
    base
}

pub fn das(name: &str) -> PathBuf {
    shared().join("data/das").join(name)
}

pub fn cryocube(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("run cryocube")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
