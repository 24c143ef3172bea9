//! `cryocube build` on the real files of `shared/data/polar/extra` that once gave wrong cubes
//! with exit 0, and on the recipe fields that take dimensions as data. Each check compares
//! with values read from the source directly (GDAL's raster read, not its warper; or netCDF4
//! and pyproj in Python), never with another warp.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use common::{assert_build_fails, cryocube, p, shared, text, venv};

fn extra(rel: &str) -> PathBuf {
    shared().join("data/polar/extra").join(rel)
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// A recipe on EPSG:3031 over `bbox` at `res` with `variables` and `sources`.
fn recipe(dir: &Path, bbox: [f64; 4], res: f64, variables: Value, sources: Value) -> PathBuf {
    let path = dir.join("cube.geojson");
    let text = json!({
        "type": "Feature", "geometry": null,
        "properties": {
            "spatial_ref": "EPSG:3031", "spatial_bbox": bbox, "spatial_res": [res, res],
            "variables": variables, "sources": sources
        }
    });
    std::fs::write(&path, text.to_string()).unwrap();
    path
}

/// Runs `build`; returns the cube's path and the text printed.
fn build(dir: &Path, recipe: &Path) -> (PathBuf, String) {
    let out = dir.join("cube.zarr");
    let o = cryocube(&[
        "build",
        p(recipe),
        "-o",
        p(&out),
        "--sources",
        p(&dir.join("sources")),
        "--overwrite",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    (out, t)
}

/// The whole of a cube variable, its shape, and its attributes.
fn read(cube: &Path, var: &str) -> (Vec<f64>, Vec<u64>, cryocube_cube::Attrs) {
    let r = cryocube_cube::CubeReader::open(cube).unwrap();
    let a = r.array(var).unwrap().clone();
    let zeros = vec![0; a.shape.len()];
    (r.read_f64(var, &zeros, &a.shape).unwrap(), a.shape, a.attrs)
}

fn processing(attrs: &cryocube_cube::Attrs) -> String {
    attrs["processing"].to_string()
}

/// Band 1 of a raster read whole with GDAL's raster I/O (no resampling).
fn source_band(path: &Path) -> (Vec<f32>, usize, usize) {
    let ds = gdal::Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let v = ds
        .rasterband(1)
        .unwrap()
        .read_as::<f32>((0, 0), (w, h), (w, h), None)
        .unwrap();
    (v.into_shape_and_vec().1, w, h)
}

#[test]
fn a_recipe_crs_overrides_a_wrong_one_in_the_file() {
    // ant4d_bafa.tif declares polar stereographic with latitude of origin 0. On a grid
    // aligned with its 10 km cells, nearest must give exactly its cells: cube (j, i) is
    // file (344 + j, 153 + i), counted from its origin (-3335000, 3335000).
    let tmp = tempfile::tempdir().unwrap();
    let file = extra("geotiff/ant4d_bafa.tif");
    let r = recipe(
        tmp.path(),
        [-1805000.0, -705000.0, -1205000.0, -105000.0],
        10000.0,
        json!([{"name": "bafa", "dims": ["y", "x"]}]),
        json!([{"name": "BAFA", "variable_names": ["bafa"], "download_url": url(&file),
                "source_crs": "EPSG:3031", "processing": {"resampling": "nearest"}}]),
    );
    let (cube, t) = build(tmp.path(), &r);
    assert!(
        t.contains("declares the CRS") && t.contains("EPSG:3031 is used instead"),
        "{t}"
    );
    let (ours, shape, attrs) = read(&cube, "bafa");
    assert!(
        processing(&attrs).contains("overriding the file's"),
        "{attrs:?}"
    );
    let (src, w, _) = source_band(&file);
    let (ny, nx) = (shape[0] as usize, shape[1] as usize);
    let mut n = 0;
    for j in 0..ny {
        for i in 0..nx {
            let want = src[(344 + j) * w + 153 + i] as f64;
            assert_eq!(ours[j * nx + i], want, "cell ({j}, {i})");
            n += 1;
        }
    }
    assert_eq!(n, 3600);
}

#[test]
fn overviews_are_not_read_unless_asked() {
    // The COG's overviews hold values of ±2.8e5 where its data span -2340..-19: with
    // nearest, every cell of the cube must be a value of one of its 65 m cells.
    let tmp = tempfile::tempdir().unwrap();
    let file = extra("geotiff/GA4886_VanderfordGlacier_2022_EGM2008_64m-epsg3031.cog");
    let variables = json!([{"name": "h", "dims": ["y", "x"]}]);
    let source = |overviews: bool| {
        json!([{"name": "Vanderford", "variable_names": ["h"], "download_url": url(&file),
                "processing": {"resampling": "nearest", "overviews": overviews}}])
    };
    let bbox = [2410000.0, -960000.0, 2570000.0, -840000.0];
    let r = recipe(tmp.path(), bbox, 1000.0, variables.clone(), source(false));
    let (cube, _) = build(tmp.path(), &r);
    let (ours, _, attrs) = read(&cube, "h");
    assert!(processing(&attrs).contains("resampled once"), "{attrs:?}");
    let (src, _, _) = source_band(&file);
    let values: HashSet<u32> = src
        .iter()
        .filter(|v| v.abs() < 1e30)
        .map(|v| v.to_bits())
        .collect();
    let with_data: Vec<f64> = ours.iter().copied().filter(|v| !v.is_nan()).collect();
    assert!(
        with_data.len() > 1000,
        "{} cells with data",
        with_data.len()
    );
    for v in &with_data {
        assert!(
            values.contains(&(*v as f32).to_bits()),
            "{v} is in no cell of the file"
        );
    }
    // Asked for, GDAL reads the overviews: other values (this is what the default avoids).
    let r = recipe(tmp.path(), bbox, 1000.0, variables, source(true));
    let (cube, _) = build(tmp.path(), &r);
    let (theirs, _, attrs) = read(&cube, "h");
    assert!(processing(&attrs).contains("overviews"), "{attrs:?}");
    let foreign = theirs
        .iter()
        .filter(|v| !v.is_nan() && !values.contains(&(**v as f32).to_bits()))
        .count();
    assert!(foreign > 0, "the overviews gave only values of the data");
}

/// Checks a cube variable against the source read by netCDF4 and points converted by pyproj
/// (not GDAL): nearest exactly, bilinear interpolated by hand, across 0° and 180° and near
/// the pole (`places`: a Python list of (lon, lat) to look at, where the source has data).
/// `cube_index` and `nc_index` pick the 2-D slices to compare.
struct Truth<'a> {
    cube: &'a Path,
    var: &'a str,
    /// xarray indexing of the cube variable, e.g. `.isel(time=1, level=2)`.
    cube_index: &'a str,
    nc: &'a Path,
    nc_var: &'a str,
    /// netCDF4 indexing of the source variable, e.g. `1, 2`.
    nc_index: &'a str,
    method: &'a str,
    places: &'a str,
}

fn check_with_python(t: &Truth) -> String {
    let Truth {
        cube,
        var,
        cube_index,
        nc,
        nc_var,
        nc_index,
        method,
        places,
    } = *t;
    let script = format!(
        r#"
import json, numpy as np, xarray as xr, netCDF4, pyproj
cube = xr.open_zarr({cube:?})
ours = cube[{var:?}]{cube_index}.values
x, y = np.meshgrid(cube.x.values, cube.y.values)
lon, lat = pyproj.Transformer.from_crs(3031, 4326, always_xy=True).transform(x, y)
f = netCDF4.Dataset({nc:?})
f.set_auto_maskandscale(True)
names = list(f[{nc_var:?}].dimensions)
lat_name, lon_name = names[-2], names[-1]
src = np.ma.filled(f[{nc_var:?}][{nc_index}].astype(np.float64), np.nan)
lons = f[lon_name][:].astype(np.float64); lats = f[lat_name][:].astype(np.float64)
n = int(round(360 / abs(lons[1] - lons[0])))
dx = 360.0 / n
dy = lats[1] - lats[0]
# fractional source index: columns wrap round the globe
fi = ((lon - lons[0]) / dx) % n
fj = (lat - lats[0]) / dy
if {method:?} == "nearest":
    i = np.floor(fi + 0.5).astype(int) % n
    j = np.floor(fj + 0.5).astype(int)
    want = src[j.clip(0, len(lats) - 1), i]
    # cells half-way between two source cells may go either way
    edge = (np.abs(fi % 1 - 0.5) < 1e-6) | (np.abs(fj % 1 - 0.5) < 1e-6)
    want = want.astype(np.float32).astype(np.float64)
    want[edge] = ours[edge]
else:
    i0 = np.floor(fi).astype(int); j0 = np.floor(fj).astype(int)
    a = fi - i0; b = fj - j0
    i1 = (i0 + 1) % n; i0 = i0 % n
    j1 = (j0 + 1).clip(0, len(lats) - 1); j0 = j0.clip(0, len(lats) - 1)
    want = ((1 - a) * (1 - b) * src[j0, i0] + a * (1 - b) * src[j0, i1]
            + (1 - a) * b * src[j1, i0] + a * b * src[j1, i1])
    four = np.stack([src[j0, i0], src[j0, i1], src[j1, i0], src[j1, i1]])
    spread = np.nanmax(four, axis=0) - np.nanmin(four, axis=0)
ok = np.isfinite(want) & np.isfinite(ours)
assert ok.sum() > 0.5 * ours.size, ("too few cells compared", ok.sum(), ours.size)
assert (np.isfinite(ours) | ~np.isfinite(want)).all(), "NaN in the cube where the source has data"
# bilinear: 1e-4 relative, plus what the documented bound of the lattice's positions (1e-4
# source pixel) can move a value: 1e-4 of the spread of the four pixels
if {method:?} == "nearest":
    allowed = np.zeros(ok.sum())
else:
    allowed = 1e-4 * np.maximum(np.abs(want[ok]), 1) + 1e-4 * spread[ok]
excess = np.abs(ours[ok] - want[ok]) - allowed
assert excess.max() <= 0, ("worst", excess.max(), np.argmax(excess))
err = np.abs(ours[ok] - want[ok]) / np.maximum(np.abs(want[ok]), 1)
# the places that went wrong before: both sides of 0 and 180 degrees, near the pole
near = lambda lo, la: np.argmin((np.abs(((lon - lo) + 180) % 360 - 180)) + 10 * np.abs(lat - la))
for lo, la in {places}:
    k = near(lo, la)
    assert np.isfinite(ours.flat[k]) and abs(ours.flat[k] - want.flat[k]) <= 1e-4 * max(abs(want.flat[k]), 1), (lo, la, ours.flat[k], want.flat[k])
print(json.dumps({{"compared": int(ok.sum()), "worst": float(err.max())}}))
"#,
        cube = p(cube),
        nc = p(nc),
        places = places,
    );
    let o = Command::new(venv()).args(["-c", &script]).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    t
}

/// Both sides of 0° and 180° and near the pole.
const ERA_PLACES: &str = "[(-0.3, -70), (0.3, -70), (179.7, -70), (-179.7, -70), (45, -89.5)]";

#[test]
fn netcdf_dimensions_as_data_on_era_interim() {
    // eraint_uvz.nc: z(month, level, latitude, longitude), packed int16 with a negative
    // scale factor, descending latitude; month 1 and 7 have no time units.
    let tmp = tempfile::tempdir().unwrap();
    let file = extra("latlon_netcdf/eraint_uvz.nc");
    let bbox = [-3000000.0, -3000000.0, 3000000.0, 3000000.0];
    let era = |processing: Value| {
        json!([{"name": "ERA-Interim", "variable_names": ["z"], "download_url": url(&file),
                "processing": processing}])
    };
    // Without saying which month and level, band 1 would be read silently: an error.
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z", "dims": ["y", "x"]}]),
        era(json!({"variable": "z", "crs": "EPSG:4326"})),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &["eraint_uvz.nc", "dimension month has 2 values (1, 7)"],
    );
    // A value it does not have, and a dimension it does not have.
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z", "dims": ["y", "x"]}]),
        era(json!({"variable": "z", "crs": "EPSG:4326", "select": {"level": 400, "month": 1}})),
    );
    assert_build_fails(tmp.path(), &r, &["level has no value 400", "200, 500, 850"]);
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z", "dims": ["depth", "y", "x"]}]),
        era(json!({"variable": "z", "crs": "EPSG:4326", "select": {"month": 1}})),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &["\"depth\" is not a dimension", "month, level"],
    );
    // A missing variable is named with the ones there are (the default gdal format).
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z", "dims": ["y", "x"]}]),
        era(json!({"variable": "geopotential", "crs": "EPSG:4326"})),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &[
            "has no variable \"geopotential\"",
            "its variables are z, u, v",
        ],
    );

    // One slice by coordinate value and by time (calendar months given by the recipe),
    // in the default gdal format with the CRS from the recipe.
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z500", "dims": ["y", "x"]}]),
        json!([{"name": "ERA-Interim", "variable_names": ["z500"], "download_url": url(&file),
                "processing": {"variable": "z", "crs": "EPSG:4326", "resampling": "nearest",
                               "coordinate_units": {"month": "months since 1978-12-01"},
                               "select": {"level": 500, "month": "1979-07"}}}]),
    );
    let (cube, _) = build(tmp.path(), &r);
    let (_, shape, attrs) = read(&cube, "z500");
    assert_eq!(shape, [60, 60]);
    assert!(
        processing(&attrs).contains("slice month 7, level 500"),
        "{attrs:?}"
    );
    check_with_python(&Truth {
        cube: &cube,
        var: "z500",
        cube_index: "",
        nc: &file,
        nc_var: "z",
        nc_index: "1, 1",
        method: "nearest",
        places: ERA_PLACES,
    });

    // The time axis from the source's month, the level as an axis of the cube: every
    // slice equals the source's, bilinear by hand.
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z", "dims": ["time", "level", "y", "x"]}]),
        era(
            json!({"format": "latlon-grid", "variable": "z", "time_dimension": "month",
                   "coordinate_units": {"month": "months since 1978-12-01"}}),
        ),
    );
    let (cube, _) = build(tmp.path(), &r);
    let (_, shape, _) = read(&cube, "z");
    assert_eq!(shape, [2, 3, 60, 60]);
    let (levels, _, level_attrs) = read(&cube, "level");
    assert_eq!(levels, [200.0, 500.0, 850.0]);
    assert_eq!(level_attrs["units"], "millibars");
    let (times, _, _) = read(&cube, "time");
    let r = cryocube_cube::CubeReader::open(&cube).unwrap();
    let units = r.array("time").unwrap().attrs["units"]
        .as_str()
        .unwrap()
        .to_string();
    let decoded = cryocube_cube::cf::decode_time(&times, &units).unwrap();
    let text_times: Vec<String> = decoded
        .into_iter()
        .map(cryocube_cube::cf::format_utc_us)
        .collect();
    assert_eq!(text_times, ["1979-01-01T00:00:00Z", "1979-07-01T00:00:00Z"]);
    for (t, l) in [(0, 0), (1, 1), (1, 2)] {
        check_with_python(&Truth {
            cube: &cube,
            var: "z",
            cube_index: &format!(".isel(time={t}, level={l})"),
            nc: &file,
            nc_var: "z",
            nc_index: &format!("{t}, {l}"),
            method: "bilinear",
            places: ERA_PLACES,
        });
    }
    // At 250 m the positions in the 1° source come from the lattice (within 1e-4 pixel):
    // still the source's values interpolated by hand.
    let r = recipe(
        tmp.path(),
        [-1600000.0, 400000.0, -1550000.0, 450000.0],
        250.0,
        json!([{"name": "z500", "dims": ["y", "x"]}]),
        json!([{"name": "ERA-Interim", "variable_names": ["z500"], "download_url": url(&file),
                "processing": {"format": "latlon-grid", "variable": "z",
                               "select": {"level": 500, "month": 7}}}]),
    );
    let (fine, _) = build(tmp.path(), &r);
    let (_, _, attrs) = read(&fine, "z500");
    assert!(processing(&attrs).contains("16-cell lattice"), "{attrs:?}");
    check_with_python(&Truth {
        cube: &fine,
        var: "z500",
        cube_index: "",
        nc: &file,
        nc_var: "z",
        nc_index: "1, 1",
        method: "bilinear",
        places: "[]",
    });

    // The README's recipe: both from one source, the time dimension selected for the map.
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z", "dims": ["time", "level", "y", "x"]},
               {"name": "z500", "dims": ["y", "x"]}]),
        json!([{"name": "ERA-Interim", "download_url": url(&file),
                "processing": {"format": "latlon-grid", "variable": "z", "time_dimension": "month",
                               "coordinate_units": {"month": "months since 1978-12-01"},
                               "outputs": [{"name": "z"},
                                           {"name": "z500", "select": {"level": 500, "month": "1979-07"}}]}}]),
    );
    let (both, _) = build(tmp.path(), &r);
    let (z, _, _) = read(&both, "z");
    let (z500, _, _) = read(&both, "z500");
    // time 1 (July), level 1 (500) of z: the fifth of six 60 x 60 slices.
    let july_500 = &z[4 * 3600..5 * 3600];
    assert!(z500.iter().zip(july_500).all(|(a, b)| a == b));
    assert!(z500.iter().all(|v| v.is_finite()));
    // `info` lists an irregular axis instead of printing a step.
    let o = cryocube(&["info", p(&cube)]);
    let t = text(&o);
    assert!(t.contains("irregular: 200, 500, 850"), "{t}");
    assert!(!t.contains("200 .. 850 millibars, step"), "{t}");
}

