//! The `cube.geojson` recipe: what a polar cube holds and where its data come from.
//!
//! The seed workflow's recipe (a GeoJSON Feature whose `properties` list the grid, the
//! variables and the sources) is accepted as it is: every field it has is typed here, fields we
//! do not know are kept (and written back unchanged), and suspicious content is reported as
//! warnings rather than silently used. What the seed did in code per source (which file of an
//! archive, which variable or band, the old GMT layout, a missing CRS, a no-data sentinel, a
//! valid range, a latitude cut, time stamps, resampling, rasterisation, output names and units)
//! is data here: the optional per-source [`Processing`] block, documented by the JSON Schema
//! `schemas/processing.schema.json` generated from these types.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::grid::TargetGrid;
use crate::GeoError;

/// A parsed recipe and the warnings found while reading it.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The recipe file.
    pub path: PathBuf,
    /// Its GeoJSON Feature.
    pub feature: Feature,
    /// Defects found while reading it, each with its JSON path.
    pub warnings: Vec<String>,
}

/// The GeoJSON Feature.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Feature {
    /// `Feature`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The cube's description.
    pub properties: Properties,
    /// The area the cube covers (DeepESDL wants a polygon, CRS-84).
    #[serde(default)]
    pub geometry: Option<Value>,
    /// Members cryocube does not use, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The cube description.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Properties {
    /// The dataset's identifier.
    #[serde(default)]
    pub data_id: Option<String>,
    /// Its title (the cube's `title`).
    #[serde(default)]
    pub title: Option<String>,
    /// Its description (the cube's `summary`).
    #[serde(default)]
    pub description: Option<String>,
    /// Its version.
    #[serde(default)]
    pub version: Option<String>,
    /// Its license.
    #[serde(default)]
    pub license: Option<String>,
    /// First and last day, ISO 8601.
    #[serde(default)]
    pub time_range: Option<Vec<String>>,
    /// The time step (e.g. `1Y`; informative).
    #[serde(default)]
    pub time_period: Option<String>,
    /// Target CRS, e.g. `EPSG:3031`.
    pub spatial_ref: String,
    /// `[xmin, ymin, xmax, ymax]` of the cell edges, in `spatial_ref` units.
    pub spatial_bbox: [f64; 4],
    /// Cell size `[x, y]`, or one value for both (`[r]` or `r`).
    #[serde(deserialize_with = "one_or_more")]
    pub spatial_res: Vec<f64>,
    /// The cube's variables.
    #[serde(default)]
    pub variables: Vec<VariableSpec>,
    /// Where their values come from.
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    /// Global attributes for the cube.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Members cryocube does not use, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One output variable as the recipe declares it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VariableSpec {
    /// The variable's name in the cube.
    pub name: String,
    /// Its `long_name` attribute.
    #[serde(default)]
    pub long_name: Option<String>,
    /// Its element type as the recipe states it (informative: layers are stored as float32).
    #[serde(default)]
    pub dtype: Option<String>,
    /// Its dimensions, e.g. `["y", "x"]` or `["time", "y", "x"]`.
    #[serde(default)]
    pub dims: Vec<String>,
    /// Its `units` attribute.
    #[serde(default)]
    pub units: Option<String>,
    /// Its fill value.
    #[serde(default)]
    pub fill_value: Option<Value>,
    /// Members cryocube does not use, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One source: a downloadable file (or archive) and what to take from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceSpec {
    /// The source's name (its folder among the fetched sources).
    pub name: String,
    /// The source's own names of what it provides (matched to `variables` by normalised name
    /// unless `processing.outputs` says otherwise).
    #[serde(default)]
    pub variable_names: Vec<String>,
    /// The DeepESDL specification's way for a download source: cube variable name -> the
    /// source's name for it (used when `variable_names` and `processing.outputs` are absent).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
    /// Where it is: http(s), s3 or file URL, relative to the recipe for `file:`.
    pub download_url: String,
    /// The access protocol; a warning when it does not match the URL.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Whether the download needs credentials (`true`), or which.
    #[serde(default)]
    pub credentials: Option<Value>,
    /// Whether the download is an archive.
    #[serde(default)]
    pub compressed: Option<bool>,
    /// The archive's format (`zip`, `tar`, `tar.gz`, `gzip`).
    #[serde(default)]
    pub compression_format: Option<String>,
    /// The file format; a vector format (`shp`, `gpkg`, `geojson`) burns its polygons as 1
    /// unless `processing.rasterize` says otherwise.
    #[serde(default)]
    pub source_format: Option<String>,
    /// The CRS of the source, overriding what the file says.
    #[serde(default)]
    pub source_crs: Option<String>,
    /// Expected SHA-256 of the downloaded file (hex); checked by `fetch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// How the source becomes cube variables.
    #[serde(default)]
    pub processing: Option<Processing>,
    /// Members cryocube does not use, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How a source becomes cube variables: every step the seed workflow did in code, as data.
