//! DASVader's JLD2 (Julia's HDF5-based format, after a 512-byte text user block): one scalar
//! compound `/dDAS` whose members are Julia objects. `data` and `htime` are HDF5 object
//! references, followed to their datasets; `time` and `offset` are Julia `StepRangeLen`s
//! (`ref` and `step` as `TwicePrecision` hi + lo, `len`, `offset`).
//!
//! | fact | field |
//! |---|---|
//! | samples, axis order | the dataset `data` refers to: Julia's (time x distance) matrix, stored by HDF5 as distance x time |
//! | sampling rate | 1 / `time.step` (hi + lo) |
//! | channel spacing, first channel | `offset.step`, `offset.ref` (value at index `offset.offset`) |
//! | start (UTC) | the first of the Julia `DateTime`s `htime` refers to (one per sample, ms since 0000-12-31) |
//!
//! Only these members are read (HDF5 converts the compound by member name); `atrib` (the Febus
//! header as Julia objects) and `name` are left alone. A dangling reference is an error naming
//! the member.

use std::path::Path;

use hdf5::{File, ObjectReference1, ReferencedObject};

use super::h5::{Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

/// Julia's `Base.TwicePrecision{Float64}`: a value as hi + lo.
#[derive(hdf5::H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct TwicePrecision {
    hi: f64,
    lo: f64,
}

impl TwicePrecision {
    fn value(self) -> f64 {
        self.hi + self.lo
    }
}

/// Julia's `StepRangeLen`: element i (1-based) is `ref + (i - offset) * step`.
#[derive(hdf5::H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct StepRangeLen {
    #[hdf5(rename = "ref")]
    reference: TwicePrecision,
    step: TwicePrecision,
    len: i64,
    offset: i64,
}

impl StepRangeLen {
    /// The first element (i = 1).
    fn first(self) -> f64 {
        self.reference.value() + (1 - self.offset) as f64 * self.step.value()
    }
}

/// The members of DASVader's `DASdata` read here.
#[derive(hdf5::H5Type, Clone, Debug)]
#[repr(C)]
struct DasData {
    data: ObjectReference1,
    time: StepRangeLen,
    htime: ObjectReference1,
    offset: StepRangeLen,
}

/// Julia's `Dates.DateTime` as JLD2 writes it: instant.periods.value, in milliseconds.
#[derive(hdf5::H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct Millisecond {
    value: i64,
}
#[derive(hdf5::H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct UtInstant {
    periods: Millisecond,
}
#[derive(hdf5::H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct DateTime {
    instant: UtInstant,
}

/// Milliseconds from Julia's epoch (0000-12-31T00:00:00, Rata Die 0) to 1970-01-01.
const JULIA_UNIX_EPOCH_MS: i64 = 62_135_683_200_000;

/// True for a DASVader file (a JLD2 with `/dDAS`).
pub(super) fn is_dasvader(f: &File) -> bool {
    f.link_exists("dDAS") && f.link_exists("_types")
}

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::DasVader,
    };
    let root = f.dataset(&file, "dDAS")?;
    let d: DasData = root
        .read_scalar()
        .map_err(|e| f.hdf5("dDAS (members data, time, htime, offset)", e))?;
    let follow = |r: &ObjectReference1, member: &str| -> Result<hdf5::Dataset, DasError> {
        match file.dereference(r) {
            Ok(ReferencedObject::Dataset(ds)) => Ok(ds),
            Ok(_) => Err(f.err(format!("dDAS.{member} refers to something not a dataset"))),
            Err(e) => Err(f.hdf5(format_args!("dDAS.{member}: a dangling reference"), e)),
        }
    };
    let data = follow(&d.data, "data")?;
    let htime: Vec<DateTime> = follow(&d.htime, "htime")?
        .read_raw()
        .map_err(|e| f.hdf5("dDAS.htime (Julia DateTimes)", e))?;
    let first_ms = htime
        .first()
        .ok_or_else(|| f.err("dDAS.htime holds no time"))?
        .instant
        .periods
        .value;
    let step = d.time.step.value();
    if !(step.is_finite() && step > 0.0) {
        return Err(f.err(format!("dDAS.time has step {step} s")));
    }
    let (n_samples, n_channels) = Matrix::dims(&data, true);
    if d.time.len as u64 != n_samples || d.offset.len as u64 != n_channels {
        return Err(f.err(format!(
            "dDAS.time ({}) and dDAS.offset ({}) do not match data of {n_samples} samples x {n_channels} channels",
            d.time.len, d.offset.len
        )));
    }
    let start_ms = first_ms.saturating_sub(JULIA_UNIX_EPOCH_MS);
    let header = Header {
        path: path.into(),
        format: Format::DasVader,
        sampling_rate: 1.0 / step,
        n_samples,
        n_channels,
        channel_spacing: d.offset.step.value(),
        first_distance: d.offset.first(),
        start_us: start_ms.saturating_mul(1000),
        units: "unknown".into(),
        layout: "dDAS.data (distance x time in HDF5 order)".into(),
        time_source: "dDAS.htime[1] (Julia DateTime)".into(),
        warnings: vec![],
        part: 0,
        distance_stated: true,
        facts: vec![],
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, data, true, 1.0, header)
}
