//! `--quantize STEP`: spectra stored as int16 codes `STEP` apart (CF packing, see
//! [`cryocube_cube::pack`]), and the storing of spectrogram chunks in every element type.
//!
//! A month-long campaign's float32 cube is as large as its raw record. Log spectra carry
//! their information in a few hundredths of a dB, so 16-bit codes of 0.05 dB hold any
//! spectrum a fibre gives (a span of 3277 dB) at an error users choose, and the byte shuffle
//! compresses them far better than float noise.
//!
//! The codes' offset must be the same on every machine that computes a share of the cube, so
//! it is fixed when the job is planned, from spectra of a few windows sampled across the
//! record ([`probe`]). A window whose spectrum falls outside the codes later stops the job
//! with the smallest step that would hold what was seen, never a clipped value.

use cryocube_cube::pack::{Overflow, Packing, FINITE_CODES};
use cryocube_cube::CubeWriter;

use crate::job::{OutputType, Plan};
use crate::stream::{Block, BlockReader};
use crate::transform::Stft;
use crate::DasError;

/// Windows sampled at planning, and how many windows and channels each sample spans.
const PROBES: u64 = 8;
const PROBE_WINDOWS: u64 = 4;
const PROBE_CHANNELS: u64 = 64;

/// Turns chunks of float spectra into the stored element type.
pub(crate) enum Encoder {
    F32,
    F16,
    I16(Packing),
}

/// Per-thread space for converted chunks.
#[derive(Default)]
pub(crate) struct Buffer {
    half: Vec<half::f16>,
    codes: Vec<i16>,
}

impl Encoder {
    /// The encoder of `dtype`; `add_offset` is a quantised cube's code-0 value.
    pub(crate) fn new(dtype: OutputType, add_offset: f64) -> Encoder {
        match dtype {
            OutputType::F32 => Encoder::F32,
            OutputType::F16 => Encoder::F16,
            OutputType::Quantized { step } => Encoder::I16(Packing {
                step,
                offset: add_offset,
            }),
        }
    }

    /// Stores `chunk` (float spectra, full chunk shape) as chunk `idx` of `spectrogram`.
    pub(crate) fn store(
        &self,
        writer: &CubeWriter,
        idx: [u64; 3],
        chunk: &[f32],
        buffer: &mut Buffer,
    ) -> Result<(), DasError> {
        match self {
            Encoder::F32 => writer.write_chunk("spectrogram", &idx, chunk)?,
            Encoder::F16 => {
                buffer.half.clear();
                buffer
                    .half
                    .extend(chunk.iter().map(|v| half::f16::from_f32(*v)));
                writer.write_chunk("spectrogram", &idx, &buffer.half)?
            }
            Encoder::I16(p) => {
                p.encode(chunk, &mut buffer.codes)
                    .map_err(|o| overflow_error(writer, p, o))?;
                writer.write_chunk("spectrogram", &idx, &buffer.codes)?
            }
        }
        Ok(())
    }
}

/// The error of spectra the codes cannot hold, with the step that would.
fn overflow_error(writer: &CubeWriter, p: &Packing, o: Overflow) -> DasError {
    let (lo, hi) = p.range();
    let message = if o.pos_inf {
        "a window's power is +inf (samples too large for float32 power: see the warning about them), and no code stands for +inf; store it with --dtype f32".to_string()
    } else {
        // The same job planned again centres its codes where these are (the probe does not
        // change): the step must reach the farther of the two extremes from that centre.
        let centre = (lo + hi) / 2.0;
        let reach = (o.max - centre).max(centre - o.min);
        format!(
            "spectra in the windows computed so far reach {} .. {}, beyond the {} .. {} that int16 codes hold at this step. {}",
            short(o.min),
            short(o.max),
            short(lo),
            short(hi),
            advice(centre - reach, centre + reach, true)
        )
    };
    DasError::Quantize {
        path: writer.path().to_path_buf(),
        step: p.step,
        message,
    }
}

