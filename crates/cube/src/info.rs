//! The human summary of a cube printed by `cryocube info`: what a user checks before handing
//! a cube to xarray or a colleague (dims, chunks, coordinate ranges in UTC, attributes, size).

use std::fmt::Write as _;

use serde_json::Value;

use crate::cf::{decode_time, format_utc_us};
use crate::{CubeError, CubeReader, ZarrFormat};

/// The name of a CF grid-mapping variable's CRS (from its WKT), with its EPSG code if stated.
fn crs_name(attrs: &crate::Attrs) -> Option<String> {
    let wkt = attrs
        .get("crs_wkt")
        .or_else(|| attrs.get("spatial_ref"))
        .and_then(Value::as_str)?;
    let name = wkt.split('"').nth(1)?;
    // The outermost AUTHORITY / ID is the last one in the WKT.
    let code = wkt
        .rfind("AUTHORITY[\"EPSG\",\"")
        .map(|i| &wkt[i + 18..])
        .and_then(|r| r.split('"').next())
        .map(|c| format!(" (EPSG:{c})"))
        .unwrap_or_default();
    Some(format!("{name}{code}"))
}

/// Renders the summary of an open cube. Its size is the sum of every key's: on S3 that lists
/// the whole prefix (a request per thousand keys), so it is left out unless `size` is asked
/// for; the rest reads the consolidated metadata and the coordinates only.
pub fn render(cube: &CubeReader, size: bool) -> Result<String, CubeError> {
    let mut out = String::new();
    let fmt = match cube.format() {
        ZarrFormat::V2 => "Zarr v2 (consolidated)".to_string(),
        ZarrFormat::V3 { sharded } => format!("Zarr v3{}", if sharded { " (sharded)" } else { "" }),
    };
    let _ = writeln!(out, "cube:    {}", cube.path().display());
    let _ = writeln!(out, "format:  {fmt}");
    if !cube.is_complete() {
        let _ = writeln!(
            out,
            "status:  INCOMPLETE (the run that wrote it did not finish; run it again to resume)"
        );
    }
    if size || cube.location().as_local().is_some() {
        let _ = writeln!(
            out,
            "size:    {} on disk",
            human_bytes(cube.size_on_disk()?)
        );
    } else {
        let _ = writeln!(
            out,
            "size:    not summed (it lists every object; `cryocube info --size` does)"
        );
    }

    // Dimensions, in the order the data variables use them.
    let mut dims: Vec<(String, u64)> = Vec::new();
    let mut by_rank: Vec<_> = cube.arrays().iter().collect();
    by_rank.sort_by_key(|a| std::cmp::Reverse(a.dims.len()));
    for a in by_rank {
        for (d, n) in a.dims.iter().zip(&a.shape) {
            if !dims.iter().any(|(x, _)| x == d) {
                dims.push((d.clone(), *n));
            }
        }
    }
    let dim_text: Vec<String> = dims.iter().map(|(d, n)| format!("{d}: {n}")).collect();
    let _ = writeln!(out, "dims:    {}", dim_text.join(", "));
    if let Some(name) = cube.array("crs").and_then(|c| crs_name(&c.attrs)) {
        let _ = writeln!(out, "crs:     {name}");
    }
    if let (Some(x), Some(_)) = (cube.array("x"), cube.array("y")) {
        let (xs, ys) = (cube.read_all_f64("x")?, cube.read_all_f64("y")?);
        if xs.len() > 1 && ys.len() > 1 {
            let (dx, dy) = ((xs[1] - xs[0]).abs(), (ys[1] - ys[0]).abs());
            let (x0, x1) = (xs[0].min(xs[xs.len() - 1]), xs[0].max(xs[xs.len() - 1]));
            let (y0, y1) = (ys[0].min(ys[ys.len() - 1]), ys[0].max(ys[ys.len() - 1]));
            let units = x.attrs.get("units").and_then(Value::as_str).unwrap_or("");
            let _ =
                writeln!(
                out,
                "grid:    {} x {} cells of {} x {} {units}, cell edges x {} .. {}, y {} .. {}{}",
                xs.len(),
                ys.len(),
                fmt_num(dx),
                fmt_num(dy),
                fmt_num(x0 - dx / 2.0),
                fmt_num(x1 + dx / 2.0),
                fmt_num(y0 - dy / 2.0),
                fmt_num(y1 + dy / 2.0),
                if ys[0] > ys[1] { " (north-up)" } else { " (south-up)" }
            );
        }
    }

    // 1-D arrays are coordinates (dimension coordinates and auxiliary ones like `channel`).
    let is_coord = |_: &str, dims: &[String]| dims.len() == 1;
    let _ = writeln!(out, "coordinates:");
    for a in cube.arrays().iter().filter(|a| is_coord(&a.name, &a.dims)) {
        let units = match a.attrs.get("units").and_then(Value::as_str) {
            Some("1") | None => "",
            Some(u) => u,
        };
        let range = if a.shape.first().is_none_or(|n| *n == 0) {
            "(empty)".to_string()
        } else if units.contains(" since ") {
            let raw = cube.read_all_f64(&a.name)?;
            match decode_time(&raw, units) {
                Some(t) => {
                    let secs: Vec<f64> = t.iter().map(|&u| u as f64 / 1e6).collect();
                    let step = match regular_step(&secs) {
                        _ if t.len() < 2 => String::new(),
                        Some(s) => format!(", step {s} s"),
                        None => format!(", irregular: {}", listed(&t, |&u| format_utc_us(u))),
                    };
                    format!(
                        "{} .. {} UTC{step}",
                        format_utc_us(t[0]),
                        format_utc_us(t[t.len() - 1])
                    )
                }
                None => format!("undecodable units {units:?}"),
            }
        } else {
            let v = cube.read_all_f64(&a.name)?;
            let step = match regular_step(&v) {
                _ if v.len() < 2 => String::new(),
                Some(s) => format!(", step {}", fmt_num(s)),
                None => format!(", irregular: {}", listed(&v, |x| fmt_num(*x))),
            };
            let units = if units.is_empty() {
                String::new()
            } else {
                format!(" {units}")
            };
            format!(
                "{} .. {}{units}{step}",
                fmt_num(v[0]),
                fmt_num(v[v.len() - 1])
            )
        };
        let _ = writeln!(
            out,
            "  {:<12} ({}) {:<8} {range}",
            a.name,
            a.dims.join(", "),
            a.dtype.v3_name()
        );
    }
    let _ = writeln!(out, "variables:");
    for a in cube.arrays().iter().filter(|a| !is_coord(&a.name, &a.dims)) {
        let units = a.attrs.get("units").and_then(Value::as_str).unwrap_or("-");
        let shard = a
            .shard
            .as_ref()
            .map(|s| format!(" shards {s:?}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<12} ({}) {} units {units:?} chunks {:?}{shard}",
            a.name,
            a.dims.join(", "),
            a.dtype.v3_name(),
            a.chunks
        );
        if let Some(p) = crate::pack::Packing::of(a) {
            // Readers unpack these; say what the integers stand for and how exactly.
            let (lo, hi) = p.range();
            let _ = writeln!(
                out,
                "      packed: value = {} + code x {} (at most {} off), {} .. {}",
                fmt_num(p.offset),
                fmt_num(p.step),
                fmt_num(p.step / 2.0),
                p.show(lo),
                p.show(hi)
            );
        }
        if let Some(f) = a.attrs.get("valid_fraction").and_then(Value::as_f64) {
            let _ = writeln!(out, "      NaN: {:.2} % of the cells", 100.0 * (1.0 - f));
        }
        for (k, v) in &a.attrs {
            match v {
                // Provenance lists (processing steps, input files): one item per line.
                Value::Array(items) if items.iter().all(Value::is_string) && !items.is_empty() => {
                    let _ = writeln!(out, "      {k}:");
                    for item in items {
                        let _ = writeln!(out, "        - {}", short(item));
                    }
                }
                _ if k == "units" => {}
                _ => {
                    let _ = writeln!(out, "      {k}: {}", short(v));
                }
            }
        }
    }
    let _ = writeln!(out, "attributes:");
    for (k, v) in cube.attrs() {
        let _ = writeln!(out, "  {k}: {}", short(v));
    }
    Ok(out)
}

/// The step of evenly spaced values, `None` when the spacing varies. Spacings may differ by
/// float32 rounding of the values or a ten-thousandth of the step (microsecond rounding of
/// times) and still count as one step.
fn regular_step(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let step = (v[v.len() - 1] - v[0]) / (v.len() - 1) as f64;
    let largest = v.iter().fold(0f64, |m, x| m.max(x.abs()));
    let tolerance = step.abs() * 1e-4 + largest * f64::from(f32::EPSILON);
    v.windows(2)
        .all(|w| ((w[1] - w[0]) - step).abs() <= tolerance)
        .then_some(step)
}

/// The values of an irregular axis, the first twelve and a count of the rest.
fn listed<T>(v: &[T], show: impl Fn(&T) -> String) -> String {
    const SHOWN: usize = 12;
    let mut items: Vec<String> = v.iter().take(SHOWN).map(show).collect();
    if v.len() > SHOWN {
        items.push(format!("… ({} more)", v.len() - SHOWN));
    }
    items.join(", ")
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 160 {
        format!(
            "{}… ({} characters)",
            s.chars().take(150).collect::<String>(),
            s.chars().count()
        )
    } else {
        s
    }
}

fn fmt_num(x: f64) -> String {
    if x == x.round() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{:.6}", x).trim_end_matches('0').to_string()
    }
}

/// Bytes as B/KiB/MiB/GiB with one decimal.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_regular_or_listed() {
        // Float32 coordinates of a 100 m grid near 2,000 km and microsecond-rounded times.
        let x: Vec<f64> = (0..500)
            .map(|i| (2.0e6f64 + 100.0 * i as f64) as f32 as f64)
            .collect();
        assert_eq!(regular_step(&x).map(f64::round), Some(100.0));
        let t = [0.0, 0.000_001 + 1.0 / 3.0, 2.0 / 3.0, 1.0];
        assert!(regular_step(&t).is_some());
        // January and July: not a step of 181 days.
        let months = [0.0, 181.0 * 86400.0, 365.0 * 86400.0];
        assert_eq!(regular_step(&months), None);
        assert_eq!(regular_step(&[1.0]), None);
        let many: Vec<i32> = (0..20).collect();
        assert_eq!(
            listed(&many, |v| v.to_string()),
            "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, … (8 more)"
        );
    }
}
