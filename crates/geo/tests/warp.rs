//! Warping onto the target grid equals an independent `gdalwarp` run (the GDAL command-line
//! tool, run by the test) of the same file onto the same grid: nearest exactly, bilinear within
//! 1e-4 relative, warped whole or window by window; an undeclared no-data sentinel stays no
//! data; a file without a CRS needs one from the recipe.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cryocube_geo::grid::TargetGrid;
use cryocube_geo::recipe::Resampling;
use cryocube_geo::warp::{warp_window, WarpSpec};

fn polar(rel: &str) -> PathBuf {
    common::shared(&format!("data/polar/{rel}"))
}

/// The reference grid of `shared/data/polar/reference`: 600 x 600 cells of 1 km.
fn grid() -> TargetGrid {
    TargetGrid::new(
        "EPSG:3031",
        [-1800000.0, -700000.0, -1200000.0, -100000.0],
        1000.0,
        1000.0,
    )
    .unwrap()
}

/// `gdalwarp` onto the grid; returns the values read back with gdallocationinfo-free GDAL I/O.
fn gdalwarp(src: &Path, method: &str, extra: &[&str], out: &Path) -> Vec<f32> {
    let g = grid();
    let te = [
        g.x_min,
        g.y_max - g.ny as f64 * g.res_y,
        g.x_min + g.nx as f64 * g.res_x,
        g.y_max,
    ]
    .map(|v| v.to_string());
    let status = Command::new("gdalwarp")
        .args([
            "-q",
            "-overwrite",
            "-of",
            "GTiff",
            "-ot",
            "Float32",
            "-t_srs",
            "EPSG:3031",
        ])
        .args(["-te", &te[0], &te[1], &te[2], &te[3]])
        .args(["-tr", "1000", "1000", "-r", method, "-dstnodata", "nan"])
        .args(extra)
        .arg(src)
        .arg(out)
        .status()
        .expect("gdalwarp not found: install gdal-bin (make test does)");
    assert!(status.success(), "gdalwarp failed");
    let ds = gdal::Dataset::open(out).unwrap();
    let band = ds.rasterband(1).unwrap();
    band.read_as::<f32>((0, 0), (g.nx, g.ny), (g.nx, g.ny), None)
        .unwrap()
        .into_shape_and_vec()
        .1
}

fn compare(ours: &[f32], reference: &[f32], rel: f32, what: &str) -> usize {
    assert_eq!(ours.len(), reference.len(), "{what}");
    let mut finite = 0;
    for (k, (a, b)) in ours.iter().zip(reference).enumerate() {
        if b.is_nan() {
            assert!(
                a.is_nan(),
                "{what}: cell {k}: {a} where gdalwarp has no data"
            );
        } else {
            assert!(
                (a - b).abs() <= rel * b.abs().max(1.0),
                "{what}: cell {k}: {a} vs gdalwarp {b}"
            );
            finite += 1;
        }
    }
    finite
}

#[test]
fn geotiff_with_an_undeclared_sentinel_matches_gdalwarp() {
    let tmp = tempfile::tempdir().unwrap();
    let src = polar("geotiff/ant4d_fa.tif");
    let g = grid();
    for (method, resampling, rel) in [
        ("near", Resampling::Nearest, 0.0),
        ("bilinear", Resampling::Bilinear, 1e-4),
    ] {
        let spec = WarpSpec {
            resampling,
            src_nodata: Some(-32767.0),
            src_crs: None,
            overviews: false,
        };
        let reference = gdalwarp(
            &src,
            method,
            &["-srcnodata", "-32767"],
            &tmp.path().join("r.tif"),
        );
        let whole = warp_window(&src, &spec, &g, 0..g.nx, 0..g.ny).unwrap();
        let n = compare(&whole, &reference, rel, method);
        assert!(n > 100_000, "{method}: only {n} cells with data");
        assert!(
            whole.iter().all(|v| v.is_nan() || *v > -1000.0),
            "sentinel leaked"
        );
        // Window by window (uneven windows) gives the same values.
        let mut tiled = vec![f32::NAN; g.nx * g.ny];
        for (r0, r1) in [(0, 250), (250, 600)] {
            for (c0, c1) in [(0, 333), (333, 600)] {
                let part = warp_window(&src, &spec, &g, c0..c1, r0..r1).unwrap();
                for r in r0..r1 {
                    for c in c0..c1 {
                        tiled[r * g.nx + c] = part[(r - r0) * (c1 - c0) + (c - c0)];
                    }
                }
            }
        }
        compare(&tiled, &reference, rel, &format!("{method}, by windows"));
    }
}

#[test]
fn a_file_without_crs_takes_the_recipes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = polar("gmt_netcdf/BedMachine_bed_wgs_10k.nc");
    let g = grid();
    let mut spec = WarpSpec {
        resampling: Resampling::Bilinear,
        src_nodata: None,
        src_crs: None,
        overviews: false,
    };
    let e = warp_window(&src, &spec, &g, 0..10, 0..10).unwrap_err();
    assert!(
        e.to_string().contains("BedMachine_bed_wgs_10k.nc") && e.to_string().contains("no CRS"),
        "{e}"
    );
    spec.src_crs = Some("EPSG:3031".into());
    let ours = warp_window(&src, &spec, &g, 0..g.nx, 0..g.ny).unwrap();
    let reference = gdalwarp(
        &src,
        "bilinear",
        &["-s_srs", "EPSG:3031"],
        &tmp.path().join("b.tif"),
    );
    let n = compare(&ours, &reference, 1e-4, "BedMachine");
    assert!(n > 100_000, "only {n} cells with data");
}
