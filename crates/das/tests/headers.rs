//! Header facts of the real files equal those in `shared/data/das/MANIFEST.md`, and the
//! layout is detected from content.

mod common;

use cryocube_cube::cf::format_utc_us;
use cryocube_das::read::{detect, read_header, Format};

struct Expect {
    file: &'static str,
    format: Format,
    samples: u64,
    channels: u64,
    fs: f64,
    spacing: f64,
    first: Option<f64>,
    start: &'static str,
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn manifest_facts() {
    let data = common::das_data();
    let cases = [
        Expect {
            file: "silixa_h5_1.hdf5",
            format: Format::Silixa,
            samples: 100,
            channels: 3840,
            fs: 500.0,
            spacing: 2.041904,
            first: Some(0.765761),
            start: "2023-09-22T18:29:26.158Z",
        },
        Expect {
            file: "prodml_2.0.h5",
            format: Format::Prodml,
            samples: 2500,
            channels: 512,
            fs: 200.0,
            spacing: 1.0209519863,
            first: Some(-265.4475),
            start: "1970-01-01T00:00:00Z",
        },
        Expect {
            file: "decimated_optodas.hdf5",
            format: Format::OptoDas,
            samples: 5000,
            channels: 51,
            fs: 500.0,
            spacing: 51.065,
            first: None,
            start: "2023-10-27T14:23:37.020Z",
        },
        Expect {
            file: "terra15_v5_test_file.hdf5",
            format: Format::Terra15,
            samples: 2060,
            channels: 43,
            fs: 3217.8,
            spacing: 1.6335,
            first: Some(30.2202),
            start: "2022-08-23T23:09:54.374Z",
        },
        Expect {
            file: "synthetic/SYNTHETIC_rhonelike_UTC_20200722_000030.000.h5",
            format: Format::Silixa,
            samples: 30000,
            channels: 32,
            fs: 1000.0,
            spacing: 4.0,
            first: Some(0.0),
            start: "2020-07-22T00:00:30Z",
        },
        Expect {
            file: "extra/iDAS005_hdf5_example.626.h5",
            format: Format::Prodml,
            samples: 1000,
            channels: 1152,
            fs: 1000.0,
            spacing: 1.0209519863,
            first: None,
            start: "2019-05-31T08:38:50.626928Z",
        },
        Expect {
            file: "sample_tdms_file_v4713.tdms",
            format: Format::SilixaTdms,
            samples: 216,
            channels: 2432,
            fs: 500.0,
            spacing: 2.0419,
            // `Start Distance (m)` -0.51043 on the locus grid (locus 0).
            first: Some(0.0),
            start: "2019-04-15T03:33:35.812Z",
        },
        Expect {
            file: "extra/iDAS005_tdms_example.626.tdms",
            format: Format::SilixaTdms,
            samples: 1000,
            channels: 1152,
            fs: 1000.0,
            spacing: 1.0209519863,
            // -120.02095 m on the locus grid: locus -118, as the PRODML copy says.
            first: Some(-118.0 * 1.0209523838714072),
            start: "2019-05-31T08:38:50.626928Z",
        },
        // MANIFEST says 1249 samples from 46.417 after removing block overlap. The header says
        // otherwise: no BlockOverlap attribute, blocks 1.0024 s apart (BlockRate absent, mean
        // step of `time`), 250 rows each at 1/SamplingRate = 4 ms, i.e. exactly one period per
        // block and nothing to remove; and no two blocks share content (their best shifted
        // correlation is 0.3). Halving each block would drop half the record. See README.
        Expect {
            file: "valencia_febus_example.h5",
            format: Format::Febus,
            samples: 2500,
            channels: 100,
            fs: 250.0,
            spacing: 16.8,
            first: Some(0.0),
            start: "2020-09-02T07:21:46.165666Z",
        },
        Expect {
            file: "extra/neubrex_das_1.h5",
            format: Format::Neubrex,
            samples: 30,
            channels: 17534,
            fs: 1000.0,
            spacing: 0.410675,
            first: Some(0.0),
            start: "2023-05-22T06:25:34.617505Z",
        },
        Expect {
            file: "extra/ap_sensing_1.hdf5",
            format: Format::ApSensing,
            samples: 150,
            channels: 4082,
            fs: 500.0,
            spacing: (5129.26477657 - 124.14780988) / 4082.0,
            first: Some(124.14780988),
            start: "2023-09-24T12:46:31.739618Z",
        },
        // shared/data/das/more/MANIFEST.md (read with DASCore and h5py by hand).
        Expect {
            file: "more/deformation_rate_event_1.hdf5",
            format: Format::Dasdae,
            samples: 900,
            channels: 225,
            fs: 1999.9760,
            spacing: 5.717333,
            first: Some(2403.6387),
            start: "2022-06-04T15:27:44.800325Z",
        },
        Expect {
            file: "more/gdr_1.h5",
            format: Format::Gdr,
            samples: 10000,
            channels: 10,
            fs: 1000.0,
            spacing: 1.021,
            first: Some(0.0),
            start: "2016-03-08T17:40:30.195Z",
        },
        Expect {
            file: "more/h5_simple_1.h5",
            format: Format::SimpleH5,
            samples: 200,
            channels: 100,
            fs: 250.00322,
            spacing: 1.0,
            first: Some(0.0),
            start: "2023-09-04T20:05:06.884208Z",
        },
        Expect {
            file: "more/DASDMSShot00_20230328155653619.das",
            format: Format::Sentek,
            samples: 18339,
            channels: 31,
            fs: 36678.40,
            spacing: 61.858612 / 30.0,
            first: Some(0.0),
            start: "2023-03-28T15:56:53.619Z",
        },
        Expect {
            file: "extra/small_channel_patch.sgy",
            format: Format::Segy,
            samples: 20,
            channels: 10,
            fs: 250.0,
            spacing: 1.0,
            first: Some(0.0),
            start: "2017-09-18T00:00:00Z",
        },
        Expect {
            file: "more/sintela_protobuf_1.pb",
            format: Format::Sintela,
            samples: 1480,
            channels: 200,
            fs: 500.0,
            spacing: 10.0,
            first: Some(0.0),
            start: "2026-02-22T18:30:52.151221Z",
        },
        Expect {
            file: "more/das_vader_1.jld2",
            format: Format::DasVader,
            samples: 300,
            channels: 1156,
            fs: 10000.0,
            spacing: 1.6,
            first: Some(0.0),
            start: "2023-08-24T14:06:17.550Z",
        },
        Expect {
            file: "extra/xdas_netcdf.nc",
            format: Format::Xdas,
            samples: 300,
            channels: 401,
            fs: 50.0,
            spacing: 25.0,
            first: Some(0.0),
            start: "2023-01-01T00:00:00Z",
        },
    ];
    for e in cases {
        let path = data.join(e.file);
        assert_eq!(
            detect(&path).unwrap(),
            e.format,
            "{}: detected format",
            e.file
        );
        let h = read_header(&path, None).unwrap();
        assert_eq!(
            (h.n_samples, h.n_channels),
            (e.samples, e.channels),
            "{}: shape",
            e.file
        );
        assert!(
            close(h.sampling_rate, e.fs, 0.05),
            "{}: fs {}",
            e.file,
            h.sampling_rate
        );
        assert!(
            close(h.channel_spacing, e.spacing, 1e-3),
            "{}: spacing {}",
            e.file,
            h.channel_spacing
        );
        if let Some(first) = e.first {
            assert!(
                close(h.first_distance, first, 1e-3),
                "{}: first channel {}",
                e.file,
                h.first_distance
            );
        }
        // The MANIFEST gives times to the millisecond; some headers carry microseconds.
        let expected = chrono::DateTime::parse_from_rfc3339(e.start)
            .unwrap()
            .timestamp_micros();
        assert!(
            (h.start_us - expected).abs() < 1000,
            "{}: UTC start {}",
            e.file,
            format_utc_us(h.start_us)
        );
    }
}

#[test]
fn optodas_first_channel_is_the_decimated_roi_start() {
    let h = read_header(&common::das_data().join("decimated_optodas.hdf5"), None).unwrap();
    // header/channels[0] = 32500 raw samples of 1.0213 m.
    assert!(
        close(h.first_distance, 32500.0 * 1.0213001907746815, 1e-6),
        "{}",
        h.first_distance
    );
}

#[test]
fn zeroed_clock_is_a_warning_not_an_error() {
    let h = read_header(&common::das_data().join("prodml_2.0.h5"), None).unwrap();
    assert!(
        h.warnings.iter().any(|w| w.contains("zeroed clock")),
        "{:?}",
        h.warnings
    );
}

#[test]
fn truncated_tdms_segment_is_read_up_to_its_last_complete_sample_with_a_warning() {
    let h = read_header(
        &common::das_data().join("sample_tdms_file_v4713.tdms"),
        None,
    )
    .unwrap();
    assert_eq!(h.n_samples, 216);
    assert!(
        h.warnings
            .iter()
            .any(|w| w.contains("truncated") && w.contains("216 complete samples")),
        "{:?}",
        h.warnings
    );
    // The complete iDAS005 file has no such warning.
    let h = read_header(
        &common::das_data().join("extra/iDAS005_tdms_example.626.tdms"),
        None,
    )
    .unwrap();
    assert!(h.warnings.is_empty(), "{:?}", h.warnings);
}

#[test]
fn febus_psd_product_is_refused_with_what_it_is() {
    let path = common::das_data().join("febus_2.h5");
    assert_eq!(detect(&path).unwrap(), Format::Febus);
    let e = read_header(&path, None).unwrap_err().to_string();
    assert!(
        e.contains("febus_2.h5") && e.contains("power spectral density") && e.contains("3001"),
        "{e}"
    );
}

#[test]
fn febus_block_stamps_that_wander_are_reported() {
    let h = read_header(&common::das_data().join("valencia_febus_example.h5"), None).unwrap();
    assert!(
        h.warnings.iter().any(|w| w.contains("wander")),
        "{:?}",
        h.warnings
    );
}

/// A file that cannot be opened keeps the OS error as its cause.
#[test]
fn io_failures_carry_their_cause() {
    use std::error::Error as _;
    let e = cryocube_das::read::detect(std::path::Path::new("/nonexistent/x.h5")).unwrap_err();
    let io = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("an io::Error as the source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("/nonexistent/x.h5"), "{e}");
}

/// Header facts kept as `das_*` attributes, as the files state them (read with h5py by hand).
#[test]
fn vendor_facts() {
    let data = common::das_data();
    let facts = |f: &str| read_header(&data.join(f), None).unwrap().facts;
    let has = |f: &str, k: &str, v: &str| {
        let got = facts(f);
        assert!(
            got.iter().any(|(a, b)| a == k && b == v),
            "{f}: no {k} = {v:?} in {got:?}"
        );
    };
    has("prodml_2.0.h5", "gauge_length", "10 m");
    has("prodml_2.0.h5", "instrument", "Silixa_iDAS_DAQ_2.6.1.4");
    has("silixa_h5_1.hdf5", "gauge_length", "10 m");
    has("terra15_v5_test_file.hdf5", "instrument", "TrebleBowie");
    assert!(facts("terra15_v5_test_file.hdf5")
        .iter()
        .any(|(k, v)| k == "gauge_length" && v.starts_with("2.4502857")));
    assert!(facts("decimated_optodas.hdf5")
        .iter()
        .any(|(k, _)| k == "gauge_length"));
    assert!(facts("extra/ap_sensing_1.hdf5")
        .iter()
        .any(|(k, _)| k == "gauge_length"));
}
