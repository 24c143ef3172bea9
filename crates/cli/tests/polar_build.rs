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

/// An independent `gdalwarp` of `srcs` (mosaicked) onto `bbox` at `res` (extra: -r, ...).
fn gdalwarp(srcs: &[&str], bbox: [f64; 4], res: f64, extra: &[&str], out: &Path) -> Vec<f32> {
    let te = bbox.map(|v| v.to_string());
    let tif = out.with_extension("tif");
    let s = Command::new("gdalwarp")
        .args(["-q", "-overwrite", "-ot", "Float32", "-t_srs", "EPSG:3031"])
        .args(["-te", &te[0], &te[1], &te[2], &te[3]])
        .args(["-tr", &res.to_string(), &res.to_string()])
        .args(["-dstnodata", "-3.4e38", "-et", "0"])
        .args(["-wo", "XSCALE=1", "-wo", "YSCALE=1"])
        .args(extra)
        .args(srcs)
        .arg(&tif)
        .status()
        .expect("gdalwarp not found: install gdal-bin (make test does)");
    assert!(s.success(), "gdalwarp {srcs:?} failed");
    ascii_grid(&tif, out)
}

/// An independent `gdal_rasterize` of `src` onto `bbox` at `res` (extra: -burn/-a, -at, -init).
fn gdal_rasterize(src: &str, bbox: [f64; 4], res: f64, extra: &[&str], out: &Path) -> Vec<f32> {
    let te = bbox.map(|v| v.to_string());
    let tif = out.with_extension("tif");
    let _ = std::fs::remove_file(&tif);
    let s = Command::new("gdal_rasterize")
        .args(["-q", "-ot", "Float32", "-a_srs", "EPSG:3031"])
        .args(["-te", &te[0], &te[1], &te[2], &te[3]])
        .args(["-tr", &res.to_string(), &res.to_string()])
        .args(["-a_nodata", "-3.4e38"])
        .args(extra)
        .arg(src)
        .arg(&tif)
        .status()
        .expect("gdal_rasterize not found: install gdal-bin (make test does)");
    assert!(s.success(), "gdal_rasterize {src} failed");
    ascii_grid(&tif, out)
}