/// Unknown keys are errors here (a typo must not silently skip a step).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    /// Files to read: paths inside the downloaded archive (glob patterns allowed), or the
    /// downloaded file itself when empty. Several files with a `time` each form a time stack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<InputFile>,
    /// How to decode the file; `gdal` (the default) for anything GDAL reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FormatHint>,
    /// netCDF variable (or GDAL subdataset name) holding the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// Raster band, 1-based (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<u32>,
    /// CRS of a file that declares none (e.g. `EPSG:3031`); overrides `source_crs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs: Option<String>,
    /// Value that means "no data" although the file does not declare it (e.g. -32767).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodata: Option<f64>,
    /// Values outside this range are no data (e.g. `{"gt": 0}` keeps values > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<ValidRange>,
    /// Latitude cut for lat/lon sources: only cells in this latitude range are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<ValidRange>,
    /// Resampling onto the target grid (default: bilinear for rasters, nearest for masks
    /// and integer data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resampling: Option<Resampling>,
    /// Pick values of the source's own non-spatial dimensions by coordinate value, e.g.
    /// `{"level": 500, "month": 7}`; a text value matches a time coordinate by its start
    /// (`"1979-07"` is any time in July 1979). netCDF sources.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub select: BTreeMap<String, Selection>,
    /// The source's dimension that gives the variable's `time` axis: one cube time step per
    /// value (its coordinate in CF time units, or in `coordinate_units`). netCDF sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_dimension: Option<String>,
    /// Units of the source's dimension coordinates where the file gives none, e.g.
    /// `{"month": "months since 1978-12-01"}` (calendar months).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub coordinate_units: BTreeMap<String, String>,
    /// For vector sources: only the features this OGR SQL attribute filter keeps, e.g.
    /// `"area_km2 > 10 AND type = 'lake'"`.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
    /// For `hdf5-outlines`: the datasets of each group holding x and y (default
    /// `["lon", "lat"]`, in EPSG:4326; other names need `crs` as an EPSG code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<[String; 2]>,
    /// Let GDAL read a raster's overviews (reduced copies stored in the file) when the target
    /// grid is coarser. Off by default: the cube is resampled once from the file's own cells,
    /// and some files' overviews hold values that are in no cell of their data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overviews: bool,
    /// For vector sources: how polygons become cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rasterize: Option<Rasterize>,
    /// The cube variables this source gives, by name; default: one per `variable_names`
    /// entry, named by its normalised form (`Thw 124` -> `thw_124`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Output>,
}

/// One input file of a source.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// Path inside the archive (glob allowed), or a URL-relative file name.
    pub path: String,
    /// Time stamp of this file in a time stack: an ISO 8601 date (`2013-01-01`, midnight UTC)
    /// or date and time with an offset (`2013-01-01T12:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// A value of a source's dimension: a coordinate value, or the start of a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Selection {
    /// A coordinate value.
    Value(f64),
    /// A time: its ISO 8601 start (`2017` or `2017-03`).
    Time(String),
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::Value(v) => write!(f, "{v}"),
            Selection::Time(t) => write!(f, "{t:?}"),
        }
    }
}

/// Decoders for layouts GDAL gets wrong or needs help with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FormatHint {
    /// Anything GDAL reads with its georeferencing (GeoTIFF, CF netCDF, shapefiles).
    Gdal,
    /// Old GMT netCDF grids (x_range, y_range, spacing, dimension, 1-D z; first row = north;
    /// `node_offset` 1 = pixel, 0 = gridline registration).
    GmtGrid,
    /// A regular longitude/latitude grid (1-D lon and lat coordinates), reprojected once.
    LatlonGrid,
    /// Outlines in HDF5 groups: each group one polygon, named after the group, its vertices in
    /// two datasets (`coordinates`, default `lon`, `lat`); rasterised like a shapefile.
    Hdf5Outlines,
}

/// Bounds; each optional. `gt`/`lt` exclusive, `ge`/`le` inclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidRange {
    /// Valid when greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Valid when greater than or equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<f64>,
    /// Valid when less than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Valid when less than or equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<f64>,
}

impl ValidRange {
    /// Whether `v` lies in the range (NaN never does).
    pub fn contains(&self, v: f64) -> bool {
        !v.is_nan()
            && self.gt.is_none_or(|b| v > b)
            && self.ge.is_none_or(|b| v >= b)
            && self.lt.is_none_or(|b| v < b)
            && self.le.is_none_or(|b| v <= b)
    }
}

