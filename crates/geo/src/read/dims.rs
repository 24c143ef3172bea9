//! The non-spatial dimensions of a source: which 2-D slices of a netCDF variable a cube
//! variable takes, and where each slice lies on the cube's `time` and extra axes.
//!
//! GDAL shows a netCDF variable with dimensions beyond y/x as one band per combination of
//! their values (the seed's recipes said "band = month x 3 + level + 1"), and each band's
//! metadata say its coordinate values. Here the recipe names dimensions and values instead:
//! `select` fixes dimensions by coordinate value, `time_dimension` makes the cube's time axis
//! and a variable's extra `dims` (e.g. `level`) become axes of the cube. A dimension with
//! several values that none of these accounts for is an error: reading band 1 alone would
//! silently drop the rest.

use std::collections::BTreeMap;
use std::path::Path;

use gdal::{Dataset, Metadata};
use serde_json::{json, Value};

use cryocube_cube::cf::{decode_time, format_utc_us};
use cryocube_cube::Attrs;

use super::gmt;
use super::prepare::{resolve_variable, ReadSpec};
use crate::recipe::{FormatHint, Selection};
use crate::{gdal_err, read_err as err, GeoError};

/// A non-spatial dimension of a netCDF variable.
#[derive(Clone, Debug)]
pub struct SourceDim {
    /// The dimension's name.
    pub name: String,
    /// Its coordinate values (indices when it has no coordinate variable).
    pub values: Vec<f64>,
    /// The attributes of its coordinate variable (units, long_name, positive, ...).
    pub attrs: Attrs,
}

/// One 2-D slice of a source: the band GDAL reads it from, and its place on the cube's axes.
#[derive(Clone, Debug, Default)]
pub struct Slice {
    /// `None`: the spec's own band (a source without extra dimensions).
    pub band: Option<u32>,
    /// UTC µs, when the time axis comes from the source.
    pub time: Option<i64>,
    /// Coordinate values along the variable's extra dimensions, in their order.
    pub coords: Vec<f64>,
    /// `level 500, month 7`, for the provenance.
    pub label: String,
}

/// What a cube variable asks of a source's dimensions.
#[derive(Clone, Debug, Default)]
pub struct SliceRequest {
    /// Dimensions taken at one value: by coordinate value or by time.
    pub select: BTreeMap<String, Selection>,
    /// The dimension that is the cube's time, when it is not named `time`.
    pub time_dimension: Option<String>,
    /// Units for dimensions whose coordinate variable states none (e.g. `months since 1978-12-01`).
    pub coordinate_units: BTreeMap<String, String>,
    /// The variable's dimensions other than time, y and x.
    pub extra: Vec<String>,
    /// Whether the variable has a time axis.
    pub timed: bool,
}

impl SliceRequest {
    fn asks_for_dimensions(&self) -> bool {
        !self.select.is_empty() || self.time_dimension.is_some() || !self.extra.is_empty()
    }
}

/// The slices of `file` a variable takes, with the source's dimensions the variable keeps as
/// axes (its extra dims, in order). A source that is not a netCDF raster is one slice.
pub fn slices(
    file: &Path,
    spec: &ReadSpec,
    req: &SliceRequest,
) -> Result<(Vec<Slice>, Vec<SourceDim>), GeoError> {
    let plain = || (vec![Slice::default()], Vec::new());
    let not_netcdf = |why: &str| {
        err(
            file,
            format!(
                "processing.select, processing.time_dimension and extra variable dims need a netCDF source; this one {why}"
            ),
        )
    };
    let gmt_layout = spec.format == Some(FormatHint::GmtGrid) || gmt::is_gmt_grid(file);
    if spec.rasterize.is_some() || gmt_layout || spec.format == Some(FormatHint::Hdf5Outlines) {
        if req.asks_for_dimensions() {
            return Err(not_netcdf(if gmt_layout {
                "is an old GMT grid"
            } else {
                "is a vector source"
            }));
        }
        return Ok(plain());
    }
    let ds = Dataset::open(file).map_err(|e| gdal_err(file, "GDAL cannot read it", e))?;
    if ds.driver().short_name() != "netCDF" {
        if req.asks_for_dimensions() {
            return Err(not_netcdf(&format!(
                "is read by GDAL's {} driver",
                ds.driver().short_name()
            )));
        }
        return Ok(plain());
    }
    let path = match &spec.variable {
        Some(v) => resolve_variable(&ds, file, v)?,
        None => file.display().to_string(),
    };
    let var =
        Dataset::open(&path).map_err(|e| gdal_err(file, format!("GDAL cannot read {path}"), e))?;
    if var.raster_count() == 0 {
        // Several variables and none named: prepare says which there are.
        return Ok(plain());
    }
    let dims = source_dims(&var, file)?;
    if dims.is_empty() {
        if req.asks_for_dimensions() {
            let what = spec.variable.as_deref().unwrap_or("its variable");
            return Err(err(
                file,
                format!("{what} has no dimension besides its two spatial ones; nothing to select or stack"),
            ));
        }
        return Ok(plain());
    }
    if let Some(b) = spec.band {
        if req.asks_for_dimensions() {
            return Err(err(
                file,
                "processing.band and dimensions by name (select, time_dimension, extra dims) cannot be combined".into(),
            ));
        }
        return Ok((
            vec![Slice {
                band: Some(b),
                ..Slice::default()
            }],
            Vec::new(),
        ));
    }
    pick(file, &var, &dims, req)
}

