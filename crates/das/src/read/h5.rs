//! HDF5 plumbing shared by the vendor readers: opening with a clear error, layout detection,
//! header values stored as attributes or scalar datasets (numbers or strings of any HDF5 string
//! kind), and the 2-D sample matrix read by hyperslab in either axis order.

use std::path::{Path, PathBuf};

use hdf5::types::{FixedAscii, FixedUnicode, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Container, Dataset, File, Location};
use ndarray::s;

use super::{Format, Header};
use crate::DasError;

/// Stops the HDF5 library printing its error stack on the calling thread (HDF5 keeps that
/// setting per thread). Failures reach users as our errors; netCDF-4 files read through
/// netCDF or GDAL otherwise print pages of "HDF5-DIAG" for attributes they merely probe.
pub fn silence_diagnostics() {
    hdf5::silence_errors(true);
}

pub(super) fn open(path: &Path) -> Result<File, DasError> {
    File::open(path).map_err(|e| DasError::Hdf5 {
        path: path.into(),
        context: "not a readable HDF5 file (truncated or corrupt?)".into(),
        source: e,
    })
}

/// Detection by the groups and datasets each vendor always writes.
pub(super) fn detect(f: &File) -> Option<Format> {
    let has = |p: &str| f.link_exists(p);
    if super::dasdae::is_dasdae(f) {
        Some(Format::Dasdae)
    } else if super::gdr::is_gdr(f) {
        Some(Format::Gdr)
    } else if super::xdas::is_xdas(f) {
        Some(Format::Xdas)
    } else if super::jld2::is_dasvader(f) {
        Some(Format::DasVader)
    } else if has("Acquisition")
        && f.link_exists("Acquisition/Raw[0]")
        && f.link_exists("Acquisition/Raw[0]/RawData")
    {
        Some(Format::Prodml)
    } else if has("Acoustic") {
        let neubrex = f
            .dataset("Acoustic")
            .is_ok_and(|d| d.attr("InterrogationRate(Hz)").is_ok());
        Some(if neubrex {
            Format::Neubrex
        } else {
            Format::Silixa
        })
    } else if has("data") && has("header") && f.link_exists("header/dt") && has("demodSpec") {
        Some(Format::OptoDas)
    } else if has("data_product") && f.attr("file_version").is_ok() {
        Some(Format::Terra15)
    } else if has("DAS") && has("DAQ") && has("Metadata") && has("ProcessingServer") {
        Some(Format::ApSensing)
    } else if super::febus::zone_path(f).is_some() {
        Some(Format::Febus)
    } else if super::simple::names(f).is_some() {
        Some(Format::SimpleH5)
    } else {
        None
    }
}

/// Reads a string from an attribute or dataset of any HDF5 string kind (first element of an
/// array).
pub(super) fn string_of(c: &Container) -> Option<String> {
    let td = c.dtype().ok()?.to_descriptor().ok()?;
    let s = match td {
        TypeDescriptor::VarLenUnicode => c.read_raw::<VarLenUnicode>().ok()?.first()?.to_string(),
        TypeDescriptor::VarLenAscii => c.read_raw::<VarLenAscii>().ok()?.first()?.to_string(),
        TypeDescriptor::FixedUnicode(_) => c
            .read_raw::<FixedUnicode<1024>>()
            .ok()?
            .first()?
            .to_string(),
        TypeDescriptor::FixedAscii(_) => {
            c.read_raw::<FixedAscii<1024>>().ok()?.first()?.to_string()
        }
        _ => return None,
    };
    Some(s.trim_end_matches('\0').trim().to_string())
}

/// Reads every string of an attribute or dataset holding an array of strings (any HDF5
/// string kind).
pub(super) fn strings_of(c: &Container) -> Option<Vec<String>> {
    let td = c.dtype().ok()?.to_descriptor().ok()?;
    let list: Vec<String> = match td {
        TypeDescriptor::VarLenUnicode => c
            .read_raw::<VarLenUnicode>()
            .ok()?
            .iter()
            .map(|s| s.to_string())
            .collect(),
        TypeDescriptor::VarLenAscii => c
            .read_raw::<VarLenAscii>()
            .ok()?
            .iter()
            .map(|s| s.to_string())
            .collect(),
        TypeDescriptor::FixedUnicode(_) => c
            .read_raw::<FixedUnicode<1024>>()
            .ok()?
            .iter()
            .map(|s| s.to_string())
            .collect(),
        TypeDescriptor::FixedAscii(_) => c
            .read_raw::<FixedAscii<1024>>()
            .ok()?
            .iter()
            .map(|s| s.to_string())
            .collect(),
        _ => return None,
    };
    Some(
        list.iter()
            .map(|s| s.trim_end_matches('\0').trim().to_string())
            .collect(),
    )
}

