//! A source file made ready to be resampled: decoded, masked, and in a CRS GDAL knows.
//!
//! Resampling reads sources with GDAL, window by window, in parallel. Most files go there as
//! they are. Some need one pass first, done here once per build, so that no window has to
//! repeat it and no sentinel is ever interpolated as data:
//! - old GMT grids (which GDAL reads as one row) are decoded;
//! - values that must change before resampling (no-data sentinels with a valid range, a
//!   latitude cut, scale/offset, a band other than 1) are applied to a copy;
//! - regular lon/lat grids get EPSG:4326 when they declare nothing and longitudes in
//!   -180..180, so one warp takes them straight to the target grid (the seed reprojected,
//!   then interpolated again);
//! - vector files are reprojected once onto the target CRS, so that each window only burns.
//!
//! Copies live in GDAL's in-memory file system (`/vsimem/`), which every worker thread can
//! open; they are removed when the [`Prepared`] input is dropped.

use std::ffi::CString;
use std::ops::Range;
use std::path::{Path, PathBuf};

use gdal::cpl::CslStringList;
use gdal::raster::Buffer;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::LayerAccess;
use gdal::{Dataset, DriverManager, Metadata};

use super::{gmt, Raster};
use crate::grid::TargetGrid;
use crate::rasterize::{rasterize_window, RasterizeSpec};
use crate::recipe::{FormatHint, Rasterize, Resampling, ValidRange};
use crate::resample::Resampler;
use crate::warp::{last_gdal_error, warp_window, WarpSpec};
use crate::{gdal_err, read_err as err, GeoError};

/// How to read one file of a source (the recipe's `processing`, output overrides applied).
#[derive(Clone, Debug, Default)]
pub struct ReadSpec {
    /// The reader to use (GDAL's own detection when `None`).
    pub format: Option<FormatHint>,
    /// netCDF variable (GDAL subdataset) or, for vector files, the layer.
    pub variable: Option<String>,
    /// 1-based raster band.
    pub band: Option<u32>,
    /// CRS of a file that declares none.
    pub crs: Option<String>,
    /// The no-data value, when the file declares none or a wrong one.
    pub nodata: Option<f64>,
    /// Values outside this range are no data.
    pub valid: Option<ValidRange>,
    /// Rows outside this latitude range are no data (lon/lat grids).
    pub latitude: Option<ValidRange>,
    /// How cells are resampled onto the grid.
    pub resampling: Option<Resampling>,
    /// How vector features become cells.
    pub rasterize: Option<Rasterize>,
    /// Let the warper read overviews (see [`WarpSpec::overviews`]).
    pub overviews: bool,
    /// OGR SQL attribute filter of a vector source.
    pub where_: Option<String>,
    /// Datasets of x and y in each group of an `hdf5-outlines` file.
    pub coordinates: Option<[String; 2]>,
    /// Cells this source may hold in memory (at most [`IN_MEMORY_CELLS`]): a build shares
    /// its memory budget out among its sources; beyond it GDAL's warper reads per window.
    pub memory_cells: usize,
}

/// Sources up to this many cells are read into memory and resampled by [`Resampler`];
/// larger ones are warped by GDAL window by window.
pub const IN_MEMORY_CELLS: usize = 256 << 20;

/// What the resampling step reads.
#[derive(Debug)]
pub enum Input {
    /// A raster in memory, resampled in Rust (nearest, bilinear).
    Memory {
        /// The source file.
        file: PathBuf,
        /// Its values and the map onto the grid.
        resampler: Resampler,
    },
    /// A raster GDAL warps (a file, a netCDF subdataset or an in-memory copy).
    Raster {
        /// What GDAL opens.
        path: String,
        /// How it is warped.
        spec: WarpSpec,
    },
    /// Polygons (already in the target CRS) burnt into cells.
    Vector {
        /// What GDAL opens.
        path: String,
        /// The layer of polygons.
        layer: String,
        /// How they become cells.
        spec: RasterizeSpec,
    },
}

/// A source file ready to be resampled, with the steps applied for the provenance.
#[derive(Debug)]
pub struct Prepared {
    /// What the resampling step reads.
    pub input: Input,
    /// What was done to the file, for the provenance.
    pub steps: Vec<String>,
    /// What the user should know (e.g. the file's CRS overridden by the recipe's).
    pub warnings: Vec<String>,
    _copy: Option<MemFile>,
}

impl Prepared {
    /// Cells of the source held in memory.
    pub fn cells_in_memory(&self) -> usize {
        match &self.input {
            Input::Memory { resampler, .. } => resampler.cells(),
            _ => 0,
        }
    }

