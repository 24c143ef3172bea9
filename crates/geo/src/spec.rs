//! The DeepESDL dataset specification of `cube.geojson`, checked rule by rule.
//!
//! DeepESDL publishes what a cube recipe must hold (GitHub `deepesdl/dataset-spec`, its
//! `template.schema.json`, MIT). `cryocube build --check` reports every departure from it, so
//! that a recipe can be handed to DeepESDL's own tools, without building anything. The rules
//! are restated here as code rather than run through a JSON Schema engine: each finding then
//! says in words what is wrong and what would be right, and the one rule the spec states as
//! "exactly one of two kinds" (a source is an xcube store or a download) is reported by what
//! each kind lacks instead of one opaque "oneOf" failure.
//!
//! Our own extension, a source's `processing` block (and `sha256`), is not a departure: it
//! is checked against our schema (`schemas/processing.schema.json`) when the recipe is read.
//!
//! Findings are grouped by JSON path: one per place in the recipe, as a JSON Schema validator
//! counts them.

use std::path::Path;

use serde_json::{Map, Value};

use crate::recipe::Recipe;
use crate::GeoError;

/// Everything wrong at one place of the recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// JSONPath of the place, e.g. `$.properties.sources[3]`.
    pub path: String,
    /// What departs from the specification there.
    pub problems: Vec<String>,
}

/// Keys a source may carry for cryocube beyond the spec.
pub const OUR_SOURCE_KEYS: [&str; 2] = ["processing", "sha256"];

/// The departures of a recipe (the parsed JSON document) from the DeepESDL specification.
pub fn check(doc: &Value) -> Vec<Finding> {
    let mut c = Checker::default();
    c.feature(doc);
    c.findings
}

/// What `build --check` found in a recipe file.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Departures from the DeepESDL specification.
    pub findings: Vec<Finding>,
    /// Why cryocube cannot build it (our reading: grid, `processing` blocks, names), if so.
    pub error: Option<String>,
    /// What looks wrong but builds.
    pub warnings: Vec<String>,
}

impl CheckReport {
    /// Whether the recipe conforms and builds.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.error.is_none()
    }
}

/// Checks a recipe file against the specification and against what cryocube reads. Only an
/// unreadable file or text that is not JSON is an error here.
pub fn check_file(path: &Path) -> Result<CheckReport, GeoError> {
    let doc = read_json(path)?;
    let (error, warnings) = match Recipe::load(path) {
        Ok(r) => (None, r.warnings),
        Err(e) => (Some(e.to_string()), Vec::new()),
    };
    Ok(CheckReport {
        findings: check(&doc),
        error,
        warnings,
    })
}

/// Writes the grid's coverage polygon (CRS-84) into the recipe's `geometry`, changing
/// nothing else of the file, and returns it.
pub fn fix_geometry(path: &Path) -> Result<Value, GeoError> {
    let recipe = Recipe::load(path)?;
    let polygon = recipe
        .grid()
        .coverage_polygon()
        .ok_or_else(|| GeoError::Recipe {
            path: path.to_path_buf(),
            json_path: "$.properties.spatial_ref".into(),
            message: "its grid cannot be converted to longitude/latitude".into(),
        })?;
    let mut doc = read_json(path)?;
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("geometry".into(), polygon.clone());
    }
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
    text.push('\n');
    let io = |source: std::io::Error| GeoError::File {
        path: path.to_path_buf(),
        source,
    };
    // Written beside it, then renamed: a crash leaves the old recipe, never half a new one.
    let tmp = path.with_extension("geojson.cryocube-tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(polygon)
}