/// Resampling methods (GDAL's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resampling {
    /// The nearest source cell's value.
    Nearest,
    /// Interpolated between the four nearest source cells.
    Bilinear,
    /// The mean of the source cells a target cell covers.
    Average,
    /// The most frequent source value in a target cell.
    Mode,
}

/// Polygons to cells.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rasterize {
    /// Value burnt into covered cells (default 1); ignored when `attribute` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn: Option<f64>,
    /// Feature attribute whose value is burnt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Every cell the polygon touches (true) or only cells whose centre is inside (false,
    /// the default).
    #[serde(default)]
    pub all_touched: bool,
    /// Value of cells no feature covers (default: no data, NaN; e.g. 0 for a 0/1 mask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<f64>,
}

/// One cube variable made from a source.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Name in the cube (must be one of the recipe's `variables`).
    pub name: String,
    /// The source's name for it (an entry of `variable_names`, a netCDF variable or a band).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Files of the source that give this variable (overrides `processing.files`), e.g. one
    /// GeoTIFF of an archive, or several with a `time` each for a time stack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<InputFile>,
    /// netCDF variable holding this output (overrides `processing.variable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// Raster band of this output, 1-based (overrides `processing.band`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<u32>,
    /// Values of the source's dimensions for this output (added to `processing.select`,
    /// overriding the same keys), e.g. `{"level": 850}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub select: BTreeMap<String, Selection>,
    /// UDUNITS units, overriding the recipe's variable entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    /// Further attributes of the variable.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(with = "std::collections::BTreeMap<String, serde_json::Value>")]
    pub attrs: Map<String, Value>,
}

/// A number or a list of numbers, as a list.
fn one_or_more<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMore {
        One(f64),
        More(Vec<f64>),
    }
    Ok(match OneOrMore::deserialize(d)? {
        OneOrMore::One(v) => vec![v],
        OneOrMore::More(v) => v,
    })
}