/// Reads a number from an attribute or dataset (first element), or parses a string one.
pub(super) fn number_of(c: &Container) -> Option<f64> {
    let td = c.dtype().ok()?.to_descriptor().ok()?;
    match td {
        TypeDescriptor::Integer(_)
        | TypeDescriptor::Unsigned(_)
        | TypeDescriptor::Float(_)
        | TypeDescriptor::Boolean => c.read_raw::<f64>().ok()?.first().copied(),
        _ => string_of(c)?.trim().parse().ok(),
    }
}

/// Header lookups on one file with errors that name the file, the vendor and the field.
pub(super) struct Fields<'a> {
    pub path: &'a Path,
    pub format: Format,
}

impl Fields<'_> {
    pub(super) fn err(&self, message: impl Into<String>) -> DasError {
        DasError::Header {
            path: self.path.into(),
            format: self.format.name(),
            message: message.into(),
        }
    }

    /// A header error whose cause is the HDF5 library's (kept as the error's source).
    pub(super) fn hdf5(&self, what: impl std::fmt::Display, e: hdf5::Error) -> DasError {
        DasError::Hdf5 {
            path: self.path.into(),
            context: format!("{} header: {what}", self.format.name()),
            source: e,
        }
    }

    pub(super) fn attr_str(&self, loc: &Location, name: &str) -> Result<String, DasError> {
        loc.attr(name)
            .ok()
            .and_then(|a| string_of(&a))
            .ok_or_else(|| self.err(format!("missing or unreadable attribute `{name}`")))
    }

    pub(super) fn attr_num(&self, loc: &Location, name: &str) -> Result<f64, DasError> {
        loc.attr(name)
            .ok()
            .and_then(|a| number_of(&a))
            .ok_or_else(|| self.err(format!("missing or non-numeric attribute `{name}`")))
    }

    pub(super) fn ds_num(&self, f: &File, name: &str) -> Result<f64, DasError> {
        f.dataset(name)
            .ok()
            .and_then(|d| number_of(&d))
            .ok_or_else(|| self.err(format!("missing or non-numeric dataset `{name}`")))
    }

    pub(super) fn ds_str(&self, f: &File, name: &str) -> Result<String, DasError> {
        f.dataset(name)
            .ok()
            .and_then(|d| string_of(&d))
            .ok_or_else(|| self.err(format!("missing or unreadable dataset `{name}`")))
    }

    /// Header facts worth keeping (`das_<key>` attributes): each (key, attribute or dataset
    /// at `loc`, unit appended) that the file has, as text.
    pub(super) fn facts(
        &self,
        loc: &Location,
        wanted: &[(&str, &str, &str)],
    ) -> Vec<(String, String)> {
        wanted
            .iter()
            .filter_map(|(key, name, unit)| {
                let text = self
                    .attr_str(loc, name)
                    .ok()
                    .or_else(|| {
                        self.attr_num(loc, name)
                            .ok()
                            .map(cryocube_cube::cf::format_number)
                    })
                    .or_else(|| {
                        loc.as_group()
                            .ok()
                            .and_then(|g| g.dataset(name).ok())
                            .and_then(|d| {
                                string_of(&d)
                                    .or_else(|| number_of(&d).map(cryocube_cube::cf::format_number))
                            })
                    })?;
                let text = text.trim().to_string();
                (!text.is_empty()).then(|| {
                    let v = if unit.is_empty() {
                        text
                    } else {
                        format!("{text} {unit}")
                    };
                    (key.to_string(), v)
                })
            })
            .collect()
    }

    pub(super) fn dataset(&self, f: &File, name: &str) -> Result<Dataset, DasError> {
        f.dataset(name)
            .map_err(|e| self.hdf5(format_args!("dataset `{name}`"), e))
    }
}

