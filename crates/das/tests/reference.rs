//! Spectra compared with the independent numpy/scipy references in
//! `shared/data/das/reference/` (every case, two scales): within 0.01 for every value whose
//! power is within 60 dB of its window's strongest bin; times and frequencies exact.
//! Quantised cubes (`--quantize STEP`) are checked the same way, within 0.01 + STEP/2.

mod common;

use std::fs::File;

use cryocube_cube::CubeReader;
use cryocube_das::job::{run, DasOptions, OutputType};
use cryocube_das::transform::Scale;
use ndarray::{Array1, Array3};
use ndarray_npy::NpzReader;

fn check_case(case: &str, scale: Scale) {
    check(case, scale, None)
}

fn check(case: &str, scale: Scale, quantize: Option<f64>) {
    let data = common::das_data();
    let meta: serde_json::Value =
        serde_json::from_reader(File::open(data.join(format!("reference/{case}.json"))).unwrap())
            .unwrap();
    let files: Vec<_> = meta["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = f.as_str().unwrap();
            ["", "synthetic", "more", "extra"]
                .iter()
                .map(|d| data.join(d).join(name))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{case}: {name} is in none of the data folders"))
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cube.zarr");
    let mut opts = DasOptions::new(files, out.clone());
    opts.df = meta["df"].as_f64().unwrap();
    opts.dt = meta["dt"].as_f64().unwrap();
    // The newer cases keep every bin up to Nyquist (`--fmax nyquist`): their fmax is fs / 2
    // to the last digit, which our own fs (from the file's time vector) may differ from.
    let fmax = meta["fmax"].as_f64().unwrap();
    opts.fmax = (fmax < 0.4999 * meta["fs"].as_f64().unwrap()).then_some(fmax);
    opts.scale = scale;
    // geofon_3X_HSF is all zeros: its reference is -inf everywhere, which --allow-zero keeps.
    opts.allow_zero = true;
    if let Some(step) = quantize {
        opts.dtype = OutputType::Quantized { step };
    }
    let tolerance = 0.01 + quantize.map_or(0.0, |s| s / 2.0);
    let summary = run(&opts, &|_, _| {}).unwrap();
    assert_eq!(
        summary.windows,
        meta["windows"].as_u64().unwrap(),
        "{case}: window count"
    );

    let mut npz =
        NpzReader::new(File::open(data.join(format!("reference/{case}.npz"))).unwrap()).unwrap();
    let key = match scale {
        Scale::Cryocube => "cryocube",
        Scale::Db => "db",
    };
    let reference: Array3<f32> = npz.by_name(key).unwrap();
    let channels: Array1<i64> = npz.by_name("channel").unwrap();
    let freq: Array1<f64> = npz.by_name("freq").unwrap();
    let label: Array1<f64> = npz
        .by_name(if scale == Scale::Cryocube {
            "start_s"
        } else {
            "centre_s"
        })
        .unwrap();

    let cube = CubeReader::open(&out).unwrap();
    assert!(cube.is_complete());
    let spec = cube.array("spectrogram").unwrap().clone();
    assert_eq!(
        spec.dtype.v3_name(),
        if quantize.is_some() {
            "int16"
        } else {
            "float32"
        }
    );
    let (nw, nc, nf) = (
        spec.shape[0] as usize,
        spec.shape[1] as usize,
        spec.shape[2] as usize,
    );
    assert_eq!(
        (nw, nf),
        (reference.shape()[0], reference.shape()[2]),
        "{case}: shape"
    );
    let ours = cube.read_all_f64("spectrogram").unwrap();
    let at = |w: usize, c: usize, f: usize| ours[(w * nc + c) * nf + f];

    // Coordinates.
    let ours_freq = cube.read_all_f64("frequency").unwrap();
    assert_eq!(ours_freq, freq.to_vec(), "{case}: frequencies");
    let times = cube.read_all_i64("time").unwrap();
    let t0 = times[0] as f64 / 1e6 - label[0];
    for (i, t) in times.iter().enumerate() {
        let rel = *t as f64 / 1e6 - t0;
        assert!(
            (rel - label[i]).abs() < 2e-6,
            "{case}: time label {i}: {rel} vs {}",
            label[i]
        );
    }
    let channel_coord = cube.read_all_f64("channel").unwrap();

    // Values. 60 dB of power in this scale's units.
    let span = match scale {
        Scale::Cryocube => 10.0 * (1e6f64).ln(),
        Scale::Db => 60.0,
    };
    let first_bin = if scale == Scale::Cryocube { 1 } else { 0 }; // bin 0 is a 0 sentinel there
    let (mut compared, mut worst) = (0usize, 0f64);
    for (ci, &ch) in channels.iter().enumerate() {
        let c = ch as usize;
        assert_eq!(channel_coord[c], ch as f64);
        for w in 0..nw {
            let strongest = (first_bin..nf)
                .map(|f| reference[[w, ci, f]] as f64)
                .fold(f64::MIN, f64::max);
            if scale == Scale::Cryocube {
                assert_eq!(at(w, c, 0), 0.0, "{case}: DC bin");
            }
            for f in first_bin..nf {
                let r = reference[[w, ci, f]] as f64;
                if r == f64::NEG_INFINITY {
                    // Zero power: -inf in both, never NaN.
                    assert_eq!(
                        at(w, c, f),
                        r,
                        "{case} {key}: window {w} channel {c} bin {f}"
                    );
                    compared += 1;
                    continue;
                }
                if r >= strongest - span {
                    let d = (at(w, c, f) - r).abs();
                    worst = worst.max(d);
                    assert!(
                        d <= tolerance,
                        "{case} {key}: window {w} channel {c} bin {f}: ours {} reference {r}",
                        at(w, c, f)
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(
        compared > nw * channels.len(),
        "{case}: too few values compared ({compared})"
    );
    eprintln!("{case} {key}: {compared} values compared, worst difference {worst:.2e}");
}

#[test]
fn silixa_h5_1_cryocube() {
    check_case("silixa_h5_1", Scale::Cryocube);
}
#[test]
fn silixa_h5_1_db() {
    check_case("silixa_h5_1", Scale::Db);
}
#[test]
fn prodml_2_0_cryocube() {
    check_case("prodml_2.0", Scale::Cryocube);
}
#[test]
fn prodml_2_0_db() {
    check_case("prodml_2.0", Scale::Db);
}
#[test]
fn decimated_optodas_cryocube() {
    check_case("decimated_optodas", Scale::Cryocube);
}
#[test]
fn decimated_optodas_db() {
    check_case("decimated_optodas", Scale::Db);
}
#[test]
fn synthetic_three_files_cryocube() {
    check_case("synthetic_rhonelike", Scale::Cryocube);
}
#[test]
fn synthetic_three_files_db() {
    check_case("synthetic_rhonelike", Scale::Db);
}
#[test]
fn gdr_1_cryocube() {
    check_case("gdr_1", Scale::Cryocube);
}
#[test]
fn gdr_1_db() {
    check_case("gdr_1", Scale::Db);
}
#[test]
fn h5_simple_1_cryocube() {
    check_case("h5_simple_1", Scale::Cryocube);
}
#[test]
fn h5_simple_1_db() {
    check_case("h5_simple_1", Scale::Db);
}
#[test]
fn dasdae_deformation_rate_event_1_cryocube() {
    check_case("deformation_rate_event_1", Scale::Cryocube);
}
#[test]
fn dasdae_deformation_rate_event_1_db() {
    check_case("deformation_rate_event_1", Scale::Db);
}
#[test]
fn xdas_netcdf_cryocube() {
    check_case("xdas_netcdf", Scale::Cryocube);
}
#[test]
fn xdas_netcdf_db() {
    check_case("xdas_netcdf", Scale::Db);
}
#[test]
fn segy_small_channel_patch_cryocube() {
    check_case("small_channel_patch", Scale::Cryocube);
}
#[test]
fn segy_small_channel_patch_db() {
    check_case("small_channel_patch", Scale::Db);
}
#[test]
fn sentek_cryocube() {
    check_case("DASDMSShot00_20230328155653619", Scale::Cryocube);
}
#[test]
fn sentek_db() {
    check_case("DASDMSShot00_20230328155653619", Scale::Db);
}
#[test]
fn mseed_etna_three_traces_cryocube() {
    check_case("etna_9n_3chan_10s.common3", Scale::Cryocube);
}
#[test]
fn mseed_etna_three_traces_db() {
    check_case("etna_9n_3chan_10s.common3", Scale::Db);
}
#[test]
fn mseed_etna_first_trace_cryocube() {
    check_case("etna_9n_3chan_10s", Scale::Cryocube);
}
#[test]
fn mseed_etna_first_trace_db() {
    check_case("etna_9n_3chan_10s", Scale::Db);
}
#[test]
fn mseed_geofon_9n_cryocube() {
    check_case("geofon_9N_HSF", Scale::Cryocube);
}
#[test]
fn mseed_geofon_9n_db() {
    check_case("geofon_9N_HSF", Scale::Db);
}
#[test]
fn mseed_geofon_3x_all_zero_cryocube() {
    check_case("geofon_3X_HSF", Scale::Cryocube);
}
#[test]
fn mseed_geofon_3x_all_zero_db() {
    check_case("geofon_3X_HSF", Scale::Db);
}
#[test]
fn sintela_protobuf_cryocube() {
    check_case("sintela_protobuf_1", Scale::Cryocube);
}
#[test]
fn sintela_protobuf_db() {
    check_case("sintela_protobuf_1", Scale::Db);
}
#[test]
fn dasvader_jld2_cryocube() {
    check_case("das_vader_1", Scale::Cryocube);
}
#[test]
fn dasvader_jld2_db() {
    check_case("das_vader_1", Scale::Db);
}

// Quantised: the packed int16 codes, unpacked, within half a step more of the references;
// -inf (das_vader's dead channels, geofon_3X's zeros) and NaN kept as such.
#[test]
fn synthetic_three_files_db_quantized() {
    check("synthetic_rhonelike", Scale::Db, Some(0.05));
}
#[test]
fn dasvader_jld2_db_quantized() {
    check("das_vader_1", Scale::Db, Some(0.01));
}
#[test]
fn sentek_cryocube_quantized() {
    check("DASDMSShot00_20230328155653619", Scale::Cryocube, Some(0.1));
}
#[test]
fn mseed_geofon_3x_all_zero_db_quantized() {
    check("geofon_3X_HSF", Scale::Db, Some(0.05));
}
