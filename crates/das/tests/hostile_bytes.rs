//! The binary readers on hostile bytes (issue #18), property-based: real TDMS, SEG-Y and
//! Sentek files with bytes flipped, fields overwritten and the end cut anywhere, and Febus
//! files of any block shape and header values. Each must give a header or an error, never panic, and never
//! allocate more than a bound derived from the file's size. `PROPTEST_CASES` sets the number
//! of cases (a bounded default runs in `make test`).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use cryocube_das::read::{self, Format};
use proptest::prelude::*;

/// Counts this thread's live heap bytes and their peak, so a test can bound what a parser
/// allocates. (The one `unsafe` here is the allocator interface itself.)
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = (live.get() as isize + delta).max(0) as usize;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most heap bytes it held at once (this thread).
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get).saturating_sub(base))
}

/// Opens `path` as `format`, reads its header and, when there is one, its first rows of
/// every channel. Returns the peak allocation.
fn open_and_read(path: &Path, format: Format) -> usize {
    let ((), peak) = peak_of(|| {
        if let Ok(mut reader) = read::open(path, Some(format)) {
            let h = reader.header().clone();
            let rows = h.n_samples.min(64) as usize;
            let mut out = vec![0f32; rows * h.n_channels as usize];
            let _ = reader.read_block(0, rows, 0, h.n_channels, &mut out);
        }
    });
    peak
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

fn tdms_bytes() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        std::fs::read(common::das_data().join("sample_tdms_file_v4713.tdms")).unwrap()
    })
}

/// What may be done to the TDMS file: bytes set, a lead-in field overwritten, the end cut.
#[derive(Debug, Clone)]
struct TdmsDamage {
    flips: Vec<(usize, u8)>,
    field: Option<(usize, u64)>,
    cut: Option<usize>,
}

fn tdms_damage() -> impl Strategy<Value = TdmsDamage> {
    // Lead-in and metadata are in the first few KiB: that is where damage is interesting.
    let flips = prop::collection::vec((0usize..8192, any::<u8>()), 0..12);
    // Offsets of the lead-in's u32 and u64 fields (toc, version, next segment, raw data).
    let field = prop::option::of((
        prop::sample::select(vec![4usize, 8, 12, 20]),
        prop_oneof![
            any::<u64>(),
            Just(u64::MAX),
            Just(0),
            Just(u64::MAX - 27),
            0u64..100_000
        ],
    ));
    let cut = prop::option::of(0usize..1_200_000);
    (flips, field, cut).prop_map(|(flips, field, cut)| TdmsDamage { flips, field, cut })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn tdms_of_hostile_bytes(d in tdms_damage()) {
        let mut b = tdms_bytes().to_vec();
        for &(at, v) in &d.flips {
            if at < b.len() {
                b[at] = v;
            }
        }
        if let Some((at, v)) = d.field {
            let width = if at < 12 { 4 } else { 8 };
            b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        if let Some(cut) = d.cut {
            b.truncate(cut);
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("hostile.tdms");
        std::fs::write(&path, &b).unwrap();
        let peak = open_and_read(&path, Format::SilixaTdms);
        // Metadata is read whole (at most the file), rows in blocks: a few times the file.
        prop_assert!(peak <= 4 * b.len() + (1 << 20), "{peak} bytes for a file of {}", b.len());
    }
}

/// A Febus-like file: blocks x rows x channels, with the zone's header attributes given.
#[derive(Debug, Clone)]
struct FebusFile {
    blocks: usize,
    rows: usize,
    channels: usize,
    spacing: [f64; 2],
    origin: [f64; 2],
    extent: f64,
    rate: Option<f64>,
    overlap: Option<f64>,
    block_rate: Option<f64>,
    times: Vec<f64>,
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -10.0f64..2000.0,
        1 => Just(0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1e300),
        1 => Just(1e300),
    ]
}

fn febus_file() -> impl Strategy<Value = FebusFile> {
    (
        (1usize..4, 0usize..40, 0usize..6),
        (number(), number(), number(), number(), number()),
        (
            prop::option::of(number()),
            prop::option::of(number()),
            prop::option::of(number()),
        ),
        prop::collection::vec(number(), 0..5),
    )
        .prop_map(
            |(
                (blocks, rows, channels),
                (s0, s1, o0, o1, extent),
                (rate, overlap, block_rate),
                times,
            )| {
                FebusFile {
                    blocks,
                    rows,
                    channels,
                    spacing: [s0, s1],
                    origin: [o0, o1],
                    extent,
                    rate,
                    overlap,
                    block_rate,
                    times,
                }
            },
        )
}

fn write_febus(path: &Path, f: &FebusFile) {
    let file = hdf5::File::create(path).unwrap();
    let zone = file.create_group("dev/Source1/Zone1").unwrap();
    let data =
        ndarray::Array3::<f32>::from_shape_fn((f.blocks, f.rows, f.channels), |(b, r, c)| {
            (b * 7 + r * 3 + c) as f32
        });
    zone.new_dataset_builder()
        .with_data(&data)
        .create("StrainRate")
        .unwrap();
    let attr = |name: &str, v: &[f64]| {
        zone.new_attr::<f64>()
            .shape(v.len())
            .create(name)
            .unwrap()
            .write(v)
            .unwrap();
    };
    attr("Spacing", &f.spacing);
    attr("Origin", &f.origin);
    attr("Extent", &[f.extent]);
    if let Some(r) = f.rate {
        attr("SamplingRate", &[r]);
    }
    if let Some(o) = f.overlap {
        attr("BlockOverlap", &[o]);
    }
    if let Some(b) = f.block_rate {
        attr("BlockRate", &[b]);
    }
    file.new_dataset_builder()
        .with_data(&f.times)
        .create("dev/Source1/time")
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn febus_of_any_block_shape_and_header(f in febus_file()) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("febus.h5");
        write_febus(&path, &f);
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        let peak = open_and_read(&path, Format::Febus);
        // The HDF5 library allocates outside Rust's allocator; what Rust holds is the block
        // being read and the header: bounded by the file's size.
        prop_assert!(peak <= 4 * size + (1 << 20), "{peak} bytes for a file of {size}");
    }
}