fn read_json(path: &Path) -> Result<Value, GeoError> {
    let text = std::fs::read_to_string(path).map_err(|source| GeoError::File {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| GeoError::Recipe {
        path: path.to_path_buf(),
        json_path: "$".into(),
        message: format!("not JSON: {e}"),
    })
}

#[derive(Default)]
struct Checker {
    findings: Vec<Finding>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a field must be.
#[derive(Clone, Copy)]
enum Want {
    Str,
    StrOrNull,
    Number,
    PositiveNumber,
    Bool,
    Object,
    /// An ISO date `YYYY-MM-DD`.
    Date,
}

impl Want {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Want::Str => v.is_string(),
            Want::StrOrNull => v.is_string() || v.is_null(),
            Want::Number => v.is_number(),
            Want::PositiveNumber => v.as_f64().is_some_and(|x| x > 0.0),
            Want::Bool => v.is_boolean(),
            Want::Object => v.is_object(),
            Want::Date => v.as_str().is_some_and(|s| {
                s.len() == 10 && cryocube_cube::cf::parse_date_or_time_us(s).is_some()
            }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Want::Str => "a string",
            Want::StrOrNull => "a string or null",
            Want::Number => "a number",
            Want::PositiveNumber => "a number above 0",
            Want::Bool => "true or false",
            Want::Object => "an object",
            Want::Date => "a date (YYYY-MM-DD)",
        }
    }
}

impl Checker {
    fn report(&mut self, path: &str, problem: String) {
        match self.findings.iter_mut().find(|f| f.path == path) {
            Some(f) => f.problems.push(problem),
            None => self.findings.push(Finding {
                path: path.to_string(),
                problems: vec![problem],
            }),
        }
    }

    /// Checks the fields of `obj` at `at`: `required` must be there, each known field must be
    /// what its rule says, and no other field may be there (`allowed` adds tolerated keys).
    fn fields(
        &mut self,
        at: &str,
        obj: &Map<String, Value>,
        required: &[&str],
        rules: &[(&str, Want)],
        allowed: &[&str],
    ) {
        for r in required {
            if !obj.contains_key(*r) {
                self.report(at, format!("{r} is required"));
            }
        }
        for (k, v) in obj {
            match rules.iter().find(|(name, _)| name == k) {
                Some((_, want)) if !want.accepts(v) => {
                    let nan = v.as_str().is_some_and(|t| t.eq_ignore_ascii_case("nan"));
                    let hint = if nan {
                        " (JSON has no NaN: leave it out, NaN is the default fill value)"
                    } else {
                        ""
                    };
                    self.report(
                        &format!("{at}.{k}"),
                        format!("{} is {}, not {}{hint}", show(v), kind(v), want.name()),
                    )
                }
                Some(_) => {}
                None if allowed.contains(&k.as_str()) || required.contains(&k.as_str()) => {}
                None => self.report(at, format!("{k} is not a field of the specification")),
            }
        }
    }

    /// A fixed-length array of `n` items each accepted by `want`.
    fn tuple(&mut self, at: &str, v: &Value, n: usize, want: Want, what: &str) {
        match v.as_array() {
            Some(a) if a.len() == n && a.iter().all(|x| want.accepts(x)) => {}
            _ => self.report(at, format!("{} is not {what}", show(v))),
        }
    }

    fn feature(&mut self, doc: &Value) {
        let Some(obj) = doc.as_object() else {
            self.report(
                "$",
                format!("a recipe is a GeoJSON Feature object, not {}", kind(doc)),
            );
            return;
        };
        self.fields("$", obj, &["type", "properties", "geometry"], &[], &[]);
        if let Some(t) = obj.get("type") {
            if t != "Feature" {
                self.report("$.type", format!("{} is not \"Feature\"", show(t)));
            }
        }
        if let Some(g) = obj.get("geometry") {
            self.geometry(g);
        }
        match obj.get("properties") {
            Some(Value::Object(p)) => self.properties(p),
            Some(other) => self.report("$.properties", format!("{} is not an object", kind(other))),
            None => {}
        }
    }

    fn geometry(&mut self, g: &Value) {
        let at = "$.geometry";
        let Some(obj) = g.as_object() else {
            self.report(
                at,
                format!(
                    "{} is {}, not the coverage polygon in CRS-84 longitude/latitude (`build --check --fix` writes it)",
                    show(g),
                    kind(g)
                ),
            );
            return;
        };
        self.fields(at, obj, &["type", "coordinates"], &[], &[]);
        match obj.get("type").and_then(Value::as_str) {
            Some("Polygon" | "MultiPolygon") | None => {}
            Some(t) => self.report(
                &format!("{at}.type"),
                format!("{t:?} is not Polygon or MultiPolygon"),
            ),
        }
        if let Some(c) = obj.get("coordinates") {
            // Rings of positions: at least one ring, each of at least three [lon, lat].
            let ok = c.as_array().is_some_and(|rings| {
                !rings.is_empty()
                    && rings.iter().all(|r| {
                        r.as_array().is_some_and(|pts| {
                            pts.len() >= 3
                                && pts.iter().all(|p| {
                                    p.as_array().is_some_and(|xy| {
                                        xy.len() == 2 && xy.iter().all(Value::is_number)
                                    })
                                })
                        })
                    })
            });
            if !ok {
                self.report(
                    &format!("{at}.coordinates"),
                    "is not a list of rings of at least three [longitude, latitude] pairs".into(),
                );
            }
        }
    }

    fn properties(&mut self, p: &Map<String, Value>) {
        let at = "$.properties";
        self.fields(
            at,
            p,
            &[
                "data_id",
                "title",
                "description",
                "version",
                "license",
                "variables",
                "sources",
            ],
            &[
                ("data_id", Want::Str),
                ("title", Want::Str),
                ("description", Want::Str),
                ("version", Want::Str),
                ("recipe", Want::Str),
                ("changes", Want::Str),
                ("license", Want::Str),
                ("metadata", Want::Object),
                ("time_period", Want::StrOrNull),
                ("spatial_ref", Want::Str),
            ],
            &[
                "time_range",
                "spatial_bbox",
                "spatial_res",
                "spatial_size",
                "spatial_offset",
            ],
        );
        if let Some(v) = p.get("time_range") {
            self.tuple(&format!("{at}.time_range"), v, 2, Want::Date, "two dates");
        }
        if let Some(v) = p.get("spatial_bbox") {
            self.tuple(
                &format!("{at}.spatial_bbox"),
                v,
                4,
                Want::Number,
                "four numbers",
            );
        }
        if let Some(v) = p.get("spatial_res") {
            if !Want::PositiveNumber.accepts(v) {
                self.tuple(
                    &format!("{at}.spatial_res"),
                    v,
                    2,
                    Want::PositiveNumber,
                    "a number above 0 or two of them",
                );
            }
        }
        if let Some(v) = p.get("spatial_size") {
            let ok = v.as_array().is_some_and(|a| {
                a.len() == 2 && a.iter().all(|x| x.as_u64().is_some_and(|n| n >= 2))
            });
            if !ok {
                self.report(
                    &format!("{at}.spatial_size"),
                    format!("{} is not two whole numbers of at least 2", show(v)),
                );
            }
        }
        if let Some(v) = p.get("spatial_offset") {
            self.tuple(
                &format!("{at}.spatial_offset"),
                v,
                2,
                Want::Number,
                "two numbers",
            );
        }
        match p.get("variables") {
            Some(Value::Array(vars)) if vars.is_empty() => {
                self.report(&format!("{at}.variables"), "lists no variable".into())
            }
            Some(Value::Array(vars)) => {
                for (i, v) in vars.iter().enumerate() {
                    self.variable(&format!("{at}.variables[{i}]"), v);
                }
            }
            Some(other) => self.report(
                &format!("{at}.variables"),
                format!("{} is not an array", kind(other)),
            ),
            None => {}
        }
        match p.get("sources") {
            Some(Value::Array(sources)) => {
                for (i, s) in sources.iter().enumerate() {
                    self.source(&format!("{at}.sources[{i}]"), s);
                }
            }
            Some(other) => self.report(
                &format!("{at}.sources"),
                format!("{} is not an array", kind(other)),
            ),
            None => {}
        }
    }

    fn variable(&mut self, at: &str, v: &Value) {
        let Some(obj) = v.as_object() else {
            self.report(at, format!("{} is not an object", kind(v)));
            return;
        };
        self.fields(
            at,
            obj,
            &["name", "long_name", "dtype", "dims"],
            &[
                ("name", Want::Str),
                ("long_name", Want::Str),
                ("dtype", Want::Str),
                ("units", Want::StrOrNull),
                ("fill_value", Want::Number),
                ("valid_min", Want::Number),
                ("valid_max", Want::Number),
                ("metadata", Want::Object),
            ],
            &["dims", "time_range"],
        );
        if let Some(d) = obj.get("dims") {
            if !d.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                self.report(
                    &format!("{at}.dims"),
                    format!("{} is not a list of names", show(d)),
                );
            }
        }
        if let Some(t) = obj.get("time_range") {
            self.tuple(&format!("{at}.time_range"), t, 2, Want::Date, "two dates");
        }
        if let Some(Value::Object(m)) = obj.get("metadata") {
            let at = format!("{at}.metadata");
            // Only the colour bar is ruled; other metadata are free.
            let names: Vec<String> = m.keys().cloned().collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            self.fields(
                &at,
                m,
                &["color_bar_name", "color_value_min", "color_value_max"],
                &[
                    ("color_bar_name", Want::Str),
                    ("color_value_min", Want::Number),
                    ("color_value_max", Want::Number),
                ],
                &names,
            );
        }
    }

    fn source(&mut self, at: &str, s: &Value) {
        let Some(obj) = s.as_object() else {
            self.report(at, format!("{} is not an object", kind(s)));
            return;
        };
        // The spec's two kinds of source; a source must be exactly one of them.
        const STORE: [&str; 5] = [
            "name",
            "variable_names",
            "store_id",
            "store_params",
            "data_params",
        ];
        const DOWNLOAD: [&str; 8] = [
            "name",
            "variables",
            "download_url",
            "protocol",
            "compressed",
            "compression_format",
            "source_format",
            "source_crs",
        ];
        let ours = |k: &str| OUR_SOURCE_KEYS.contains(&k);
        let download = obj.contains_key("download_url") || !obj.contains_key("store_id");
        let (required, known): (&[&str], &[&str]) = if download {
            (&["name", "variables", "download_url"], &DOWNLOAD)
        } else {
            (&["name", "variable_names", "store_id"], &STORE)
        };
        let what = if download {
            "a download source"
        } else {
            "an xcube store source"
        };
        for r in required {
            if !obj.contains_key(*r) {
                let hint = if *r == "variables" && obj.contains_key("variable_names") {
                    " (a mapping of cube variable to the source's name; variable_names is for xcube stores)"
                } else if *r == "store_id" {
                    " (or give download_url for a download source)"
                } else {
                    ""
                };
                self.report(at, format!("{what} needs {r}{hint}"));
            }
        }
        for (k, v) in obj {
            if ours(k) {
                continue;
            }
            if !known.contains(&k.as_str()) {
                self.report(at, format!("{what} has no field {k}"));
                continue;
            }
            let want = match k.as_str() {
                "name" | "store_id" | "download_url" | "protocol" | "compression_format"
                | "source_format" | "source_crs" => Want::Str,
                "compressed" => Want::Bool,
                "variables" | "store_params" | "data_params" => Want::Object,
                "variable_names" => {
                    if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                        self.report(at, format!("{k} {} is not a list of names", show(v)));
                    }
                    continue;
                }
                _ => continue,
            };
            // Reported at the source: the specification makes the whole source the place
            // that fails (it must be one of two kinds).
            if !want.accepts(v) {
                self.report(at, format!("{k} is {}, not {}", show(v), want.name()));
            }
        }
    }
}

