//! `cryocube`: the command line. It parses arguments, calls the libraries and maps errors to
//! exit codes (0 success, 1 failure with a message naming the file and the problem, 2 usage
//! error). All work lives in the library crates.
//!
//! It is a library too, for the Python package (`python/`): [`run`] runs a command line in
//! the calling process with progress to a callback, so that `cryocube.das(...)` has exactly
//! the command's options, checks and messages; [`info_json`], [`patch_text`] and
//! [`start_view`] give what a command prints or keeps running as values.

#![forbid(unsafe_code)]

use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
#[cfg(feature = "das")]
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
#[cfg(feature = "das")]
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[cfg(feature = "das")]
use cryocube_cube::ZarrFormat;
use cryocube_cube::{info, CubeReader, Location};
#[cfg(feature = "das")]
use cryocube_das::demo::SyntheticRecord;
#[cfg(feature = "das")]
use cryocube_das::job::{self, ChannelSelection, DasOptions, OutputType, Param};
#[cfg(feature = "das")]
use cryocube_das::read::Format;
#[cfg(feature = "das")]
use cryocube_das::transform::{Scale, Window};

mod slurm;

#[derive(Parser)]
#[command(
    name = "cryocube",
    version,
    about = "Raw cryosphere observations to analysis-ready data cubes",
    after_help = "Examples:\n  cryocube demo\n  cryocube das /data/rhone/*.h5 -o rhone.zarr\n  cryocube info rhone.zarr\n  cryocube fetch cube.geojson --dir sources\n  cryocube build cube.geojson -o s3://bucket/polar.zarr"
)]
struct Cli {
    /// Print only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// DAS records (many files) -> spectrogram cube (time x distance x frequency).
    #[command(after_help = "Examples:\n  \
        cryocube das raw/ -o cube.zarr                        # df 1 Hz, dt 0.1 s, 0-100 Hz\n  \
        cryocube das 'raw/*.h5' -o cube.zarr --scale cryocube # the CryoCube seed's numerics\n  \
        cryocube das a.h5 b.h5 -o c.zarr --df 2 --dt 0.05 --fmax 250 --distance 500:2500\n  \
        cryocube das raw/ -o c.zarr --zarr-format 3 --shard --dtype f16\n  \
        cryocube das raw/ -o c.zarr --quantize 0.05           # int16 codes, within 0.025 dB\n  \
        cryocube das raw/ -o psd.zarr --average 60            # one Welch spectrum per minute\n  \
        cryocube das /data/live/ -o live.zarr --follow        # append each file once complete\n  \
        cryocube das raw/ -o cube.zarr --append               # add what the cube lacks\n  \
        cryocube das geofon/ -o c.zarr --spacing 4 --first-distance 0  # miniSEED, one file per station\n\n\
        Formats (detected from the content; --format to force): silixa-h5, silixa-tdms, prodml,\n\
        optodas, terra15, ap-sensing, febus, neubrex, dasdae, gdr, xdas-netcdf, simple-h5, segy,\n\
        sentek, mseed, sintela-protobuf, dasvader-jld2.\n\n\
        A run that was interrupted resumes when started again with the same arguments.")]
    #[cfg(feature = "das")]
    Das(DasArgs),
    /// Download a recipe's sources (resumable, retried, checked, archives extracted safely).
    #[command(after_help = "Examples:\n  \
        cryocube fetch cube.geojson                       # into ./cryocube-sources\n  \
        cryocube fetch cube.geojson --dir /data/sources   # a shared cache\n\n\
        A second run skips what is there and verified. Credentials (for sources the recipe\n\
        marks with credentials: true) come from CRYOCUBE_HTTP_USER / CRYOCUBE_HTTP_PASSWORD\n\
        or ~/.netrc; they are never prompted for or logged.")]
    #[cfg(feature = "geo")]
    Fetch {
        /// The cube recipe (`cube.geojson`).
        recipe: PathBuf,
        /// Where the sources go (one folder per source).
        #[arg(long, default_value = "cryocube-sources")]
        dir: PathBuf,
        /// Largest download accepted, GiB: a larger one is refused (a server sending without
        /// end is cut off there), nothing of it kept.
        #[arg(long, default_value_t = 64.0, value_parser = parse_positive)]
        max_size: f64,
    },
    /// Build a polar cube from a recipe: fetch what is missing, warp every source once onto the
    /// target grid, write one CF cube (EPSG from the recipe, CRS visible to rioxarray and GDAL).
    #[command(after_help = "Examples:\n  \
        cryocube build cube.geojson -o polar.zarr\n  \
        cryocube build cube.geojson -o polar-1km.zarr --res 1000 --sources /data/sources\n  \
        cryocube build cube.geojson -o s3://bucket/polar.zarr\n  \
        cryocube build cube.geojson --check          # against the DeepESDL spec\n  \
        cryocube build cube.geojson --check --fix    # and write its geometry\n\n\
        An interrupted build resumes when started again with the same arguments.\n\n\
        S3 (outputs and s3:// sources) is configured as for the AWS CLI: AWS_ACCESS_KEY_ID,\n\
        AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL (another\n\
        server, e.g. http://127.0.0.1:3900) and AWS_S3_ADDRESSING_STYLE (path | virtual;\n\
        path by default with an endpoint).")]
    #[cfg(feature = "geo")]
    Build {
        /// The cube recipe (`cube.geojson`).
        recipe: PathBuf,
        /// Output cube: a folder, or s3://BUCKET/PREFIX.
        #[arg(short, long, value_parser = parse_location, required_unless_present = "check")]
        output: Option<Location>,
        /// Check the recipe, build nothing: every departure from the DeepESDL dataset
        /// specification and every problem of its `processing` blocks, with its JSON path.
        /// Exit 1 when there is any.
        #[arg(long, conflicts_with_all = ["plan_only", "pyramid", "overwrite"])]
        check: bool,
        /// With --check: write the grid's coverage polygon (CRS-84), which the specification
        /// wants as the recipe's `geometry`, into the recipe file.
        #[arg(long, requires = "check")]
        fix: bool,
        /// Where the sources are, or are fetched to.
        #[arg(long, default_value = "cryocube-sources")]
        sources: PathBuf,
        /// Cell size instead of the recipe's (same extent), in CRS units.
        #[arg(long, allow_negative_numbers = true, value_parser = parse_positive)]
        res: Option<f64>,
        /// Cells per chunk side [default: up to 2048, evened out over the grid].
        #[arg(long, value_parser = clap::value_parser!(u64).range(16..=65536))]
        chunk: Option<u64>,
        /// Replace an existing output.
        #[arg(long)]
        overwrite: bool,
        /// Also build the viewer's pyramid (see `cryocube pyramid`).
        #[arg(long)]
        pyramid: bool,
        /// Only plan the build into the output (unpublished) and print its units; then run
        /// `cryocube task` for the units (on many machines) and `cryocube commit`.
        #[arg(long, conflicts_with = "pyramid")]
        plan_only: bool,
        /// Wait for another writer of the output to finish instead of stopping.
        #[arg(long)]
        wait: bool,
    },
    /// Change a cube's attributes from a patch file (xcube patch semantics, validated).
    #[command(after_help = "Examples:\n  \
        cryocube patch polar.zarr --metadata patch.yaml --dry-run   # show the changes\n  \
        cryocube patch polar.zarr --metadata patch.yaml\n\n\
        The patch maps `.zattrs` and `VAR/.zattrs` to attributes; `__delete__` removes one.\n\
        Deleting _ARRAY_DIMENSIONS, grid_mapping or coordinates needs --force.")]
    Patch {
        /// The cube: a folder, or s3://BUCKET/PREFIX.
        #[arg(value_parser = parse_location)]
        store: Location,
        /// The patch (YAML or JSON).
        #[arg(long)]
        metadata: PathBuf,
        /// Print the changes without writing them.
        #[arg(long)]
        dry_run: bool,
        /// Also delete attributes readers need (grid_mapping, coordinates, _ARRAY_DIMENSIONS).
        #[arg(long)]
        force: bool,
    },
    /// Summarise a cube: dims, chunks, coordinate ranges (UTC), variables, attributes, size.
    Info {
        /// The cube: a folder, or s3://BUCKET/PREFIX.
        #[arg(value_parser = parse_location)]
        store: Location,
        /// Also sum the size of every object of a cube on S3 (lists the whole prefix; local
        /// cubes always show their size).
        #[arg(long)]
        size: bool,
    },
    /// Store coarser copies of a cube's 3-D and 2-D variables inside it, so that `cryocube view`
    /// reads what the screen shows rather than the whole cube.
    #[command(after_help = "Examples:\n  \
        cryocube pyramid rhone.zarr\n  \
        cryocube das raw/ -o rhone.zarr --pyramid      # the same, right after the cube\n\n\
        Each level halves the dimensions still longer than 256 cells (mean, NaN ignored);\n\
        short ones (two epochs, a hundred frequencies) are never averaged. Levels live in\n\
        STORE/.pyramid, outside the cube's metadata (xarray and GDAL do not see them). A\n\
        pyramid made before the cube changed is ignored by `view`; run this again.")]
    Pyramid {
        /// The cube: a folder, or s3://BUCKET/PREFIX.
        #[arg(value_parser = parse_location)]
        store: Location,
        /// Only plan the pyramid (in STORE/.pyramid) and print its units; then run
        /// `cryocube task STORE` for the units (on many machines) and `cryocube commit STORE`.
        #[arg(long)]
        plan_only: bool,
        /// Wait for another writer of the cube to finish instead of stopping.
        #[arg(long)]
        wait: bool,
    },
    /// Explore a cube in the browser: its 3-D variables as an interactive box, 2-D ones as maps.
    #[command(after_help = "Examples:\n  \
        cryocube view cryocube-demo/demo.zarr --open\n  \
        cryocube view s3://bucket/polar.zarr --port 8800\n  \
        cryocube view polar.zarr --overlay Coastline_Antarctica_v02.shp --overlay lakes.zip\n\n\
        Serves one page and the cube's data, read-only, on 127.0.0.1 unless --host says\n\
        otherwise; prints the URL. To share on a LAN: --host 0.0.0.0 --allow-host NAME,\n\
        where NAME is what others type in the address bar (this machine's name or address). The view (variable, sub-cube, colours, camera) is kept in\n\
        the URL, so a link reopens it.")]
    #[cfg(feature = "view")]
    View {
        /// The cube: a folder, or s3://BUCKET/PREFIX.
        #[arg(value_parser = parse_location)]
        store: Location,
        /// Address to listen on (loopback unless you mean to share the cube).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port (0: any free one).
        #[arg(long, default_value_t = 8765)]
        port: u16,
        /// Open the page in the default browser.
        #[arg(long)]
        open: bool,
        /// Memory for cached faces, MiB.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..=1048576))]
        cache_mb: u64,
        /// Another name the server answers to in the Host header (repeatable), e.g. this
        /// machine's LAN name or address with --host 0.0.0.0.
        #[arg(long = "allow-host", value_name = "NAME")]
        allow_hosts: Vec<String>,
        /// A vector file drawn over the cube's maps (repeatable): shapefile, zipped
        /// shapefile, GeoJSON, GeoPackage; any CRS, reprojected onto the cube's.
        #[arg(long = "overlay", value_name = "FILE")]
        overlays: Vec<PathBuf>,
        /// Where a recipe cube's sources are (as for `build`): its vector sources found there
        /// are offered as overlays too.
        #[arg(long, default_value = "cryocube-sources")]
        sources: PathBuf,
    },
    /// Run one task of the job planned in a store (`--plan-only`): its share of the units.
    #[command(after_help = "Examples:\n  \
        cryocube das raw/ -o /scratch/rhone.zarr --plan-only     # prints the number of units\n  \
        cryocube task /scratch/rhone.zarr --index 0 --count 4     # task 0 of 4 (any order, any machine)\n  \
        cryocube commit /scratch/rhone.zarr                      # publishes once all units are done\n\n\
        INDEX and COUNT default to the scheduler's variables: SLURM_ARRAY_TASK_ID (minus\n\
        SLURM_ARRAY_TASK_MIN) and SLURM_ARRAY_TASK_COUNT; JOB_COMPLETION_INDEX (Kubernetes\n\
        Indexed Jobs) or AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch) with --count. Task I of N takes\n\
        a contiguous share of the units; units already done are skipped, so a task can be run\n\
        again after a failure. Tasks of one plan run at the same time safely.")]
    Task {
        /// The planned store: a folder, or s3://BUCKET/PREFIX.
        #[arg(value_parser = parse_location)]
        store: Location,
        /// This task's index, 0 .. COUNT-1.
        #[arg(long)]
        index: Option<u64>,
        /// The number of tasks the units are shared among.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Publish the cube of a planned job whose units are all done (after `cryocube task`).
    #[command(after_help = "Examples:\n  \
        cryocube commit /scratch/rhone.zarr\n\n\
        If units are missing, says which and which tasks own them, exits 1 and publishes\n\
        nothing; run those tasks again, then commit again.")]
    Commit {
        /// The planned store: a folder, or s3://BUCKET/PREFIX.
        #[arg(value_parser = parse_location)]
        store: Location,
        /// Wait for another writer of the store to finish instead of stopping.
        #[arg(long)]
        wait: bool,
    },
    /// Plan a job, then submit it to Slurm: an array of tasks and a commit that runs after them.
    #[command(after_help = "Examples:\n  \
        cryocube slurm --tasks 64 --partition compute --time 02:00:00 --mem 8G --cpus 8 -- \\\n      \
        das /data/rhone/2020-07/ -o s3://campaign/rhone-2020-07.zarr\n  \
        cryocube slurm --tasks 4 --dry-run -- das raw/ -o /scratch/c.zarr   # print the scripts\n\n\
        The job is planned here (headers read once); each array task runs `cryocube task` on\n\
        its share and the commit job (--dependency=afterok) publishes the cube. The scripts\n\
        go to sbatch on its standard input; nothing is written outside the output store.\n\
        A task that failed or was cancelled: `sbatch --array=I` the array script again (see\n\
        --dry-run), or run \
        `cryocube task STORE --index I --count N` anywhere, then `cryocube commit STORE`.")]
    Slurm(slurm::SlurmArgs),
    /// Synthesise a Rhonegletscher-like DAS record, build its cube and show it.
    #[cfg(feature = "das")]
    Demo {
        /// Folder for the synthetic files and the cube.
        #[arg(short, long, default_value = "cryocube-demo")]
        output: PathBuf,
        /// Replace an existing demo cube.
        #[arg(long)]
        overwrite: bool,
        /// Number of 30 s files to synthesise.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=10000))]
        files: u64,
        /// Number of channels (4 m apart).
        #[arg(long, default_value_t = 192, value_parser = clap::value_parser!(u64).range(1..=100000))]
        channels: u64,
        /// Only write the synthetic files (into OUTPUT/raw); build no cube. Used by the benchmark.
        #[arg(long)]
        record_only: bool,
    },
}

#[cfg(feature = "das")]
#[derive(Args)]
struct DasArgs {
    /// Input files, folders or glob patterns (ordered by header start time, not by name).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output cube: a folder, or s3://BUCKET/PREFIX.
    #[arg(short, long, value_parser = parse_location)]
    output: Location,
    /// Input layout; detected from the content when omitted.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Frequency resolution in Hz (window length = 1/df seconds).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = parse_positive)]
    df: f64,
    /// Hop between windows in seconds.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true, value_parser = parse_positive)]
    dt: f64,
    /// Lowest frequency kept, Hz.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = parse_non_negative)]
    fmin: f64,
    /// Highest frequency kept, Hz [default: 100; `nyquist` for all].
    #[arg(long, default_value = "100", allow_negative_numbers = true, value_parser = parse_fmax)]
    fmax: Fmax,
    /// Channels by distance along the fibre, metres: A:B (inclusive; negative distances,
    /// e.g. -200:-100, as PRODML files have them, are fine).
    #[arg(long, conflicts_with = "channels", allow_hyphen_values = true, value_parser = parse_range::<f64>)]
    distance: Option<(f64, f64)>,
    /// Channels by index: A:B (end exclusive; 0 = first channel in the files).
    #[arg(long, value_parser = parse_range::<u64>)]
    channels: Option<(u64, u64)>,
    /// Metres between channels, for files that state no distances (miniSEED, SEG-Y, simple
    /// HDF5); replaces a file's own value when given.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_positive)]
    spacing: Option<f64>,
    /// Distance of the first channel along the fibre, metres (with --spacing).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_finite)]
    first_distance: Option<f64>,
    /// Keep a record whose every sample is zero (spectra of -inf) instead of refusing it as
    /// a dead fibre.
    #[arg(long)]
    allow_zero: bool,
    /// Keep watching the input folder: each file, once complete (a later file appeared, or
    /// its size held for --settle seconds), is appended; Ctrl-C stops. Restarting loses
    /// nothing: the cube records what it holds.
    #[arg(long, conflicts_with_all = ["overwrite", "plan_only", "pyramid", "append"])]
    follow: bool,
    /// With --follow: seconds a file's size must hold before it counts as complete.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_positive, requires = "follow")]
    settle: f64,
    /// With --follow: seconds between looks at the folder.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.5, value_parser = parse_positive, requires = "follow")]
    poll: f64,
    /// Long-term spectra: one Welch-averaged spectrum per interval of SECONDS (mean power of
    /// the windows inside it, gap windows left out; their number in the variable `count`).
    #[arg(long, value_name = "SECONDS", value_parser = parse_positive, conflicts_with = "append")]
    average: Option<f64>,
    /// Taper: tukey:ALPHA, hann, hamming, blackman, boxcar.
    #[arg(long, default_value = "tukey:0.25", value_parser = |s: &str| Window::parse(s))]
    window: Window,
    /// db: scipy.signal.spectrogram PSD in dB, windows labelled by centre. cryocube: the
    /// seed's 10 ln|X|^2, symmetric window, DC bin 0, labelled by start.
    #[arg(long, value_enum, default_value_t = ScaleArg::Db)]
    scale: ScaleArg,
    /// Element type of the spectrogram.
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    dtype: DtypeArg,
    /// Store spectra as int16 codes STEP apart, in the scale's units (e.g. 0.05 dB): at most
    /// STEP/2 off, a fraction of float32's size; xarray unpacks them (CF scale_factor).
    #[arg(long, value_name = "STEP", conflicts_with = "dtype", value_parser = parse_positive)]
    quantize: Option<f64>,
    /// Zarr format: 2 (with .zmetadata; every reader) or 3.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    zarr_format: u8,
    /// With --zarr-format 3: one shard file per time chunk and all distances.
    #[arg(long, requires = "zarr_format")]
    shard: bool,
    /// Chunk shape TIME,DISTANCE (windows, channels); frequency is never split.
    #[arg(long, default_value = "256,64", value_parser = parse_chunks)]
    chunks: (usize, usize),
    /// Replace an existing output.
    #[arg(long, conflicts_with = "append")]
    overwrite: bool,
    /// Extend the cube with later files, with the cube's own parameters; inputs it already
    /// holds are skipped, a gap becomes NaN windows. Creates the cube if there is none.
    #[arg(long)]
    append: bool,
    /// Also build the viewer's pyramid (see `cryocube pyramid`).
    #[arg(long)]
    pyramid: bool,
    /// Only plan the job into the output (unpublished) and print its units; then run
    /// `cryocube task` for the units (on many machines) and `cryocube commit`.
    #[arg(long, conflicts_with = "pyramid")]
    plan_only: bool,
    /// Wait for another writer of the output to finish instead of stopping.
    #[arg(long)]
    wait: bool,
    /// The longest gap between files filled with NaN windows, seconds; a longer one (usually
    /// a file with a wrong clock) is an error naming both files.
    #[arg(long, default_value_t = cryocube_das::job::DEFAULT_MAX_GAP_S, allow_negative_numbers = true, value_parser = parse_positive)]
    max_gap: f64,
    /// Fill any gap between files with NaN windows, however long.
    #[arg(long, conflicts_with = "max_gap")]
    allow_gap: bool,
    /// Record the inputs' absolute paths in the cube (`input_files`), so that a later
    /// --append re-reads the last file even when it is not among its inputs. Off by default:
    /// paths name home folders and machines, and a published cube travels.
    #[arg(long)]
    record_paths: bool,
}

#[cfg(feature = "das")]
#[derive(Clone, Copy, ValueEnum)]
enum ScaleArg {
    Db,
    Cryocube,
}

#[cfg(feature = "das")]
#[derive(Clone, Copy, ValueEnum)]
enum DtypeArg {
    F32,
    F16,
}

fn parse_location(s: &str) -> Result<Location, String> {
    Location::parse(s).map_err(|e| e.to_string().trim_start_matches(": ").to_string())
}

/// `--fmax`: a frequency in Hz or `nyquist`.
#[cfg(feature = "das")]
#[derive(Clone, Copy, Debug)]
enum Fmax {
    Hz(f64),
    Nyquist,
}

#[cfg(feature = "das")]
fn parse_fmax(s: &str) -> Result<Fmax, String> {
    if s.trim() == "nyquist" {
        return Ok(Fmax::Nyquist);
    }
    parse_positive(s)
        .map(Fmax::Hz)
        .map_err(|e| format!("{e} (or `nyquist`)"))
}

#[cfg(any(feature = "das", feature = "geo"))]
/// A finite number, spelled as people write it (no 300-digit echo of what was typed).
fn parse_finite(s: &str) -> Result<f64, String> {
    let shown: String = if s.chars().count() > 24 {
        format!("{}...", s.chars().take(24).collect::<String>())
    } else {
        s.to_string()
    };
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{shown:?} is not a finite number")),
        Err(_) => Err(format!("{shown:?} is not a number")),
    }
}