/// A GeoTIFF's values through `gdal_translate -of AAIGrid` (rows north first; the
/// -3.4e38 no-data as NaN).
fn ascii_grid(tif: &Path, out: &Path) -> Vec<f32> {
    let s = Command::new("gdal_translate")
        .args(["-q", "-of", "AAIGrid"])
        .arg(tif)
        .arg(out)
        .status()
        .expect("gdal_translate not found: install gdal-bin (make test does)");
    assert!(s.success(), "gdal_translate {} failed", tif.display());
    // AAIGrid: 6 header lines (5 without NODATA_value), then rows north first.
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .flat_map(|l| {
            l.split_whitespace()
                .map(|v| v.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .map(|v| if v < -3.0e38 { f32::NAN } else { v })
        .collect()
}

/// A 2-D slice of a cube variable: `at` is the time index for (time, y, x) variables.
fn ours_at(cube: &Path, var: &str, at: Option<u64>) -> Vec<f32> {
    let r = cryocube_cube::CubeReader::open(cube).unwrap();
    let shape = r.array(var).unwrap().shape.clone();
    let (ny, nx) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let (start, count) = match at {
        Some(t) => (vec![t, 0, 0], vec![1, ny, nx]),
        None => (vec![0, 0], vec![ny, nx]),
    };
    r.read_f64(var, &start, &count)
        .unwrap()
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

fn ours(cube: &Path, var: &str) -> Vec<f32> {
    ours_at(cube, var, None)
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
    eprintln!("{what}: {n} cells with data agree");
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
                    {"name": "thw_lakes", "dims": ["time", "y", "x"]},
                    {"name": "thw_124", "dims": ["time", "y", "x"]},
                    {"name": "lake_area", "dims": ["y", "x"], "units": "km2"},
                    {"name": "grounding_zone", "dims": ["y", "x"]},
                    {"name": "dem", "dims": ["y", "x"], "units": "m"}
                ],
                "sources": [
                    {"name": "Gravity", "variable_names": ["gravity"], "download_url": file("geotiff/ant4d_fa.tif"),
                     "processing": {"nodata": -32767, "resampling": "bilinear"}},
                    {"name": "Bed", "variable_names": ["bed"], "download_url": file("gmt_netcdf/BEDMAP1_bed_5km_cf.nc"),
                     "processing": {"format": "gmt-grid", "crs": "EPSG:3031"}},
                    {"name": "EMAG2", "variable_names": ["magnetic_anomaly"], "download_url": file("gmt_netcdf/EMAG2_V2_1x1.grd"),
                     "processing": {"format": "gmt-grid", "crs": "EPSG:4326", "valid": {"gt": -90000}}},
                    // The seed's masks, no processing: a time stack without time stamps.
                    {"name": "Thw 124", "variable_names": ["Thw 124"], "download_url": file("masks/Thw124_SF2018_mask.tif")},
                    // Four masks as two epochs: each its own variable, and mosaicked per epoch.
                    {"name": "Thw 70", "download_url": file("masks/Thw70_SF2018_mask.tif"),
                     "processing": {"files": [{"path": "Thw70_*.tif", "time": "2013-01-01"}], "valid": {"gt": 0},
                                    "resampling": "nearest", "outputs": [{"name": "thw_70"}, {"name": "thw_lakes"}]}},
                    {"name": "Thw 124 epoch", "download_url": file("masks/Thw124_SF2018_mask.tif"),
                     "processing": {"files": [{"path": "*.tif", "time": "2013-01-01"}], "valid": {"gt": 0},
                                    "resampling": "nearest", "outputs": [{"name": "thw_lakes"}]}},
                    {"name": "Thw 142", "download_url": file("masks/Thw142_SF2018_mask.tif"),
                     "processing": {"files": [{"path": "*.tif", "time": "2017-01-01"}], "valid": {"gt": 0},
                                    "resampling": "nearest", "outputs": [{"name": "thw_lakes"}]}},
                    {"name": "Thw 170", "download_url": file("masks/Thw170_SF2018_mask.tif"),
                     "processing": {"files": [{"path": "*.tif", "time": "2017-01-01T00:00:00Z"}], "valid": {"gt": 0},
                                    "resampling": "nearest", "outputs": [{"name": "thw_lakes"}]}},
                    {"name": "Lakes", "download_url": file("vector/subglacial_lakes/SiegfriedFricker2018_outlines.shp"),
                     "processing": {"rasterize": {"attribute": "area_km2"}, "outputs": [{"name": "lake_area"}]}},
                    {"name": "Grounding zone", "download_url": file("vector/thwaites_grounding_zone_no_prj/GL_VARIABILITY.shp"),
                     "source_format": "shp", "source_crs": "EPSG:3031", "variable_names": ["grounding zone"]},
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
        text(&o).contains("thw_124: time-stacked, but its files have no time stamp"),
        "{}",
        text(&o)
    );
    assert_eq!(
        text(&o).matches("no cell of the grid has data").count(),
        1,
        "only the REMA clip lies outside the bbox: {}",
        text(&o)
    );
    let r = cryocube_cube::CubeReader::open(&out).unwrap();
    assert_eq!(
        r.read_all_i64("time").unwrap(),
        vec![1_356_998_400_000_000, 1_483_228_800_000_000],
        "two epochs: 2013-01-01 and 2017-01-01"
    );
    let masks = polar.join("masks");
    let mask = |n: u32| {
        masks
            .join(format!("Thw{n}_SF2018_mask.tif"))
            .display()
            .to_string()
    };
    let near = ["-r", "near", "-srcnodata", "0"];
    let w70 = gdalwarp(
        &[&mask(70)],
        BBOX,
        1000.0,
        &near,
        &tmp.path().join("t70.asc"),
    );
    assert!(assert_close(&ours_at(&out, "thw_70", Some(0)), &w70, "thw_70") > 10);
    assert!(
        ours_at(&out, "thw_70", Some(1)).iter().all(|v| v.is_nan()),
        "thw_70 has no file at the second epoch"
    );
    let e1 = gdalwarp(
        &[&mask(70), &mask(124)],
        BBOX,
        1000.0,
        &near,
        &tmp.path().join("e1.asc"),
    );
    let e2 = gdalwarp(
        &[&mask(142), &mask(170)],
        BBOX,
        1000.0,
        &near,
        &tmp.path().join("e2.asc"),
    );
    assert!(assert_close(&ours_at(&out, "thw_lakes", Some(0)), &e1, "epoch 1") > 20);
    assert!(assert_close(&ours_at(&out, "thw_lakes", Some(1)), &e2, "epoch 2") > 20);
    assert_ne!(
        ours_at(&out, "thw_lakes", Some(0))
            .iter()
            .filter(|v| v.is_finite())
            .count(),
        ours_at(&out, "thw_lakes", Some(1))
            .iter()
            .filter(|v| v.is_finite())
            .count(),
        "the epochs hold different lakes"
    );
    let lakes = polar.join("vector/subglacial_lakes/SiegfriedFricker2018_outlines.shp");
    let l = gdal_rasterize(
        p(&lakes),
        BBOX,
        1000.0,
        &["-a", "area_km2", "-init", "-3.4e38"],
        &tmp.path().join("l.asc"),
    );
    assert!(assert_close(&ours(&out, "lake_area"), &l, "lake_area") > 100);
    let gz = polar.join("vector/thwaites_grounding_zone_no_prj/GL_VARIABILITY.shp");
    let g = gdal_rasterize(
        p(&gz),
        BBOX,
        1000.0,
        &["-burn", "1", "-init", "-3.4e38"],
        &tmp.path().join("gz.asc"),
    );
    assert!(assert_close(&ours(&out, "grounding_zone"), &g, "grounding_zone") > 100);

    let g = gdalwarp(
        &[p(&polar.join("geotiff/ant4d_fa.tif"))],
        BBOX,
        1000.0,
        &["-r", "bilinear", "-srcnodata", "-32767"],
        &tmp.path().join("g.asc"),
    );
    assert!(assert_close(&ours(&out, "gravity"), &g, "gravity") > 100_000);
    let cf = format!(
        "NETCDF:\"{}\":z",
        polar.join("gmt_netcdf/BEDMAP_elevation.nc").display()
    );
    let b = gdalwarp(
        &[&cf],
        BBOX,
        1000.0,
        &["-r", "bilinear", "-s_srs", "EPSG:3031"],
        &tmp.path().join("b.asc"),
    );
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
want = {"bed", "gravity", "magnetic_anomaly", "dem", "thw_70", "thw_lakes", "lake_area", "grounding_zone"}
assert "crs" in ds.coords and set(ds.data_vars) == want, list(ds.variables)
assert ds.thw_lakes.dims == ("time", "y", "x"), ds.thw_lakes.dims
assert str(ds.time.values[1])[:10] == "2017-01-01", ds.time.values
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

/// Lon/lat sources, a latitude cut and rasterised coastline and zipped lakes over the whole
/// continent at 10 km: each equals an independent GDAL run, and the ocean-floor age lands in
/// the ocean (outside the MEaSUREs coastline), not on the continent.
#[test]
fn latlon_grids_and_vectors_land_where_they_should() {
    const WIDE: [f64; 4] = [-3.0e6, -3.0e6, 3.0e6, 3.0e6];
    // Radius of latitude 75°S in EPSG:3031 (gdaltransform).
    const R75: f64 = 1_638_783.0;
    let tmp = tempfile::tempdir().unwrap();
    let polar = shared().join("data/polar");
    let file = |rel: &str| format!("file://{}", polar.join(rel).display());
    let recipe = tmp.path().join("cube.geojson");
    std::fs::write(
        &recipe,
        serde_json::json!({
            "type": "Feature", "geometry": null,
            "properties": {
                "spatial_ref": "EPSG:3031", "spatial_bbox": WIDE, "spatial_res": [10000, 10000],
                "variables": [
                    {"name": "age", "dims": ["y", "x"], "units": "Myr"},
                    {"name": "age_south_of_75", "dims": ["y", "x"], "units": "Myr"},
                    {"name": "coast", "dims": ["y", "x"]},
                    {"name": "dml_lake_area", "dims": ["y", "x"]},
                    {"name": "magnetic_anomaly", "dims": ["y", "x"], "units": "nT"}
                ],
                "sources": [
                    {"name": "Age", "variable_names": ["age"], "download_url": file("latlon_netcdf/age.3.20.nc"),
                     "processing": {"format": "latlon-grid", "variable": "z"}},
                    {"name": "Age cut", "variable_names": ["age south of 75"], "download_url": file("latlon_netcdf/age.3.20.nc"),
                     "processing": {"format": "latlon-grid", "latitude": {"lt": -75}}},
                    {"name": "Coast", "variable_names": ["coast"], "download_url": file("vector/measures_boundaries_v2/Coastline_Antarctica_v02.shp"),
                     "processing": {"rasterize": {"background": 0}}},
                    {"name": "DML lakes", "download_url": file("vector/subglacial_lakes/DML_Lakes_Combined.zip"),
                     "compressed": true, "compression_format": "zip", "source_format": "shp",
                     "processing": {"rasterize": {"attribute": "Area", "all_touched": true}, "outputs": [{"name": "dml_lake_area"}]}},
                    {"name": "EMAG2", "variable_names": ["magnetic anomaly"], "download_url": file("gmt_netcdf/EMAG2_V2_1x1.grd"),
                     "processing": {"format": "latlon-grid", "valid": {"gt": -90000}}}
                ]
            }
        })
        .to_string(),
    )
    .unwrap();
    let out = tmp.path().join("wide.zarr");
    let o = cryocube(&[
        "build",
        p(&recipe),
        "-o",
        p(&out),
        "--sources",
        p(&tmp.path().join("sources")),
        "--chunk",
        "256",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !text(&o).contains("ERROR 1: PROJ"),
        "GDAL's messages about points beyond the pole go to the debug log: {}",
        text(&o)
    );
    let root = cryocube_cube::CubeReader::open(&out)
        .unwrap()
        .attrs()
        .clone();
    assert_eq!(root["geospatial_lat_min"], -90.0, "the grid holds the pole");
    assert_eq!(root["geospatial_lon_min"], -180.0);

    // Ages: GDAL warps the raw int16 (its declared _FillValue as no data); bilinear is
    // linear, so the scale factor 0.01 applies after.
    let nc = polar.join("latlon_netcdf/age.3.20.nc");
    let raw = gdalwarp(
        &[p(&nc)],
        WIDE,
        10000.0,
        &["-r", "bilinear", "-s_srs", "EPSG:4326"],
        &tmp.path().join("age.asc"),
    );
    let want: Vec<f32> = raw.iter().map(|v| v * 0.01).collect();
    let age = ours(&out, "age");
    assert!(assert_close(&age, &want, "age") > 50_000);

    // The latitude cut: ages only south of 75°S; more than a source cell (0.33°, 37 km) away
    // from the cut, equal to the uncut.
    let cut = ours(&out, "age_south_of_75");
    let n = 600;
    let (mut south, mut north) = (0, 0);
    for (k, (c, a)) in cut.iter().zip(&age).enumerate() {
        let (x, y) = (
            WIDE[0] + (k % n) as f64 * 1e4 + 5e3,
            WIDE[3] - (k / n) as f64 * 1e4 - 5e3,
        );
        let r = x.hypot(y);
        if r > R75 + 60_000.0 {
            assert!(c.is_nan(), "cell {k} (north of 75°S) has {c}");
            north += 1;
        } else if r < R75 - 60_000.0 && a.is_finite() {
            assert!(
                (c - a).abs() <= 1e-4 * a.abs().max(1.0),
                "cell {k}: {c} vs {a}"
            );
            south += 1;
        }
    }
    assert!(south > 100 && north > 100_000, "{south} {north}");

    // Coastline: 1 inside, background 0 outside, as gdal_rasterize.
    let shp = polar.join("vector/measures_boundaries_v2/Coastline_Antarctica_v02.shp");
    let coast_ref = gdal_rasterize(
        p(&shp),
        WIDE,
        10000.0,
        &["-burn", "1", "-init", "0"],
        &tmp.path().join("c.asc"),
    );
    let coast = ours(&out, "coast");
    assert_close(&coast, &coast_ref, "coast");
    assert!(coast.iter().all(|v| *v == 0.0 || *v == 1.0));

    // The ocean-floor age lies outside the coastline: where a lat/lon grid lands is checked
    // against an independent vector source.
    let inside: Vec<bool> = coast.iter().map(|v| *v == 1.0).collect();
    let on_land = age
        .iter()
        .zip(&inside)
        .filter(|(a, i)| **i && a.is_finite())
        .count();
    let land = inside.iter().filter(|i| **i).count();
    let at_sea = age
        .iter()
        .zip(&inside)
        .filter(|(a, i)| !**i && a.is_finite())
        .count();
    eprintln!("age: {on_land} of {land} land cells, {at_sea} sea cells");
    assert!(
        land > 100_000 && (on_land as f64) < 0.02 * land as f64,
        "{on_land} of {land}"
    );
    assert!(at_sea > 50_000);

    // Zipped shapefile, attribute burnt into every touched cell.
    let zip = format!(
        "/vsizip/{}",
        polar
            .join("vector/subglacial_lakes/DML_Lakes_Combined.zip")
            .display()
    );
    let d = gdal_rasterize(
        &zip,
        WIDE,
        10000.0,
        &["-a", "Area", "-at", "-init", "-3.4e38"],
        &tmp.path().join("d.asc"),
    );
    assert!(assert_close(&ours(&out, "dml_lake_area"), &d, "dml_lake_area") >= 7);

    // The gridline EMAG2 (-180..180 with both seams) through the lon/lat path, against
    // gdalwarp of a grid the test lays out itself from GDAL's raw 1-row read of `z` and the
    // format's documented facts (first row north, nodes at -180 + i, 90 - j; z > -90000).
    let emag = polar.join("gmt_netcdf/EMAG2_V2_1x1.grd");
    let raw_asc = tmp.path().join("emag_raw.asc");
    let s = Command::new("gdal_translate")
        .args(["-q", "-of", "AAIGrid"])
        .arg(format!("NETCDF:{}:z", emag.display()))
        .arg(&raw_asc)
        .status()
        .unwrap();
    assert!(s.success());
    let z: Vec<String> = std::fs::read_to_string(&raw_asc)
        .unwrap()
        .lines()
        .skip(6)
        .flat_map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .map(|v| match v.parse::<f64>() {
            Ok(x) if x > -90000.0 => v,
            _ => "-99999".into(),
        })
        .collect();
    assert_eq!(z.len(), 361 * 181);
    let grid_asc = tmp.path().join("emag_grid.asc");
    let mut g = String::from(
        "ncols 361\nnrows 181\nxllcenter -180\nyllcenter -90\ncellsize 1\nNODATA_value -99999\n",
    );
    for row in z.chunks(361) {
        g.push_str(&row.join(" "));
        g.push('\n');
    }
    std::fs::write(&grid_asc, g).unwrap();
    let e = gdalwarp(
        &[p(&grid_asc)],
        WIDE,
        10000.0,
        &["-r", "bilinear", "-s_srs", "EPSG:4326"],
        &tmp.path().join("emag.asc"),
    );
    let m = ours(&out, "magnetic_anomaly");
    assert!(assert_close(&m, &e, "magnetic_anomaly") > 200_000);
    assert!(m.iter().all(|v| v.is_nan() || v.abs() < 5000.0));
}

/// `examples/polar-standin` (the seed's grid from the stand-in files; 16 layers: 12 static
/// variables and 4 masks on two epochs) builds at 1 km with data in every variable, nothing
/// skipped, and `info` shows the grid, each variable's NaN share and its provenance.
#[test]
fn the_example_recipe_builds_every_layer() {
    let recipe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/polar-standin/cube.geojson");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("standin.zarr");
    let o = cryocube(&[
        "build",
        p(&recipe),
        "-o",
        p(&out),
        "--sources",
        p(&tmp.path().join("sources")),
        "--res",
        "1000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for bad in [
        "skipped",
        "no cell of the grid has data",
        "HDF5-DIAG",
        "ERROR",
    ] {
        assert!(!text(&o).contains(bad), "{bad}: {}", text(&o));
    }
    let r = cryocube_cube::CubeReader::open(&out).unwrap();
    let vars: Vec<&cryocube_cube::ArraySpec> =
        r.arrays().iter().filter(|a| a.dims.len() >= 2).collect();
    assert_eq!(
        vars.len(),
        16,
        "{:?}",
        vars.iter().map(|a| &a.name).collect::<Vec<_>>()
    );
    for a in &vars {
        let f = a.attrs["valid_fraction"].as_f64().unwrap();
        assert!(f > 0.0, "{} has no data", a.name);
        assert!(a.attrs["input_files"][0]
            .as_str()
            .unwrap()
            .contains("sha256"));
    }
    assert_eq!(r.read_all_i64("time").unwrap().len(), 2);
    let o = cryocube(&["info", p(&out)]);
    let info = text(&o);
    assert!(o.status.success(), "{info}");
    assert!(
        info.contains("grid:    1953 x 2121 cells of 1000 x 1000 m, cell edges x -2602500 .. -649500, y -1626000 .. 495000 (north-up)"),
        "{info}"
    );
    assert!(info.contains("crs:     WGS 84 / Antarctic Polar Stereographic (EPSG:3031)"));
    assert_eq!(info.matches("      NaN: ").count(), 16, "{info}");
    assert!(
        info.contains("        - latitude range {\"le\":-60.0}"),
        "{info}"
    );
    // The viewer finds the polar stereographic grid mapping of every layer (for its
    // latitude/longitude lines): EPSG:3031's.
    let view =
        cryocube_view::ViewCube::open(&cryocube_cube::Location::from(&out), 1 << 20).unwrap();
    assert_eq!(view.variables().len(), 16);
    for v in view.variables() {
        let p = v
            .projection
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no projection", v.name));
        assert_eq!(
            (
                p.pole,
                p.standard_parallel,
                p.lon0,
                p.false_easting,
                p.false_northing
            ),
            (-90.0, Some(-71.0), 0.0, 0.0, 0.0),
            "{}",
            v.name
        );
        assert_eq!(p.semi_major_axis, 6_378_137.0);
        assert!(
            (p.inverse_flattening - 298.257_223_563).abs() < 1e-6,
            "{p:?}"
        );
    }
}