    /// Values of columns `cols` and rows `rows` of `grid`, row-major, NaN = no data.
    pub fn render(
        &self,
        grid: &TargetGrid,
        cols: Range<usize>,
        rows: Range<usize>,
    ) -> Result<Vec<f32>, GeoError> {
        match &self.input {
            Input::Memory { file, resampler } => resampler
                .render(grid, cols, rows)
                .map_err(|m| err(file, format!("resampling: {m}"))),
            Input::Raster { path, spec } => warp_window(Path::new(path), spec, grid, cols, rows),
            Input::Vector { path, layer, spec } => {
                rasterize_window(Path::new(path), layer, spec, grid, cols, rows)
            }
        }
    }
}

/// An in-memory GDAL file, unlinked when dropped; with the bytes it was made of, when Rust
/// made them (they outlive the file: the unlink runs before the fields drop).
#[derive(Debug)]
struct MemFile {
    path: String,
    _bytes: Vec<u8>,
}

impl MemFile {
    /// The in-memory file GDAL made at `path` (its bytes are GDAL's).
    fn named(path: String) -> MemFile {
        MemFile {
            path,
            _bytes: Vec::new(),
        }
    }

    /// An in-memory file at `path` over `bytes`. GDAL gets a view, not the bytes: it would free
    /// them with C's `free`, and Rust's allocator is not C's (`gdal::vsi::create_mem_file`
    /// hands them over, which broke once the program got its own allocator).
    fn over(path: String, mut bytes: Vec<u8>, origin: &Path) -> Result<MemFile, GeoError> {
        let c = CString::new(path.as_str()).map_err(|_| err(origin, format!("{path:?}")))?;
        // SAFETY: `bytes` lives in the MemFile until after the file is unlinked (Drop), and a
        // Vec's buffer does not move when the Vec does; GDAL does not take ownership (FALSE).
        let handle = unsafe {
            gdal_sys::VSIFileFromMemBuffer(c.as_ptr(), bytes.as_mut_ptr(), bytes.len() as u64, 0)
        };
        if handle.is_null() {
            return Err(err(
                origin,
                format!(
                    "GDAL cannot make the in-memory file {path}: {}",
                    last_gdal_error()
                ),
            ));
        }
        // SAFETY: a handle GDAL just returned, closed once.
        unsafe {
            gdal_sys::VSIFCloseL(handle);
        }
        Ok(MemFile {
            path,
            _bytes: bytes,
        })
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        if let Ok(c) = CString::new(self.path.as_str()) {
            // SAFETY: unlinks an in-memory file this process created; the path is a C string.
            unsafe {
                gdal_sys::VSIUnlink(c.as_ptr());
            }
        }
    }
}

fn wkt_of(definition: &str, path: &Path) -> Result<String, GeoError> {
    if definition.trim_start().starts_with(['P', 'G', 'C', 'B']) && definition.contains('[') {
        return Ok(definition.to_string());
    }
    SpatialRef::from_definition(definition)
        .and_then(|s| s.to_wkt())
        .map_err(|e| gdal_err(path, format!("CRS {definition:?} is not usable"), e))
}