/// A real file with bytes set in its first `span` bytes, a header field overwritten (big- or
/// little-endian, 2 or 4 bytes) and the end cut anywhere.
#[derive(Debug, Clone)]
struct Damage {
    flips: Vec<(usize, u8)>,
    field: Option<(usize, u32, bool, bool)>,
    cut: Option<usize>,
}

fn damage(span: usize, fields: Vec<usize>, len: usize) -> impl Strategy<Value = Damage> {
    let flips = prop::collection::vec((0usize..span, any::<u8>()), 0..12);
    let value = prop_oneof![any::<u32>(), Just(u32::MAX), Just(0), 0u32..70_000];
    let field = prop::option::of((
        prop::sample::select(fields),
        value,
        any::<bool>(),
        any::<bool>(),
    ));
    let cut = prop::option::of(0usize..len + 1);
    (flips, field, cut).prop_map(|(flips, field, cut)| Damage { flips, field, cut })
}

fn damaged(original: &[u8], d: &Damage) -> Vec<u8> {
    let mut b = original.to_vec();
    for &(at, v) in &d.flips {
        if at < b.len() {
            b[at] = v;
        }
    }
    if let Some((at, v, wide, big)) = d.field {
        let bytes: Vec<u8> = match (wide, big) {
            (true, true) => v.to_be_bytes().to_vec(),
            (true, false) => v.to_le_bytes().to_vec(),
            (false, true) => (v as u16).to_be_bytes().to_vec(),
            (false, false) => (v as u16).to_le_bytes().to_vec(),
        };
        if at + bytes.len() <= b.len() {
            b[at..at + bytes.len()].copy_from_slice(&bytes);
        }
    }
    if let Some(cut) = d.cut {
        b.truncate(cut);
    }
    b
}

fn real(name: &str) -> Vec<u8> {
    std::fs::read(common::das_data().join(name)).unwrap()
}

/// Opens the damaged bytes both as the given format and by detection.
fn hostile_file(bytes: &[u8], name: &str, format: Format) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let peak = open_and_read(&path, format);
    prop_assert!(
        peak <= 4 * bytes.len() + (1 << 20),
        "{peak} bytes for a file of {}",
        bytes.len()
    );
    let _ = read::detect(&path);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// SEG-Y binary header fields (interval, samples, format code, revision, extended
    /// headers, byte-order constant, extended samples and interval) and the first trace
    /// header's time.
    #[test]
    fn segy_of_hostile_bytes(d in damage(4000, vec![3216, 3220, 3224, 3296, 3260, 3268, 3272, 3500, 3504, 3756, 3758, 3760], 6800)) {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let good = BYTES.get_or_init(|| real("extra/small_channel_patch.sgy"));
        hostile_file(&damaged(good, &d), "hostile.sgy", Format::Segy)?;
    }

    /// Sentek's float32 header (channels, samples, interval, flags) and tables.
    #[test]
    fn sentek_of_hostile_bytes(d in damage(512, vec![0, 4, 8, 12, 20, 24, 28], 2_347_540)) {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let good = BYTES.get_or_init(|| real("more/DASDMSShot00_20230328155653619.das"));
        hostile_file(&damaged(good, &d), "Shot_20230328155653619.das", Format::Sentek)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// miniSEED record headers (time, sample count, rate, data offset, blockette chain,
    /// blockette 1000's encoding, word order and length) and Steim frames, in the first and
    /// a later record.
    #[test]
    fn mseed_of_hostile_bytes(d in damage(8192, vec![20, 22, 30, 32, 34, 44, 46, 48, 50, 56, 58, 60, 62, 64, 68, 72, 4096 + 46, 4096 + 60, 4096 + 68], 61440)) {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let good = BYTES.get_or_init(|| real("more/etna_9n_3chan_10s.mseed"));
        hostile_file(&damaged(good, &d), "hostile.mseed", Format::Mseed)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Sintela's record envelopes (tag, size) and the protobuf of the first packets (lengths,
    /// varints, the channel count and sample count).
    #[test]
    fn sintela_of_hostile_bytes(d in damage(30_163 + 13_000, vec![8, 30_163 + 4, 30_163 + 8, 30_163 + 13, 30_163 + 15, 30_163 + 30, 30_163 + 31, 30_163 + 50, 30_163 + 95], 1_232_801)) {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let good = BYTES.get_or_init(|| real("more/sintela_protobuf_1.pb"));
        hostile_file(&damaged(good, &d), "hostile.pb", Format::Sintela)?;
    }
}