/// Refuses a sample dataset whose elements are not real numbers (complex samples, stored as
/// a compound of real and imaginary parts; strings), when the file is opened: before
/// anything is planned or written. Returns the element type's numpy name.
pub(crate) fn check_sample_type(fields: &Fields, dataset: &Dataset) -> Result<String, DasError> {
    let td = dataset
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| fields.hdf5("sample dataset of an unreadable type", e))?;
    match td {
        TypeDescriptor::Integer(size) => Ok(format!("int{}", 8 * size as usize)),
        TypeDescriptor::Unsigned(size) => Ok(format!("uint{}", 8 * size as usize)),
        TypeDescriptor::Float(size) => Ok(format!("float{}", 8 * size as usize)),
        TypeDescriptor::Compound(c) => {
            let names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
            Err(fields.err(format!(
                "the samples are complex numbers (a compound of {}): cryocube das reads real time series (strain, strain rate, phase); convert them first",
                names.join(", ")
            )))
        }
        other => Err(fields.err(format!("the samples are of type {other}, not numbers"))),
    }
}

/// A 2-D sample matrix in an HDF5 file, time-major or channel-major.
pub(super) struct Matrix {
    path: PathBuf,
    dataset: Dataset,
    /// True when the file stores channels x samples.
    channel_major: bool,
    /// Factor from stored values to the vendor's physical units (1 for most layouts).
    scale: f32,
    /// The dataset's time index of the header's first sample (a part that starts later).
    first_row: u64,
    header: Header,
}

impl Matrix {
    /// `shape_time_channels` is (samples, channels) as the header says; the dataset must agree.
    pub(super) fn new(
        fields: &Fields,
        dataset: Dataset,
        channel_major: bool,
        scale: f32,
        header: Header,
    ) -> Result<Matrix, DasError> {
        let shape = dataset.shape();
        if shape.len() != 2 {
            return Err(fields.err(format!(
                "sample dataset has {} dimensions, expected 2",
                shape.len()
            )));
        }
        let stored = check_sample_type(fields, &dataset)?;
        let mut header = header.check()?;
        if scale == 1.0 {
            header.sample_type = Some(stored);
        }
        Ok(Matrix {
            path: fields.path.into(),
            dataset,
            channel_major,
            scale,
            first_row: 0,
            header,
        })
    }

    /// This matrix with its first sample at the dataset's time index `row` (a file's later
    /// part; the header says how many samples it has).
    pub(super) fn starting_at_row(mut self, row: u64) -> Matrix {
        self.first_row = row;
        self
    }

    /// (samples, channels) of a 2-D dataset given its axis order.
    pub(super) fn dims(dataset: &Dataset, channel_major: bool) -> (u64, u64) {
        let shape = dataset.shape();
        let (a, b) = (
            shape.first().copied().unwrap_or(0) as u64,
            shape.get(1).copied().unwrap_or(0) as u64,
        );
        if channel_major {
            (b, a)
        } else {
            (a, b)
        }
    }
}

impl super::DasReader for Matrix {
    fn header(&self) -> &Header {
        &self.header
    }

    fn read_block(
        &mut self,
        s0: u64,
        n: usize,
        c0: u64,
        c1: u64,
        out: &mut [f32],
    ) -> Result<(), DasError> {
        self.header.check_block(s0, n, c0, c1)?;
        let (s0u, c0u, c1u) = ((s0 + self.first_row) as usize, c0 as usize, c1 as usize);
        let width = c1u - c0u;
        let failed = |e: hdf5::Error| DasError::Hdf5 {
            path: self.path.clone(),
            context: format!("reading samples {s0}..{}", s0 + n as u64),
            source: e,
        };
        if self.channel_major {
            let a = self
                .dataset
                .read_slice_2d::<f32, _>(s![c0u..c1u, s0u..s0u + n])
                .map_err(failed)?;
            for (c, row) in a.outer_iter().enumerate() {
                for (t, v) in row.iter().enumerate() {
                    out[t * width + c] = *v * self.scale;
                }
            }
        } else {
            let a = self
                .dataset
                .read_slice_2d::<f32, _>(s![s0u..s0u + n, c0u..c1u])
                .map_err(failed)?;
            match a.as_slice() {
                Some(src) => out[..src.len()].copy_from_slice(src),
                None => {
                    for (o, v) in out.iter_mut().zip(a.iter()) {
                        *o = *v;
                    }
                }
            }
            if self.scale != 1.0 {
                out[..n * width].iter_mut().for_each(|v| *v *= self.scale);
            }
        }
        Ok(())
    }
}

/// Parses ISO 8601 / RFC 3339 with an offset (or `Z`) to UTC µs.
pub(super) fn parse_iso_utc(s: &str) -> Option<i64> {
    let s = s.trim();
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
        .or_else(|| {
            // Some vendors omit the zone: those strings are documented as UTC.
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| {
                    chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), f)
                        .ok()
                        .map(|t| t.and_utc().timestamp_micros())
                })
        })
}
