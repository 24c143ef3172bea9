//! Readers for vendor DAS files: detect the layout from the content, take the header facts
//! (sampling rate, channel spacing, distance of the first channel, UTC start, units), and read
//! any block of samples x channels as f32 without loading the rest of the file.
//!
//! Each vendor module documents which header field gives which fact; the README's formats
//! table is written from those comments.

mod apsensing;
mod dasdae;
mod febus;
mod gdr;
mod h5;
mod jld2;
mod mseed;
pub use h5::silence_diagnostics as silence_hdf5_diagnostics;
mod neubrex;
mod optodas;
mod prodml;
mod segy;
mod sentek;
mod silixa;
mod simple;
mod sintela;
mod tdms;
mod terra15;
mod xdas;

use cryocube_cube::cf::format_number;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::DasError;

/// The layouts we read. Detected from content; `--format` overrides detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// Silixa iDAS HDF5 (`/Acoustic`), the Rhonegletscher layout.
    Silixa,
    /// Silixa iDAS TDMS (NI TDMS 4712/4713), group `Measurement`.
    SilixaTdms,
    /// PRODML 2.0 / 2.1 (`/Acquisition/Raw[0]/RawData`), any vendor.
    Prodml,
    /// ASN OptoDAS (`/data` + `header/`, `demodSpec/`).
    OptoDas,
    /// Terra15 Treble v4-v6 (`/data_product/data` + `gps_time`).
    Terra15,
    /// AP Sensing (`/DAS` + `DAQ/`, `Metadata/`, `ProcessingServer/`).
    ApSensing,
    /// Febus A1 (`/<device>/Source1/Zone1/<dataset>`, blocks x time x channel).
    Febus,
    /// Neubrex NEUBRESCOPE (`/Acoustic` with `InterrogationRate(Hz)`).
    Neubrex,
    /// DASDAE, DASCore's own HDF5 (`/waveforms/<patch>/data` + `_coord_time`, `_coord_distance`).
    Dasdae,
    /// GDR / DAS-RCN (`/DasRawData/RawData` + `/DasMetadata`, numbers as strings).
    Gdr,
    /// xdas netCDF (`/__values__` with CF tie-point coordinates).
    Xdas,
    /// Simple HDF5 (`/raw` + `/timestamp`, or `/data` + `/time` [+ `/distance`]).
    SimpleH5,
    /// SEG-Y rev 1/2, one trace per channel.
    Segy,
    /// Sentek `.das` (float32 header, distance and time tables, samples).
    Sentek,
    /// miniSEED 2, one SEED station per channel.
    Mseed,
    /// Sintela protobuf recordings (`PBUF` records, `TS05` packets).
    Sintela,
    /// DASVader JLD2 (Julia; `/dDAS` with object references).
    DasVader,
}

impl Format {
    /// Every layout cryocube reads.
    pub const ALL: [Format; 17] = [
        Format::Silixa,
        Format::SilixaTdms,
        Format::Prodml,
        Format::OptoDas,
        Format::Terra15,
        Format::ApSensing,
        Format::Febus,
        Format::Neubrex,
        Format::Dasdae,
        Format::Gdr,
        Format::Xdas,
        Format::SimpleH5,
        Format::Segy,
        Format::Sentek,
        Format::Mseed,
        Format::Sintela,
        Format::DasVader,
    ];

    /// The name used by `--format` and in attributes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Silixa => "silixa-h5",
            Format::SilixaTdms => "silixa-tdms",
            Format::Prodml => "prodml",
            Format::OptoDas => "optodas",
            Format::Terra15 => "terra15",
            Format::ApSensing => "ap-sensing",
            Format::Febus => "febus",
            Format::Neubrex => "neubrex",
            Format::Dasdae => "dasdae",
            Format::Gdr => "gdr",
            Format::Xdas => "xdas-netcdf",
            Format::SimpleH5 => "simple-h5",
            Format::Segy => "segy",
            Format::Sentek => "sentek",
            Format::Mseed => "mseed",
            Format::Sintela => "sintela-protobuf",
            Format::DasVader => "dasvader-jld2",
        }
    }

    /// The layout of a name as [`Format::name`] gives it.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Highest sampling rate a header may state, Hz.
