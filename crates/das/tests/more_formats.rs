//! The formats beyond the big vendors (DASDAE, GDR, simple HDF5, xdas netCDF, SEG-Y, Sentek):
//! the files the
//! MANIFEST gives no facts for are read in the right orientation (checked against values
//! read by hand from the HDF5 datasets), and hostile variants get clear errors.

mod common;

use cryocube_das::read::{detect, open, read_header, read_headers, Format};

/// Samples at (sample, channel) read through our reader equal the dataset's values at the
/// transposed place, read straight from HDF5: the orientation is right.
fn assert_orientation(path: &std::path::Path, dataset: &str, channel_major: bool) {
    let mut r = open(path, None).unwrap();
    let (ns, nc) = (r.header().n_samples, r.header().n_channels);
    let raw: ndarray::Array2<f32> = hdf5::File::open(path)
        .unwrap()
        .dataset(dataset)
        .unwrap()
        .read_2d()
        .unwrap();
    for (s, c) in [
        (0, 0),
        (ns - 1, 0),
        (0, nc - 1),
        (ns / 2, nc / 3),
        (ns - 1, nc - 1),
    ] {
        let mut out = vec![0f32; 1];
        r.read_block(s, 1, c, c + 1, &mut out).unwrap();
        let expect = if channel_major {
            raw[[c as usize, s as usize]]
        } else {
            raw[[s as usize, c as usize]]
        };
        assert_eq!(out[0], expect, "{}: sample {s} channel {c}", path.display());
    }
}

#[test]
fn simple_h5_with_distances_is_channel_major_by_its_time_vector() {
    let path = common::das_data().join("more/h5_simple_2.h5");
    assert_eq!(detect(&path).unwrap(), Format::SimpleH5);
    let h = read_header(&path, None).unwrap();
    // /data is 100 x 200 and /time has 200 values: channels x time.
    assert_eq!((h.n_samples, h.n_channels), (200, 100));
    assert!(h.distance_stated);
    assert_eq!((h.first_distance, h.channel_spacing), (0.0, 1.0));
    assert_orientation(&path, "data", true);
}

#[test]
fn dasdae_distance_by_time_patch() {
    let path = common::das_data().join("more/dispersion_event.h5");
    assert_eq!(detect(&path).unwrap(), Format::Dasdae);
    let h = read_header(&path, None).unwrap();
    assert_eq!((h.n_samples, h.n_channels), (2500, 101));
    assert_eq!(h.units, "m / s");
    // The group's name says 2000-01-01T00:00:00 .. 00:00:01.2495: 2500 samples at 2 kHz.
    assert_eq!(
        cryocube_cube::cf::format_utc_us(h.start_us),
        "2000-01-01T00:00:00Z"
    );
    assert!(
        (h.sampling_rate - 2000.0).abs() < 1e-6,
        "{}",
        h.sampling_rate
    );
    let patch = "waveforms/DAS________2000_01_01T00_00_00_000000000__2000_01_01T00_00_01_249500000";
    assert_orientation(&path, &format!("{patch}/data"), true);
    let e = read_header(
        &common::das_data().join("more/deformation_rate_event_1.hdf5"),
        None,
    )
    .unwrap();
    assert!(
        e.facts
            .iter()
            .any(|(k, v)| k == "instrument" && v == "TrebleIISystem04"),
        "{:?}",
        e.facts
    );
    assert!(e
        .facts
        .iter()
        .any(|(k, v)| k == "data_type" && v == "velocity"));
}

#[test]
fn gdr_orientation_and_string_numbers() {
    let path = common::das_data().join("more/gdr_1.h5");
    let h = read_header(&path, None).unwrap();
    assert!(h
        .facts
        .iter()
        .any(|(k, v)| k == "gauge_length" && v == "10 meters"));
    assert!(h
        .facts
        .iter()
        .any(|(k, v)| k == "instrument" && v == "Silixa"));
    assert_orientation(&path, "DasRawData/RawData", false);
}