/// Makes `file` ready to be resampled onto a grid in `target_crs`. `key` names the in-memory
/// copies (unique within the build).
pub fn prepare(
    file: &Path,
    spec: &ReadSpec,
    grid: &TargetGrid,
    key: &str,
) -> Result<Prepared, GeoError> {
    let target_crs = grid.crs.as_str();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !file.is_file() {
        return Err(err(file, "no such file".into()));
    }
    let format = match spec.format {
        Some(f) => f,
        None if gmt::is_gmt_grid(file) => FormatHint::GmtGrid,
        None => FormatHint::Gdal,
    };
    let mut steps = vec![format!("read {name} ({})", format_name(format))];
    let mut warnings = Vec::new();
    let resampling = spec.resampling.unwrap_or(Resampling::Bilinear);
    let mem = format!("/vsimem/cryocube/{key}");
    if format == FormatHint::Hdf5Outlines {
        return prepare_outlines(file, spec, target_crs, &mem, steps);
    }
    let gmt_file = gmt::is_gmt_grid(file);
    let mut gdal_path = file.display().to_string();
    if !gmt_file {
        let ds = Dataset::open(file).map_err(|e| gdal_err(file, "GDAL cannot read it", e))?;
        let subdatasets = subdataset_names(&ds);
        // A netCDF or HDF5 file with several variables opens with no band and, for GDAL's
        // netCDF driver, vector layers too: its variables are subdatasets, not layers.
        let vector = spec.rasterize.is_some()
            || ds.raster_count() == 0 && ds.layer_count() > 0 && subdatasets.is_empty();
        if format == FormatHint::Gdal && vector {
            return prepare_vector(&ds, file, spec, target_crs, &mem, steps);
        }
        if let Some(v) = &spec.variable {
            gdal_path = variable_path(&ds, file, &subdatasets, v)?;
            steps.push(format!("variable {v}"));
        } else if ds.raster_count() == 0 && !subdatasets.is_empty() {
            return Err(err(
                file,
                format!(
                    "holds {} variables ({}): say which with processing.variable",
                    subdatasets.len(),
                    subdatasets
                        .iter()
                        .map(|(v, _)| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let latlon_default = format == FormatHint::LatlonGrid;
    // The CRS as decided for a GDAL raster below (decided once: the provenance says it once).
    let mut decided_crs = None;
    if format == FormatHint::Gdal {
        let ds = Dataset::open(&gdal_path)
            .map_err(|e| gdal_err(file, format!("GDAL cannot read {gdal_path}"), e))?;
        if ds.raster_count() == 0 {
            return Err(err(file, "has no raster band".into()));
        }
        let band = ds.rasterband(1).map_err(|e| gdal_err(file, "", e))?;
        let scaled =
            band.scale().is_some_and(|s| s != 1.0) || band.offset().is_some_and(|o| o != 0.0);
        let gt = geotransform(&ds, file)?;
        let wkt = source_crs(
            file,
            &ds.projection(),
            spec.crs.as_deref(),
            latlon_default,
            &mut steps,
            &mut warnings,
        )?;
        let geographic = SpatialRef::from_wkt(&wkt).is_ok_and(|s| s.is_geographic());
        // A global lon/lat grid, or one east of 180°, is laid out across the ±180° seam
        // first (GDAL would leave the western hemisphere or the seam empty): in the copy.
        let nx = ds.raster_size().0;
        let east = gt[0] + gt[1] * nx as f64;
        let wrap = geographic && (global_columns(nx, gt[1]).is_some() || east > 180.0 + gt[1]);
        // Nearest and bilinear from a north-up raster that fits in memory: read once, here.
        let (nx, ny) = ds.raster_size();
        let in_memory = matches!(resampling, Resampling::Nearest | Resampling::Bilinear)
            && !spec.overviews
            && gt[2] == 0.0
            && gt[4] == 0.0
            && gt[5] < 0.0
            && nx * ny <= spec.memory_cells.min(IN_MEMORY_CELLS);
        let direct = !scaled
            && spec.valid.is_none()
            && spec.latitude.is_none()
            && spec.band.unwrap_or(1) == 1
            && !wrap
            && !in_memory;
        if !direct {
            decided_crs = Some(wkt);
        } else {
            if let Some(n) = spec.nodata {
                steps.push(format!("no data {n}"));
            }
            steps.push(resampled(resampling, spec.overviews));
            return Ok(Prepared {
                input: Input::Raster {
                    path: gdal_path,
                    spec: WarpSpec {
                        resampling,
                        src_nodata: spec.nodata,
                        src_crs: spec.crs.is_some().then_some(wkt),
                        overviews: spec.overviews,
                    },
                },
                steps,
                warnings,
                _copy: None,
            });
        }
    }
    // Decode into memory, change, and warp the copy.
    let (mut raster, wkt) = if gmt_file && format != FormatHint::Gdal {
        if format == FormatHint::GmtGrid && spec.crs.is_none() {
            return Err(err(
                file,
                "an old GMT grid carries no CRS: set processing.crs or source_crs".into(),
            ));
        }
        let r = gmt::read(file)?;
        let wkt = source_crs(
            file,
            "",
            spec.crs.as_deref(),
            latlon_default,
            &mut steps,
            &mut warnings,
        )?;
        (r, wkt)
    } else if format == FormatHint::GmtGrid {
        // Asked for, but not an old GMT grid: gmt::read names what is missing.
        (gmt::read(file)?, String::new())
    } else {
        let (r, declared, notes) = read_gdal(&gdal_path, file, spec.band.unwrap_or(1))?;
        let wkt = match decided_crs {
            Some(wkt) => wkt,
            None => source_crs(
                file,
                &declared,
                spec.crs.as_deref(),
                latlon_default,
                &mut steps,
                &mut warnings,
            )?,
        };
        steps.extend(notes);
        (r, wkt)
    };
    mask(
        &mut raster.values,
        spec.nodata,
        spec.valid.as_ref(),
        &mut steps,
    );
    let srs = SpatialRef::from_wkt(&wkt).map_err(|e| gdal_err(file, "CRS", e))?;
    if srs.is_geographic() {
        if let Some(note) = wrap_longitudes(&mut raster) {
            log::info!("{}: {note}", file.display());
            steps.push(note);
        }
    }
    if let Some(lat) = &spec.latitude {
        cut_latitude(&mut raster, &srs, lat, file)?;
        steps.push(format!(
            "latitude range {}",
            serde_json::to_string(lat).unwrap_or_default()
        ));
    }
    if matches!(resampling, Resampling::Nearest | Resampling::Bilinear)
        && raster.nx * raster.ny <= spec.memory_cells.min(IN_MEMORY_CELLS)
    {
        match Resampler::new(raster.clone(), &wkt, grid, resampling) {
            Ok(resampler) => {
                steps.push(format!(
                    "{} ({})",
                    resampled(resampling, false),
                    resampler.describe()
                ));
                return Ok(Prepared {
                    input: Input::Memory {
                        file: file.to_path_buf(),
                        resampler,
                    },
                    steps,
                    warnings,
                    _copy: None,
                });
            }
            Err(why) => log::debug!("{}: resampled by GDAL: {}", file.display(), why.0),
        }
    }
    let path = format!("{mem}.tif");
    write_geotiff(&path, &raster, &wkt, file)?;
    steps.push(resampled(resampling, false));
    Ok(Prepared {
        input: Input::Raster {
            path: path.clone(),
            spec: WarpSpec {
                resampling,
                src_nodata: None,
                src_crs: None,
                overviews: false,
            },
        },
        steps,
        warnings,
        _copy: Some(MemFile::named(path)),
    })
}

/// Outlines in HDF5 groups -> an in-memory GeoJSON in their CRS -> the vector path.
fn prepare_outlines(
    file: &Path,
    spec: &ReadSpec,
    target_crs: &str,
    mem: &str,
    mut steps: Vec<String>,
) -> Result<Prepared, GeoError> {
    let coords = spec
        .coordinates
        .clone()
        .unwrap_or_else(|| ["lon".to_string(), "lat".to_string()]);
    let lon_lat = coords[0] == "lon" && coords[1] == "lat";
    let crs = match (&spec.crs, lon_lat) {
        (Some(c), _) => c.clone(),
        (None, true) => "EPSG:4326".into(),
        (None, false) => {
            return Err(err(
                file,
                format!(
                    "outlines in {} and {}: say their CRS with processing.crs",
                    coords[0], coords[1]
                ),
            ))
        }
    };
    let epsg: u32 = crs
        .to_ascii_uppercase()
        .strip_prefix("EPSG:")
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| {
            err(
                file,
                format!("HDF5 outlines need processing.crs as an EPSG code, not {crs:?}"),
            )
        })?;
    let outlines = super::outlines::read(file, &coords)?;
    steps.push(format!(
        "{} outlines from its groups ({}, {}; {crs})",
        outlines.len(),
        coords[0],
        coords[1]
    ));
    let path = format!("{mem}-outlines.geojson");
    let _copy = MemFile::over(
        path.clone(),
        super::outlines::geojson(&outlines, epsg).into_bytes(),
        file,
    )?;
    let ds = Dataset::open(&path).map_err(|e| gdal_err(file, "in-memory outlines", e))?;
    let spec = ReadSpec {
        crs: None,
        variable: None,
        rasterize: Some(spec.rasterize.clone().unwrap_or_default()),
        ..spec.clone()
    };
    prepare_vector(&ds, file, &spec, target_crs, mem, steps)
}

/// The variables of a netCDF or HDF5 file as GDAL lists them: (variable name, GDAL path).
fn subdataset_names(ds: &Dataset) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for item in ds.metadata_domain("SUBDATASETS").unwrap_or_default() {
        let Some((key, path)) = item.split_once('=') else {
            continue;
        };
        if !key.ends_with("_NAME") {
            continue;
        }
        // NETCDF:"file":var, HDF5:"file"://group/var
        let var = path
            .rsplit_once("\":")
            .map(|(_, v)| v.trim_start_matches('/').to_string())
            .unwrap_or_else(|| path.to_string());
        out.push((var, path.to_string()));
    }
    out
}

/// GDAL's path of variable `v` of the opened `file` (a subdataset, or the file itself).
pub(crate) fn resolve_variable(ds: &Dataset, file: &Path, v: &str) -> Result<String, GeoError> {
    variable_path(ds, file, &subdataset_names(ds), v)
}

/// GDAL's path of variable `v` of `file`: one of its subdatasets, or the file itself when
/// its only variable is `v`.
fn variable_path(
    ds: &Dataset,
    file: &Path,
    subdatasets: &[(String, String)],
    v: &str,
) -> Result<String, GeoError> {
    let wanted = v.trim_start_matches('/');
    if let Some((_, path)) = subdatasets.iter().find(|(name, _)| name == wanted) {
        return Ok(path.clone());
    }
    if subdatasets.is_empty() && ds.raster_count() > 0 {
        let only = ds
            .rasterband(1)
            .ok()
            .and_then(|b| b.metadata_item("NETCDF_VARNAME", ""));
        return match only {
            Some(name) if name == wanted => Ok(file.display().to_string()),
            Some(name) => Err(err(
                file,
                format!("has no variable {v:?}; its one variable is {name:?}"),
            )),
            None => Err(err(
                file,
                format!(
                    "processing.variable {v:?} names a netCDF/HDF5 variable, but this {} file has none",
                    ds.driver().short_name()
                ),
            )),
        };
    }
    let names: Vec<&str> = subdatasets.iter().map(|(n, _)| n.as_str()).collect();
    Err(err(
        file,
        format!(
            "has no variable {v:?}; its variables are {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    ))
}

/// The geotransform of a raster, or an error saying the file has no georeferencing.
fn geotransform(ds: &Dataset, file: &Path) -> Result<[f64; 6], GeoError> {
    ds.geo_transform().map_err(|e| {
        gdal_err(
            file,
            "has no georeferencing (no geotransform, no x/y coordinates GDAL understands)",
            e,
        )
    })
}

/// The CRS a raster is read in, as WKT: the recipe's (`processing.crs` or `source_crs`)
/// whatever the file declares, since files do declare wrong ones; else the file's; else, for
/// a lon/lat grid, EPSG:4326. The provenance says which; overriding a different declared
/// CRS is also a warning.
fn source_crs(
    file: &Path,
    declared: &str,
    recipe: Option<&str>,
    latlon_default: bool,
    steps: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<String, GeoError> {
    let declared = declared.trim();
    match recipe {
        Some(c) => {
            let wkt = wkt_of(c, file)?;
            if declared.is_empty() {
                steps.push(format!("CRS {c} (from the recipe)"));
            } else {
                let theirs = SpatialRef::from_wkt(declared).ok();
                let same = match (&theirs, SpatialRef::from_wkt(&wkt)) {
                    (Some(a), Ok(b)) => *a == b,
                    _ => false,
                };
                if same {
                    steps.push(format!("CRS {c} (from the recipe, as the file declares)"));
                } else {
                    let name = theirs
                        .and_then(|s| s.name())
                        .unwrap_or_else(|| "an unreadable CRS".into());
                    steps.push(format!(
                        "CRS {c} (from the recipe, overriding the file's {name:?})"
                    ));
                    warnings.push(format!(
                        "{}: declares the CRS {name:?}; the recipe's {c} is used instead",
                        file.display()
                    ));
                }
            }
            Ok(wkt)
        }
        None if !declared.is_empty() => Ok(declared.to_string()),
        None if latlon_default => {
            steps.push("CRS EPSG:4326 (the lon/lat default)".into());
            wkt_of("EPSG:4326", file)
        }
        None => Err(err(
            file,
            "declares no CRS and the recipe gives none (set processing.crs or source_crs)".into(),
        )),
    }
}

fn format_name(f: FormatHint) -> &'static str {
    match f {
        FormatHint::Gdal => "GDAL",
        FormatHint::GmtGrid => "old GMT grid",
        FormatHint::LatlonGrid => "lon/lat grid",
        FormatHint::Hdf5Outlines => "outlines in HDF5 groups",
    }
}

fn resampled(r: Resampling, overviews: bool) -> String {
    if overviews {
        format!(
            "resampled ({}) onto the target grid, from the file's overviews where coarser",
            r.gdal_name()
        )
    } else {
        format!("resampled once ({}) onto the target grid", r.gdal_name())
    }
}

/// Vector layer -> in-memory FlatGeobuf in the target CRS (reprojected once).
fn prepare_vector(
    ds: &Dataset,
    file: &Path,
    spec: &ReadSpec,
    target_crs: &str,
    mem: &str,
    mut steps: Vec<String>,
) -> Result<Prepared, GeoError> {
    let layer = match &spec.variable {
        Some(name) => ds
            .layer_by_name(name)
            .map_err(|_| err(file, format!("has no layer {name:?}")))?,
        None if ds.layer_count() == 1 => ds
            .layer(0)
            .map_err(|e| gdal_err(file, "its vector layer", e))?,
        None if ds.layer_count() == 0 => return Err(err(file, "has no vector layer".into())),
        None => {
            return Err(err(
                file,
                format!(
                    "has {} layers: say which with processing.variable",
                    ds.layer_count()
                ),
            ))
        }
    };
    let layer_name = layer.name();
    let features = layer.feature_count();
    let rasterize = spec.rasterize.clone().unwrap_or_default();
    let mut args = vec![
        "-f".to_string(),
        "FlatGeobuf".into(),
        "-t_srs".into(),
        wkt_of(target_crs, file)?,
        "-nlt".into(),
        "PROMOTE_TO_MULTI".into(),
        "-nln".into(),
        "features".into(),
    ];
    let mut warnings = Vec::new();
    let declared = layer
        .spatial_ref()
        .and_then(|s| s.to_wkt().ok())
        .unwrap_or_default();
    let wkt = source_crs(
        file,
        &declared,
        spec.crs.as_deref(),
        false,
        &mut steps,
        &mut warnings,
    )
    .map_err(|_| {
        err(
            file,
            "declares no CRS (no .prj?) and the recipe gives none (set processing.crs or source_crs)"
                .into(),
        )
    })?;
    if spec.crs.is_some() {
        args.push("-s_srs".into());
        args.push(wkt);
    }
    if let Some(w) = &spec.where_ {
        args.push("-where".into());
        args.push(w.clone());
    }
    args.push(layer_name.clone());
    let path = format!("{mem}.fgb");
    let mut list = CslStringList::new();
    for a in &args {
        list.add_string(a)
            .map_err(|e| gdal_err(file, "ogr2ogr options", e))?;
    }
    let dest = CString::new(path.as_str()).map_err(|e| err(file, e.to_string()))?;
    // SAFETY: the option list, source dataset and destination name outlive the calls; the
    // returned dataset is a new handle we close.
    let kept = unsafe {
        let opts = gdal_sys::GDALVectorTranslateOptionsNew(list.as_ptr(), std::ptr::null_mut());
        if opts.is_null() {
            return Err(err(file, format!("reprojection: {}", last_gdal_error())));
        }
        let mut src = ds.c_dataset();
        let mut usage = 0;
        let out = gdal_sys::GDALVectorTranslate(
            dest.as_ptr(),
            std::ptr::null_mut(),
            1,
            &mut src,
            opts,
            &mut usage,
        );
        gdal_sys::GDALVectorTranslateOptionsFree(opts);
        if out.is_null() || usage != 0 {
            let what = match &spec.where_ {
                Some(w) => format!("filtering its features with processing.where {w:?}"),
                None => "reprojecting its features".into(),
            };
            return Err(err(file, format!("{what} failed: {}", last_gdal_error())));
        }
        let layer = gdal_sys::GDALDatasetGetLayer(out, 0);
        let kept = if layer.is_null() {
            0
        } else {
            gdal_sys::OGR_L_GetFeatureCount(layer, 1)
        };
        gdal_sys::GDALClose(out);
        kept
    };
    let copy = MemFile::named(path.clone());
    if let Some(w) = &spec.where_ {
        steps.push(format!("where {w}: {kept} of {features} features kept"));
        if kept == 0 {
            warnings.push(format!(
                "{}: processing.where {w:?} keeps none of its {features} features",
                file.display()
            ));
        }
    }
    steps.push(format!(
        "{kept} features of layer {layer_name} reprojected once to {target_crs}"
    ));
    steps.push(match &rasterize.attribute {
        Some(a) => format!("rasterised: attribute {a}"),
        None => format!("rasterised: burn {}", rasterize.burn.unwrap_or(1.0)),
    });
    steps.push(
        if rasterize.all_touched {
            "every cell a feature touches"
        } else {
            "cells whose centre is inside a feature"
        }
        .into(),
    );
    if let Some(b) = rasterize.background {
        steps.push(format!("background {b}"));
    }
    Ok(Prepared {
        input: Input::Vector {
            path,
            layer: "features".into(),
            spec: RasterizeSpec::from(&rasterize),
        },
        steps,
        warnings,
        _copy: Some(copy),
    })
}

/// A band of a GDAL raster as a north-up [`Raster`] (scale/offset applied, declared no-data
/// NaN), the CRS the file declares (WKT, empty when none), and what was done.
pub fn read_gdal(
    gdal_path: &str,
    file: &Path,
    band_index: u32,
) -> Result<(Raster, String, Vec<String>), GeoError> {
    let ds = Dataset::open(gdal_path)
        .map_err(|e| gdal_err(file, format!("GDAL cannot read {gdal_path}"), e))?;
    let gt = geotransform(&ds, file)?;
    if gt[2] != 0.0 || gt[4] != 0.0 || gt[5] >= 0.0 {
        return Err(err(file, "is not a north-up grid".into()));
    }
    let mut notes = Vec::new();
    let (nx, ny) = ds.raster_size();
    if band_index as usize > ds.raster_count() || band_index == 0 {
        return Err(err(
            file,
            format!("has no band {band_index} ({} bands)", ds.raster_count()),
        ));
    }
    if band_index != 1 {
        notes.push(format!("band {band_index}"));
    }
    let band = ds
        .rasterband(band_index as usize)
        .map_err(|e| gdal_err(file, format!("band {band_index}"), e))?;
    let nodata = band.no_data_value();
    let mut values = band
        .read_as::<f32>((0, 0), (nx, ny), (nx, ny), None)
        .map_err(|e| gdal_err(file, format!("reading band {band_index}"), e))?
        .into_shape_and_vec()
        .1;
    let (scale, offset) = (band.scale().unwrap_or(1.0), band.offset().unwrap_or(0.0));
    for v in values.iter_mut() {
        if nodata.is_some_and(|n| *v as f64 == n || (n.is_nan() && v.is_nan())) {
            *v = f32::NAN;
        } else if scale != 1.0 || offset != 0.0 {
            *v = (*v as f64 * scale + offset) as f32;
        }
    }
    if let Some(n) = nodata {
        notes.push(format!("declared no data {n}"));
    }
    if scale != 1.0 || offset != 0.0 {
        notes.push(format!("scaled: value * {scale} + {offset}"));
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
        ds.projection(),
        notes,
    ))
}

/// Sets the sentinel and out-of-range values to NaN (before any resampling).
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

/// Whether a lon/lat grid of `nx` columns of `dx` degrees goes round the globe (360° a
/// whole number of columns to within a hundredth of a column, so that float32 spacings such
/// as 0.166666671378351 for 1/6° count; a repeated closing meridian allowed). Returns the
/// number of distinct meridians.
fn global_columns(nx: usize, dx: f64) -> Option<usize> {
    let per_turn = 360.0 / dx.abs();
    let n = per_turn.round() as usize;
    (n > 0 && (per_turn - n as f64).abs() <= 0.01 && (nx == n || nx == n + 1)).then_some(n)
}

/// Longitudes as PROJ gives them (-180..180) must all find data, and interpolation must work
/// across the ±180° seam. A global lon/lat grid (stored 0..360 or -180..180) is rearranged to
/// run from just west of -180° to just east of 180°, with one column beyond each end taken
/// from the other side, its spacing taken as exactly 360/n; a regional grid east of 180° is
/// moved by -360°. Returns what was done, for the provenance.
fn wrap_longitudes(r: &mut Raster) -> Option<String> {
    let Some(n) = global_columns(r.nx, r.dx) else {
        let west = r.x0 - r.dx / 2.0;
        if west >= 180.0 - 1e-9 {
            r.x0 -= 360.0;
            return Some("longitudes moved from 180..360 to -180..0".into());
        }
        if r.x(r.nx - 1) > 180.0 {
            log::warn!(
                "a regional lon/lat grid crosses 180° ({} .. {}°): its cells east of 180° are not used",
                west,
                r.x(r.nx - 1) + r.dx / 2.0
            );
        }
        return None;
    };
    let stored_dx = r.dx;
    r.dx = 360.0 / n as f64;
    let k0 = ((-180.0 - r.x0) / r.dx).floor() as i64 - 1;
    let k1 = ((180.0 - r.x0) / r.dx).ceil() as i64 + 1;
    let m = (k1 - k0 + 1) as usize;
    let mut values = Vec::with_capacity(m * r.ny);
    for row in r.values.chunks(r.nx) {
        values.extend((k0..=k1).map(|k| row[k.rem_euclid(n as i64) as usize]));
    }
    let from = format!("{}..{}", r.x0 - r.dx / 2.0, r.x(r.nx - 1) + r.dx / 2.0);
    r.x0 += k0 as f64 * r.dx;
    r.nx = m;
    r.values = values;
    let spacing = if stored_dx == r.dx {
        String::new()
    } else {
        format!("; spacing {stored_dx} taken as 360/{n} = {}", r.dx)
    };
    Some(format!(
        "global lon/lat grid ({from}°, {n} columns per turn{spacing}) laid out from {}° to {}° across the ±180° seam",
        r.x0 - r.dx / 2.0,
        r.x(r.nx - 1) + r.dx / 2.0
    ))
}

/// Cells whose centre lies outside the latitude range become NaN.
fn cut_latitude(
    r: &mut Raster,
    srs: &SpatialRef,
    lat: &ValidRange,
    file: &Path,
) -> Result<(), GeoError> {
    if srs.is_geographic() {
        for j in 0..r.ny {
            if !lat.contains(r.y(j)) {
                r.values[j * r.nx..(j + 1) * r.nx].fill(f32::NAN);
            }
        }
        return Ok(());
    }
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(|e| gdal_err(file, "EPSG:4326", e))?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let t = CoordTransform::new(srs, &wgs84).map_err(|e| gdal_err(file, "latitude cut", e))?;
    for j in 0..r.ny {
        let mut xs: Vec<f64> = (0..r.nx).map(|i| r.x(i)).collect();
        let mut ys = vec![r.y(j); r.nx];
        t.transform_coords(&mut xs, &mut ys, &mut [])
            .map_err(|e| gdal_err(file, "latitude cut", e))?;
        for (i, lat_v) in ys.iter().enumerate() {
            if !lat.contains(*lat_v) {
                r.values[j * r.nx + i] = f32::NAN;
            }
        }
    }
    Ok(())
}

/// Writes a raster as an in-memory GeoTIFF that every worker can open.
fn write_geotiff(path: &str, r: &Raster, wkt: &str, origin: &Path) -> Result<(), GeoError> {
    let e = |m: String| err(origin, format!("in-memory copy: {m}"));
    let mut ds = DriverManager::get_driver_by_name("GTiff")
        .and_then(|d| d.create_with_band_type::<f32, _>(path, r.nx, r.ny, 1))
        .map_err(|x| e(x.to_string()))?;
    ds.set_geo_transform(&r.geotransform())
        .and_then(|_| ds.set_projection(wkt))
        .map_err(|x| e(x.to_string()))?;
    let mut band = ds.rasterband(1).map_err(|x| e(x.to_string()))?;
    band.set_no_data_value(Some(f64::NAN))
        .map_err(|x| e(x.to_string()))?;
    let mut buf = Buffer::new((r.nx, r.ny), r.values.clone());
    band.write((0, 0), (r.nx, r.ny), &mut buf)
        .map_err(|x| e(x.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raster(nx: usize, x0: f64, dx: f64) -> Raster {
        Raster {
            nx,
            ny: 1,
            x0,
            y0: 0.0,
            dx,
            dy: 1.0,
            values: (0..nx).map(|i| i as f32).collect(),
        }
    }

    /// Every column holds the value of the original column at the same meridian, and the
    /// columns reach at least one beyond ±180°.
    fn assert_wrapped(before: &Raster, after: &Raster) {
        let n = (360.0 / after.dx).round() as usize;
        assert!(
            after.x0 < -180.0 && after.x(after.nx - 1) > 180.0,
            "{after:?}"
        );
        for i in 0..after.nx {
            let lon = after.x(i).rem_euclid(360.0);
            let k = (0..n)
                .find(|&k| (before.x(k).rem_euclid(360.0) - lon).abs() < 1e-3 * after.dx)
                .unwrap_or_else(|| panic!("no original column at {lon}"));
            assert_eq!(after.value(0, i), before.value(0, k), "column {i}");
        }
    }

    #[test]
    fn global_grids_are_laid_out_across_the_seam() {
        // Gridline 0..360 at 90° (360 repeats 0), pixel 0..360, already -180..180, and a
        // float32 spacing of 1/6°.
        for before in [
            raster(5, 0.0, 90.0),
            raster(4, 45.0, 90.0),
            raster(4, -135.0, 90.0),
            raster(2160, 0.0, 0.166666671378351),
        ] {
            let mut after = before.clone();
            let note = wrap_longitudes(&mut after).expect("wrapped");
            assert!(note.contains("across the ±180° seam"), "{note}");
            assert_wrapped(&before, &after);
        }
        // Not global: left alone, or moved when wholly east of 180°.
        let mut r = raster(10, 10.0, 1.0);
        assert!(wrap_longitudes(&mut r).is_none());
        assert_eq!(r.x0, 10.0);
        let mut r = raster(10, 200.5, 1.0);
        assert!(wrap_longitudes(&mut r).is_some());
        assert_eq!(r.x0, -159.5);
    }
}
