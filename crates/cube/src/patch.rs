//! `cryocube patch`: attribute changes to a published cube, with `xcube patch` semantics and
//! the validation xcube lacks.
//!
//! A patch (YAML or JSON) is `{"zarr_consolidated_format": 1, "metadata": {KEY: ATTRS}}` where
//! KEY is `.zattrs` (global) or `VAR/.zattrs`; each attribute replaces the old value and the
//! string `__delete__` removes it; other keys are ignored with a warning, unknown variables
//! warned about and skipped. Unlike xcube we validate: `units` must be a string (a number is
//! turned into one, with a warning), and deleting `_ARRAY_DIMENSIONS`, `grid_mapping` or
//! `coordinates` (which hides the CRS from rioxarray and GDAL, the published Polar cube's defect)
//! is refused without `force`. Only attribute documents are rewritten (never `.zarray`, so cubes
//! written by other tools keep their codecs), each atomically, and the consolidated metadata
//! last.

use std::path::Path;

use serde_json::{json, Value};

use crate::read::read_json;
use crate::write::put_atomic;
use crate::{Attrs, CubeError};

/// Attributes whose deletion breaks the cube for its readers.
const PROTECTED: [&str; 3] = ["_ARRAY_DIMENSIONS", "grid_mapping", "coordinates"];
const DELETE: &str = "__delete__";

/// One change to one attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Set {
        target: String,
        key: String,
        old: Option<Value>,
        new: Value,
    },
    Delete {
        target: String,
        key: String,
        old: Value,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Set {
                target,
                key,
                old: None,
                new,
            } => write!(f, "{target}: + {key} = {new}"),
            Change::Set {
                target,
                key,
                old: Some(old),
                new,
            } => write!(f, "{target}: ~ {key} = {new} (was {old})"),
            Change::Delete { target, key, old } => write!(f, "{target}: - {key} (was {old})"),
        }
    }
}

/// What a patch did (or would do, with `dry_run`).
#[derive(Clone, Debug, Default)]
pub struct PatchReport {
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
}

/// Reads a patch file (YAML, of which JSON is a subset).
pub fn load_patch(path: &Path) -> Result<Value, CubeError> {
    let text = std::fs::read_to_string(path).map_err(|e| CubeError::io(path, e))?;
    serde_yaml::from_str::<Value>(&text).map_err(|e| CubeError::Invalid {
        path: path.to_path_buf(),
        message: format!("not a YAML or JSON patch: {e}"),
    })
}

/// Where a target's attributes live, as (file, JSON pointer inside it) for each format.
enum Doc {
    /// Zarr v2: a whole `.zattrs` file.
    V2(std::path::PathBuf),
    /// Zarr v3: the `attributes` member of a `zarr.json`.
    V3(std::path::PathBuf),
}

impl Doc {
    fn read(&self) -> Result<Attrs, CubeError> {
        let (path, member) = match self {
            Doc::V2(p) => (p, None),
            Doc::V3(p) => (p, Some("attributes")),
        };
        let v = read_json(path)?.unwrap_or_else(|| json!({}));
        let attrs = match member {
            Some(m) => v.get(m).cloned().unwrap_or(json!({})),
            None => v,
        };
        Ok(attrs.as_object().cloned().unwrap_or_default())
    }

    fn write(&self, attrs: &Attrs) -> Result<(), CubeError> {
        match self {
            Doc::V2(p) => put_atomic(p, &pretty(&Value::Object(attrs.clone()))),
            Doc::V3(p) => {
                let mut v: Value =
                    serde_json::from_slice(&std::fs::read(p).map_err(|e| CubeError::io(p, e))?)
                        .map_err(|e| CubeError::Invalid {
                            path: p.clone(),
                            message: e.to_string(),
                        })?;
                v["attributes"] = Value::Object(attrs.clone());
                put_atomic(p, &pretty(&v))
            }
        }
    }
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("JSON values serialise");
    b.push(b'\n');
    b
}

