//! Many files as one stream, on the real synthetic record: continuity across boundaries,
//! a missing file becomes a NaN gap on a regular time axis, a repeated file is an overlap.

mod common;

use cryocube_cube::CubeReader;
use cryocube_das::job::{run, DasOptions};
use cryocube_das::stream::Record;

fn synthetic(i: usize) -> std::path::PathBuf {
    let names = ["000000", "000030", "000100"];
    common::das_data().join(format!(
        "synthetic/SYNTHETIC_rhonelike_UTC_20200722_{}.000.h5",
        names[i]
    ))
}

#[test]
fn files_given_out_of_order_are_one_contiguous_record() {
    let r = Record::scan(
        &[synthetic(2), synthetic(0), synthetic(1)],
        None,
        Default::default(),
    )
    .unwrap();
    assert_eq!(r.n_samples, 90_000);
    assert!(r.gaps.is_empty() && r.overlaps.is_empty());
    assert_eq!(
        r.segments.iter().map(|s| s.start).collect::<Vec<_>>(),
        vec![0, 30_000, 60_000]
    );
}

#[test]
fn a_missing_file_is_a_nan_gap_and_the_time_axis_stays_regular() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gap.zarr");
    let opts = DasOptions::new(vec![synthetic(0), synthetic(2)], out.clone());
    let s = run(&opts, &|_, _| {}).unwrap();
    assert_eq!(s.gaps, 1);
    // 90 s of axis (30 s missing), 1 s windows every 0.1 s.
    assert_eq!(s.windows, 891);
    let cube = CubeReader::open(&out).unwrap();
    let t = cube.read_all_i64("time").unwrap();
    assert!(
        t.windows(2).all(|w| w[1] - w[0] == 100_000),
        "regular 0.1 s axis"
    );
    let nc = 32usize;
    let nf = 101usize;
    let v = cube.read_all_f64("spectrogram").unwrap();
    let window_is_nan = |w: usize| (0..nc * nf).all(|i| v[w * nc * nf + i].is_nan());
    let window_is_finite = |w: usize| (0..nc * nf).all(|i| v[w * nc * nf + i].is_finite());
    // Window w covers samples [100 w, 100 w + 1000); the gap is samples 30000..60000.
    assert!(window_is_finite(290), "last window before the gap");
    assert!(
        window_is_nan(291) && window_is_nan(450) && window_is_nan(599),
        "windows touching the gap"
    );
    assert!(window_is_finite(600), "first window after the gap");
    let meta = std::fs::read_to_string(out.join(".zmetadata")).unwrap();
    assert!(
        meta.contains("\"gaps\"")
            && meta.contains("SYNTHETIC_rhonelike_UTC_20200722_000100.000.h5")
    );
}

#[test]
fn a_repeated_file_is_an_overlap_that_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy_of_second.h5");
    std::fs::copy(synthetic(1), &copy).unwrap();
    let r = Record::scan(
        &[synthetic(0), synthetic(1), copy, synthetic(2)],
        None,
        Default::default(),
    )
    .unwrap();
    assert_eq!(r.n_samples, 90_000, "the duplicate adds nothing");
    assert!(!r.warnings.is_empty(), "the skipped duplicate is reported");
}