/// What to do when spectra span `lo .. hi` and the step is too small: the smallest step that
/// holds them, and a round step with room for the part of the record not yet seen (twice the
/// span), so that a second try is not a third.
fn advice(lo: f64, hi: f64, overwrite: bool) -> String {
    let exact = Packing::smallest_step(lo, hi);
    let room = Packing::smallest_step(lo - (hi - lo) / 2.0, hi + (hi - lo) / 2.0);
    let round = round_step_above(room);
    format!(
        "The smallest step that holds them is {}; the rest of the record may reach further: run again with --quantize {}{}",
        short(exact),
        short(round),
        if overwrite { " --overwrite" } else { "" }
    )
}

/// The smallest of 1, 2 and 5 times a power of ten that is at least `x`.
fn round_step_above(x: f64) -> f64 {
    let decade = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|s| *s >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * decade)
}

/// A number as a user would type it back (six significant digits).
fn short(v: f64) -> String {
    // `format_number` of a float rounded to six significant digits: no 0.30000000000000004.
    cryocube_cube::cf::format_number(format!("{v:.6e}").parse().unwrap_or(v))
}

/// The packing of a quantised job: `step`, centred on spectra of windows sampled across the
/// record. Fails, before anything is computed, when the sampled spectra already span more
/// than the codes hold.
pub(crate) fn plan_packing(
    plan: &Plan,
    step: f64,
    output: &std::path::Path,
) -> Result<Packing, DasError> {
    let err = |message: String| DasError::Quantize {
        path: output.to_path_buf(),
        step,
        message,
    };
    if !(step > 0.0 && step.is_finite()) {
        return Err(err("the step must be a positive number".into()));
    }
    let (lo, hi) = probe(plan)?;
    let packing = Packing::centred(step, lo, hi);
    if lo.is_finite() && hi - lo > step * (FINITE_CODES - 3) as f64 {
        return Err(err(format!(
            "spectra sampled across the record span {} .. {} ({}), more than the {} steps of int16 codes hold at this step. {}",
            short(lo),
            short(hi),
            short(hi - lo),
            FINITE_CODES - 1,
            advice(lo, hi, false)
        )));
    }
    Ok(packing)
}

/// The lowest and highest finite spectrum value of [`PROBES`] samples of a few windows and
/// channels, spread over the record's time and distance (NaN, NaN: no finite value).
pub(crate) fn probe(plan: &Plan) -> Result<(f64, f64), DasError> {
    let p = &plan.params;
    let stft = Stft::new(p.clone());
    let mut ws = stft.workspace();
    let nb = p.n_bins();
    let width = plan.c1 - plan.c0;
    let run = width.min(PROBE_CHANNELS);
    let cap = (PROBE_WINDOWS as usize - 1) * p.hop + p.window_len;
    let empty = Block::new(run as usize, 0);
    let mut block = Block::new(run as usize, cap);
    let mut out = vec![0f32; PROBE_WINDOWS as usize * nb];
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut seen = Vec::new();
    for k in 0..PROBES {
        let nw = plan.n_windows.min(PROBE_WINDOWS);
        let w = k * (plan.n_windows - nw) / (PROBES - 1);
        // Distances visited in a scrambled order, so time and distance both spread.
        let c = plan.c0 + ((k * 5) % PROBES) * (width - run) / (PROBES - 1);
        if seen.contains(&(w, c)) {
            continue;
        }
        seen.push((w, c));
        let a = w * p.hop as u64;
        let e = (w + nw - 1) * p.hop as u64 + p.window_len as u64;
        let mut reader = BlockReader::new(&plan.record, c, c + run);
        reader.load(&mut block, &empty, a, e)?;
        for ch in 0..run as usize {
            stft.channel(block.channel(ch), nw as usize, &mut out, nb, &mut ws);
            for v in out[..nw as usize * nb].iter().filter(|v| v.is_finite()) {
                lo = lo.min(*v as f64);
                hi = hi.max(*v as f64);
            }
        }
    }
    if lo > hi {
        return Ok((f64::NAN, f64::NAN));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_steps_are_one_two_five() {
        assert_eq!(round_step_above(0.0023), 0.005);
        assert_eq!(round_step_above(0.01), 0.01);
        assert_eq!(round_step_above(0.011), 0.02);
        assert_eq!(round_step_above(3.0), 5.0);
        assert_eq!(round_step_above(6.0), 10.0);
    }
}
