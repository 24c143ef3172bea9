//! The formats beyond the big vendors (DASDAE, GDR, simple HDF5, xdas netCDF): the files the
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