#[cfg(any(feature = "das", feature = "geo"))]
fn parse_positive(s: &str) -> Result<f64, String> {
    let v = parse_finite(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not positive"))
    }
}

#[cfg(feature = "das")]
fn parse_non_negative(s: &str) -> Result<f64, String> {
    let v = parse_finite(s)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} is negative"))
    }
}

#[cfg(feature = "das")]
fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| {
        let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
        format!("unknown format {s:?} (one of {})", names.join(", "))
    })
}

/// `A:B` with both ends of type `T`, in order.
#[cfg(feature = "das")]
fn parse_range<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    s: &str,
) -> Result<(T, T), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not of the form A:B"))?;
    let parse = |x: &str| {
        x.trim()
            .parse::<T>()
            .map_err(|_| format!("{x:?} is not a valid bound"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    // NaN is unordered: it must not pass as a bound (a NaN range selects nothing, silently).
    match a.partial_cmp(&b) {
        None => return Err(format!("{s:?}: a bound is not a number")),
        Some(std::cmp::Ordering::Greater) => return Err(format!("{a} is after {b}")),
        _ => {}
    }
    Ok((a, b))
}

/// Largest chunk side `--chunks` accepts; the product is checked against the memory budget
/// once the number of frequencies is known.
#[cfg(feature = "das")]
const MAX_CHUNK_SIDE: usize = 1 << 20;

#[cfg(feature = "das")]
fn parse_chunks(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?} is not TIME,DISTANCE"))?;
    let count = |x: &str| -> Result<usize, String> {
        let n: usize = x
            .trim()
            .parse()
            .map_err(|_| format!("{x:?} is not a count"))?;
        if n == 0 || n > MAX_CHUNK_SIDE {
            return Err(format!("{n}: a chunk side is 1 .. {MAX_CHUNK_SIDE}"));
        }
        Ok(n)
    };
    Ok((count(a)?, count(b)?))
}

/// The `cryocube-geo` program, and `cryocube` built without the `geo` feature: parses the
/// process's arguments, runs the command, prints an error and gives the exit code.
pub fn main() -> ExitCode {
    main_with::<true>()
}

/// The `cryocube` program: [`main`], except that a command that needs GDAL (`fetch`, `build`,
/// a task or commit of a build plan, `view` with vector overlays) is handed, whole, to the
/// `cryocube-geo` program beside this one.
///
/// Why two programs: loading libgdal and its hundred-odd libraries is most of a process
/// start (0.051 s against 0.011 s here), and a split DAS job starts a process per task. A
/// release build of this program does not load GDAL at all; a debug build still does
/// (nothing removes the unused GDAL code without link-time optimisation), which changes
/// nothing but its start.
pub fn main_handing_gdal_over() -> ExitCode {
    main_with::<false>()
}

/// [`main`] with GDAL linked in (`GDAL`), or handed over.
fn main_with<const GDAL: bool>() -> ExitCode {
    // Read HDF5 without file locks unless the user says otherwise: locks fail on many network
    // filesystems, and an inherited lock of another process must not make a file unreadable.
    // Set here, before any thread or HDF5 call exists.
    if std::env::var_os("HDF5_USE_FILE_LOCKING").is_none() {
        std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
    }
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let level = if cli.quiet { "warn" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .format_target(false)
        .init();
    prepare_threads_for::<GDAL>();
    let feedback = Feedback {
        quiet: cli.quiet,
        progress: None,
    };
    match dispatch::<GDAL>(cli.command, &matches, &feedback) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(if e.is::<UsageError>() { 2 } else { 1 })
        }
    }
}