const MAX_SAMPLING_RATE: f64 = 1e9;
/// Largest distance along a fibre a header may imply, metres (10 000 km).
const MAX_DISTANCE_M: f64 = 1e7;

/// The facts of one file that the stream and the cube need.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Header {
    /// The file.
    pub path: PathBuf,
    /// Its layout.
    pub format: Format,
    /// Samples per second.
    pub sampling_rate: f64,
    /// Samples per channel.
    pub n_samples: u64,
    /// Channels stored.
    pub n_channels: u64,
    /// Metres between consecutive channels (after any spatial decimation).
    pub channel_spacing: f64,
    /// Distance along the fibre of the first channel, metres.
    pub first_distance: f64,
    /// UTC time of the first sample, microseconds since 1970.
    pub start_us: i64,
    /// Physical units of the samples as the vendor states them.
    pub units: String,
    /// Dataset and axis order the samples come from (for provenance).
    pub layout: String,
    /// Which header field the start time came from.
    pub time_source: String,
    /// Things a user should know (e.g. a zeroed clock); logged and recorded.
    pub warnings: Vec<String>,
    /// Which of the file's parts this is (DASDAE patches, pieces of a trace with gaps): 0
    /// for the many formats that hold one.
    #[serde(default)]
    pub part: usize,
    /// False when the file states no distances (miniSEED, SEG-Y, simple HDF5 without a
    /// distance vector): spacing and first distance are then the channel index until the user
    /// gives `--spacing` / `--first-distance`.
    #[serde(default = "stated")]
    pub distance_stated: bool,
    /// Header facts worth keeping in the cube (gauge length, instrument, data type), as the
    /// file states them; recorded as `das_<name>` attributes.
    #[serde(default)]
    pub facts: Vec<(String, String)>,
    /// Each channel's distance, metres, when the file states them unevenly spaced (Sentek);
    /// `channel_spacing` is then their mean step and `first_distance` the first.
    #[serde(default)]
    pub distances: Option<Vec<f64>>,
    /// The element type the samples are stored as, as numpy names it (`int16`, `float32`,
    /// ...), when the values read are the stored ones (no vendor scale factor applied);
    /// `None` when the values are computed or the type is not known. Samples are read as f32
    /// whatever it is; this lets a reader of raw records give them back in their own type.
    #[serde(default)]
    pub sample_type: Option<String>,
}

fn stated() -> bool {
    true
}

impl Header {
    /// UTC time just after the last sample, µs.
    pub fn end_us(&self) -> i64 {
        self.start_us + (self.n_samples as f64 * 1e6 / self.sampling_rate).round() as i64
    }

    fn check(self) -> Result<Header, DasError> {
        let bad = |m: String| DasError::Header {
            path: self.path.clone(),
            format: self.format.name(),
            message: m,
        };
        // Bounds far beyond any instrument (interrogators sample at kHz to hundreds of kHz;
        // fibres are kilometres long), so that a corrupt field cannot pass as a number.
        if !(self.sampling_rate.is_finite()
            && self.sampling_rate > 0.0
            && self.sampling_rate <= MAX_SAMPLING_RATE)
        {
            return Err(bad(format!(
                "invalid sampling rate {} Hz",
                format_number(self.sampling_rate)
            )));
        }
        if !(self.channel_spacing.is_finite()
            && self.channel_spacing > 0.0
            && self.channel_spacing <= MAX_DISTANCE_M)
        {
            return Err(bad(format!(
                "invalid channel spacing {} m",
                format_number(self.channel_spacing)
            )));
        }
        let last = self.first_distance + self.channel_spacing * self.n_channels.max(1) as f64;
        if !(self.first_distance.is_finite()
            && last.abs() <= MAX_DISTANCE_M
            && self.first_distance.abs() <= MAX_DISTANCE_M)
        {
            return Err(bad(format!(
                "invalid distances: the first channel at {} m, {} channels {} m apart",
                format_number(self.first_distance),
                self.n_channels,
                format_number(self.channel_spacing)
            )));
        }
        if self.n_channels == 0 || self.n_samples == 0 {
            return Err(bad(format!(
                "no data ({} samples x {} channels)",
                self.n_samples, self.n_channels
            )));
        }
        let mut h = self;
        // Before 1980 no DAS interrogator existed: a clock that says so was never set.
        if h.start_us < 315_532_800_000_000 {
            h.warnings.push(format!(
                "start time {} from {} looks like a zeroed clock; times are kept as recorded",
                cryocube_cube::cf::format_utc_us(h.start_us),
                h.time_source
            ));
        }
        Ok(h)
    }
}

