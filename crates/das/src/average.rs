//! `--average SECONDS`: long-term spectra, one per interval, as a seismologist's PSD (Welch).
//!
//! A month of spectra every 0.1 s is as large as the raw record; a glaciologist watching a
//! season wants one spectrum per minute. Interval `k` is the record's samples
//! `k * S .. (k + 1) * S` (`S` = SECONDS x sampling rate); its spectrum is the mean *linear*
//! power of the windows wholly inside it (window `j` starting `j * hop` after the interval's
//! start: `scipy.signal.welch` over those samples with `noverlap = window - hop` takes the same
//! segments), and the scale's logarithm is taken after averaging. Windows that touch a gap
//! are left out; how many were averaged is the variable `count(time, distance)`, 0 (and NaN
//! spectra) for an interval inside a gap. Samples after the last whole interval are not used.
//!
//! The job model is the same as for window spectra ([`crate::job`]): a unit is one time chunk
//! of intervals, so tasks on many machines and a resumed run work unchanged. Memory is one
//! sub-block of samples (at most one time chunk of windows) and, per channel, one interval's
//! sums, plus the unit's output chunks, whatever the interval length.

use rayon::prelude::*;

use crate::job::Job;
use crate::quantize::Buffer;
use crate::stream::{Block, BlockReader};
use crate::transform::Stft;
use crate::DasError;

/// Computes the units among `units` not in `done` (ascending), each a time chunk of
/// intervals, recording each when its chunks are stored; returns the intervals computed.
pub(crate) fn run_units(
    job: &Job,
    units: &[u64],
    done: &[u64],
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<u64, DasError> {
    let pl = &job.payload;
    let plan = &pl.plan;
    let avg = plan.average.expect("an averaging plan");
    let layout = &pl.layout;
    let writer = &job.writer;
    let todo = crate::job::to_do(units, done);
    crate::job::check_inputs(pl, &todo)?;
    let p = &plan.params;
    let t_chunk = layout.time_chunk.max(1) as u64;
    let d_chunk = layout.distance_chunk.max(1);
    let width = (plan.c1 - plan.c0) as usize;
    let nb = p.n_bins();
    let n_dchunks = width.div_ceil(d_chunk);
    let stft = Stft::new(p.clone());
    let encoder = layout.encoder();
    // Windows read at once: an interval of many windows is read in pieces.
    let sub = (layout.time_chunk.max(1) as u64).min(avg.windows) as usize;
    let cap = (sub - 1) * p.hop + p.window_len;
    let mut reader = BlockReader::new(&plan.record, plan.c0, plan.c1);
    // Unit u computes intervals k0..k1 of block b (those before `base_windows` are already
    // in the cube: an append).
    let steps = |u: u64| {
        let b = u + pl.first_block;
        (
            (b * t_chunk).max(pl.base_windows),
            ((b + 1) * t_chunk).min(plan.n_windows),
        )
    };
    let count_of = |us: &[u64]| -> u64 {
        us.iter()
            .map(|&u| {
                let (k0, k1) = steps(u);
                k1 - k0
            })
            .sum()
    };
    let total = count_of(units);
    let mut progressed = total - count_of(&todo);
    progress(progressed, total);

    let mut blocks = [Block::new(width, cap), Block::new(width, cap)];
    let mut sums = vec![0f64; width * nb];
    let mut counts = vec![0u32; width];
    // The unit's chunks, one per distance chunk, full chunk shape (rows past the end NaN).
    let chunk_len = t_chunk as usize * d_chunk * nb;
    let mut spectra: Vec<Vec<f32>> = vec![vec![f32::NAN; chunk_len]; n_dchunks];
    let mut count_chunks: Vec<Vec<i32>> = vec![vec![0; t_chunk as usize * d_chunk]; n_dchunks];
    let mut computed = 0;
    for &u in &todo {
        let (k0, k1) = steps(u);
        let b = u + pl.first_block;
        spectra.iter_mut().for_each(|c| c.fill(f32::NAN));
        count_chunks.iter_mut().for_each(|c| c.fill(0));
        // The block an append starts in: its rows already in the cube, put aside when the
        // append began, go back into each chunk.
        let kept = (k0 - b * t_chunk) as usize;
        if kept > 0 {
            for (dc, (chunk, count_chunk)) in spectra.iter_mut().zip(&mut count_chunks).enumerate()
            {
                let missing = || {
                    DasError::Input(format!(
                        "{}: the last {kept} intervals, kept aside when the append began, are missing; rebuild the cube with --overwrite",
                        writer.path().display()
                    ))
                };
                let rows = writer
                    .get_aside(&crate::job::aside_key(dc))?
                    .filter(|v| v.len() == kept * d_chunk * nb)
                    .ok_or_else(missing)?;
                chunk[..rows.len()].copy_from_slice(&rows);
                let counts = writer
                    .get_aside(&crate::append::count_aside_key(dc))?
                    .filter(|v| v.len() == kept * d_chunk)
                    .ok_or_else(missing)?;
                for (c, v) in count_chunk.iter_mut().zip(counts) {
                    *c = v as i32;
                }
            }
        }
        for k in k0..k1 {
            sums.fill(0.0);
            counts.fill(0);
            let start = plan.step_samples(k).0;
            let mut j = 0;
            while j < avg.windows {
                let nw = (avg.windows - j).min(sub as u64) as usize;
                let a = start + j * p.hop as u64;
                let e = a + ((nw - 1) * p.hop + p.window_len) as u64;
                let [cur, prev] = &mut blocks;
                reader.load(prev, cur, a, e)?;
                blocks.swap(0, 1);
                let block = &blocks[0];
                sums.par_chunks_mut(d_chunk * nb)
                    .zip(counts.par_chunks_mut(d_chunk))
                    .enumerate()
                    .for_each_init(
                        || stft.workspace(),
                        |ws, (dc, (sum, count))| {
                            for (c, n) in count.iter_mut().enumerate() {
                                stft.accumulate(
                                    block.channel(dc * d_chunk + c),
                                    nw,
                                    &mut sum[c * nb..(c + 1) * nb],
                                    n,
                                    ws,
                                );
                            }
                        },
                    );
                j += nw as u64;
            }
            let row = (k - b * t_chunk) as usize;
            spectra
                .par_iter_mut()
                .zip(count_chunks.par_iter_mut())
                .enumerate()
                .for_each(|(dc, (chunk, count_chunk))| {
                    for c in dc * d_chunk..((dc + 1) * d_chunk).min(width) {
                        let at = row * d_chunk + c - dc * d_chunk;
                        stft.average(
                            &sums[c * nb..(c + 1) * nb],
                            counts[c],
                            &mut chunk[at * nb..(at + 1) * nb],
                        );
                        count_chunk[at] = counts[c] as i32;
                    }
                });
        }
        spectra
            .par_iter()
            .zip(count_chunks.par_iter())
            .enumerate()
            .try_for_each_init(Buffer::default, |buffer, (dc, (chunk, count_chunk))| {
                encoder.store(writer, [b, dc as u64, 0], chunk, buffer)?;
                writer.write_chunk("count", &[b, dc as u64], count_chunk)?;
                Ok::<(), DasError>(())
            })?;
        job.mark_done(u, reader.stats())?;
        computed += k1 - k0;
        progressed += k1 - k0;
        progress(progressed, total);
    }
    Ok(computed)
}