/// Once per process, before any work: GDAL's messages to the log, HDF5's diagnostics off on
/// every thread of the global pool (HDF5 keeps the setting per thread).
pub fn prepare_threads() {
    prepare_threads_for::<true>();
}

/// [`prepare_threads`], GDAL's part only where it is linked in (`GDAL`).
fn prepare_threads_for<const GDAL: bool>() {
    #[cfg(feature = "geo")]
    if GDAL {
        cryocube_geo::log_gdal_messages();
    }
    #[cfg(feature = "das")]
    {
        cryocube_das::read::silence_hdf5_diagnostics();
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .start_handler(|_| cryocube_das::read::silence_hdf5_diagnostics())
            .build_global()
        {
            log::debug!("thread pool: {e}");
        }
    }
}

/// How a command reports while it works.
pub struct Feedback<'a> {
    /// No progress bars (and, for the program, warnings only).
    pub quiet: bool,
    /// Called with (done, total) as the work goes on, from any thread.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

/// Why a command failed, with the message the program prints (without `error: `).
#[derive(Debug)]
pub struct Failure {
    /// The message.
    pub message: String,
    /// What kind of failure it is.
    pub kind: FailureKind,
}

/// The kinds of [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The arguments are wrong (the program's exit code 2).
    Usage,
    /// An input is wrong: a record, a recipe, a source.
    Input,
    /// A cube could not be read or written.
    Store,
    /// Anything else.
    Other,
}

