//! Any text as an S3 answer: a ListObjectsV2 page and an error body.
#![no_main]

use libfuzzer_sys::fuzz_target;

use cryocube_cube::store::s3::{error_fields, parse_listing};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_listing(&text);
    let _ = error_fields(&text);
});