#[test]
fn xdas_values_are_time_by_distance() {
    let path = common::das_data().join("extra/xdas_netcdf.nc");
    let mut r = open(&path, None).unwrap();
    let raw: ndarray::Array2<f64> = hdf5::File::open(&path)
        .unwrap()
        .dataset("__values__")
        .unwrap()
        .read_2d()
        .unwrap();
    let mut out = vec![0f32; 3];
    r.read_block(7, 1, 10, 13, &mut out).unwrap();
    for (k, v) in out.iter().enumerate() {
        assert_eq!(*v, raw[[7, 10 + k]] as f32);
    }
}

/// A DASDAE patch as DASCore writes it, with `extra` changes, into `path`.
fn write_dasdae(path: &std::path::Path, patches: &[(i64, usize)], with_coords: bool) {
    let f = hdf5::File::create(path).unwrap();
    let s = |v: &str| v.parse::<hdf5::types::VarLenUnicode>().unwrap();
    f.new_attr::<hdf5::types::VarLenUnicode>()
        .create("__format__")
        .unwrap()
        .write_scalar(&s("DASDAE"))
        .unwrap();
    let w = f.create_group("waveforms").unwrap();
    for (k, (t0_ns, n)) in patches.iter().enumerate() {
        let g = w.create_group(&format!("DAS_{k:03}")).unwrap();
        g.new_attr::<hdf5::types::VarLenUnicode>()
            .create("_dims")
            .unwrap()
            .write_scalar(&s("time,distance"))
            .unwrap();
        // What DASCore pickles; cryocube must never load it.
        g.new_attr::<hdf5::types::VarLenUnicode>()
            .create("_attrs_coords")
            .unwrap()
            .write_scalar(&s("(dp0\nVtime\np1\ncos\nsystem\n(S'echo pwned'\ntR."))
            .unwrap();
        let data: Vec<f32> = (0..n * 4).map(|i| i as f32).collect();
        g.new_dataset_builder()
            .with_data(&ndarray::Array2::from_shape_vec((*n, 4), data).unwrap())
            .create("data")
            .unwrap();
        if with_coords {
            let t: Vec<i64> = (0..*n as i64).map(|i| t0_ns + i * 1_000_000).collect();
            g.new_dataset_builder()
                .with_data(&t)
                .create("_coord_time")
                .unwrap();
            g.new_dataset_builder()
                .with_data(&[10.0, 12.0, 14.0, 16.0])
                .create("_coord_distance")
                .unwrap();
        }
    }
}

#[test]
fn dasdae_patches_are_parts_and_pickles_are_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let two = tmp.path().join("two.h5");
    let t0 = 1_700_000_000_000_000_000;
    write_dasdae(&two, &[(t0, 50), (t0 + 2_000_000_000, 30)], true);
    let parts = read_headers(&two, None).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!((parts[0].n_samples, parts[1].n_samples), (50, 30));
    assert_eq!(parts[1].start_us - parts[0].start_us, 2_000_000);
    assert_eq!(
        (parts[1].first_distance, parts[1].channel_spacing),
        (10.0, 2.0)
    );
    let mut second = cryocube_das::read::open_part(&two, None, 1).unwrap();
    let mut out = vec![0f32; 4];
    second.read_block(29, 1, 0, 4, &mut out).unwrap();
    assert_eq!(out, vec![116.0, 117.0, 118.0, 119.0]);

    let pickled = tmp.path().join("pickled.h5");
    write_dasdae(&pickled, &[(t0, 50)], false);
    let e = read_header(&pickled, None).unwrap_err().to_string();
    assert!(e.contains("pickled.h5"), "{e}");
    assert!(e.contains("never unpickles"), "{e}");
}

