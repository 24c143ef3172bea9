//! Any bytes as a Febus A1 HDF5 file (start from the corpus of real files: the HDF5 library
//! rejects most random bytes early): a header and the first rows, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

use cryocube_das::read::{self, Format};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp folder");
    let path = dir.path().join("f.h5");
    std::fs::write(&path, data).expect("write");
    if let Ok(mut r) = read::open(&path, Some(Format::Febus)) {
        let h = r.header().clone();
        let rows = h.n_samples.min(64) as usize;
        let mut out = vec![0f32; rows * h.n_channels.min(1 << 16) as usize];
        let _ = r.read_block(0, rows, 0, h.n_channels.min(1 << 16), &mut out);
    }
});
