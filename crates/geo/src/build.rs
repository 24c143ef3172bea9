//! `cryocube build`: recipe -> fetch -> read -> warp -> one CF cube, chunk by chunk.
//!
//! For every static (y, x) variable of the recipe: its source is fetched if missing (into
//! `--sources`), opened (GDAL, or the old GMT decoder), its no-data and valid range applied
//! before resampling (so a sentinel is never interpolated as data), and warped once onto each
//! output chunk of the target grid. Chunks are computed in parallel and written as they are
//! done; memory is one chunk per worker plus the sources that must be masked or decoded first.
//! The cube follows CONVENTIONS.md: x/y cell centres (y descending), a `crs` variable with the
//! CF grid mapping and the WKT, `grid_mapping` + `coordinates` on every variable, provenance.
//!
//! Not yet: time-stacked variables, rasterised vector sources, lat/lon cuts (warned and
//! skipped, never silently wrong).

use std::path::{Path, PathBuf};

use gdal::raster::Buffer;
use gdal::spatial_ref::{CoordTransform, SpatialRef};
use gdal::{Dataset, DriverManager};
use rayon::prelude::*;
use serde_json::json;

use cryocube_cube::cf::{attrs, now_iso};
use cryocube_cube::{ArraySpec, Attrs, CubeWriter, DType, WriteOptions, ZarrFormat};

use crate::fetch::{fetch_source, FetchOptions};
use crate::grid::TargetGrid;
use crate::read::{gmt, Raster};
use crate::recipe::{FormatHint, Recipe, Resampling, ValidRange};
use crate::warp::{warp_window, WarpSpec};
use crate::GeoError;

/// What `build` is asked to do.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub output: PathBuf,
    /// Where sources are (and are fetched to when missing).
    pub sources: PathBuf,
    /// Cells per chunk side.
    pub chunk: usize,
    /// Another cell size than the recipe's (same extent).
    pub res: Option<f64>,
    pub overwrite: bool,
}

/// What a build did.
#[derive(Clone, Debug)]
pub struct BuildSummary {
    pub variables: Vec<String>,
    pub skipped: Vec<String>,
    pub nx: usize,
    pub ny: usize,
    pub warnings: Vec<String>,
}

/// One output variable, ready to warp.
struct Layer {
    name: String,
    /// GDAL path of what is warped (a file, a netCDF subdataset or a /vsimem/ copy).
    path: String,
    spec: WarpSpec,
    attrs: Attrs,
}

fn err(path: &Path, message: String) -> GeoError {
    GeoError::Read {
        path: path.to_path_buf(),
        message,
    }
}