#[test]
fn a_float32_spaced_global_grid_is_wrapped() {
    // SST.nc: 0..360 at 0.166666671378351° (360/dx = 2159.99994), dims named x/y.
    let tmp = tempfile::tempdir().unwrap();
    let file = extra("latlon_netcdf/SST.nc");
    let r = recipe(
        tmp.path(),
        [-4000000.0, -4000000.0, 4000000.0, 4000000.0],
        50000.0,
        json!([{"name": "sst", "dims": ["y", "x"]}]),
        json!([{"name": "SST", "variable_names": ["sst"], "download_url": url(&file),
                "processing": {"format": "latlon-grid", "resampling": "bilinear"}}]),
    );
    let (cube, t) = build(tmp.path(), &r);
    assert!(t.contains("taken as 360/2160"), "{t}");
    let (_, _, attrs) = read(&cube, "sst");
    assert!(
        processing(&attrs).contains("across the ±180° seam"),
        "{attrs:?}"
    );
    let out = check_with_python(&Truth {
        cube: &cube,
        var: "sst",
        cube_index: "",
        nc: &file,
        nc_var: "z",
        nc_index: ":, :",
        method: "bilinear",
        places: "[(-0.3, -60), (0.3, -60), (179.7, -65), (-179.7, -65)]",
    });
    eprintln!("{out}");
}

