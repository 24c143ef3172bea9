//! Any bytes as an old GMT netCDF grid: a raster or an error naming the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp folder");
    let path = dir.path().join("g.grd");
    std::fs::write(&path, data).expect("write");
    let _ = cryocube_geo::read::gmt::read(&path);
});