/// The non-spatial dimensions GDAL's netCDF driver reports for an opened variable.
fn source_dims(var: &Dataset, file: &Path) -> Result<Vec<SourceDim>, GeoError> {
    let Some(extra) = var.metadata_item("NETCDF_DIM_EXTRA", "") else {
        return Ok(Vec::new());
    };
    let names = braced(&extra);
    let all = var.metadata_domain("").unwrap_or_default();
    let mut dims = Vec::new();
    for name in names {
        let values = var
            .metadata_item(&format!("NETCDF_DIM_{name}_VALUES"), "")
            .ok_or_else(|| err(file, format!("dimension {name} has no coordinate values")))?;
        let values = braced(&values)
            .iter()
            .map(|v| {
                v.trim().parse::<f64>().map_err(|_| {
                    err(
                        file,
                        format!("dimension {name}: coordinate value {v:?} is not a number"),
                    )
                })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        let prefix = format!("{name}#");
        let mut attrs = Attrs::new();
        for item in &all {
            if let Some((k, v)) = item.split_once('=') {
                if let Some(key) = k.strip_prefix(&prefix) {
                    if key != "_FillValue" {
                        let value = v.parse::<f64>().map(|n| json!(n)).unwrap_or(json!(v));
                        attrs.insert(key.to_string(), value);
                    }
                }
            }
        }
        dims.push(SourceDim {
            name,
            values,
            attrs,
        });
    }
    Ok(dims)
}

/// `{a,b,c}` -> `[a, b, c]`.
fn braced(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Whether two coordinate values are the same (float32-stored coordinates allowed).
fn same_value(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn list(values: impl IntoIterator<Item = String>) -> String {
    values.into_iter().collect::<Vec<_>>().join(", ")
}

fn show(v: f64) -> String {
    format!("{v}")
}

/// The units of a dimension's coordinate: the recipe's, else the file's.
fn units_of<'a>(d: &'a SourceDim, req: &'a SliceRequest) -> Option<&'a str> {
    req.coordinate_units
        .get(&d.name)
        .map(String::as_str)
        .or_else(|| d.attrs.get("units").and_then(Value::as_str))
}

/// The times of a dimension's values, or an error saying why it is not a time coordinate.
fn times_of(d: &SourceDim, req: &SliceRequest, file: &Path) -> Result<Vec<i64>, GeoError> {
    let units = units_of(d, req).filter(|u| u.contains(" since ")).ok_or_else(|| {
        err(
            file,
            format!(
                "dimension {} is not a time coordinate (no units \"<unit> since <date>\"); give them with processing.coordinate_units, e.g. {{\"{}\": \"days since 1970-01-01\"}}",
                d.name, d.name
            ),
        )
    })?;
    decode_time(&d.values, units).ok_or_else(|| {
        err(
            file,
            format!(
                "dimension {}: its values {} cannot be read as {units:?}",
                d.name,
                list(d.values.iter().map(|v| show(*v)))
            ),
        )
    })
}

/// The slices of one opened netCDF variable with dimensions `dims`.
fn pick(
    file: &Path,
    var: &Dataset,
    dims: &[SourceDim],
    req: &SliceRequest,
) -> Result<(Vec<Slice>, Vec<SourceDim>), GeoError> {
    let dim_names = || list(dims.iter().map(|d| d.name.clone()));
    let find = |name: &str, what: &str| {
        dims.iter().position(|d| d.name == name).ok_or_else(|| {
            err(
                file,
                format!(
                    "{what} {name:?} is not a dimension of this variable; its dimensions are {}",
                    dim_names()
                ),
            )
        })
    };
    // Values kept per dimension.
    let mut kept: Vec<Vec<bool>> = dims.iter().map(|d| vec![true; d.values.len()]).collect();
    for (name, wanted) in &req.select {
        let k = find(name, "processing.select")?;
        let d = &dims[k];
        let hits: Vec<bool> = match wanted {
            Selection::Value(v) => d.values.iter().map(|x| same_value(*x, *v)).collect(),
            Selection::Time(t) => times_of(d, req, file)?
                .iter()
                .map(|us| format_utc_us(*us).starts_with(t.trim()))
                .collect(),
        };
        if !hits.contains(&true) {
            let values = match wanted {
                Selection::Time(_) => list(times_of(d, req, file)?.into_iter().map(format_utc_us)),
                Selection::Value(_) => list(d.values.iter().map(|v| show(*v))),
            };
            return Err(err(
                file,
                format!("dimension {name} has no value {wanted}; its values are {values}"),
            ));
        }
        kept[k] = hits;
    }
    // The source's time dimension makes a time axis for variables that have one; a variable
    // without must select a value of it like any other dimension.
    let time_dim = match &req.time_dimension {
        Some(name) => {
            let k = find(name, "processing.time_dimension")?;
            let times = times_of(&dims[k], req, file)?;
            req.timed.then_some((k, times))
        }
        None => None,
    };
    let mut axes = Vec::new();
    for name in &req.extra {
        let k = find(name, "the variable's dimension")?;
        axes.push(k);
    }
    for (k, d) in dims.iter().enumerate() {
        let n = kept[k].iter().filter(|b| **b).count();
        let used = time_dim.as_ref().is_some_and(|(t, _)| *t == k) || axes.contains(&k);
        if n > 1 && !used && req.time_dimension.as_deref() == Some(d.name.as_str()) {
            return Err(err(
                file,
                format!(
                    "dimension {} is the source's time dimension, with {n} values, but the variable has no time in its dims: add \"time\" to them or select one value",
                    d.name
                ),
            ));
        }
        if n > 1 && !used {
            return Err(err(
                file,
                format!(
                    "dimension {} has {n} values ({}): select one (processing.select), make it the time axis (processing.time_dimension) or add it to the variable's dims",
                    d.name,
                    list(d.values.iter().zip(&kept[k]).filter(|(_, b)| **b).map(|(v, _)| show(*v)))
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for b in 1..=var.raster_count() {
        let band = var
            .rasterband(b)
            .map_err(|e| gdal_err(file, format!("band {b}"), e))?;
        // The band's value index on each dimension.
        let mut at = Vec::with_capacity(dims.len());
        for d in dims {
            let text = band
                .metadata_item(&format!("NETCDF_DIM_{}", d.name), "")
                .ok_or_else(|| err(file, format!("band {b} does not say its {}", d.name)))?;
            let v: f64 = text.trim().parse().map_err(|_| {
                err(
                    file,
                    format!("band {b}: {} = {text:?} is not a number", d.name),
                )
            })?;
            let i = d
                .values
                .iter()
                .position(|x| same_value(*x, v))
                .ok_or_else(|| {
                    err(
                        file,
                        format!("band {b}: {} = {v} is not among its values", d.name),
                    )
                })?;
            at.push(i);
        }
        if !at.iter().enumerate().all(|(k, i)| kept[k][*i]) {
            continue;
        }
        let label = list(
            dims.iter()
                .zip(&at)
                .map(|(d, i)| format!("{} {}", d.name, show(d.values[*i]))),
        );
        out.push(Slice {
            band: Some(b as u32),
            time: time_dim.as_ref().map(|(k, times)| times[at[*k]]),
            coords: axes.iter().map(|k| dims[*k].values[at[*k]]).collect(),
            label,
        });
    }
    let kept_dims = axes.iter().map(|k| dims[*k].clone()).collect();
    Ok((out, kept_dims))
}