#[test]
fn vector_features_filtered_with_where() {
    // MEaSUREs ice shelves: the West ones and the East ones are disjoint and together make
    // the West-or-East mask; the processing record counts the features kept.
    let tmp = tempfile::tempdir().unwrap();
    let shp = extra("vector/iceshelves/IceShelf_Antarctica_v02.shp");
    let shelves = |name: &str, filter: &str| {
        json!({"name": name, "variable_names": [name], "download_url": url(&shp),
               "processing": {"where": filter, "rasterize": {"background": 0}}})
    };
    let r = recipe(
        tmp.path(),
        [-3000000.0, -3000000.0, 3000000.0, 3000000.0],
        20000.0,
        json!([{"name": "west", "dims": ["y", "x"]}, {"name": "east", "dims": ["y", "x"]},
               {"name": "both", "dims": ["y", "x"]}]),
        json!([
            shelves("west", "Regions = 'West'"),
            shelves("east", "Regions = 'East'"),
            shelves("both", "Regions IN ('West', 'East')")
        ]),
    );
    let (cube, _) = build(tmp.path(), &r);
    let (west, _, attrs) = read(&cube, "west");
    assert!(
        processing(&attrs).contains("38 of 181 features kept"),
        "{attrs:?}"
    );
    let (east, _, _) = read(&cube, "east");
    let (both, _, _) = read(&cube, "both");
    let count = |v: &[f64]| v.iter().filter(|x| **x == 1.0).count();
    assert!(count(&west) > 100 && count(&east) > 100);
    for k in 0..both.len() {
        assert!(!(west[k] == 1.0 && east[k] == 1.0), "cell {k} in both");
        assert_eq!(both[k], west[k].max(east[k]), "cell {k}");
    }
    // A filter GDAL cannot read is an error naming it.
    let r = recipe(
        tmp.path(),
        [-3000000.0, -3000000.0, 3000000.0, 3000000.0],
        20000.0,
        json!([{"name": "west", "dims": ["y", "x"]}]),
        json!([shelves("west", "Regionz = 'West'")]),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &[
            "IceShelf_Antarctica_v02.shp",
            "processing.where \"Regionz = 'West'\"",
        ],
    );
}