impl Failure {
    fn of(e: &anyhow::Error) -> Failure {
        let root = e.root_cause();
        let kind = if e.is::<UsageError>() {
            FailureKind::Usage
        } else if e.chain().any(|c| c.is::<cryocube_cube::CubeError>()) {
            FailureKind::Store
        } else if input_error(e) {
            FailureKind::Input
        } else if root.is::<std::io::Error>() {
            FailureKind::Store
        } else {
            FailureKind::Other
        };
        Failure {
            message: chain(e),
            kind,
        }
    }
}

/// Whether a DAS or recipe library refused an input.
fn input_error(e: &anyhow::Error) -> bool {
    #[cfg(feature = "das")]
    if e.chain().any(|c| c.is::<cryocube_das::DasError>()) {
        return true;
    }
    #[cfg(feature = "geo")]
    if e.chain().any(|c| c.is::<cryocube_geo::GeoError>()) {
        return true;
    }
    let _ = e;
    false
}

/// Runs the command line `args` (the program's name first) in this process, with
/// `feedback`; the logger is the caller's.
pub fn run<I, T>(args: I, feedback: &Feedback<'_>) -> Result<(), Failure>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command()
        .try_get_matches_from(args)
        .map_err(|e| Failure {
            message: e
                .to_string()
                .trim_start_matches("error: ")
                .trim_end()
                .to_string(),
            kind: FailureKind::Usage,
        })?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| Failure {
        message: e.to_string(),
        kind: FailureKind::Usage,
    })?;
    dispatch::<true>(cli.command, &matches, feedback).map_err(|e| Failure::of(&e))
}

/// `cryocube info STORE` as JSON: `store`, `complete`, `attrs`, `dims`, `variables` (with
/// `dims`, `shape`, `chunks`, `dtype`, `attrs`) and `text`, what the command prints.
pub fn info_json(store: &str) -> Result<String, Failure> {
    let inner = || -> Result<String> {
        let store = &Location::parse(store)?;
        let cube = CubeReader::open(store).with_context(|| format!("cannot open {store}"))?;
        let text = if cube.is_complete() {
            info::render(&cube, false)?
        } else {
            String::new()
        };
        let mut dims = serde_json::Map::new();
        let mut variables = serde_json::Map::new();
        for a in cube.arrays() {
            for (d, n) in a.dims.iter().zip(&a.shape) {
                dims.entry(d.clone()).or_insert(serde_json::json!(n));
            }
            variables.insert(
                a.name.clone(),
                serde_json::json!({
                    "dims": a.dims, "shape": a.shape, "chunks": a.chunks,
                    "dtype": a.dtype.v3_name(), "attrs": a.attrs,
                }),
            );
        }
        Ok(serde_json::json!({
            "store": store.to_string(),
            "complete": cube.is_complete(),
            "attrs": cube.attrs(),
            "dims": dims,
            "variables": variables,
            "text": text,
        })
        .to_string())
    };
    inner().map_err(|e| Failure::of(&e))
}

/// `cryocube patch STORE FILE`, the file's text given (`name` names it in messages): the
/// changes (as `--dry-run` prints them) and the warnings.
pub fn patch_text(
    store: &str,
    text: &str,
    name: &str,
    dry_run: bool,
    force: bool,
) -> Result<(Vec<String>, Vec<String>), Failure> {
    let inner = || -> Result<(Vec<String>, Vec<String>)> {
        let store = Location::parse(store)?;
        let patch = cryocube_cube::patch::parse_patch(text, Path::new(name))?;
        let report = cryocube_cube::patch::apply(store, &patch, force, dry_run)?;
        Ok((
            report.changes.iter().map(ToString::to_string).collect(),
            report.warnings,
        ))
    };
    inner().map_err(|e| Failure::of(&e))
}

/// `cryocube view STORE` on a thread of this process (stopped by the returned handle).
#[cfg(feature = "view")]
pub fn start_view(
    store: &str,
    mut opts: cryocube_view::ViewOptions,
    cache_mb: usize,
    overlay_files: &[PathBuf],
    sources: Option<&Path>,
) -> Result<cryocube_view::Background, Failure> {
    let mut inner = || -> Result<cryocube_view::Background> {
        let store = Location::parse(store)?;
        let cube = open_view::<true>(&store, &mut opts, cache_mb, overlay_files, sources)?;
        Ok(cryocube_view::serve_in_background(cube, &opts)?)
    };
    inner().map_err(|e| Failure::of(&e))
}