impl Header {
    /// A failure reading samples `s0 .. s0 + n` of this file.
    pub(crate) fn read_error(&self, s0: u64, n: usize, message: String) -> DasError {
        DasError::Read {
            path: self.path.clone(),
            start: s0,
            end: s0 + n as u64,
            message,
        }
    }

    /// Refuses a block (samples `s0 .. s0 + n`, channels `c0 .. c1`) outside the file.
    pub(crate) fn check_block(&self, s0: u64, n: usize, c0: u64, c1: u64) -> Result<(), DasError> {
        if s0.saturating_add(n as u64) > self.n_samples || c1 > self.n_channels || c0 > c1 {
            return Err(self.read_error(
                s0,
                n,
                format!(
                    "outside the file's {} samples x {} channels",
                    self.n_samples, self.n_channels
                ),
            ));
        }
        Ok(())
    }
}

/// Reads blocks of samples from one open file.
pub trait DasReader: Send {
    /// The facts of the file.
    fn header(&self) -> &Header;
    /// Reads samples `s0 .. s0 + n` of channels `c0 .. c1` into `out`, row-major
    /// (`n` rows of `c1 - c0` values), converted to f32.
    fn read_block(
        &mut self,
        s0: u64,
        n: usize,
        c0: u64,
        c1: u64,
        out: &mut [f32],
    ) -> Result<(), DasError>;
}

const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// The files a folder input stands for: its regular files, sorted, hidden ones skipped.
pub fn folder_members(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    mseed::members(path)
}

/// True for a folder of miniSEED files, read together as one record of their stations.
pub fn is_mseed_folder(path: &Path) -> bool {
    mseed::is_mseed_folder(path)
}

/// Detects the layout of a file (or of a folder of miniSEED files) from its content.
pub fn detect(path: &Path) -> Result<Format, DasError> {
    if mseed::is_mseed_folder(path) {
        return Ok(Format::Mseed);
    }
    let mut magic = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|source| DasError::File {
            path: path.into(),
            source,
        })?;
    // JLD2 puts a 512-byte text user block before the HDF5 superblock.
    if n == 8 && (&magic == HDF5_MAGIC || &magic == b"HDF5-bas") {
        let file = h5::open(path)?;
        return h5::detect(&file).ok_or_else(|| DasError::UnknownFormat {
            path: path.into(),
            message: "an HDF5 file of no layout cryocube knows (none of /Acoustic, /Acquisition/Raw[0], /data_product, /DAS, a Febus <device>/Source1/Zone1, an OptoDAS header, DASDAE /waveforms, GDR /DasRawData, xdas /__values__, /raw + /timestamp or /data + /time)".into(),
        });
    }
    if n >= 4 && &magic[..4] == b"TDSm" {
        return Ok(Format::SilixaTdms);
    }
    if n >= 4 && &magic[..4] == b"PBUF" && sintela::looks_like_sintela(path) {
        return Ok(Format::Sintela);
    }
    if mseed::looks_like_mseed(path) {
        return Ok(Format::Mseed);
    }
    // Formats without a magic number, taken only when their headers and the file size agree.
    if sentek::looks_like_sentek(path) {
        return Ok(Format::Sentek);
    }
    if segy::looks_like_segy(path) {
        return Ok(Format::Segy);
    }
    Err(DasError::UnknownFormat {
        path: path.into(),
        message: if n == 0 {
            "empty file".into()
        } else {
            "not HDF5, TDMS, Sintela protobuf, miniSEED 2, SEG-Y (a plausible binary header whose traces fill the file) or Sentek (.das)".into()
        },
    })
}