/// Builds the cube.
pub fn build(
    recipe: &Recipe,
    opts: &BuildOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BuildSummary, GeoError> {
    let mut grid = recipe.grid();
    if let Some(r) = opts.res {
        grid = grid
            .with_resolution(r)
            .map_err(|(at, m)| GeoError::Recipe {
                path: recipe.path.clone(),
                json_path: at,
                message: format!("--res {r}: {m}"),
            })?;
    }
    let mut warnings = recipe.warnings.clone();
    let mut skipped = Vec::new();
    let mut layers = Vec::new();
    let outputs = recipe.outputs();
    let props = recipe.properties();
    let base = recipe.path.parent().unwrap_or(Path::new("."));
    let mut vsimem = Vec::new();
    for v in &props.variables {
        if v.dims.iter().any(|d| d == "time") {
            skipped.push(v.name.clone());
            warnings.push(format!(
                "{}: time-stacked variables are not built yet; skipped",
                v.name
            ));
            continue;
        }
        let Some((si, from, _)) = outputs.iter().find(|(_, _, n)| *n == v.name) else {
            skipped.push(v.name.clone());
            warnings.push(format!("{}: no source gives it; skipped", v.name));
            continue;
        };
        let source = &props.sources[*si];
        let proc = source.processing.clone().unwrap_or_default();
        if proc.rasterize.is_some() || proc.latitude.is_some() {
            skipped.push(v.name.clone());
            warnings.push(format!(
                "{}: rasterisation and latitude cuts are not built yet; skipped",
                v.name
            ));
            continue;
        }
        let fetched = fetch_source(
            source,
            base,
            &FetchOptions::new(opts.sources.clone()),
            &|_, _, _| {},
        )?;
        let file = pick_file(&fetched.file, &fetched.extracted, &proc.files)?;
        let crs = proc.crs.clone().or_else(|| source.source_crs.clone());
        let format = proc.format.unwrap_or(if gmt::is_gmt_grid(&file) {
            FormatHint::GmtGrid
        } else {
            FormatHint::Gdal
        });
        let mut steps = vec![format!("read {} ({:?})", file_name(&file), format)];
        let resampling = proc.resampling.unwrap_or(Resampling::Bilinear);
        let (path, spec) = match format {
            FormatHint::GmtGrid => {
                let mut r = gmt::read(&file)?;
                let crs = crs.clone().ok_or_else(|| {
                    err(
                        &file,
                        "an old GMT grid carries no CRS: set processing.crs or source_crs".into(),
                    )
                })?;
                mask(&mut r.values, proc.nodata, proc.valid.as_ref(), &mut steps);
                let mem = format!("/vsimem/cryocube/{}.tif", v.name);
                write_vsimem(&mem, &r, &crs, &file)?;
                vsimem.push(mem.clone());
                steps.push(format!("CRS {crs}"));
                (
                    mem,
                    WarpSpec {
                        resampling,
                        src_nodata: None,
                        src_crs: None,
                    },
                )
            }
            FormatHint::Gdal => {
                let mut path = file.display().to_string();
                if let Some(var) = &proc.variable {
                    path = format!("NETCDF:\"{}\":{var}", file.display());
                    steps.push(format!("variable {var}"));
                }
                if proc.valid.is_some() {
                    // The range must apply before resampling: mask a copy in memory.
                    let (mut r, wkt) = read_gdal(Path::new(&path), crs.as_deref())?;
                    mask(&mut r.values, proc.nodata, proc.valid.as_ref(), &mut steps);
                    let mem = format!("/vsimem/cryocube/{}.tif", v.name);
                    write_vsimem(&mem, &r, &wkt, &file)?;
                    vsimem.push(mem.clone());
                    (
                        mem,
                        WarpSpec {
                            resampling,
                            src_nodata: None,
                            src_crs: None,
                        },
                    )
                } else {
                    if let Some(n) = proc.nodata {
                        steps.push(format!("no data {n}"));
                    }
                    (
                        path,
                        WarpSpec {
                            resampling,
                            src_nodata: proc.nodata,
                            src_crs: crs.clone(),
                        },
                    )
                }
            }
            FormatHint::LatlonGrid => {
                skipped.push(v.name.clone());
                warnings.push(format!(
                    "{}: lat/lon grids are not built yet; skipped",
                    v.name
                ));
                continue;
            }
        };
        steps.push(format!(
            "resampled once ({}) onto the target grid",
            resampling.gdal_name()
        ));
        let mut a = attrs([
            (
                "long_name",
                json!(v.long_name.clone().unwrap_or_else(|| v.name.clone())),
            ),
            ("grid_mapping", json!("crs")),
            ("coordinates", json!("crs")),
            ("source", json!(source.download_url)),
            ("source_name", json!(from)),
            ("processing", json!(steps)),
        ]);
        let units = proc
            .outputs
            .iter()
            .find(|o| o.name == v.name)
            .and_then(|o| o.units.clone())
            .or_else(|| v.units.clone());
        if let Some(u) = units {
            a.insert("units".into(), json!(u));
        }
        layers.push(Layer {
            name: v.name.clone(),
            path,
            spec,
            attrs: a,
        });
    }
    let result = write_cube(recipe, opts, &grid, &layers, &warnings, progress);
    for m in &vsimem {
        if let Ok(c) = std::ffi::CString::new(m.as_str()) {
            // SAFETY: unlinks an in-memory file we created; the path is NUL-terminated.
            unsafe {
                gdal_sys::VSIUnlink(c.as_ptr());
            }
        }
    }
    result?;
    Ok(BuildSummary {
        variables: layers.iter().map(|l| l.name.clone()).collect(),
        skipped,
        nx: grid.nx,
        ny: grid.ny,
        warnings,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The file of a fetched source to read.
fn pick_file(
    file: &Path,
    extracted: &[PathBuf],
    wanted: &[crate::recipe::InputFile],
) -> Result<PathBuf, GeoError> {
    match (wanted.first(), extracted.is_empty()) {
        (Some(w), false) => extracted
            .iter()
            .find(|p| p.to_string_lossy().ends_with(&w.path))
            .cloned()
            .ok_or_else(|| err(file, format!("the archive has no {:?}", w.path))),
        (None, false) => Err(err(
            file,
            "is an archive: say which file to read with processing.files".into(),
        )),
        _ => Ok(file.to_path_buf()),
    }
}

fn mask(
    values: &mut [f32],
    nodata: Option<f64>,
    valid: Option<&ValidRange>,
    steps: &mut Vec<String>,
) {
    for v in values.iter_mut() {
        if nodata.is_some_and(|n| *v as f64 == n) || valid.is_some_and(|r| !r.contains(*v as f64)) {
            *v = f32::NAN;
        }
    }
    if let Some(n) = nodata {
        steps.push(format!("no data {n}"));
    }
    if let Some(r) = valid {
        steps.push(format!(
            "valid range {}",
            serde_json::to_string(r).unwrap_or_default()
        ));
    }
}

/// Band 1 of a GDAL raster as a north-up [`Raster`] and its CRS (WKT).
fn read_gdal(path: &Path, crs: Option<&str>) -> Result<(Raster, String), GeoError> {
    let ds = Dataset::open(path).map_err(|e| err(path, format!("GDAL cannot open it: {e}")))?;
    let gt = ds
        .geo_transform()
        .map_err(|e| err(path, format!("no geotransform: {e}")))?;
    if gt[2] != 0.0 || gt[4] != 0.0 || gt[5] >= 0.0 {
        return Err(err(path, "is not a north-up grid".into()));
    }
    let wkt = match (ds.projection(), crs) {
        (p, _) if !p.trim().is_empty() => p,
        (_, Some(c)) => SpatialRef::from_definition(c)
            .and_then(|s| s.to_wkt())
            .map_err(|e| err(path, format!("CRS {c:?}: {e}")))?,
        _ => {
            return Err(err(
                path,
                "declares no CRS and the recipe gives none".into(),
            ))
        }
    };
    let (nx, ny) = ds.raster_size();
    let band = ds.rasterband(1).map_err(|e| err(path, e.to_string()))?;
    let nodata = band.no_data_value();
    let mut values = band
        .read_as::<f32>((0, 0), (nx, ny), (nx, ny), None)
        .map_err(|e| err(path, e.to_string()))?
        .into_shape_and_vec()
        .1;
    let (scale, offset) = (band.scale().unwrap_or(1.0), band.offset().unwrap_or(0.0));
    for v in values.iter_mut() {
        if nodata.is_some_and(|n| *v as f64 == n) {
            *v = f32::NAN;
        } else if scale != 1.0 || offset != 0.0 {
            *v = (*v as f64 * scale + offset) as f32;
        }
    }
    Ok((
        Raster {
            nx,
            ny,
            x0: gt[0] + gt[1] / 2.0,
            y0: gt[3] + gt[5] / 2.0,
            dx: gt[1],
            dy: -gt[5],
            values,
        },
        wkt,
    ))
}

/// Writes a raster as an in-memory GeoTIFF that every worker can open.
fn write_vsimem(path: &str, r: &Raster, crs: &str, origin: &Path) -> Result<(), GeoError> {
    let e = |m: String| err(origin, m);
    let wkt = if crs.contains('[') {
        crs.to_string()
    } else {
        SpatialRef::from_definition(crs)
            .and_then(|s| s.to_wkt())
            .map_err(|x| e(format!("CRS {crs:?}: {x}")))?
    };
    let mut ds = DriverManager::get_driver_by_name("GTiff")
        .and_then(|d| d.create_with_band_type::<f32, _>(path, r.nx, r.ny, 1))
        .map_err(|x| e(format!("in-memory copy: {x}")))?;
    ds.set_geo_transform(&r.geotransform())
        .and_then(|_| ds.set_projection(&wkt))
        .map_err(|x| e(format!("in-memory copy: {x}")))?;
    let mut band = ds.rasterband(1).map_err(|x| e(x.to_string()))?;
    band.set_no_data_value(Some(f64::NAN))
        .map_err(|x| e(x.to_string()))?;
    let mut buf = Buffer::new((r.nx, r.ny), r.values.clone());
    band.write((0, 0), (r.nx, r.ny), &mut buf)
        .map_err(|x| e(x.to_string()))?;
    Ok(())
}

/// CF grid-mapping attributes of `crs` (with `crs_wkt` and `spatial_ref` for GDAL/rioxarray).
pub fn crs_attrs(crs: &str, grid: &TargetGrid) -> Result<Attrs, String> {
    let srs = SpatialRef::from_definition(crs).map_err(|e| format!("CRS {crs:?}: {e}"))?;
    let wkt = srs.to_wkt().map_err(|e| e.to_string())?;
    let mut a = Attrs::new();
    let projection = srs
        .get_attr_value("PROJECTION", 0)
        .ok()
        .flatten()
        .unwrap_or_default();
    if projection
        .to_ascii_lowercase()
        .contains("polar_stereographic")
    {
        let p = |n: &str| srs.get_proj_param(n).ok().flatten().unwrap_or(0.0);
        let sp = p("latitude_of_origin");
        a.insert("grid_mapping_name".into(), json!("polar_stereographic"));
        a.insert("standard_parallel".into(), json!(sp));
        a.insert(
            "straight_vertical_longitude_from_pole".into(),
            json!(p("central_meridian")),
        );
        a.insert(
            "latitude_of_projection_origin".into(),
            json!(if sp < 0.0 { -90.0 } else { 90.0 }),
        );
        a.insert("false_easting".into(), json!(p("false_easting")));
        a.insert("false_northing".into(), json!(p("false_northing")));
    }
    if let (Ok(major), Ok(minor)) = (srs.semi_major(), srs.semi_minor()) {
        a.insert("semi_major_axis".into(), json!(major));
        if major > minor {
            a.insert("inverse_flattening".into(), json!(major / (major - minor)));
        }
    }
    a.insert("crs_wkt".into(), json!(wkt));
    a.insert("spatial_ref".into(), json!(wkt));
    let gt = grid.geotransform();
    a.insert(
        "GeoTransform".into(),
        json!(gt
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" ")),
    );
    Ok(a)
}

/// Latitude/longitude bounds of the grid (its edges sampled), for ACDD `geospatial_*`.
fn lat_lon_bounds(grid: &TargetGrid) -> Option<[f64; 4]> {
    let src = SpatialRef::from_definition(&grid.crs).ok()?;
    let mut dst = SpatialRef::from_epsg(4326).ok()?;
    dst.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    let t = CoordTransform::new(&src, &dst).ok()?;
    let (w, n) = (grid.x_min, grid.y_max);
    let (e, s) = (
        w + grid.nx as f64 * grid.res_x,
        n - grid.ny as f64 * grid.res_y,
    );
    let k = 64;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..=k {
        let f = i as f64 / k as f64;
        for (x, y) in [
            (w + f * (e - w), n),
            (w + f * (e - w), s),
            (w, s + f * (n - s)),
            (e, s + f * (n - s)),
        ] {
            xs.push(x);
            ys.push(y);
        }
    }
    t.transform_coords(&mut xs, &mut ys, &mut []).ok()?;
    let fold = |v: &[f64], f: fn(f64, f64) -> f64, init: f64| v.iter().copied().fold(init, f);
    Some([
        fold(&ys, f64::min, f64::INFINITY),
        fold(&ys, f64::max, f64::NEG_INFINITY),
        fold(&xs, f64::min, f64::INFINITY),
        fold(&xs, f64::max, f64::NEG_INFINITY),
    ])
}

fn write_cube(
    recipe: &Recipe,
    opts: &BuildOptions,
    grid: &TargetGrid,
    layers: &[Layer],
    warnings: &[String],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), GeoError> {
    let out = &opts.output;
    let chunk = opts.chunk.max(1);
    let mut w = CubeWriter::create(
        out,
        WriteOptions {
            format: ZarrFormat::V2,
            overwrite: opts.overwrite,
        },
    )?;
    let x: Vec<f64> = (0..grid.nx).map(|i| grid.x(i)).collect();
    let y: Vec<f64> = (0..grid.ny).map(|j| grid.y(j)).collect();
    for (name, values) in [("x", &x), ("y", &y)] {
        let axis = name.to_ascii_uppercase();
        w.add_array(ArraySpec::coordinate(
            name,
            name,
            values.len() as u64,
            DType::F64,
            attrs([
                (
                    "standard_name",
                    json!(format!("projection_{name}_coordinate")),
                ),
                (
                    "long_name",
                    json!(format!("{name} coordinate of projection (cell centre)")),
                ),
                ("units", json!("m")),
                ("axis", json!(axis)),
            ]),
        ))?;
        w.write_all(name, values)?;
    }
    let crs = crs_attrs(&grid.crs, grid).map_err(|m| GeoError::Recipe {
        path: recipe.path.clone(),
        json_path: "$.properties.spatial_ref".into(),
        message: m,
    })?;
    let crs_wkt = crs["crs_wkt"].clone();
    w.add_array(ArraySpec::scalar("crs", DType::I32, crs))?;
    w.write_all("crs", &[0i32])?;
    // GDAL before 3.9 does not read CF grid mappings from Zarr, only its own `_CRS`.
    let gdal_crs = json!({"wkt": crs_wkt});
    for l in layers {
        let mut attrs = l.attrs.clone();
        attrs.insert("_CRS".into(), gdal_crs.clone());
        w.add_array(ArraySpec {
            name: l.name.clone(),
            dims: vec!["y".into(), "x".into()],
            shape: vec![grid.ny as u64, grid.nx as u64],
            chunks: vec![chunk as u64, chunk as u64],
            shard: None,
            dtype: DType::F32,
            attrs,
        })?;
    }
    let (cy, cx) = (grid.ny.div_ceil(chunk), grid.nx.div_ceil(chunk));
    let cells: Vec<(usize, usize)> = (0..cy).flat_map(|j| (0..cx).map(move |i| (j, i))).collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let with_data: Vec<std::sync::atomic::AtomicU64> = layers
        .iter()
        .map(|_| std::sync::atomic::AtomicU64::new(0))
        .collect();
    let total = cells.len() * layers.len().max(1);
    progress(0, total);
    cells
        .par_iter()
        .try_for_each(|&(j, i)| -> Result<(), GeoError> {
            let rows = j * chunk..((j + 1) * chunk).min(grid.ny);
            let cols = i * chunk..((i + 1) * chunk).min(grid.nx);
            let (h, wdt) = (rows.len(), cols.len());
            let mut full = vec![f32::NAN; chunk * chunk];
            for l in layers {
                let part = warp_window(
                    Path::new(&l.path),
                    &l.spec,
                    grid,
                    cols.clone(),
                    rows.clone(),
                )?;
                full.fill(f32::NAN);
                for r in 0..h {
                    full[r * chunk..r * chunk + wdt].copy_from_slice(&part[r * wdt..(r + 1) * wdt]);
                }
                w.write_chunk(&l.name, &[j as u64, i as u64], &full)?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(n, total);
            }
            Ok(())
        })?;
    // What share of the grid each variable covers, from the data written.
    let mut warnings = warnings.to_vec();
    let cells = (grid.nx * grid.ny) as f64;
    for (l, n) in layers.iter().zip(&with_data) {
        let n = n.load(std::sync::atomic::Ordering::Relaxed);
        let mut a = l.attrs.clone();
        a.insert("_CRS".into(), gdal_crs.clone());
        a.insert("valid_fraction".into(), json!(n as f64 / cells));
        w.set_attrs(&l.name, a)?;
        if n == 0 {
            let msg = format!(
                "{}: no cell of the grid has data (does the bbox lie outside its source?)",
                l.name
            );
            log::warn!("{msg}");
            warnings.push(msg);
        }
    }
    let p = recipe.properties();
    let mut root = attrs([
        ("Conventions", json!("CF-1.10, ACDD-1.3")),
        (
            "title",
            json!(p.title.clone().unwrap_or_else(|| "Polar data cube".into())),
        ),
        (
            "summary",
            json!(p.description.clone().unwrap_or_else(|| format!(
                "{} variables on a {} x {} grid of {} m cells ({})",
                layers.len(),
                grid.nx,
                grid.ny,
                grid.res_x,
                grid.crs
            ))),
        ),
        (
            "history",
            json!(format!(
                "{} cryocube {} build {} -o {}",
                now_iso(),
                env!("CARGO_PKG_VERSION"),
                recipe.path.display(),
                out.display()
            )),
        ),
        ("date_created", json!(now_iso())),
        (
            "processing_software",
            json!(format!("cryocube {}", env!("CARGO_PKG_VERSION"))),
        ),
        ("geospatial_bounds_crs", json!(grid.crs)),
        ("geospatial_x_min", json!(grid.x_min)),
        (
            "geospatial_x_max",
            json!(grid.x_min + grid.nx as f64 * grid.res_x),
        ),
        (
            "geospatial_y_min",
            json!(grid.y_max - grid.ny as f64 * grid.res_y),
        ),
        ("geospatial_y_max", json!(grid.y_max)),
        (
            "geospatial_x_resolution",
            json!(format!("{} m", grid.res_x)),
        ),
        (
            "geospatial_y_resolution",
            json!(format!("{} m", grid.res_y)),
        ),
        ("warnings", json!(warnings)),
    ]);
    if let Some([lat0, lat1, lon0, lon1]) = lat_lon_bounds(grid) {
        root.insert("geospatial_lat_min".into(), json!(lat0));
        root.insert("geospatial_lat_max".into(), json!(lat1));
        root.insert("geospatial_lon_min".into(), json!(lon0));
        root.insert("geospatial_lon_max".into(), json!(lon1));
    }
    if let Some(id) = &p.data_id {
        root.insert("id".into(), json!(id));
    }
    if let Some(l) = &p.license {
        root.insert("license".into(), json!(l));
    }
    // The recipe's own global metadata, except what we compute from the data.
    for (k, v) in &p.metadata {
        if !k.starts_with("geospatial_")
            && !k.starts_with("temporal_")
            && !k.starts_with("time_coverage")
            && k != "date_modified"
            && k != "Conventions"
        {
            root.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    w.finish(root)?;
    Ok(())
}
