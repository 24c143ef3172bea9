//! DASDAE 1, DASCore's own HDF5 (PyTables): one group per patch under `/waveforms`, each with
//! `data`, `_coord_time` and `_coord_distance`. Several patches are several parts of the file,
//! in the order of their group names (DASCore names them by start time).
//!
//! | fact | field |
//! |---|---|
//! | axis order | the patch's `@_dims` (`time,distance` or `distance,time`) |
//! | sampling rate | from `_coord_time` (int64 ns): (n - 1) / (t_last - t_first) |
//! | channel spacing, first channel | `_coord_distance` (must be evenly spaced) |
//! | start (UTC) | `_coord_time[0]` |
//! | units | `@_attrs_data_units`; data type `@_attrs_data_type` |
//!
//! DASCore also stores the coordinates pickled in `@_attrs_coords`. A pickle runs code when
//! loaded, so it is never read: a patch without the coordinate datasets is refused.

use std::path::Path;

use cryocube_cube::cf::format_number;
use hdf5::File;

use super::h5::{Fields, Matrix};
use super::{spacing_of, Format, Header};
use crate::DasError;

/// True for a file DASCore wrote as DASDAE.
pub(super) fn is_dasdae(f: &File) -> bool {
    f.attr("__format__")
        .ok()
        .and_then(|a| super::h5::string_of(&a))
        .is_some_and(|s| s == "DASDAE")
        && f.link_exists("waveforms")
}

/// The patch groups, in name (= start time) order.
pub(super) fn patches(path: &Path, file: &File) -> Result<Vec<String>, DasError> {
    let f = fields(path);
    let group = file
        .group("waveforms")
        .map_err(|e| f.hdf5("waveforms", e))?;
    let mut names = group.member_names().map_err(|e| f.hdf5("waveforms", e))?;
    names.sort();
    if names.is_empty() {
        return Err(f.err("no patch under /waveforms"));
    }
    Ok(names)
}

fn fields(path: &Path) -> Fields<'_> {
    Fields {
        path,
        format: Format::Dasdae,
    }
}

pub(super) fn open(path: &Path, file: File, part: usize) -> Result<Matrix, DasError> {
    let f = fields(path);
    let names = patches(path, &file)?;
    let name = names.get(part).ok_or_else(|| {
        f.err(format!(
            "no patch {part}: the file holds {} patches",
            names.len()
        ))
    })?;
    let at = format!("waveforms/{name}");
    let patch = file.group(&at).map_err(|e| f.hdf5(&at, e))?;
    let dims = f.attr_str(&patch, "_dims")?;
    let dims: Vec<&str> = dims.split(',').map(str::trim).collect();
    let channel_major = match dims.as_slice() {
        ["time", "distance"] => false,
        ["distance", "time"] => true,
        other => {
            return Err(f.err(format!(
                "patch {name}: dimensions {other:?}; cryocube das reads (time, distance) patches"
            )))
        }
    };
    let coord = |c: &str| -> Result<hdf5::Dataset, DasError> {
        let p = format!("{at}/_coord_{c}");
        file.dataset(&p).map_err(|_| {
            f.err(format!(
                "patch {name}: no `_coord_{c}` dataset (its coordinates are only in the pickled `_attrs_coords`, which cryocube never unpickles)"
            ))
        })
    };
    let times: Vec<i64> = coord("time")?
        .read_raw::<i64>()
        .map_err(|e| f.hdf5(format_args!("{at}/_coord_time"), e))?;
    let distances: Vec<f64> = coord("distance")?
        .read_raw::<f64>()
        .map_err(|e| f.hdf5(format_args!("{at}/_coord_distance"), e))?;
    let ds = f.dataset(&file, &format!("{at}/data"))?;
    let (n_samples, n_channels) = Matrix::dims(&ds, channel_major);
    if times.len() as u64 != n_samples || distances.len() as u64 != n_channels {
        return Err(f.err(format!(
            "patch {name}: {} times and {} distances for data of {n_samples} samples x {n_channels} channels",
            times.len(),
            distances.len()
        )));
    }
    let span_ns = times.last().copied().unwrap_or(0) - times.first().copied().unwrap_or(0);
    if times.len() < 2 || span_ns <= 0 {
        return Err(f.err(format!(
            "patch {name}: `_coord_time` has fewer than two increasing times"
        )));
    }
    let (first_distance, spacing) =
        spacing_of(&distances).map_err(|m| f.err(format!("patch {name}: {m}")))?;
    // Strings, or numbers (DASCore writes either); `N.` is a pickled None.
    let attr = |n: &str| {
        f.attr_str(&patch, n)
            .ok()
            .or_else(|| f.attr_num(&patch, n).ok().map(format_number))
            .filter(|s| !s.is_empty() && s != "N.")
    };
    let mut facts = Vec::new();
    for (key, attr_name) in [
        ("data_type", "_attrs_data_type"),
        ("instrument", "_attrs_instrument_id"),
        ("gauge_length", "_attrs_gauge_length"),
    ] {
        if let Some(v) = attr(attr_name) {
            facts.push((key.to_string(), v));
        }
    }
    let header = Header {
        path: path.into(),
        format: Format::Dasdae,
        sampling_rate: (times.len() - 1) as f64 * 1e9 / span_ns as f64,
        n_samples,
        n_channels,
        channel_spacing: spacing,
        first_distance,
        start_us: (times[0] as f64 / 1e3).round() as i64,
        units: attr("_attrs_data_units").unwrap_or_else(|| "unknown".into()),
        layout: format!(
            "/{at}/data ({})",
            if channel_major {
                "distance x time"
            } else {
                "time x distance"
            }
        ),
        time_source: "_coord_time[0]".into(),
        warnings: vec![],
        part,
        distance_stated: true,
        facts,
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, channel_major, 1.0, header)
}