/// Sentek's uneven channel distances are kept as they are: equal to the table the reference
/// JSON lists (read with numpy by hand), and the samples are time-major.
#[test]
fn sentek_keeps_its_uneven_distances() {
    let data = common::das_data();
    let path = data.join("more/DASDMSShot00_20230328155653619.das");
    let h = read_header(&path, None).unwrap();
    let meta: serde_json::Value = serde_json::from_reader(
        std::fs::File::open(data.join("reference/DASDMSShot00_20230328155653619.json")).unwrap(),
    )
    .unwrap();
    let expect: Vec<f64> = meta["header"]["distances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(h.distances.as_deref(), Some(expect.as_slice()));
    assert!(h
        .facts
        .iter()
        .any(|(k, v)| k == "data_type" && v == "strain rate"));
    // Sample (1, 2) by hand: float32 number 6 + 31 + 18339 + 1 x 31 + 2 of the file.
    let bytes = std::fs::read(&path).unwrap();
    let at = 4 * (6 + 31 + 18339 + 31 + 2);
    let by_hand = f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut out = vec![0f32; 1];
    open(&path, None)
        .unwrap()
        .read_block(1, 1, 2, 3, &mut out)
        .unwrap();
    assert_eq!(out[0], by_hand);
}

/// SEG-Y samples read by hand (big-endian IBM floats at the documented offsets) equal ours.
#[test]
fn segy_samples_by_hand() {
    let path = common::das_data().join("extra/small_channel_patch.sgy");
    let bytes = std::fs::read(&path).unwrap();
    let mut r = open(&path, None).unwrap();
    let mut out = vec![0f32; 10];
    r.read_block(5, 1, 0, 10, &mut out).unwrap();
    for (trace, v) in out.iter().enumerate() {
        // 3600 header bytes, traces of 240 + 20 x 4 bytes, sample 5.
        let at = 3600 + trace * 320 + 240 + 5 * 4;
        let bits = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let (sign, exp, frac) = (bits >> 31, ((bits >> 24) & 0x7f) as i32, bits & 0xff_ffff);
        let by_hand = (if sign == 1 { -1.0 } else { 1.0 }) * frac as f64 / 16_777_216.0
            * 16f64.powi(exp - 64);
        assert_eq!(*v, by_hand as f32, "trace {trace}");
        assert!((0.0..1.0).contains(v), "uniform noise in 0..1: {v}");
    }
}

/// SEG-Y without magic: an unknown sample format code and a cut file are clear errors when the
/// format is given, and never detected as SEG-Y otherwise.
#[test]
fn segy_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(common::das_data().join("extra/small_channel_patch.sgy")).unwrap();
    let mut code = good.clone();
    code[3224..3226].copy_from_slice(&4u16.to_be_bytes()); // 4: fixed point with gain, obsolete
    let p = tmp.path().join("code4.sgy");
    std::fs::write(&p, &code).unwrap();
    assert!(detect(&p).is_err());
    let e = read_header(&p, Some(Format::Segy)).unwrap_err().to_string();
    assert!(
        e.contains("code4.sgy") && e.contains("unknown SEG-Y sample format code 4"),
        "{e}"
    );

    let cut = tmp.path().join("cut.sgy");
    std::fs::write(&cut, &good[..good.len() - 7]).unwrap();
    assert!(detect(&cut).is_err());
    let e = read_header(&cut, Some(Format::Segy))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not whole traces"), "{e}");
}

/// Byte offsets of the 4096-byte records of `etna_9n_3chan_10s.mseed` whose station is
/// `station`, read by hand from the fixed header (bytes 8..13).
fn etna_records(bytes: &[u8], station: &str) -> Vec<usize> {
    (0..bytes.len() / 4096)
        .map(|k| k * 4096)
        .filter(|at| &bytes[at + 8..at + 13] == station.as_bytes())
        .collect()
}