/// Runs `command`; with `GDAL` false, a command that needs GDAL is handed over
/// ([`hand_over_to_gdal`]).
#[cfg_attr(not(feature = "das"), allow(unused_variables))]
fn dispatch<const GDAL: bool>(
    command: Command,
    matches: &ArgMatches,
    fb: &Feedback<'_>,
) -> Result<()> {
    match command {
        #[cfg(feature = "das")]
        Command::Das(args) => {
            let (pyramid, plan_only) = (args.pyramid, args.plan_only);
            let follow = args.follow.then_some(cryocube_das::follow::FollowOptions {
                settle: args.settle,
                poll: args.poll,
            });
            let mut opts = das_options(args)?;
            if let Some(m) = matches.subcommand_matches("das") {
                opts.given = given(m);
            }
            if let Some(watch) = follow {
                return run_follow(&opts, watch);
            }
            if plan_only {
                let planned = job::plan_only(&opts)?;
                report_plan(
                    &planned.output,
                    planned.units,
                    &planned.unit_name,
                    planned.existing,
                );
                return Ok(());
            }
            run_das(&opts, fb)?;
            if pyramid {
                build_pyramid(&opts.output, opts.wait, fb)?;
            }
            Ok(())
        }
        Command::Pyramid {
            store,
            plan_only,
            wait,
        } => {
            if plan_only {
                let job = cryocube_cube::pyramid::plan_only(&store, wait)?;
                report_plan(&store, job.plan.units, &job.plan.unit_name, false);
                return Ok(());
            }
            build_pyramid(&store, wait, fb)
        }
        Command::Task {
            store,
            index,
            count,
        } => {
            let (index, count) = task_index(index, count)?;
            run_task::<GDAL>(&store, index, count, fb)
        }
        Command::Commit { store, wait } => commit::<GDAL>(&store, wait),
        Command::Slurm(args) => slurm::submit(&args, fb.quiet),
        #[cfg(feature = "geo")]
        Command::Fetch { .. } if !GDAL => Err(hand_over_to_gdal()),
        #[cfg(feature = "geo")]
        Command::Fetch {
            recipe,
            dir,
            max_size,
        } => fetch(&recipe, dir, (max_size * (1u64 << 30) as f64) as u64, fb),
        Command::Patch {
            store,
            metadata,
            dry_run,
            force,
        } => {
            let patch = cryocube_cube::patch::load_patch(&metadata)?;
            let report = cryocube_cube::patch::apply(&store, &patch, force, dry_run)?;
            for w in &report.warnings {
                log::warn!("{}: {w}", metadata.display());
            }
            if dry_run {
                for c in &report.changes {
                    println!("{c}");
                }
                log::info!(
                    "dry run: {} change(s), nothing written",
                    report.changes.len()
                );
            } else {
                log::info!(
                    "{}: {} change(s) applied",
                    store.display(),
                    report.changes.len()
                );
            }
            Ok(())
        }
        #[cfg(feature = "geo")]
        Command::Build { .. } if !GDAL => Err(hand_over_to_gdal()),
        #[cfg(feature = "geo")]
        Command::Build {
            recipe,
            output,
            sources,
            res,
            chunk,
            overwrite,
            pyramid,
            plan_only,
            wait,
            check,
            fix,
        } => {
            if check {
                return check_recipe(&recipe, fix);
            }
            let output = output.expect("clap requires -o without --check");
            cryocube_cube::write::check_output(&output)?;
            let opts = cryocube_geo::build::BuildOptions {
                output: output.clone(),
                sources: sources.clone(),
                chunk: chunk.map(|c| c as usize),
                res,
                overwrite,
            };
            if plan_only {
                let r = cryocube_geo::recipe::Recipe::load(&recipe)?;
                let planned = cryocube_geo::build::plan_only(&r, &opts, wait)?;
                report_plan(&output, planned.units, &planned.unit_name, planned.existing);
                return Ok(());
            }
            build(
                &recipe,
                cryocube_geo::build::BuildOptions {
                    output: output.clone(),
                    sources,
                    chunk: chunk.map(|c| c as usize),
                    res,
                    overwrite,
                },
                wait,
                fb,
            )?;
            if pyramid {
                build_pyramid(&output, wait, fb)?;
            }
            Ok(())
        }
        Command::Info { store, size } => {
            let cube = CubeReader::open(&store).with_context(|| format!("cannot open {store}"))?;
            print!("{}", info::render(&cube, size)?);
            Ok(())
        }
        #[cfg(feature = "view")]
        Command::View {
            store,
            host,
            port,
            open,
            cache_mb,
            allow_hosts,
            overlays,
            sources,
        } => view::<GDAL>(
            &store,
            cryocube_view::ViewOptions {
                host,
                port,
                allow_hosts,
                overlays: Vec::new(),
            },
            open,
            cache_mb as usize,
            &overlays,
            &sources,
        ),
        #[cfg(feature = "das")]
        Command::Demo {
            output,
            overwrite,
            files,
            channels,
            record_only,
        } => {
            let record = SyntheticRecord {
                files: files as usize,
                channels: channels as usize,
                ..SyntheticRecord::default()
            };
            demo(&output, &record, overwrite, record_only, fb)
        }
    }
}

#[cfg(feature = "das")]
/// The options stated on the command line (not defaults).
fn given(m: &ArgMatches) -> Vec<Param> {
    [
        ("df", Param::Df),
        ("dt", Param::Dt),
        ("fmin", Param::Fmin),
        ("fmax", Param::Fmax),
        ("channels", Param::Channels),
        ("distance", Param::Channels),
        ("window", Param::Window),
        ("scale", Param::Scale),
        ("dtype", Param::Dtype),
        ("quantize", Param::Dtype),
        ("zarr_format", Param::ZarrFormat),
        ("shard", Param::ZarrFormat),
        ("chunks", Param::Chunks),
    ]
    .into_iter()
    .filter(|(id, _)| m.value_source(id) == Some(ValueSource::CommandLine))
    .map(|(_, p)| p)
    .collect()
}

#[cfg(feature = "das")]
fn das_options(a: DasArgs) -> Result<DasOptions> {
    let mut o = DasOptions::new(a.inputs, a.output);
    o.format = a.format;
    o.df = a.df;
    o.dt = a.dt;
    o.fmin = a.fmin;
    o.fmax = match a.fmax {
        Fmax::Nyquist => None,
        Fmax::Hz(f) => Some(f),
    };
    o.channels = match (a.distance, a.channels) {
        (Some((x, y)), _) => ChannelSelection::Distance(x, y),
        (_, Some((x, y))) => ChannelSelection::Indices(x, y),
        _ => ChannelSelection::All,
    };
    o.window = a.window;
    o.scale = match a.scale {
        ScaleArg::Db => Scale::Db,
        ScaleArg::Cryocube => Scale::Cryocube,
    };
    o.dtype = match (a.quantize, a.dtype) {
        (Some(step), _) => OutputType::Quantized { step },
        (None, DtypeArg::F32) => OutputType::F32,
        (None, DtypeArg::F16) => OutputType::F16,
    };
    if a.shard && a.zarr_format != 3 {
        return Err(usage("--shard needs --zarr-format 3"));
    }
    o.zarr = if a.zarr_format == 3 {
        ZarrFormat::V3 { sharded: a.shard }
    } else {
        ZarrFormat::V2
    };
    o.time_chunk = a.chunks.0;
    o.distance_chunk = a.chunks.1;
    o.overwrite = a.overwrite;
    o.append = a.append;
    o.wait = a.wait;
    o.max_gap = (!a.allow_gap).then_some(a.max_gap);
    o.record_paths = a.record_paths;
    o.allow_zero = a.allow_zero;
    o.average = a.average;
    o.distances = cryocube_das::stream::Distances {
        spacing: a.spacing,
        first: a.first_distance,
    };
    Ok(o)
}