/// A value as the user wrote it, shortened.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(doc: Value) -> Vec<String> {
        check(&doc).into_iter().map(|f| f.path).collect()
    }

    #[test]
    fn a_conforming_recipe_has_no_finding() {
        let doc = json!({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[0, -90], [90, -60], [180, -60], [0, -90]]]},
            "properties": {
                "data_id": "x", "title": "t", "description": "d", "version": "1", "license": "l",
                "spatial_ref": "EPSG:3031", "spatial_bbox": [0, 0, 1, 1], "spatial_res": 1,
                "time_range": ["2020-01-01", "2020-12-31"],
                "variables": [{"name": "a", "long_name": "A", "dtype": "float32", "dims": ["y", "x"],
                               "fill_value": -1, "metadata": {"color_bar_name": "viridis",
                               "color_value_min": 0, "color_value_max": 1, "other": 1}}],
                "sources": [
                    {"name": "s", "variables": {"a": "A"}, "download_url": "https://e/x.tif",
                     "processing": {"nodata": -1}},
                    {"name": "t", "variable_names": ["B"], "store_id": "cds"}
                ]
            }
        });
        assert_eq!(check(&doc), []);
    }

    #[test]
    fn departures_are_grouped_by_place() {
        let doc = json!({
            "type": "Feature", "geometry": null,
            "properties": {
                "title": "t", "spatial_res": [0, 1], "time_range": ["2020-01-01"],
                "variables": [{"name": "a", "dims": ["y", "x"], "fill_value": "nan"}],
                "sources": [{"name": "s", "variable_names": ["A"], "download_url": "u",
                             "credentials": null}]
            }
        });
        let f = check(&doc);
        assert_eq!(
            paths(doc),
            [
                "$.geometry",
                "$.properties",
                "$.properties.time_range",
                "$.properties.spatial_res",
                "$.properties.variables[0]",
                "$.properties.variables[0].fill_value",
                "$.properties.sources[0]",
            ]
        );
        let source = &f[6].problems;
        assert!(
            source.iter().any(|p| p.contains("needs variables")),
            "{source:?}"
        );
        assert!(
            source.iter().any(|p| p.contains("no field variable_names")),
            "{source:?}"
        );
        assert!(
            source.iter().any(|p| p.contains("no field credentials")),
            "{source:?}"
        );
        assert!(f[1].problems.iter().any(|p| p == "data_id is required"));
    }
}