/// miniSEED: three stations of unequal length are three channels over the longest span
/// (NaN after a shorter trace ends); a cut last record is dropped with a warning; a Steim
/// frame whose integration constant is wrong is reported and its trace cut there.
#[test]
fn mseed_traces_cut_records_and_wrong_integration_constants() {
    let data = common::das_data();
    let path = data.join("more/etna_9n_3chan_10s.mseed");
    assert_eq!(detect(&path).unwrap(), Format::Mseed);
    let h = read_header(&path, None).unwrap();
    // obspy (reference JSON): 13735 / 13729 / 13556 samples, same start.
    assert_eq!((h.n_samples, h.n_channels), (13735, 3));
    assert!(!h.distance_stated);
    let mut r = open(&path, None).unwrap();
    let mut out = vec![0f32; 3];
    r.read_block(13600, 1, 0, 3, &mut out).unwrap();
    assert!(
        !out[0].is_nan() && !out[1].is_nan() && out[2].is_nan(),
        "{out:?}"
    );

    let bytes = std::fs::read(&path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut.mseed");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    let h = read_header(&cut, None).unwrap();
    assert!(
        h.warnings
            .iter()
            .any(|w| w.contains("cut short") && w.contains("dropped")),
        "{:?}",
        h.warnings
    );

    // Station 00067's second record: X0 (frame 0, word 1 after the 64-byte header) + 1000.
    let second = etna_records(&bytes, "00067")[1];
    let mut bad = bytes.clone();
    let x0 = second + 64 + 4;
    let v = i32::from_be_bytes(bad[x0..x0 + 4].try_into().unwrap()) + 1000;
    bad[x0..x0 + 4].copy_from_slice(&v.to_be_bytes());
    let p = tmp.path().join("x0.mseed");
    std::fs::write(&p, &bad).unwrap();
    let h = read_header(&p, None).unwrap();
    let said = h.warnings.join("\n");
    assert!(
        said.contains("9N.00067..HSF")
            && said.contains("reverse integration constant")
            && said.contains("the trace is cut there"),
        "{said}"
    );
    // The first record of 00067 is kept, nothing of it after.
    let first_len = {
        let at = etna_records(&bytes, "00067")[0];
        u16::from_be_bytes([bytes[at + 30], bytes[at + 31]]) as u64
    };
    let mut r = open(&p, None).unwrap();
    let mut out = vec![0f32; 3];
    r.read_block(first_len - 1, 1, 0, 3, &mut out).unwrap();
    assert!(!out[1].is_nan());
    r.read_block(first_len, 1, 0, 3, &mut out).unwrap();
    assert!(out[1].is_nan() && !out[0].is_nan(), "{out:?}");
}

/// A Sintela protobuf stream cut in the middle of a packet: the packets before it are read,
/// the cut one is dropped with a warning naming its byte.
#[test]
fn sintela_stream_cut_mid_record() {
    let path = common::das_data().join("more/sintela_protobuf_1.pb");
    let bytes = std::fs::read(&path).unwrap();
    let whole = read_header(&path, None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut.pb");
    std::fs::write(&cut, &bytes[..bytes.len() - 3000]).unwrap();
    let h = read_header(&cut, None).unwrap();
    // The last record is 12 + 6488 bytes: 3000 bytes off cuts exactly it (8 samples).
    assert_eq!(h.n_samples, whole.n_samples - 8);
    assert!(
        h.warnings
            .iter()
            .any(|w| w.contains("cut short") && w.contains("dropped")),
        "{:?}",
        h.warnings
    );
    // The samples kept equal the whole file's.
    let (mut a, mut b) = (vec![0f32; 200], vec![0f32; 200]);
    open(&cut, None)
        .unwrap()
        .read_block(h.n_samples - 1, 1, 0, 200, &mut a)
        .unwrap();
    open(&path, None)
        .unwrap()
        .read_block(h.n_samples - 1, 1, 0, 200, &mut b)
        .unwrap();
    assert_eq!(a, b);
    // A packet whose sample bytes do not match its header is an error naming it.
    let mut bad = bytes.clone();
    let second = 12 + 30151; // META record, then the first TS05 (reference JSON: 1 META)
    assert_eq!(&bad[second..second + 8], b"PBUFTS05");
    // The channel count's varint (c8 01 = 200) at byte 18 of the message -> c9 01 = 201.
    assert_eq!(bad[second + 12 + 17..second + 12 + 20], [0x10, 0xc8, 0x01]);
    bad[second + 12 + 18] = 0xc9;
    let p = tmp.path().join("bad.pb");
    std::fs::write(&p, &bad).unwrap();
    let e = read_header(&p, None).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains("bad.pb") && e.contains("packet 1") && e.contains("201 channels"),
        "{e}"
    );
}

/// DASVader JLD2: the samples follow `dDAS.data`'s object reference and are distance x time in
/// HDF5 order; a reference that points nowhere is an error naming the member.
#[test]
fn dasvader_references_followed_and_dangling_ones_refused() {
    let path = common::das_data().join("more/das_vader_1.jld2");
    let h = read_header(&path, None).unwrap();
    assert_eq!(h.format, Format::DasVader);
    // The last 4 channels are all zero (reference JSON quirks).
    let mut r = open(&path, None).unwrap();
    let mut out = vec![1f32; 4];
    r.read_block(100, 1, 1152, 1156, &mut out).unwrap();
    assert_eq!(out, vec![0.0; 4]);

    // A file of the same layout, written here.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("dangling.jld2");
    {
        let f = hdf5::File::create(&bad).unwrap();
        f.create_group("_types").unwrap();
        let x = ndarray::Array2::<f32>::zeros((4, 10));
        f.new_dataset_builder().with_data(&x).create("x").unwrap();
        let t = [DateTime {
            instant: UtInstant {
                periods: Millisecond {
                    value: 63_828_569_177_550,
                },
            },
        }];
        f.new_dataset_builder().with_data(&t).create("t").unwrap();
        let range = |step: f64, len: i64| StepRangeLen {
            reference: TwicePrecision { hi: 0.0, lo: 0.0 },
            step: TwicePrecision { hi: step, lo: 0.0 },
            len,
            offset: 1,
        };
        let d = DasData {
            data: f.reference::<hdf5::ObjectReference1>("x").unwrap(),
            time: range(1e-3, 10),
            htime: f.reference::<hdf5::ObjectReference1>("t").unwrap(),
            offset: range(2.0, 4),
        };
        f.new_dataset::<DasData>()
            .create("dDAS")
            .unwrap()
            .write_scalar(&d)
            .unwrap();
    }
    // Sound first: the file as written is read.
    assert_eq!(read_header(&bad, None).unwrap().n_channels, 4);
    // Then `data`'s address (the 8 bytes before `time`, whose bytes are known: ref 0, 0,
    // step 1e-3, 0, len 10, offset 1) points past the end of the file.
    let mut bytes = std::fs::read(&bad).unwrap();
    let time: Vec<u8> = [0f64, 0.0, 1e-3, 0.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .chain(10i64.to_le_bytes())
        .chain(1i64.to_le_bytes())
        .collect();
    let at = bytes
        .windows(time.len())
        .position(|w| w == time.as_slice())
        .expect("dDAS.time in the file");
    let beyond = bytes.len() as u64 + 4096;
    bytes[at - 8..at].copy_from_slice(&beyond.to_le_bytes());
    std::fs::write(&bad, &bytes).unwrap();
    let e = read_header(&bad, None).unwrap_err().to_string();
    assert!(
        e.contains("dangling.jld2") && e.contains("dDAS.data: a dangling reference"),
        "{e}"
    );
}

#[derive(hdf5::H5Type, Clone, Copy)]
#[repr(C)]
struct TwicePrecision {
    hi: f64,
    lo: f64,
}
#[derive(hdf5::H5Type, Clone, Copy)]
#[repr(C)]
struct StepRangeLen {
    #[hdf5(rename = "ref")]
    reference: TwicePrecision,
    step: TwicePrecision,
    len: i64,
    offset: i64,
}
#[derive(hdf5::H5Type, Clone)]
#[repr(C)]
struct DasData {
    data: hdf5::ObjectReference1,
    time: StepRangeLen,
    htime: hdf5::ObjectReference1,
    offset: StepRangeLen,
}
#[derive(hdf5::H5Type, Clone, Copy)]
#[repr(C)]
struct Millisecond {
    value: i64,
}
#[derive(hdf5::H5Type, Clone, Copy)]
#[repr(C)]
struct UtInstant {
    periods: Millisecond,
}
#[derive(hdf5::H5Type, Clone, Copy)]
#[repr(C)]
struct DateTime {
    instant: UtInstant,
}

/// xdas tie points that start before index 0 are refused, naming the datasets.
#[test]
fn xdas_tie_points_before_the_first_index_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("ties.nc");
    std::fs::copy(common::das_data().join("extra/xdas_netcdf.nc"), &p).unwrap();
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        let ds = f.dataset("time_indices").unwrap();
        assert_eq!(ds.read_raw::<i64>().unwrap(), vec![0, 299]);
        ds.write(&[-5i64, 299]).unwrap();
    }
    let e = read_header(&p, None).unwrap_err().to_string();
    assert!(e.contains("ties.nc") && e.contains("time_indices"), "{e}");
}