/// Progress: a bar on stderr (hidden with `--quiet`), and the caller's callback.
struct Progress<'a> {
    bar: ProgressBar,
    hook: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl Progress<'_> {
    fn set(&self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
        if let Some(hook) = self.hook {
            hook(done, total);
        }
    }

    #[cfg(feature = "geo")]
    fn set_message(&self, m: String) {
        self.bar.set_message(m);
    }

    fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

fn progress_bar<'a>(fb: &Feedback<'a>, template: &str) -> Progress<'a> {
    let bar = if fb.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("static template")
                .progress_chars("=> "),
        );
        bar
    };
    Progress {
        bar,
        hook: fb.progress,
    }
}

/// `das --follow`: appends complete files until Ctrl-C (a second Ctrl-C stops at once; the
/// append it cuts short resumes on the next start).
#[cfg(feature = "das")]
fn run_follow(opts: &DasOptions, watch: cryocube_das::follow::FollowOptions) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("stopped; the next start resumes the unfinished append");
            std::process::exit(130);
        }
        eprintln!("stopping after the current append (Ctrl-C again to stop at once)");
    })
    .context("cannot install the Ctrl-C handler")?;
    log::info!(
        "following {} into {} (a file counts once a later one appears or its size holds {} s; Ctrl-C stops)",
        opts.inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        opts.output.display(),
        watch.settle
    );
    let started = Instant::now();
    let s = cryocube_das::follow::follow(opts, watch, &stop, &mut |a| {
        log::info!(
            "{}: +{} {} from {} file(s), now {} x {} channels x {} frequencies",
            a.output.display(),
            a.new_windows,
            a.steps(),
            a.files,
            a.windows,
            a.channels,
            a.bins
        );
    })?;
    log::info!(
        "stopped following after {:.0} s: {} file(s) added in {} append(s), {} time steps",
        started.elapsed().as_secs_f64(),
        s.files,
        s.appends,
        s.windows
    );
    Ok(())
}

#[cfg(feature = "das")]
fn run_das(opts: &DasOptions, fb: &Feedback<'_>) -> Result<()> {
    let started = Instant::now();
    let bar = progress_bar(
        fb,
        if opts.average.is_some() {
            "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} intervals ({per_sec}, eta {eta})"
        } else {
            "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} windows ({per_sec}, eta {eta})"
        },
    );
    let summary = job::run(opts, &|done, total| {
        bar.set(done, total);
    })?;
    bar.finish_and_clear();
    if summary.resumed_from_block > 0 {
        log::info!("resumed after block {}", summary.resumed_from_block);
    }
    if summary.new_windows == 0 {
        return Ok(());
    }
    let discontinuities = if summary.gaps + summary.overlaps > 0 {
        format!(
            " ({} gap(s), {} overlap(s); see the cube's attributes)",
            summary.gaps, summary.overlaps
        )
    } else {
        String::new()
    };
    let steps = summary.steps();
    let shape = format!(
        "{} {steps} x {} channels x {} frequencies",
        summary.windows, summary.channels, summary.bins
    );
    let seconds = started.elapsed().as_secs_f64();
    if summary.new_windows < summary.windows {
        log::info!(
            "appended {} {steps} from {} file(s) to {} (now {shape}) in {seconds:.1} s{discontinuities}",
            summary.new_windows,
            summary.files,
            summary.output.display(),
        );
    } else {
        log::info!(
            "wrote {}: {shape} from {} file(s) in {seconds:.1} s{discontinuities}",
            summary.output.display(),
            summary.files,
        );
    }
    Ok(())
}

/// What `--plan-only` prints: the units and how to run them.
fn report_plan(output: &Location, units: u64, unit_name: &str, existing: bool) {
    if units == 0 {
        println!("{output}: nothing to do");
        return;
    }
    let tasks = units.clamp(1, 64);
    println!(
        "{output}: {} with {units} {unit_name}(s){}",
        if existing {
            "already planned"
        } else {
            "planned"
        },
        if existing {
            " (units already done are skipped)"
        } else {
            ""
        }
    );
    println!("run its tasks anywhere that sees the store, in any order, then commit:");
    println!("  cryocube task {output} --index I --count N      # I = 0 .. N-1, e.g. N = {tasks}");
    println!("  cryocube commit {output}");
    println!("or on Slurm (SLURM_ARRAY_TASK_ID/COUNT give I and N):");
    println!(
        "  sbatch --array=0-{} --wrap 'cryocube task {output}'",
        tasks - 1
    );
}

/// The task's index and count: stated, or from the scheduler's environment.
fn task_index(index: Option<u64>, count: Option<u64>) -> Result<(u64, u64)> {
    let env = |name: &str| -> Result<Option<u64>> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse()
                .map(Some)
                .with_context(|| format!("{name}={v:?} is not a task index")),
            _ => Ok(None),
        }
    };
    let slurm_index = match (env("SLURM_ARRAY_TASK_ID")?, env("SLURM_ARRAY_TASK_MIN")?) {
        (Some(id), min) => Some(id.saturating_sub(min.unwrap_or(0))),
        (None, _) => None,
    };
    let index = index
        .or(slurm_index)
        .or(env("JOB_COMPLETION_INDEX")?)
        .or(env("AWS_BATCH_JOB_ARRAY_INDEX")?);
    let count = count.or(env("SLURM_ARRAY_TASK_COUNT")?);
    match (index, count) {
        (Some(i), Some(n)) => Ok((i, n)),
        _ => Err(usage(
            "give the task's --index and --count (or run it as a Slurm array task, or with JOB_COMPLETION_INDEX / AWS_BATCH_JOB_ARRAY_INDEX and --count)",
        )),
    }
}

/// An error and its causes, each said once: libraries put a cause's text in their message
/// and also return it as the source, and OS errors must not be printed twice. A cause that
/// only wraps what was just said in more words (GDAL's binding: "CPL error class: …, error
/// msg: '<the message>'") is left out too.
fn chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        let last = text.rsplit(": ").next().unwrap_or(&text);
        let rewords_last = last.len() >= 8 && c.contains(last);
        if !text.contains(&c) && !rewords_last {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// An error that exits with the usage code 2.
#[derive(Debug)]
struct UsageError(String);
impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}
fn usage(message: &str) -> anyhow::Error {
    UsageError(message.to_string()).into()
}

/// The job planned in a store (a cube's, or its pyramid's), or a clear error.
fn planned_job(store: &Location) -> Result<cryocube_cube::job::Job> {
    let s = store
        .open()
        .with_context(|| format!("cannot open {store}"))?;
    if let Some(job) = cryocube_cube::job::Job::open(s)? {
        return Ok(job);
    }
    cryocube_cube::pyramid::planned(store)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{store}: no planned job there (plan one with `cryocube das|build|pyramid ... --plan-only`, or it was committed already)"
        )
    })
}

