//! The real data folder for the geo tests; missing data fails loudly.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::PathBuf;

/// `shared/` beside the checkout (or `CRYOCUBE_SHARED`), joined with `rel`, which must exist.
pub fn shared(rel: &str) -> PathBuf {
    let base = std::env::var_os("CRYOCUBE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    let p = base.join(rel);
    assert!(
        p.exists(),
        "{} not found (set CRYOCUBE_SHARED to the shared/ folder)",
        p.display()
    );
    p
}