/// `Thw 124` -> `thw_124`: how source variable names map to cube names by default.
pub fn normalise(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

impl Recipe {
    /// Reads and checks a recipe file.
    pub fn load(path: &Path) -> Result<Recipe, GeoError> {
        let text = std::fs::read_to_string(path).map_err(|source| GeoError::File {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses recipe text; errors name the JSON path of the offending value.
    pub fn parse(path: &Path, text: &str) -> Result<Recipe, GeoError> {
        let err = |json_path: String, message: String| GeoError::Recipe {
            path: path.to_path_buf(),
            json_path,
            message,
        };
        let de = &mut serde_json::Deserializer::from_str(text);
        let feature: Feature = serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            err(
                if at == "." {
                    "$".into()
                } else {
                    format!("$.{at}")
                },
                e.into_inner().to_string(),
            )
        })?;
        if feature.kind != "Feature" {
            return Err(err(
                "$.type".into(),
                format!("a cube recipe is a GeoJSON Feature, not {:?}", feature.kind),
            ));
        }
        // The grid must be exact; this checks bbox and resolution.
        TargetGrid::from_properties(&feature.properties)
            .map_err(|(json_path, message)| err(json_path, message))?;
        let mut recipe = Recipe {
            path: path.to_path_buf(),
            feature,
            warnings: Vec::new(),
        };
        if let Some((json_path, message)) = recipe.duplicate_output() {
            return Err(err(json_path, message));
        }
        recipe.warnings = recipe.check();
        Ok(recipe)
    }

    /// The recipe's cube description.
    pub fn properties(&self) -> &Properties {
        &self.feature.properties
    }

    /// The target grid (cell centres, north-up).
    pub fn grid(&self) -> TargetGrid {
        TargetGrid::from_properties(&self.feature.properties).expect("checked when parsed")
    }

    /// The cube variables each source gives: (source index, source name for it, cube name).
    pub fn outputs(&self) -> Vec<(usize, String, String)> {
        let mut out = Vec::new();
        for (i, s) in self.properties().sources.iter().enumerate() {
            match s.processing.as_ref().filter(|p| !p.outputs.is_empty()) {
                Some(p) => {
                    for o in &p.outputs {
                        out.push((
                            i,
                            o.from.clone().unwrap_or_else(|| o.name.clone()),
                            o.name.clone(),
                        ));
                    }
                }
                None if s.variable_names.is_empty() => {
                    for (name, from) in &s.variables {
                        let from = from.as_str().unwrap_or(name).to_string();
                        out.push((i, from, name.clone()));
                    }
                }
                None => {
                    for v in &s.variable_names {
                        out.push((i, v.clone(), normalise(v)));
                    }
                }
            }
        }
        out
    }

    /// Two outputs of one source with the same cube name: the second would silently replace
    /// the first (or both would read the first's file), so this is an error.
    fn duplicate_output(&self) -> Option<(String, String)> {
        for (i, s) in self.properties().sources.iter().enumerate() {
            let mut seen: Vec<&str> = Vec::new();
            match s.processing.as_ref().filter(|p| !p.outputs.is_empty()) {
                Some(p) => {
                    for (k, o) in p.outputs.iter().enumerate() {
                        if seen.contains(&o.name.as_str()) {
                            return Some((
                                format!("$.properties.sources[{i}].processing.outputs[{k}].name"),
                                format!(
                                    "{:?} is already an output of this source; give each output its own name",
                                    o.name
                                ),
                            ));
                        }
                        seen.push(&o.name);
                    }
                }
                None => {
                    let names: Vec<String> =
                        s.variable_names.iter().map(|v| normalise(v)).collect();
                    for (k, n) in names.iter().enumerate() {
                        if let Some(first) = names[..k].iter().position(|m| m == n) {
                            return Some((
                                format!("$.properties.sources[{i}].variable_names[{k}]"),
                                format!(
                                    "{:?} and {:?} both become the variable {n:?}; name them apart with processing.outputs",
                                    s.variable_names[first], s.variable_names[k]
                                ),
                            ));
                        }
                    }
                }
            }
        }
        None
    }

    /// What looks wrong but does not stop a build: each warning names the JSON path.
    fn check(&self) -> Vec<String> {
        let p = self.properties();
        let mut w = Vec::new();
        if !p.spatial_ref.to_ascii_uppercase().starts_with("EPSG:") {
            w.push(format!(
                "$.properties.spatial_ref: {:?} is not an EPSG code; it is passed to GDAL as it is",
                p.spatial_ref
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, v) in p.variables.iter().enumerate() {
            if !seen.insert(v.name.as_str()) {
                w.push(format!(
                    "$.properties.variables[{i}].name: {:?} is declared twice",
                    v.name
                ));
            }
            let length_units = matches!(v.units.as_deref(), Some("m" | "km" | "metre" | "meter"));
            if v.name.contains("heat_flow") && length_units {
                w.push(format!(
                    "$.properties.variables[{i}].units: {:?} is a length, but {} is a heat flow (mW m-2?)",
                    v.units.as_deref().unwrap_or_default(),
                    v.name
                ));
            }
        }
        let produced: Vec<(usize, String, String)> = self.outputs();
        for (i, v) in p.variables.iter().enumerate() {
            if !produced.iter().any(|(_, _, name)| *name == v.name) {
                let closest = produced
                    .iter()
                    .map(|(_, _, name)| (strsim::levenshtein(name, &v.name), name))
                    .min();
                let hint = match closest {
                    Some((d, name)) if d <= 3 => format!(" (did you mean {name}?)"),
                    _ => String::new(),
                };
                w.push(format!(
                    "$.properties.variables[{i}].name: no source gives {:?}{hint}; it would be all NaN",
                    v.name
                ));
            }
        }
        for (i, s) in p.sources.iter().enumerate() {
            let at = format!("$.properties.sources[{i}]");
            let scheme = s.download_url.split("://").next().unwrap_or_default();
            if let Some(proto) = &s.protocol {
                if !s.download_url.contains("://") || !proto.eq_ignore_ascii_case(scheme) {
                    w.push(format!(
                        "{at}.protocol: {proto:?} but the URL is {:?}",
                        s.download_url
                    ));
                }
            }
            if s.compressed == Some(true) && s.compression_format.is_none() {
                w.push(format!(
                    "{at}.compression_format: compressed but no format given; guessed from the file"
                ));
            }
            if let Some(f) = &s.compression_format {
                if !["tar", "zip", "gzip", "gz", "tar.gz", "tgz"]
                    .contains(&f.to_ascii_lowercase().as_str())
                {
                    w.push(format!(
                        "{at}.compression_format: {f:?} is not tar, zip or gzip"
                    ));
                }
            }
            if s.variable_names.is_empty()
                && s.variables.is_empty()
                && s.processing.as_ref().is_none_or(|p| p.outputs.is_empty())
            {
                w.push(format!(
                    "{at}: gives no variable (no variable_names, no processing.outputs)"
                ));
            } else if !produced
                .iter()
                .any(|(src, _, name)| *src == i && p.variables.iter().any(|v| v.name == *name))
            {
                let gives: Vec<&str> = produced
                    .iter()
                    .filter(|(src, _, _)| *src == i)
                    .map(|(_, from, _)| from.as_str())
                    .collect();
                w.push(format!(
                    "{at}: none of its variables ({}) is in the recipe's variables; it is not used",
                    gives.join(", ")
                ));
            }
        }
        w
    }
}

/// The JSON Schema of the `processing` block (what `schemas/processing.schema.json` holds).
pub fn processing_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Processing)).expect("schemas serialise")
}