fn run_task<const GDAL: bool>(
    store: &Location,
    index: u64,
    count: u64,
    fb: &Feedback<'_>,
) -> Result<()> {
    use cryocube_cube::lock::{LockMode, StoreLock};
    let started = Instant::now();
    let lock = StoreLock::acquire(store, LockMode::Shared, false, "task")?;
    let stored = planned_job(store)?;
    let bar = progress_bar(
        fb,
        "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} windows ({per_sec}, eta {eta})",
    );
    let progress = |done: u64, total: u64| {
        bar.set(done, total);
    };
    let kind = stored.plan.kind.clone();
    let units = stored.plan.units;
    match kind.as_str() {
        #[cfg(feature = "das")]
        job::KIND | job::KIND_APPEND => {
            let t = job::run_task(stored, store, index, count, &progress)?;
            bar.finish_and_clear();
            log::info!(
                "{store}: task {index} of {count}: time blocks {}..{} of {units} ({} already done), {} windows in {:.1} s",
                t.units.start,
                t.units.end,
                t.already_done,
                t.windows,
                started.elapsed().as_secs_f64()
            );
        }
        #[cfg(feature = "geo")]
        cryocube_geo::build::KIND if !GDAL => {
            // Released first: the program that takes over takes it again.
            drop(lock);
            return Err(hand_over_to_gdal());
        }
        #[cfg(feature = "geo")]
        cryocube_geo::build::KIND => {
            let chunks = |done: usize, total: usize| progress(done as u64, total as u64);
            let t = cryocube_geo::build::run_task(stored, store, index, count, &chunks)?;
            bar.finish_and_clear();
            log::info!(
                "{store}: task {index} of {count}: grid chunks {}..{} of {units} ({} already done) in {:.1} s",
                t.units.start,
                t.units.end,
                t.already_done,
                started.elapsed().as_secs_f64()
            );
        }
        cryocube_cube::pyramid::KIND => {
            let chunks = |done: usize, total: usize| progress(done as u64, total as u64);
            let share = cryocube_cube::pyramid::run_task(&stored, store, index, count, &chunks)?;
            bar.finish_and_clear();
            log::info!(
                "{store}: task {index} of {count}: pyramid units {}..{} of {units} in {:.1} s",
                share.start,
                share.end,
                started.elapsed().as_secs_f64()
            );
        }
        other => bail!("{store}: a plan of kind `{other}` that this version cannot run"),
    }
    drop(lock);
    Ok(())
}

fn commit<const GDAL: bool>(store: &Location, wait: bool) -> Result<()> {
    use cryocube_cube::lock::{LockMode, StoreLock};
    let lock = StoreLock::acquire(store, LockMode::Exclusive, wait, "commit")?;
    let stored = planned_job(store)?;
    let kind = stored.plan.kind.clone();
    match kind.as_str() {
        #[cfg(feature = "das")]
        job::KIND | job::KIND_APPEND => {
            let s = job::commit(stored, store)?;
            log::info!(
                "{store}: committed: {} {} x {} channels x {} frequencies",
                s.windows,
                s.steps(),
                s.channels,
                s.bins
            );
        }
        #[cfg(feature = "geo")]
        cryocube_geo::build::KIND if !GDAL => {
            drop(lock);
            return Err(hand_over_to_gdal());
        }
        #[cfg(feature = "geo")]
        cryocube_geo::build::KIND => {
            let s = cryocube_geo::build::commit(stored, store)?;
            for w in &s.warnings {
                log::warn!("{store}: {w}");
            }
            log::info!(
                "{store}: committed: {} variable(s) on {} x {} cells",
                s.variables.len(),
                s.nx,
                s.ny
            );
        }
        cryocube_cube::pyramid::KIND => {
            let s = cryocube_cube::pyramid::commit(stored, store, &|_, _| {})?;
            log::info!(
                "{store}: committed: pyramid of {} level(s) for {} variable(s)",
                s.levels,
                s.variables
            );
        }
        other => bail!("{store}: a plan of kind `{other}` that this version cannot commit"),
    }
    drop(lock);
    Ok(())
}

/// Runs this process's command line in `cryocube-geo`, the program beside this one with GDAL
/// linked in, in place of this process (see [`main_handing_gdal_over`]); returns only why it
/// could not.
#[cfg(feature = "geo")]
fn hand_over_to_gdal() -> anyhow::Error {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            return anyhow::anyhow!(
                "cannot find this program's path to run cryocube-geo beside it: {e}"
            )
        }
    };
    let helper = exe.with_file_name(format!("cryocube-geo{}", std::env::consts::EXE_SUFFIX));
    let mut command = std::process::Command::new(&helper);
    command.args(std::env::args_os().skip(1));
    let cannot = |e: std::io::Error| {
        anyhow::anyhow!(
            "this command needs GDAL, which {} runs and {} hands it to; it cannot be started: {e} (install both programs, e.g. `cargo install --path crates/cli`)",
            helper.display(),
            exe.display()
        )
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cannot(command.exec())
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => cannot(e),
    }
}

#[cfg(feature = "geo")]
/// `build --check [--fix]`: prints what departs from the DeepESDL specification and what
/// cryocube cannot build; fails when there is any.
fn check_recipe(recipe: &Path, fix: bool) -> Result<()> {
    if fix {
        let polygon = cryocube_geo::spec::fix_geometry(recipe)?;
        let points = polygon["coordinates"].to_string().matches('[').count();
        log::info!(
            "{}: geometry written ({}, about {points} points, CRS-84)",
            recipe.display(),
            polygon["type"].as_str().unwrap_or("polygon")
        );
    }
    let report = cryocube_geo::spec::check_file(recipe)?;
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!("{}: {}\n", f.path, f.problems.join("; ")));
    }
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    print!("{out}");
    if let Some(e) = &report.error {
        println!("error: {e}");
    }
    let n = report.findings.len();
    if report.is_clean() {
        println!(
            "{}: conforms to the DeepESDL dataset specification and builds{}",
            recipe.display(),
            if report.warnings.is_empty() {
                String::new()
            } else {
                format!(" ({} warning(s))", report.warnings.len())
            }
        );
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{}: {n} place(s) depart from the DeepESDL dataset specification{}",
            recipe.display(),
            if report.error.is_some() {
                "; cryocube cannot build it"
            } else {
                ""
            }
        ))
    }
}

#[cfg(feature = "geo")]
fn build(
    recipe: &std::path::Path,
    opts: cryocube_geo::build::BuildOptions,
    wait: bool,
    fb: &Feedback<'_>,
) -> Result<()> {
    let started = Instant::now();
    let recipe = cryocube_geo::recipe::Recipe::load(recipe)?;
    let bar = progress_bar(
        fb,
        "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} chunks x variables (eta {eta})",
    );
    let summary = cryocube_geo::build::build(&recipe, &opts, wait, &|done, total| {
        bar.set(done as u64, total as u64);
    })?;
    bar.finish_and_clear();
    for w in &summary.warnings {
        log::warn!("{}: {w}", recipe.path.display());
    }
    log::info!(
        "wrote {}: {} variable(s) on {} x {} cells{} in {:.1} s{}",
        opts.output.display(),
        summary.variables.len(),
        summary.nx,
        summary.ny,
        match summary.times.len() {
            0 => String::new(),
            n => format!(" x {n} time step(s)"),
        },
        started.elapsed().as_secs_f64(),
        if summary.skipped.is_empty() {
            String::new()
        } else {
            format!(" (skipped: {})", summary.skipped.join(", "))
        }
    );
    Ok(())
}

