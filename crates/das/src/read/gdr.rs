//! GDR / DAS-RCN (the DOE Geothermal Data Repository layout, DAS-RCN metadata):
//! `/DasRawData/RawData` with `/DasRawData/DasTimeArray` and string-valued attributes under
//! `/DasMetadata`. Numbers are stored as strings ("1000", "1.021"), and "NaN" means "not given".
//!
//! | fact | field |
//! |---|---|
//! | axis order | `RawData@DasDimensions` (`time step, locus` or `locus, time step`) |
//! | sampling rate | `Interrogator/Acquisition@AcquisitionSampleRate`, else from `DasTimeArray` |
//! | channel spacing | `Interrogator/Acquisition@SpatialSamplingInterval` |
//! | first channel | not in the file: channel 0 at 0 m (as DASCore), unless `--first-distance` |
//! | start (UTC) | `DasTimeArray[0]` (uint64 ns), else `@AcquisitionStartTime` |
//! | units | `@UnitOfMeasure` (unless "NaN"); gauge length `@GaugeLength` |
//!
//! The file's `Count` and `LastUsableChannelID` are not checked against the data: the sample
//! files trimmed for tests keep the originals' values.

use std::path::Path;

use hdf5::File;

use super::h5::{parse_iso_utc, Fields, Matrix};
use super::{Format, Header};
use crate::DasError;

const ACQUISITION: &str = "DasMetadata/Interrogator/Acquisition";

pub(super) fn is_gdr(f: &File) -> bool {
    f.link_exists("DasRawData")
        && f.link_exists("DasRawData/RawData")
        && f.link_exists("DasMetadata")
}

pub(super) fn open(path: &Path, file: File) -> Result<Matrix, DasError> {
    let f = Fields {
        path,
        format: Format::Gdr,
    };
    let acq = file
        .group(ACQUISITION)
        .map_err(|e| f.hdf5(ACQUISITION, e))?;
    // "NaN" is how the standard writes "not given".
    let given = |name: &str| f.attr_str(&acq, name).ok().filter(|s| s != "NaN");
    let ds = f.dataset(&file, "DasRawData/RawData")?;
    let dims = ds
        .attr("DasDimensions")
        .ok()
        .and_then(|a| super::h5::strings_of(&a))
        .unwrap_or_default();
    let channel_major = dims.first().is_some_and(|d| d.contains("locus"));
    let (n_samples, n_channels) = Matrix::dims(&ds, channel_major);
    let times: Option<Vec<u64>> = file
        .dataset("DasRawData/DasTimeArray")
        .ok()
        .and_then(|t| t.read_raw::<u64>().ok())
        .filter(|t| !t.is_empty());
    let fs = match f.attr_num(&acq, "AcquisitionSampleRate") {
        Ok(v) => v,
        Err(e) => match &times {
            Some(t) if t.len() >= 2 && t[t.len() - 1] > t[0] => {
                (t.len() - 1) as f64 * 1e9 / (t[t.len() - 1] - t[0]) as f64
            }
            _ => return Err(e),
        },
    };
    let (start_us, time_source) = match &times {
        Some(t) => ((t[0] as f64 / 1e3).round() as i64, "DasTimeArray[0]"),
        None => (
            given("AcquisitionStartTime")
                .and_then(|s| parse_iso_utc(&s))
                .ok_or_else(|| f.err("no start time (DasTimeArray or AcquisitionStartTime)"))?,
            "Acquisition@AcquisitionStartTime",
        ),
    };
    let mut facts = Vec::new();
    if let Some(g) = given("GaugeLength") {
        let unit = given("GaugeLengthUnit").unwrap_or_else(|| "meters".into());
        facts.push(("gauge_length".to_string(), format!("{g} {unit}")));
    }
    if let Some(m) = file
        .group("DasMetadata/Interrogator")
        .ok()
        .and_then(|g| f.attr_str(&g, "InterrogatorManufacturer").ok())
        .filter(|s| s != "NaN")
    {
        facts.push(("instrument".to_string(), m));
    }
    let header = Header {
        path: path.into(),
        format: Format::Gdr,
        sampling_rate: fs,
        n_samples,
        n_channels,
        channel_spacing: f.attr_num(&acq, "SpatialSamplingInterval")?,
        first_distance: 0.0,
        start_us,
        units: given("UnitOfMeasure").unwrap_or_else(|| "unknown".into()),
        layout: format!(
            "/DasRawData/RawData ({})",
            if channel_major {
                "locus x time"
            } else {
                "time x locus"
            }
        ),
        time_source: time_source.into(),
        warnings: vec![
            "no start distance in the file (GDR): channel 0 is placed at 0 m; give --first-distance to place it".into(),
        ],
        part: 0,
        distance_stated: true,
        facts,
        distances: None,
        sample_type: None,
    };
    Matrix::new(&f, ds, channel_major, 1.0, header)
}