#[test]
fn recipes_that_cannot_give_a_whole_cube_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let era = extra("latlon_netcdf/eraint_uvz.nc");
    let bbox = [-3000000.0, -3000000.0, 3000000.0, 3000000.0];
    // Two outputs of one source with one name.
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "wind", "dims": ["y", "x"]}]),
        json!([{"name": "ERA", "download_url": url(&era),
                "processing": {"crs": "EPSG:4326", "select": {"level": 500, "month": 1},
                               "outputs": [{"name": "wind", "variable": "u"},
                                           {"name": "wind", "variable": "v"}]}}]),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &[
            "$.properties.sources[0].processing.outputs[1].name",
            "\"wind\"",
        ],
    );
    // Every variable skipped: nothing to write is an error, not an empty cube.
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z", "dims": ["y", "x"]}]),
        json!([{"name": "ERA", "variable_names": ["zz"], "download_url": url(&era)}]),
    );
    assert_build_fails(tmp.path(), &r, &["no variable can be built", "skipped: z"]);
    // Dimensions in an order the build cannot make.
    let r = recipe(
        tmp.path(),
        bbox,
        100000.0,
        json!([{"name": "z", "dims": ["x", "y"]}]),
        json!([{"name": "ERA", "variable_names": ["z"], "download_url": url(&era)}]),
    );
    assert_build_fails(
        tmp.path(),
        &r,
        &[
            "$.properties.variables[0].dims",
            "must end with \"y\", \"x\"",
        ],
    );
}