#[test]
fn a_block_laid_in_on_a_second_thread_is_the_plain_one() {
    use cryocube_das::stream::{Block, BlockReader};
    // Files 0 and 2: a block from 20 s to 70 s holds the end of one file, the 30 s gap and
    // the start of the other, in several pieces.
    let r = Record::scan(&[synthetic(0), synthetic(2)], None, Default::default()).unwrap();
    let (c0, c1) = (3, r.n_channels - 2);
    let width = (c1 - c0) as usize;
    let (a, b) = (20_000u64, 70_000u64);
    let empty = Block::new(width, 0);
    let mut plain = Block::new(width, (b - a) as usize);
    let mut alone = Block::new(width, (b - a) as usize);
    BlockReader::new(&r, c0, c1)
        .load(&mut plain, &empty, a, b)
        .unwrap();
    BlockReader::new(&r, c0, c1)
        .load_alone(&mut alone, &empty, a, b)
        .unwrap();
    // The same samples, read the other way: row-major straight from the files.
    let mut rows = vec![0f32; (b - a) as usize * width];
    BlockReader::new(&r, c0, c1)
        .read_rows(a, b, &mut rows)
        .unwrap();
    let (mut finite, mut gap) = (0, 0);
    for c in 0..width {
        let (p, q) = (plain.channel(c), alone.channel(c));
        assert_eq!(p.len(), (b - a) as usize);
        for (k, (x, y)) in p.iter().zip(q).enumerate() {
            let want = rows[k * width + c];
            assert!(
                x.to_bits() == y.to_bits()
                    && (x.to_bits() == want.to_bits() || x.is_nan() && want.is_nan()),
                "channel {c}, sample {k}: {x} / {y} / {want}"
            );
            if x.is_nan() {
                // Only the gap (record samples 30 000 .. 60 000) is NaN.
                assert!((10_000..40_000).contains(&k), "NaN at {k}");
                gap += 1;
            } else {
                finite += 1;
            }
        }
    }
    assert_eq!(gap, 30_000 * width);
    assert_eq!(finite, 20_000 * width);
}

/// A copy of a Silixa-layout file with its samples in deflated chunks of 1000 samples x all
/// channels (as some interrogators write them), its attributes unchanged.
fn deflated_copy(src: &std::path::Path, dst: &std::path::Path) {
    use hdf5::types::VarLenUnicode;
    let from = hdf5::File::open(src).unwrap();
    let ds = from.dataset("Acoustic").unwrap();
    let data = ds.read_2d::<f32>().unwrap();
    let to = hdf5::File::create(dst).unwrap();
    let copy = to
        .new_dataset_builder()
        .chunk((1000, data.ncols()))
        .deflate(1)
        .with_data(&data)
        .create("Acoustic")
        .unwrap();
    for name in ds.attr_names().unwrap() {
        let v: VarLenUnicode = ds.attr(&name).unwrap().read_scalar().unwrap();
        copy.new_attr::<VarLenUnicode>()
            .create(name.as_str())
            .unwrap()
            .write_scalar(&v)
            .unwrap();
    }
}

#[test]
fn samples_in_deflated_chunks_give_the_spectra_of_contiguous_ones() {
    use cryocube_das::demo::SyntheticRecord;
    let tmp = tempfile::tempdir().unwrap();
    let plain = SyntheticRecord {
        files: 2,
        channels: 96,
        ..Default::default()
    }
    .write(&tmp.path().join("plain"))
    .unwrap();
    std::fs::create_dir_all(tmp.path().join("deflated")).unwrap();
    let deflated: Vec<_> = plain
        .iter()
        .map(|p| {
            let d = tmp.path().join("deflated").join(p.file_name().unwrap());
            deflated_copy(p, &d);
            d
        })
        .collect();
    // Blocks of 128 windows reach across the files' 1000-sample chunks and the file boundary.
    let cube = |files: Vec<std::path::PathBuf>, name: &str| {
        let out = tmp.path().join(name);
        let mut opts = DasOptions::new(files, out.clone());
        opts.distance_chunk = 16;
        opts.time_chunk = 128;
        run(&opts, &|_, _| {}).unwrap();
        CubeReader::open(&out)
            .unwrap()
            .read_all_f64("spectrogram")
            .unwrap()
    };
    let (a, b) = (cube(plain, "plain.zarr"), cube(deflated, "deflated.zarr"));
    assert_eq!(a.len(), 591 * 96 * 101);
    assert!(a.iter().any(|v| v.is_finite()));
    assert!(
        a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
        "the spectra differ"
    );
}