/// Applies (or with `dry_run` only reports) a patch to the cube at `root`.
pub fn apply(
    root: &Path,
    patch: &Value,
    force: bool,
    dry_run: bool,
) -> Result<PatchReport, CubeError> {
    let invalid = |message: String| CubeError::Invalid {
        path: root.to_path_buf(),
        message,
    };
    let v3 = root.join("zarr.json").exists();
    if !v3 && !root.join(".zgroup").exists() {
        return Err(invalid(
            "not a published cube (no .zgroup or zarr.json)".into(),
        ));
    }
    let mut report = PatchReport::default();
    if let Some(f) = patch.get("zarr_consolidated_format") {
        if f != &json!(1) {
            report.warnings.push(format!(
                "zarr_consolidated_format is {f}, expected 1; applied anyway"
            ));
        }
    }
    let metadata = patch
        .get("metadata")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("the patch has no `metadata` mapping".into()))?;
    let mut updates: Vec<(String, Doc, Attrs)> = Vec::new();
    for (key, attrs) in metadata {
        let target = if key == ".zattrs" {
            Some(("(global)".to_string(), None))
        } else {
            key.strip_suffix("/.zattrs")
                .filter(|v| !v.contains('/') && !v.is_empty())
                .map(|v| (v.to_string(), Some(v.to_string())))
        };
        let Some((label, var)) = target else {
            report.warnings.push(format!(
                "{key}: only .zattrs and VAR/.zattrs are patched; ignored"
            ));
            continue;
        };
        let doc = match (&var, v3) {
            (None, false) => Doc::V2(root.join(".zattrs")),
            (None, true) => Doc::V3(root.join("zarr.json")),
            (Some(v), false) if root.join(v).join(".zarray").exists() => {
                Doc::V2(root.join(v).join(".zattrs"))
            }
            (Some(v), true) if root.join(v).join("zarr.json").exists() => {
                Doc::V3(root.join(v).join("zarr.json"))
            }
            (Some(v), _) => {
                report
                    .warnings
                    .push(format!("{v}: no such variable in the cube; skipped"));
                continue;
            }
        };
        let Some(changes) = attrs.as_object() else {
            report
                .warnings
                .push(format!("{key}: not a mapping of attributes; ignored"));
            continue;
        };
        let mut current = doc.read()?;
        for (k, new) in changes {
            let old = current.get(k).cloned();
            if new == &json!(DELETE) {
                let Some(old) = old else { continue };
                if PROTECTED.contains(&k.as_str()) && !force {
                    report.warnings.push(format!(
                        "{label}: not deleting `{k}` (readers need it to find the CRS or dims); use --force to delete it"
                    ));
                    continue;
                }
                current.remove(k);
                report.changes.push(Change::Delete {
                    target: label.clone(),
                    key: k.clone(),
                    old,
                });
                continue;
            }
            let mut new = new.clone();
            if k == "units" && !new.is_string() {
                let text = match &new {
                    Value::Number(n) => n.to_string(),
                    other => other.to_string(),
                };
                report.warnings.push(format!(
                    "{label}: units {new} is not a string; stored as \"{text}\" (UDUNITS strings only)"
                ));
                new = json!(text);
            }
            if old.as_ref() == Some(&new) {
                continue;
            }
            current.insert(k.clone(), new.clone());
            report.changes.push(Change::Set {
                target: label.clone(),
                key: k.clone(),
                old,
                new,
            });
        }
        updates.push((label, doc, current));
    }
    if dry_run || report.changes.is_empty() {
        return Ok(report);
    }
    for (_, doc, attrs) in &updates {
        doc.write(attrs)?;
    }
    consolidate(root, v3)?;
    Ok(report)
}

/// Rewrites the consolidated metadata from the documents on disk (last, atomically).
fn consolidate(root: &Path, v3: bool) -> Result<(), CubeError> {
    let read = read_json;
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .map_err(|e| CubeError::io(root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    if v3 {
        let path = root.join("zarr.json");
        let mut group = read(&path)?.unwrap_or_else(|| json!({}));
        if group.get("consolidated_metadata").is_none() {
            return Ok(());
        }
        let mut meta = Attrs::new();
        for d in &dirs {
            if let Some(m) = read(&d.join("zarr.json"))? {
                let name = d
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                meta.insert(name, m);
            }
        }
        group["consolidated_metadata"]["metadata"] = Value::Object(meta);
        return put_atomic(&path, &pretty(&group));
    }
    let mut meta = Attrs::new();
    for key in [".zgroup", ".zattrs"] {
        if let Some(v) = read(&root.join(key))? {
            meta.insert(key.into(), v);
        }
    }
    for d in &dirs {
        let name = d
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        for key in [".zarray", ".zattrs"] {
            if let Some(v) = read(&d.join(key))? {
                meta.insert(format!("{name}/{key}"), v);
            }
        }
    }
    put_atomic(
        &root.join(".zmetadata"),
        &pretty(&json!({"metadata": meta, "zarr_consolidated_format": 1})),
    )
}