#[test]
fn values_do_not_depend_on_the_chunking() {
    // The in-memory resampler on each kind of map (same CRS, polar stereographic to lon/lat
    // through the latitude table, PROJ for EPSG:3412) with both kernels: any --chunk gives
    // the same values, bit for bit.
    let tmp = tempfile::tempdir().unwrap();
    let polar = shared().join("data/polar");
    let src = |name: &str, path: PathBuf, processing: Value| {
        json!({"name": name, "variable_names": [name], "download_url": url(&path),
               "processing": processing})
    };
    let sources = json!([
        src(
            "gravity",
            polar.join("geotiff/ant4d_fa.tif"),
            json!({"nodata": -32767})
        ),
        src(
            "gravity_near",
            polar.join("geotiff/ant4d_fa.tif"),
            json!({"nodata": -32767, "resampling": "nearest"})
        ),
        src(
            "emag2",
            polar.join("gmt_netcdf/EMAG2_V2_1x1.grd"),
            json!({"format": "latlon-grid", "valid": {"gt": -90000}})
        ),
        src(
            "sea_ice_3412",
            extra("geotiff/nt_20201024_f18_nrt_s.tif"),
            json!({})
        ),
    ]);
    let variables = json!([
        {"name": "gravity", "dims": ["y", "x"]}, {"name": "gravity_near", "dims": ["y", "x"]},
        {"name": "emag2", "dims": ["y", "x"]}, {"name": "sea_ice_3412", "dims": ["y", "x"]}
    ]);
    let r = recipe(
        tmp.path(),
        [-2500000.0, -2500000.0, 2500000.0, 2500000.0],
        25000.0,
        variables,
        sources,
    );
    let mut cubes = Vec::new();
    for chunk in ["16", "37", "200"] {
        let out = tmp.path().join(format!("c{chunk}.zarr"));
        let o = cryocube(&[
            "build",
            p(&r),
            "-o",
            p(&out),
            "--sources",
            p(&tmp.path().join("sources")),
            "--chunk",
            chunk,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        cubes.push(out);
    }
    for var in ["gravity", "gravity_near", "emag2", "sea_ice_3412"] {
        let (first, _, attrs) = read(&cubes[0], var);
        let n = first.iter().filter(|v| v.is_finite()).count();
        assert!(n > 1000, "{var}: {n} cells with data");
        for other in &cubes[1..] {
            let (values, _, _) = read(other, var);
            let same = first
                .iter()
                .zip(&values)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            assert!(same, "{var} differs between chunkings");
        }
        eprintln!("{var}: {n} cells, {}", processing(&attrs));
    }
}

#[test]
fn outlines_in_hdf5_groups_rasterise_like_the_shapefile() {
    // SiegfriedFricker2018-outlines.h5: a group per lake with x, y (EPSG:3031), lon, lat; the
    // same 131 outlines as the shapefile, which GDAL reads (OGR), ours read from the groups.
    let tmp = tempfile::tempdir().unwrap();
    let h5 = extra("vector/lakes/SiegfriedFricker2018-outlines.h5");
    let shp = shared().join("data/polar/vector/subglacial_lakes/SiegfriedFricker2018_outlines.shp");
    let r = recipe(
        tmp.path(),
        [-1800000.0, -700000.0, -1200000.0, -100000.0],
        1000.0,
        json!([{"name": "from_xy", "dims": ["y", "x"]}, {"name": "from_lonlat", "dims": ["y", "x"]},
               {"name": "from_shp", "dims": ["y", "x"]}, {"name": "thwaites_124", "dims": ["y", "x"]}]),
        json!([
            {"name": "xy", "variable_names": ["from_xy"], "download_url": url(&h5),
             "processing": {"format": "hdf5-outlines", "coordinates": ["x", "y"], "crs": "EPSG:3031",
                            "rasterize": {"background": 0}}},
            {"name": "lonlat", "variable_names": ["from_lonlat"], "download_url": url(&h5),
             "processing": {"format": "hdf5-outlines", "rasterize": {"background": 0}}},
            {"name": "shp", "variable_names": ["from_shp"], "download_url": url(&shp),
             "processing": {"rasterize": {"background": 0}}},
            {"name": "one lake", "variable_names": ["thwaites_124"], "download_url": url(&h5),
             "processing": {"format": "hdf5-outlines", "where": "name = 'Thw_124'",
                            "rasterize": {"background": 0}}}
        ]),
    );
    let (cube, _) = build(tmp.path(), &r);
    let (xy, _, attrs) = read(&cube, "from_xy");
    assert!(
        processing(&attrs).contains("131 outlines from its groups (x, y; EPSG:3031)"),
        "{attrs:?}"
    );
    let (shp_mask, _, _) = read(&cube, "from_shp");
    let (lonlat, _, _) = read(&cube, "from_lonlat");
    let inside = xy.iter().filter(|v| **v == 1.0).count();
    assert!(inside > 500, "{inside} cells inside lakes");
    assert_eq!(xy, shp_mask, "the groups' x/y are the shapefile's vertices");
    // lon/lat vertices reprojected: the same cells but for centres within metres of an edge.
    let differ = xy.iter().zip(&lonlat).filter(|(a, b)| a != b).count();
    assert!(differ * 1000 <= inside, "{differ} of {inside} cells differ");
    // One lake by name: a subset of the mask.
    let (one, _, attrs) = read(&cube, "thwaites_124");
    assert!(
        processing(&attrs).contains("1 of 131 features kept"),
        "{attrs:?}"
    );
    let n = one.iter().filter(|v| **v == 1.0).count();
    assert!(n > 50 && n < inside, "{n}");
    assert!(one.iter().zip(&xy).all(|(a, b)| *a <= *b));
    // Datasets the groups do not have, and x/y without a CRS: errors naming the file.
    for (processing, expect) in [
        (
            json!({"format": "hdf5-outlines", "coordinates": ["east", "north"], "crs": "EPSG:3031"}),
            "no group holds both \"east\" and \"north\"",
        ),
        (
            json!({"format": "hdf5-outlines", "coordinates": ["x", "y"]}),
            "say their CRS with processing.crs",
        ),
    ] {
        let r = recipe(
            tmp.path(),
            [-1800000.0, -700000.0, -1200000.0, -100000.0],
            1000.0,
            json!([{"name": "lakes", "dims": ["y", "x"]}]),
            json!([{"name": "h5", "variable_names": ["lakes"], "download_url": url(&h5),
                    "processing": processing}]),
        );
        assert_build_fails(
            tmp.path(),
            &r,
            &["SiegfriedFricker2018-outlines.h5", expect],
        );
    }
}
