//! Shared test helpers: where the real data lives (../shared, never copied into the repo).
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::PathBuf;

/// `shared/data/das` beside the checkout; `CRYOCUBE_SHARED` overrides. Missing data is a
/// loud failure, never a skip.
pub fn das_data() -> PathBuf {
    let base = std::env::var_os("CRYOCUBE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    let p = base.join("data/das");
    assert!(
        p.join("MANIFEST.md").is_file(),
        "real DAS data not found at {} (set CRYOCUBE_SHARED to the shared/ folder)",
        p.display()
    );
    p
}
