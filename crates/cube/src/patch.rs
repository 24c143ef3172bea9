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

use crate::store::{json_bytes as pretty, read_json, Location, Store};
use crate::{Attrs, CubeError};

/// Attributes whose deletion breaks the cube for its readers.
const PROTECTED: [&str; 3] = ["_ARRAY_DIMENSIONS", "grid_mapping", "coordinates"];
const DELETE: &str = "__delete__";

/// One change a patch makes to one attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// An attribute set (added or replaced).
    Set {
        /// Where: `.zattrs` or `VAR/.zattrs`.
        target: String,
        /// The attribute.
        key: String,
        /// Its value before, if it had one.
        old: Option<Value>,
        /// Its value after.
        new: Value,
    },
    /// An attribute removed (`__delete__`).
    Delete {
        /// Where: `.zattrs` or `VAR/.zattrs`.
        target: String,
        /// The attribute.
        key: String,
        /// Its value before.
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
    /// The changes, in the order they apply.
    pub changes: Vec<Change>,
    /// What the user should know (a value kept as it was, a target that does not exist).
    pub warnings: Vec<String>,
}

/// Reads a patch file (YAML, of which JSON is a subset).
pub fn load_patch(path: &Path) -> Result<Value, CubeError> {
    let text = std::fs::read_to_string(path).map_err(|e| CubeError::io(path, e))?;
    parse_patch(&text, path)
}

/// A patch from its text (YAML or JSON); `path` names it in messages.
pub fn parse_patch(text: &str, path: &Path) -> Result<Value, CubeError> {
    let patch = yaml_serde::from_str::<Value>(text).map_err(|e| CubeError::Invalid {
        path: path.to_path_buf(),
        message: format!("not a YAML or JSON patch: {e}"),
    })?;
    if !patch.get("metadata").is_some_and(Value::is_object) {
        return Err(CubeError::Invalid {
            path: path.to_path_buf(),
            message: "the patch has no `metadata` mapping (keys such as `.zattrs` or `VAR/.zattrs` under `metadata:`)".into(),
        });
    }
    Ok(patch)
}

/// Where a target's attributes live, as (key, member inside it) for each format.
enum Doc {
    /// Zarr v2: a whole `.zattrs` document.
    V2(String),
    /// Zarr v3: the `attributes` member of a `zarr.json`.
    V3(String),
}

impl Doc {
    fn read(&self, store: &dyn Store) -> Result<Attrs, CubeError> {
        let (key, member) = match self {
            Doc::V2(k) => (k, None),
            Doc::V3(k) => (k, Some("attributes")),
        };
        let v = read_json(store, key)?.unwrap_or_else(|| json!({}));
        let attrs = match member {
            Some(m) => v.get(m).cloned().unwrap_or(json!({})),
            None => v,
        };
        Ok(attrs.as_object().cloned().unwrap_or_default())
    }

    fn write(&self, store: &dyn Store, attrs: &Attrs) -> Result<(), CubeError> {
        match self {
            Doc::V2(k) => store.put(k, &pretty(&Value::Object(attrs.clone()))),
            Doc::V3(k) => {
                let mut v = read_json(store, k)?.unwrap_or_else(|| json!({}));
                v["attributes"] = Value::Object(attrs.clone());
                store.put(k, &pretty(&v))
            }
        }
    }
}

/// Applies (or with `dry_run` only reports) a patch to the cube at `location`.
pub fn apply(
    location: impl Into<Location>,
    patch: &Value,
    force: bool,
    dry_run: bool,
) -> Result<PatchReport, CubeError> {
    let store = location.into().open()?;
    let store = store.as_ref();
    let invalid = |message: String| CubeError::Invalid {
        path: store.path(),
        message,
    };
    let v3 = store.exists("zarr.json")?;
    if !v3 && !store.exists(".zgroup")? {
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
            (None, false) => Doc::V2(".zattrs".into()),
            (None, true) => Doc::V3("zarr.json".into()),
            (Some(v), false) if store.exists(&format!("{v}/.zarray"))? => {
                Doc::V2(format!("{v}/.zattrs"))
            }
            (Some(v), true) if store.exists(&format!("{v}/zarr.json"))? => {
                Doc::V3(format!("{v}/zarr.json"))
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
        let mut current = doc.read(store)?;
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
        doc.write(store, attrs)?;
    }
    consolidate(store, v3)?;
    Ok(report)
}

/// Rewrites the consolidated metadata from the documents in the store (last, atomically).
fn consolidate(store: &dyn Store, v3: bool) -> Result<(), CubeError> {
    let read = |key: &str| read_json(store, key);
    let names: Vec<String> = store
        .children()?
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    if v3 {
        let mut group = read("zarr.json")?.unwrap_or_else(|| json!({}));
        if group.get("consolidated_metadata").is_none() {
            return Ok(());
        }
        let mut meta = Attrs::new();
        for name in &names {
            if let Some(m) = read(&format!("{name}/zarr.json"))? {
                meta.insert(name.clone(), m);
            }
        }
        group["consolidated_metadata"]["metadata"] = Value::Object(meta);
        return store.put("zarr.json", &pretty(&group));
    }
    let mut meta = Attrs::new();
    for key in [".zgroup", ".zattrs"] {
        if let Some(v) = read(key)? {
            meta.insert(key.into(), v);
        }
    }
    for name in &names {
        for key in [".zarray", ".zattrs"] {
            if let Some(v) = read(&format!("{name}/{key}"))? {
                meta.insert(format!("{name}/{key}"), v);
            }
        }
    }
    store.put(
        ".zmetadata",
        &pretty(&json!({"metadata": meta, "zarr_consolidated_format": 1})),
    )
}
