//! xdas netCDF (CF 1.9, written by xdas through h5netcdf): `/__values__` with its coordinates
//! as CF tie points (`@coordinate_interpolation`), linearly interpolated between them. The
//! `/time` and `/distance` datasets are netCDF dimension scales filled with zeros, never the
//! coordinates.
//!
//! | fact | field |
//! |---|---|
//! | axis order | the axis whose length matches the time tie points' last index + 1 |
//! | sampling rate | time tie points: (index span) / (time span), per continuous piece |
//! | start (UTC) | first time tie value, in the `@units` of `time_values` ("milliseconds since 2023-01-01 00:00:00") |
//! | channel spacing, first channel | distance tie points (one straight line) |
//! | units | `__values__@units` when given |
//!
//! xdas marks a gap by two tie points on consecutive indices whose times jump: each
//! continuous piece is one part of the file.

use std::path::Path;

use hdf5::File;

use super::h5::{parse_iso_utc, Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

const VALUES: &str = "__values__";

pub(super) fn is_xdas(f: &File) -> bool {
    f.dataset(VALUES)
        .is_ok_and(|d| d.attr("coordinate_interpolation").is_ok())
}

/// Tie points of one coordinate: (index, value), value in seconds since `epoch_us` for time
/// (kept apart so that steps are not lost in the epoch's digits) and metres for distance.
struct Ties {
    index: Vec<i64>,
    value: Vec<f64>,
    epoch_us: i64,
}

impl Ties {
    /// Continuous pieces: runs of tie points between jumps (consecutive indices).
    fn pieces(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        for k in 1..self.index.len() {
            if self.index[k] == self.index[k - 1] + 1 {
                out.push(start..k);
                start = k;
            }
        }
        out.push(start..self.index.len());
        out
    }

    /// First value and step per index over `r`, checked to be one straight line.
    fn line(&self, r: std::ops::Range<usize>, what: &str) -> Result<(f64, f64), String> {
        let (a, b) = (r.start, r.end - 1);
        let span = self.index[b] - self.index[a];
        if span <= 0 {
            return Err(format!(
                "{what}: a piece of one sample at index {} has no step",
                self.index[a]
            ));
        }
        let step = (self.value[b] - self.value[a]) / span as f64;
        for k in r {
            let expect = self.value[a] + step * (self.index[k] - self.index[a]) as f64;
            if (self.value[k] - expect).abs() > 1e-3 * step.abs() {
                return Err(format!(
                    "{what}: tie point at index {} is off the straight line (non-uniform {what} is not supported)",
                    self.index[k]
                ));
            }
        }
        Ok((self.value[a], step))
    }
}

/// `coordinate_interpolation`: "time: time_indices time_values distance: ..." as
/// (coordinate, indices dataset, values dataset).
fn mapping(text: &str) -> Vec<(String, String, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .chunks(3)
        .filter_map(|c| match c {
            [name, i, v] => Some((
                name.trim_end_matches(':').to_string(),
                i.to_string(),
                v.to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// CF `units` of a time: "<unit> since <date>" -> (seconds per unit, epoch in µs).
fn cf_time_units(units: &str) -> Option<(f64, i64)> {
    let (unit, since) = units.split_once(" since ")?;
    let per = match unit.trim() {
        "days" | "day" => 86400.0,
        "hours" | "hour" => 3600.0,
        "minutes" | "minute" => 60.0,
        "seconds" | "second" | "s" => 1.0,
        "milliseconds" | "millisecond" | "ms" => 1e-3,
        "microseconds" | "microsecond" | "us" => 1e-6,
        "nanoseconds" | "nanosecond" | "ns" => 1e-9,
        _ => return None,
    };
    let since = since.trim();
    let epoch_us = parse_iso_utc(since).or_else(|| parse_iso_utc(&format!("{since}T00:00:00")))?;
    Some((per, epoch_us))
}

fn ties(
    f: &Fields,
    file: &File,
    indices: &str,
    values: &str,
    time: bool,
) -> Result<Ties, DasError> {
    let index: Vec<i64> = f
        .dataset(file, indices)?
        .read_raw::<i64>()
        .map_err(|e| f.hdf5(indices, e))?;
    let ds = f.dataset(file, values)?;
    let mut value: Vec<f64> = ds.read_raw::<f64>().map_err(|e| f.hdf5(values, e))?;
    let mut epoch_us = 0;
    if time {
        let units = f.attr_str(&ds, "units")?;
        let (per, epoch) = cf_time_units(&units).ok_or_else(|| {
            f.err(format!(
                "/{values}: units {units:?} are not \"<unit> since <date>\""
            ))
        })?;
        value.iter_mut().for_each(|v| *v *= per);
        epoch_us = epoch;
    }
    if index.len() != value.len()
        || index.first().is_none_or(|i| *i < 0)
        || index.windows(2).any(|w| w[1] <= w[0])
    {
        return Err(f.err(format!(
            "/{indices} and /{values}: {} indices (increasing from 0 or more) for {} values",
            index.len(),
            value.len()
        )));
    }
    Ok(Ties {
        index,
        value,
        epoch_us,
    })
}

fn fields(path: &Path) -> Fields<'_> {
    Fields {
        path,
        format: Format::Xdas,
    }
}

/// The time tie points and which of their pieces are the file's parts.
fn time_ties(f: &Fields, file: &File) -> Result<(Ties, Ties), DasError> {
    let ds = f.dataset(file, VALUES)?;
    let text = f.attr_str(&ds, "coordinate_interpolation")?;
    let map = mapping(&text);
    let find = |name: &str| {
        map.iter().find(|(n, _, _)| n == name).ok_or_else(|| {
            f.err(format!(
                "@coordinate_interpolation {text:?} has no `{name}`"
            ))
        })
    };
    let (_, ti, tv) = find("time")?;
    let (_, di, dv) = find("distance")?;
    Ok((ties(f, file, ti, tv, true)?, ties(f, file, di, dv, false)?))
}

/// How many continuous pieces (parts) the file holds.
pub(super) fn parts(path: &Path, file: &File) -> Result<usize, DasError> {
    Ok(time_ties(&fields(path), file)?.0.pieces().len())
}

pub(super) fn open(path: &Path, file: File, part: usize) -> Result<Matrix, DasError> {
    let f = fields(path);
    let (time, distance) = time_ties(&f, &file)?;
    let ds = f.dataset(&file, VALUES)?;
    let shape = ds.shape();
    if shape.len() != 2 {
        return Err(f.err(format!("/{VALUES} has {} dimensions, not 2", shape.len())));
    }
    let n_time = (time.index[time.index.len() - 1] + 1) as usize;
    let n_distance = (distance.index[distance.index.len() - 1] + 1) as usize;
    let channel_major = if shape == [n_time, n_distance] {
        false
    } else if shape == [n_distance, n_time] {
        true
    } else {
        return Err(f.err(format!(
            "/{VALUES} is {} x {}, but the tie points describe {n_time} times x {n_distance} distances",
            shape[0], shape[1]
        )));
    };
    let pieces = time.pieces();
    let piece = pieces.get(part).cloned().ok_or_else(|| {
        f.err(format!(
            "no part {part}: the file holds {} continuous pieces",
            pieces.len()
        ))
    })?;
    let first_row = time.index[piece.start] as u64;
    let rows = (time.index[piece.end - 1] + 1) as u64 - first_row;
    let (t0, dt) = time.line(piece, "time").map_err(|m| f.err(m))?;
    let (d0, dd) = distance
        .line(0..distance.index.len(), "distance")
        .map_err(|m| f.err(m))?;
    let (_, n_channels) = Matrix::dims(&ds, channel_major);
    let header = Header {
        path: path.into(),
        format: Format::Xdas,
        sampling_rate: 1.0 / dt,
        n_samples: rows,
        n_channels,
        channel_spacing: dd,
        first_distance: d0,
        start_us: time.epoch_us + (t0 * 1e6).round() as i64,
        units: f
            .attr_str(&ds, "units")
            .unwrap_or_else(|_| "unknown".into()),
        layout: format!(
            "/{VALUES} ({}), rows {first_row}..{}",
            if channel_major {
                "distance x time"
            } else {
                "time x distance"
            },
            first_row + rows
        ),
        time_source: "time tie points (time_values)".into(),
        warnings: vec![],
        part,
        distance_stated: true,
        facts: vec![],
        distances: None,
        sample_type: None,
    };
    Ok(Matrix::new(&f, ds, channel_major, 1.0, header)?.starting_at_row(first_row))
}
