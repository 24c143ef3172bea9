//! `cryocube build` on real polar files over the reference bbox at 1 km: each variable equals
//! an independent `gdalwarp` of the same data (the GeoTIFF with its undeclared -32767; the old
//! GMT BEDMAP1 grid against its CF copy BEDMAP_elevation.nc, which our decoder never reads),
//! the gridline lon/lat EMAG2 loses its sentinels before resampling, a time stack is reported
//! and skipped, and the CRS is what rioxarray and GDAL see, also after the seed's patch.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cryocube, p, shared, text, venv};

const BBOX: [f64; 4] = [-1800000.0, -700000.0, -1200000.0, -100000.0];

fn gdalwarp(src: &str, extra: &[&str], out: &Path) -> Vec<f32> {
    let te = BBOX.map(|v| v.to_string());
    let s = Command::new("gdalwarp")
        .args([
            "-q",
            "-overwrite",
            "-of",
            "AAIGrid",
            "-ot",
            "Float32",
            "-t_srs",
            "EPSG:3031",
        ])
        .args(["-te", &te[0], &te[1], &te[2], &te[3], "-tr", "1000", "1000"])
        .args(["-r", "bilinear", "-dstnodata", "-3.4e38"])
        .args(extra)
        .arg(src)
        .arg(out)
        .status()
        .expect("gdalwarp not found: install gdal-bin (make test does)");
    assert!(s.success(), "gdalwarp {src} failed");
    // AAIGrid: 6 header lines, then rows north first.
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .skip(6)
        .flat_map(|l| {
            l.split_whitespace()
                .map(|v| v.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .map(|v| if v < -3.0e38 { f32::NAN } else { v })
        .collect()
}

fn ours(cube: &Path, var: &str) -> Vec<f32> {
    let r = cryocube_cube::CubeReader::open(cube).unwrap();
    r.read_f64(var, &[0, 0], &[600, 600])
        .unwrap()
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) -> usize {
    assert_eq!(a.len(), b.len(), "{what}");
    let mut n = 0;
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        if y.is_nan() {
            assert!(x.is_nan(), "{what}: cell {k}: {x} where gdalwarp has none");
        } else {
            // AAIGrid prints ~7 significant digits; bilinear agrees to 1e-4 relative.
            assert!(
                (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                "{what}: cell {k}: {x} vs {y}"
            );
            n += 1;
        }
    }
    n
}

#[test]
fn build_matches_independent_warps_and_publishes_the_crs() {
    let tmp = tempfile::tempdir().unwrap();
    let polar = shared().join("data/polar");
    let file = |rel: &str| format!("file://{}", polar.join(rel).display());
    let recipe = tmp.path().join("cube.geojson");
    std::fs::write(
        &recipe,
        serde_json::json!({
            "type": "Feature", "geometry": null,
            "properties": {
                "title": "polar stand-in test",
                "spatial_ref": "EPSG:3031", "spatial_bbox": BBOX, "spatial_res": [1000, 1000],
                "variables": [
                    {"name": "gravity", "dims": ["y", "x"], "units": "mGal"},
                    {"name": "bed", "dims": ["y", "x"], "units": "m"},
                    {"name": "magnetic_anomaly", "dims": ["y", "x"], "units": "nT"},
                    {"name": "thw_70", "dims": ["time", "y", "x"]},
                    {"name": "dem", "dims": ["y", "x"], "units": "m"}
                ],
                "sources": [
                    {"name": "Gravity", "variable_names": ["gravity"], "download_url": file("geotiff/ant4d_fa.tif"),
                     "processing": {"nodata": -32767, "resampling": "bilinear"}},
                    {"name": "Bed", "variable_names": ["bed"], "download_url": file("gmt_netcdf/BEDMAP1_bed_5km_cf.nc"),
                     "processing": {"format": "gmt-grid", "crs": "EPSG:3031"}},
                    {"name": "EMAG2", "variable_names": ["magnetic_anomaly"], "download_url": file("gmt_netcdf/EMAG2_V2_1x1.grd"),
                     "processing": {"format": "gmt-grid", "crs": "EPSG:4326", "valid": {"gt": -90000}}},
                    {"name": "Thw 70", "variable_names": ["Thw 70"], "download_url": file("masks/Thw70_SF2018_mask.tif")},
                    {"name": "REMA clip", "variable_names": ["dem"], "download_url": file("geotiff/ClippedDEMforPartialFillingAnalysis.tif")}
                ]
            }
        })
        .to_string(),
    )
    .unwrap();
    let out = tmp.path().join("polar.zarr");
    let sources = tmp.path().join("sources");
    let o = cryocube(&[
        "build",
        p(&recipe),
        "-o",
        p(&out),
        "--sources",
        p(&sources),
        "--chunk",
        "256",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("thw_70: time-stacked variables are not built yet"),
        "{}",
        text(&o)
    );

    let g = gdalwarp(
        p(&polar.join("geotiff/ant4d_fa.tif")),
        &["-srcnodata", "-32767"],
        &tmp.path().join("g.asc"),
    );
    assert!(assert_close(&ours(&out, "gravity"), &g, "gravity") > 100_000);
    let cf = format!(
        "NETCDF:\"{}\":z",
        polar.join("gmt_netcdf/BEDMAP_elevation.nc").display()
    );
    let b = gdalwarp(&cf, &["-s_srs", "EPSG:3031"], &tmp.path().join("b.asc"));
    assert!(assert_close(&ours(&out, "bed"), &b, "bed vs the CF copy") > 100_000);
    let m = ours(&out, "magnetic_anomaly");
    assert!(m.iter().filter(|v| v.is_finite()).count() > 100_000);
    assert!(
        m.iter().all(|v| v.is_nan() || *v > -5000.0),
        "a sentinel was resampled as data"
    );

    // The seed's patch (which deletes grid_mapping from magnetic_anomaly) keeps the CRS visible.
    let patch = shared().join("recipes/seed/patch.yaml");
    let o = cryocube(&["patch", p(&out), "--metadata", p(&patch)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("not deleting `grid_mapping`"),
        "{}",
        text(&o)
    );

    let python = venv();
    let check = r#"
import sys, xarray as xr, rioxarray
ds = xr.open_zarr(sys.argv[1])
assert str(ds.rio.crs) == "EPSG:3031", ds.rio.crs
assert "crs" in ds.coords and set(ds.data_vars) == {"bed", "gravity", "magnetic_anomaly", "dem"}, list(ds.variables)
assert ds.y.values[0] > ds.y.values[-1], "north-up"
assert ds.bed.attrs["units"] == "m" and ds.bed.attrs["grid_mapping"] == "crs"
assert str(ds.magnetic_anomaly.rio.crs) == "EPSG:3031", "patched variable lost its CRS"
assert ds.attrs["title"] == "Polar Data Cube v1.0.1", ds.attrs["title"]
print("rio-ok")
"#;
    let o = Command::new(&python)
        .args(["-c", check, p(&out)])
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("rio-ok"),
        "{}",
        text(&o)
    );
    let o = Command::new("gdalinfo")
        .arg(format!("ZARR:\"{}\":/bed", p(&out)))
        .output()
        .unwrap();
    assert!(
        text(&o).contains("Antarctic Polar Stereographic"),
        "gdalinfo sees no CRS: {}",
        text(&o)
    );
}