#[cfg(feature = "geo")]
fn fetch(recipe: &std::path::Path, dir: PathBuf, max_bytes: u64, fb: &Feedback<'_>) -> Result<()> {
    let recipe = cryocube_geo::recipe::Recipe::load(recipe)?;
    for w in &recipe.warnings {
        log::warn!("{}: {w}", recipe.path.display());
    }
    let bar = progress_bar(
        fb,
        "{spinner} {msg:30!} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    );
    let mut opts = cryocube_geo::fetch::FetchOptions::new(dir);
    opts.max_bytes = max_bytes;
    let fetched = cryocube_geo::fetch::fetch_all(&recipe, &opts, &|name, done, total| {
        bar.set_message(name.to_string());
        bar.set(done, total.unwrap_or(done));
    })?;
    bar.finish_and_clear();
    for f in &fetched {
        log::info!(
            "{}: {} ({} bytes{}{})",
            f.source,
            f.file.display(),
            f.bytes,
            if f.cached { ", already there" } else { "" },
            if f.extracted.is_empty() {
                String::new()
            } else {
                format!(", {} file(s) extracted", f.extracted.len())
            }
        );
    }
    Ok(())
}

#[cfg(feature = "das")]
fn demo(
    dir: &std::path::Path,
    record: &SyntheticRecord,
    overwrite: bool,
    record_only: bool,
    fb: &Feedback<'_>,
) -> Result<()> {
    let raw = dir.join("raw");
    let cube = dir.join("demo.zarr");
    if record_only && raw.exists() && !overwrite {
        bail!(
            "{}: synthetic record already exists (use --overwrite, or another -o folder)",
            raw.display()
        );
    }
    if cube.exists() && !overwrite && !record_only {
        bail!(
            "{}: demo output already exists (use --overwrite, or another -o folder)",
            cube.display()
        );
    }
    log::info!(
        "synthesising {} files x {} s x {} channels at {} Hz in {}",
        record.files,
        record.seconds_per_file,
        record.channels,
        record.sampling_rate,
        raw.display()
    );
    let files = record.write(&raw)?;
    if record_only {
        for f in &files {
            println!("{}", f.display());
        }
        return Ok(());
    }
    let mut opts = DasOptions::new(files, cube.clone());
    opts.overwrite = true;
    run_das(&opts, fb)?;
    build_pyramid(&Location::from(&cube), false, fb)?;
    let reader = CubeReader::open(&cube)?;
    println!("{}", info::render(&reader, true)?);
    println!(
        "Open it in Python:  xarray.open_zarr({:?}).spectrogram",
        cube.display().to_string()
    );
    // The program as the user typed it (`./target/release/cryocube` after `make demo`), so the
    // printed command runs as pasted even when cryocube is not on PATH.
    let program = std::env::args_os()
        .next()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cryocube".to_owned());
    println!(
        "Explore it in the browser:  {program} view {} --open",
        cube.display()
    );
    Ok(())
}

fn build_pyramid(store: &Location, wait: bool, fb: &Feedback<'_>) -> Result<()> {
    let started = Instant::now();
    let bar = progress_bar(
        fb,
        "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} pyramid chunks (eta {eta})",
    );
    let summary = cryocube_cube::pyramid::build(store, wait, &|done, total| {
        bar.set(done as u64, total as u64);
    })
    .with_context(|| format!("cannot build the pyramid of {store}"))?;
    bar.finish_and_clear();
    log::info!(
        "{store}: pyramid of {} level(s) for {} variable(s) in {:.1} s",
        summary.levels,
        summary.variables,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(feature = "view")]
fn view<const GDAL: bool>(
    store: &Location,
    mut opts: cryocube_view::ViewOptions,
    open: bool,
    cache_mb: usize,
    overlay_files: &[PathBuf],
    sources: &Path,
) -> Result<()> {
    let cube = open_view::<GDAL>(store, &mut opts, cache_mb, overlay_files, Some(sources))?;
    cryocube_view::serve_blocking(cube, &opts, |addr| {
        let url = format!("http://{addr}/");
        // stdout, so that scripts (and tests) can read the URL.
        println!("cryocube view: {store} at {url} (Ctrl-C to stop)");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        if open {
            if let Err(e) = std::process::Command::new("xdg-open").arg(&url).spawn() {
                log::warn!("could not open a browser (xdg-open: {e}); open {url} yourself");
            }
        }
    })?;
    Ok(())
}

/// The cube to view, with `opts.overlays` read: the files given and the vector sources of a
/// recipe cube found in `sources` (default `cryocube-sources`, as for `build`).
#[cfg(feature = "view")]
fn open_view<const GDAL: bool>(
    store: &Location,
    opts: &mut cryocube_view::ViewOptions,
    cache_mb: usize,
    overlay_files: &[PathBuf],
    sources: Option<&Path>,
) -> Result<cryocube_view::ViewCube> {
    let cube = cryocube_view::ViewCube::open(store, cache_mb << 20)
        .with_context(|| format!("cannot view {store}"))?;
    let mut files = overlay_files.to_vec();
    let sources = sources.unwrap_or(Path::new("cryocube-sources"));
    for f in recipe_vector_sources(&cube, sources) {
        if !files.contains(&f) {
            files.push(f);
        }
    }
    #[cfg(feature = "geo")]
    if !GDAL && !files.is_empty() {
        return Err(hand_over_to_gdal());
    }
    if !is_loopback(&opts.host) {
        log::warn!(
            "serving on {}: anyone who can reach this address can read the cube",
            opts.host
        );
    }
    // Where GDAL is handed over, `files` is empty here: the reader of overlays must not even
    // be called, or the program would load GDAL to start.
    if GDAL || cfg!(not(feature = "geo")) {
        opts.overlays = read_overlays(&cube, store, &files)?;
    }
    Ok(cube)
}

/// The `--overlay` files as lines in the cube's CRS (read and reprojected by cryocube-geo).
#[cfg(all(feature = "view", feature = "geo"))]
fn read_overlays(
    cube: &cryocube_view::ViewCube,
    store: &Location,
    files: &[PathBuf],
) -> Result<Vec<cryocube_view::Overlay>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let Some((wkt, cell)) = cube.map_crs() else {
        bail!("{store}: --overlay needs a cube with a map (a variable with a grid_mapping that states its CRS as crs_wkt or spatial_ref)");
    };
    files
        .iter()
        .map(|f| {
            // A quarter of a cell: finer than any screen shows the cube.
            let o = cryocube_geo::overlay::read_outlines(f, &wkt, cell / 4.0)
                .with_context(|| format!("cannot read the overlay {}", f.display()))?;
            log::info!(
                "overlay {}: {} lines, {} of {} vertices kept",
                o.name,
                o.paths.len(),
                o.paths.iter().map(Vec::len).sum::<usize>(),
                o.vertices_read
            );
            Ok(cryocube_view::Overlay {
                name: o.name,
                paths: o
                    .paths
                    .into_iter()
                    .map(|p| p.into_iter().flatten().collect())
                    .collect(),
            })
        })
        .collect()
}

/// Vector files whose extensions OGR reads as outlines.
#[cfg(feature = "view")]
const VECTOR_EXTENSIONS: [&str; 5] = ["shp", "geojson", "gpkg", "kml", "fgb"];

/// The vector sources a recipe cube was built from (its variables' `input_files`: `NAME
/// (SIZE bytes, sha256 ...)` or `MEMBER (SIZE bytes) in ARCHIVE (...)`), where they are in
/// `sources` (the folder `build` fetched them to); none when it is not there.
#[cfg(feature = "view")]
fn recipe_vector_sources(cube: &cryocube_view::ViewCube, sources: &Path) -> Vec<PathBuf> {
    let names = cube.input_files();
    let vector: Vec<&str> = names
        .iter()
        .filter_map(|entry| entry.split(" (").next())
        .filter(|name| {
            Path::new(name)
                .extension()
                .is_some_and(|e| VECTOR_EXTENSIONS.iter().any(|v| e.eq_ignore_ascii_case(v)))
        })
        .collect();
    if vector.is_empty() {
        return Vec::new();
    }
    if !sources.is_dir() {
        log::info!(
            "the cube was built from vector sources ({}); --sources {} is no folder, so none is offered as an overlay",
            vector.join(", "),
            sources.display()
        );
        return Vec::new();
    }
    let mut found = Vec::new();
    for name in vector {
        match find_file(sources, name, 4) {
            Some(p) => {
                log::info!("overlay from the recipe's source: {}", p.display());
                found.push(p);
            }
            None => log::info!("{name}: not found under {}", sources.display()),
        }
    }
    found
}

/// The first file called `name` under `dir`, at most `depth` folders down, in name order.
#[cfg(feature = "view")]
fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    if let Some(e) = entries.iter().find(|e| e.file_name() == name) {
        return Some(e.path());
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| find_file(&e.path(), name, depth - 1))
}

#[cfg(all(feature = "view", not(feature = "geo")))]
fn read_overlays(
    _: &cryocube_view::ViewCube,
    _: &Location,
    files: &[PathBuf],
) -> Result<Vec<cryocube_view::Overlay>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    bail!("--overlay needs cryocube built with the `geo` feature (GDAL reads the vector files)")
}

#[cfg(feature = "view")]
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