/// Opens a file with the given (or detected) layout (its first part).
pub fn open(path: &Path, format: Option<Format>) -> Result<Box<dyn DasReader>, DasError> {
    open_part(path, format, 0)
}

/// How many parts (segments) a file holds: DASDAE patches, xdas continuous pieces; 1 for the
/// formats that hold one.
pub fn count_parts(path: &Path, format: Format) -> Result<usize, DasError> {
    Ok(match format {
        Format::Dasdae => dasdae::patches(path, &h5::open(path)?)?.len(),
        Format::Xdas => xdas::parts(path, &h5::open(path)?)?,
        _ => 1,
    })
}

/// The headers of every part of a file, in order.
pub fn read_headers(path: &Path, format: Option<Format>) -> Result<Vec<Header>, DasError> {
    let format = match format {
        Some(f) => f,
        None => detect(path)?,
    };
    (0..count_parts(path, format)?)
        .map(|part| Ok(open_part(path, Some(format), part)?.header().clone()))
        .collect()
}

/// Opens part `part` of a file (see [`count_parts`]) with the given (or detected) layout.
pub fn open_part(
    path: &Path,
    format: Option<Format>,
    part: usize,
) -> Result<Box<dyn DasReader>, DasError> {
    let format = match format {
        Some(f) => f,
        None => detect(path)?,
    };
    let reader: Box<dyn DasReader> = match format {
        Format::Dasdae => Box::new(dasdae::open(path, h5::open(path)?, part)?),
        Format::Xdas => Box::new(xdas::open(path, h5::open(path)?, part)?),
        Format::Gdr => Box::new(gdr::open(path, h5::open(path)?)?),
        Format::SimpleH5 => Box::new(simple::open(path, h5::open(path)?)?),
        Format::Segy => Box::new(segy::Segy::open(path)?),
        Format::Sentek => Box::new(sentek::Sentek::open(path)?),
        Format::Mseed => Box::new(mseed::Mseed::open(path)?),
        Format::Sintela => Box::new(sintela::Sintela::open(path)?),
        Format::DasVader => Box::new(jld2::open(path, h5::open(path)?)?),
        Format::SilixaTdms => Box::new(tdms::Tdms::open(path)?),
        Format::Silixa => Box::new(silixa::open(path, h5::open(path)?)?),
        Format::Prodml => Box::new(prodml::open(path, h5::open(path)?)?),
        Format::OptoDas => Box::new(optodas::open(path, h5::open(path)?)?),
        Format::Terra15 => Box::new(terra15::open(path, h5::open(path)?)?),
        Format::ApSensing => Box::new(apsensing::open(path, h5::open(path)?)?),
        Format::Febus => Box::new(febus::open(path, h5::open(path)?)?),
        Format::Neubrex => Box::new(neubrex::open(path, h5::open(path)?)?),
    };
    Ok(reader)
}

/// An evenly spaced coordinate (distances) as (first, step), or why it is not one.
pub(crate) fn spacing_of(values: &[f64]) -> Result<(f64, f64), String> {
    let n = values.len();
    match n {
        0 => return Err("no values".into()),
        1 => return Ok((values[0], 1.0)),
        _ => {}
    }
    let step = (values[n - 1] - values[0]) / (n - 1) as f64;
    if !(step.is_finite() && step > 0.0) {
        return Err(format!(
            "not increasing ({} .. {})",
            format_number(values[0]),
            format_number(values[n - 1])
        ));
    }
    if let Some(i) =
        (0..n).find(|&i| (values[i] - (values[0] + i as f64 * step)).abs() > 1e-3 * step)
    {
        return Err(format!(
            "not evenly spaced: value {i} is {} where an even spacing of {} puts {} (uneven distances are not supported for this layout)",
            format_number(values[i]),
            format_number(step),
            format_number(values[0] + i as f64 * step)
        ));
    }
    Ok((values[0], step))
}

/// Reads only the header of a file (its first part).
pub fn read_header(path: &Path, format: Option<Format>) -> Result<Header, DasError> {
    Ok(open(path, format)?.header().clone())
}
