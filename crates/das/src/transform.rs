//! Short-time Fourier spectra of one channel's samples, in the two documented scales.
//!
//! - [`Scale::Cryocube`]: the seed workflow's numerics: symmetric window, real FFT,
//!   `10 ln |X|^2`, DC bin set to 0, windows labelled by their start;
//! - [`Scale::Db`]: `scipy.signal.spectrogram` conventions: periodic window, mean removed per
//!   window, one-sided power spectral density with density scaling, `10 log10`, windows
//!   labelled by their centre.
//!
//! A window that contains a NaN sample (a gap in the record) is NaN in every bin. Zero power
//! is `-inf`, as the logarithm says. FFT plans and scratch space are made once per thread.
//!
//! An even-length window is transformed as a complex FFT of half its length (even samples as
//! real parts, odd samples as imaginary parts), and only the kept bins are untangled from it:
//! with 101 of 501 bins kept (the seed's parameters) that skips most of a real FFT's
//! post-processing. Odd lengths take a full-length complex FFT.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// How spectra are scaled (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scale {
    /// The seed's numerics: symmetric window, `10 ln |X|^2`, DC set to 0, labelled by start.
    Cryocube,
    /// `scipy.signal.spectrogram`: PSD in dB, labelled by centre.
    Db,
}

impl Scale {
    /// The name as options and attributes spell it.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Cryocube => "cryocube",
            Scale::Db => "db",
        }
    }
    /// The inverse of [`Scale::name`].
    pub fn parse(name: &str) -> Option<Scale> {
        [Scale::Cryocube, Scale::Db]
            .into_iter()
            .find(|s| s.name() == name)
    }
    /// Which instant of a window its time label names.
    pub fn label(self) -> &'static str {
        match self {
            Scale::Cryocube => "start",
            Scale::Db => "centre",
        }
    }
}

/// Taper applied to each window.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Window {
    /// Tukey with the given taper fraction (0: boxcar, 1: Hann).
    Tukey(f64),
    /// Hann.
    Hann,
    /// Hamming.
    Hamming,
    /// Blackman.
    Blackman,
    /// No taper.
    Boxcar,
}

impl Window {
    /// Parses `tukey:0.25`, `tukey` (0.25), `hann`, `hamming`, `blackman`, `boxcar`.
    pub fn parse(s: &str) -> Result<Window, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let w = match name {
            "tukey" => {
                let alpha = match arg {
                    Some(a) => a
                        .parse::<f64>()
                        .map_err(|_| format!("tukey parameter {a:?} is not a number"))?,
                    None => 0.25,
                };
                if !(0.0..=1.0).contains(&alpha) {
                    return Err(format!("tukey parameter {alpha} is outside 0..1"));
                }
                Window::Tukey(alpha)
            }
            "hann" => Window::Hann,
            "hamming" => Window::Hamming,
            "blackman" => Window::Blackman,
            "boxcar" | "rect" => Window::Boxcar,
            _ => {
                return Err(format!(
                    "unknown window {name:?} (tukey:ALPHA, hann, hamming, blackman, boxcar)"
                ))
            }
        };
        if arg.is_some() && !matches!(w, Window::Tukey(_)) {
            return Err(format!("window {name:?} takes no parameter"));
        }
        Ok(w)
    }

    /// The name as `--window` spells it.
    pub fn name(&self) -> String {
        match self {
            Window::Tukey(a) => format!("tukey:{a}"),
            Window::Hann => "hann".into(),
            Window::Hamming => "hamming".into(),
            Window::Blackman => "blackman".into(),
            Window::Boxcar => "boxcar".into(),
        }
    }

    /// Window values as scipy.signal.get_window makes them: `symmetric` for filter design
    /// (the seed), periodic (`symmetric = false`) for spectral analysis.
    pub fn values(&self, m: usize, symmetric: bool) -> Vec<f64> {
        if m == 1 {
            return vec![1.0];
        }
        // A periodic window of length m is the symmetric one of length m + 1 without its end.
        let len = if symmetric { m } else { m + 1 };
        let d = (len - 1) as f64;
        let pi = std::f64::consts::PI;
        let mut w: Vec<f64> = (0..len)
            .map(|n| {
                let n = n as f64;
                match *self {
                    Window::Hann => 0.5 - 0.5 * (2.0 * pi * n / d).cos(),
                    Window::Hamming => 0.54 - 0.46 * (2.0 * pi * n / d).cos(),
                    Window::Blackman => {
                        0.42 - 0.5 * (2.0 * pi * n / d).cos() + 0.08 * (4.0 * pi * n / d).cos()
                    }
                    Window::Boxcar => 1.0,
                    Window::Tukey(_) => 1.0,
                }
            })
            .collect();
        if let Window::Tukey(alpha) = *self {
            if alpha > 0.0 {
                if alpha >= 1.0 {
                    return Window::Hann.values(m, symmetric);
                }
                let width = (alpha * d / 2.0).floor() as usize;
                for (n, v) in w.iter_mut().enumerate() {
                    let x = n as f64;
                    if n <= width {
                        *v = 0.5 * (1.0 + (pi * (-1.0 + 2.0 * x / alpha / d)).cos());
                    } else if n >= len - width - 1 {
                        *v = 0.5 * (1.0 + (pi * (-2.0 / alpha + 1.0 + 2.0 * x / alpha / d)).cos());
                    }
                }
            }
        }
        w.truncate(m);
        w
    }
}

/// Everything that defines the spectra of a cube.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SpectrumParams {
    /// Samples per second.
    pub sampling_rate: f64,
    /// Window length in samples.
    pub window_len: usize,
    /// Hop between window starts in samples.
    pub hop: usize,
    /// Kept FFT bins `first_bin ..= last_bin`.
    pub first_bin: usize,
    /// See `first_bin`.
    pub last_bin: usize,
    /// The scale of the values.
    pub scale: Scale,
    /// The taper.
    pub window: Window,
}

impl SpectrumParams {
    /// The parameters of `cryocube das --df --dt --fmin --fmax` at sampling rate `fs`
    /// (`fmax` `None`: Nyquist), or why they make no spectrum (the message names the options).
    pub fn checked(
        fs: f64,
        df: f64,
        dt: f64,
        fmin: f64,
        fmax: Option<f64>,
        scale: Scale,
        window: Window,
    ) -> Result<SpectrumParams, String> {
        let num = cryocube_cube::cf::format_number;
        if !(df > 0.0 && df.is_finite() && dt > 0.0 && dt.is_finite()) {
            return Err(format!(
                "--df {} and --dt {} must be positive",
                num(df),
                num(dt)
            ));
        }
        if !(fs > 0.0 && fs.is_finite()) {
            return Err(format!("the sampling rate {fs} Hz must be positive"));
        }
        let window_len = SpectrumParams::window_for(fs, df);
        let hop = SpectrumParams::hop_for(fs, dt);
        if window_len < 2 || hop < 1 {
            return Err(format!(
                "--df {} Hz and --dt {} s give a window of {window_len} and a hop of {hop} samples at {fs} Hz",
                num(df),
                num(dt)
            ));
        }
        if !fmin.is_finite() || fmax.is_some_and(|f| !f.is_finite()) {
            return Err(format!(
                "--fmin {} and --fmax {} must be finite",
                fmin,
                fmax.map_or("nyquist".into(), |f| f.to_string())
            ));
        }
        let nyquist = fs / 2.0;
        let fmax = fmax.unwrap_or(nyquist);
        if fmax > nyquist * (1.0 + 1e-9) {
            return Err(format!(
                "--fmax {fmax} Hz is above the Nyquist frequency {nyquist} Hz (sampling rate {fs} Hz)"
            ));
        }
        let (first_bin, last_bin) = SpectrumParams::bins_for(fs, window_len, fmin, fmax);
        if fmin < 0.0 || first_bin > last_bin {
            return Err(format!(
                "--fmin {} .. --fmax {fmax} Hz selects no frequency bin (bin width {} Hz)",
                fmin,
                fs / window_len as f64
            ));
        }
        Ok(SpectrumParams {
            sampling_rate: fs,
            window_len,
            hop,
            first_bin,
            last_bin,
            scale,
            window,
        })
    }

    /// Frequencies kept.
    pub fn n_bins(&self) -> usize {
        self.last_bin - self.first_bin + 1
    }
    /// The kept bins' frequencies, Hz.
    pub fn frequencies(&self) -> Vec<f64> {
        (self.first_bin..=self.last_bin)
            .map(|k| k as f64 * self.sampling_rate / self.window_len as f64)
            .collect()
    }
    /// Window length in samples for a frequency resolution `df` Hz.
    pub fn window_for(sampling_rate: f64, df: f64) -> usize {
        (sampling_rate / df).round() as usize
    }
    /// Hop in samples for a time step `dt` s.
    pub fn hop_for(sampling_rate: f64, dt: f64) -> usize {
        (dt * sampling_rate).round() as usize
    }
    /// FFT bins `first ..= last` within `fmin ..= fmax` Hz (`first > last`: none).
    pub fn bins_for(sampling_rate: f64, window_len: usize, fmin: f64, fmax: f64) -> (usize, usize) {
        let bin_hz = sampling_rate / window_len as f64;
        let first = (fmin / bin_hz - 1e-9).ceil().max(0.0) as usize;
        let last = ((fmax / bin_hz + 1e-9).floor().max(0.0) as usize).min(window_len / 2);
        (first, last)
    }
    /// Number of whole windows in `n` samples.
    pub fn n_windows(&self, n: u64) -> u64 {
        if n < self.window_len as u64 {
            0
        } else {
            (n - self.window_len as u64) / self.hop as u64 + 1
        }
    }
}

/// Spectra of an in-memory record of `n_channels` channels of `n_samples` samples each
/// (`channel(c)` gives channel `c`'s, borrowed when they lie contiguous): values laid out
/// (window, channel, bin), row-major, as a cube's chunks are; with the numbers of windows and
/// bins. Channels are transformed in parallel.
pub fn spectrogram<'a>(
    params: &SpectrumParams,
    n_channels: usize,
    n_samples: usize,
    channel: impl Fn(usize) -> std::borrow::Cow<'a, [f32]> + Sync,
) -> (Vec<f32>, usize, usize) {
    use rayon::prelude::*;
    let stft = Stft::new(params.clone());
    let nb = params.n_bins();
    let nw = params.n_windows(n_samples as u64) as usize;
    let per_channel: Vec<Vec<f32>> = (0..n_channels)
        .into_par_iter()
        .map_init(
            || stft.workspace(),
            |ws, c| {
                let mut out = vec![0f32; nw * nb];
                stft.channel(&channel(c), nw, &mut out, nb, ws);
                out
            },
        )
        .collect();
    // Window by window in parallel: each window's row of the output is written by one thread.
    let mut out = vec![0f32; nw * n_channels * nb];
    if nb > 0 && n_channels > 0 {
        out.par_chunks_mut(n_channels * nb)
            .enumerate()
            .for_each(|(w, row)| {
                for (dst, spectra) in row.chunks_exact_mut(nb).zip(&per_channel) {
                    dst.copy_from_slice(&spectra[w * nb..(w + 1) * nb]);
                }
            });
    }
    (out, nw, nb)
}

/// A planned transform; cheap to share between threads, each of which keeps a [`Workspace`].
pub struct Stft {
    params: SpectrumParams,
    taper: Vec<f32>,
    /// Complex FFT of `window_len / 2` (even length) or `window_len` (odd).
    fft: Arc<dyn Fft<f32>>,
    /// Even length, for each kept bin `k`: `exp(-2 pi i k / window_len)` and the indices of
    /// `Z[k]` and `Z[M-k]` in the half-length transform (precomputed: a modulo per bin costs
    /// more than the arithmetic).
    twiddles: Vec<(Complex<f32>, usize, usize)>,
    /// `log_factor * (ln(power) + ln_factor)` gives the scaled value of each bin.
    log_factor: f32,
    /// Per-bin ln of the multiplier of |X|^2 (density scaling, one-sided doubling for `db`).
    ln_factor: Vec<f32>,
    /// The same multipliers, linear (Welch sums powers before the logarithm).
    factor: Vec<f64>,
}

/// Per-thread scratch space.
pub struct Workspace {
    buffer: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// |X|^2 of the kept bins of one window.
    power: Vec<f32>,
}

impl Stft {
    /// A transform with `params` (FFT plans made once).
    pub fn new(params: SpectrumParams) -> Stft {
        let m = params.window_len;
        let symmetric = params.scale == Scale::Cryocube;
        let w = params.window.values(m, symmetric);
        let even = m.is_multiple_of(2);
        let fft = FftPlanner::<f32>::new().plan_fft_forward(if even { m / 2 } else { m });
        let twiddles = if even {
            let half = m / 2;
            (params.first_bin..=params.last_bin)
                .map(|k| {
                    let a = -2.0 * std::f64::consts::PI * k as f64 / m as f64;
                    let w = Complex::new(a.cos() as f32, a.sin() as f32);
                    (w, k % half, (half - k % half) % half)
                })
                .collect()
        } else {
            Vec::new()
        };
        let (log_factor, ln_factor) = match params.scale {
            Scale::Cryocube => (10.0, vec![0.0; params.n_bins()]),
            Scale::Db => {
                let s2: f64 = w.iter().map(|v| v * v).sum();
                let base = 1.0 / (params.sampling_rate * s2);
                let nyquist = if m.is_multiple_of(2) {
                    Some(m / 2)
                } else {
                    None
                };
                let pf = (params.first_bin..=params.last_bin)
                    .map(|k| {
                        let f = if k == 0 || Some(k) == nyquist {
                            base
                        } else {
                            2.0 * base
                        };
                        f.ln() as f32
                    })
                    .collect();
                ((10.0 / std::f64::consts::LN_10) as f32, pf)
            }
        };
        Stft {
            factor: ln_factor.iter().map(|f| (*f as f64).exp()).collect(),
            taper: w.iter().map(|v| *v as f32).collect(),
            fft,
            twiddles,
            log_factor,
            ln_factor,
            params,
        }
    }

    /// Its parameters.
    pub fn params(&self) -> &SpectrumParams {
        &self.params
    }

    /// Buffers for one thread's windows.
    pub fn workspace(&self) -> Workspace {
        Workspace {
            buffer: vec![Complex::default(); self.fft.len()],
            scratch: vec![Complex::default(); self.fft.get_inplace_scratch_len()],
            power: vec![0.0; self.params.n_bins()],
        }
    }

    /// Spectra of `n_windows` windows of `samples` (window `w` starts at `w * hop`). Window
    /// `w`'s bins go to `out[w * stride .. w * stride + n_bins]`.
    pub fn channel(
        &self,
        samples: &[f32],
        n_windows: usize,
        out: &mut [f32],
        stride: usize,
        ws: &mut Workspace,
    ) {
        let p = &self.params;
        let nb = p.n_bins();
        for w in 0..n_windows {
            let x = &samples[w * p.hop..w * p.hop + p.window_len];
            let dst = &mut out[w * stride..w * stride + nb];
            if !self.power(x, ws) {
                dst.fill(f32::NAN);
                continue;
            }
            for ((d, pw), f) in dst.iter_mut().zip(&ws.power).zip(&self.ln_factor) {
                *d = self.log_factor * (ln_normal(*pw) + f);
            }
            for ((d, pw), f) in dst.iter_mut().zip(&ws.power).zip(&self.ln_factor) {
                if !pw.is_normal() {
                    // 0 -> -inf; subnormal, infinite or NaN powers take the exact path.
                    *d = self.log_factor * (pw.ln() + f);
                }
            }
            if p.scale == Scale::Cryocube && p.first_bin == 0 {
                dst[0] = 0.0;
            }
        }
    }

    /// Welch: adds the power of each of `n_windows` windows of `samples` (scaled as the
    /// scale's spectra, linear: a PSD for `db`) to `sum`, and counts them in `count`. A window
    /// with a NaN sample (touching a gap) is left out.
    pub fn accumulate(
        &self,
        samples: &[f32],
        n_windows: usize,
        sum: &mut [f64],
        count: &mut u32,
        ws: &mut Workspace,
    ) {
        let p = &self.params;
        for w in 0..n_windows {
            if self.power(&samples[w * p.hop..w * p.hop + p.window_len], ws) {
                for ((s, pw), f) in sum.iter_mut().zip(&ws.power).zip(&self.factor) {
                    *s += *pw as f64 * f;
                }
                *count += 1;
            }
        }
    }

    /// The scale's value of the mean power `sum / count` of [`Stft::accumulate`]: the
    /// logarithm taken after averaging. No window (`count` 0) is NaN.
    pub fn average(&self, sum: &[f64], count: u32, out: &mut [f32]) {
        if count == 0 {
            out.fill(f32::NAN);
            return;
        }
        let log_factor = self.log_factor as f64;
        for (d, s) in out.iter_mut().zip(sum) {
            *d = (log_factor * (s / count as f64).ln()) as f32;
        }
        if self.params.scale == Scale::Cryocube && self.params.first_bin == 0 {
            out[0] = 0.0;
        }
    }

    /// |X|^2 of the kept bins of window `x` into `ws.power`; false (and nothing computed)
    /// when the window holds a NaN sample.
    fn power(&self, x: &[f32], ws: &mut Workspace) -> bool {
        let p = &self.params;
        let even = !self.twiddles.is_empty();
        // Eight running sums vectorise; a NaN sample (a gap) makes the sum NaN.
        let mut lanes = [0f32; 8];
        let mut it = x.chunks_exact(8);
        for c in &mut it {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l += *v;
            }
        }
        let sum = lanes.iter().sum::<f32>() + it.remainder().iter().sum::<f32>();
        if sum.is_nan() {
            return false;
        }
        let mean = match p.scale {
            Scale::Db => sum / p.window_len as f32,
            // The seed's numerics remove no mean.
            Scale::Cryocube => 0.0,
        };
        if even {
            // M complex values are 2M f32 laid out as even sample, odd sample (`Complex`
            // is `#[repr(C)]` {re, im}; bytemuck checks it): exactly the packing wanted,
            // and a flat loop that vectorises.
            let flat: &mut [f32] = bytemuck::cast_slice_mut(&mut ws.buffer);
            for ((z, v), t) in flat.iter_mut().zip(x).zip(&self.taper) {
                *z = (*v - mean) * *t;
            }
        } else {
            for ((z, v), t) in ws.buffer.iter_mut().zip(x).zip(&self.taper) {
                *z = Complex::new((*v - mean) * *t, 0.0);
            }
        }
        self.fft
            .process_with_scratch(&mut ws.buffer, &mut ws.scratch);
        if even {
            for (pw, &(tw, i, ic)) in ws.power.iter_mut().zip(&self.twiddles) {
                // Untangle bin k of the real signal from the half-length transform Z:
                // X[k] = E + W^k O with E = (Z[k] + Z*[M-k]) / 2, O = (Z[k] - Z*[M-k]) / 2i.
                let zk = ws.buffer[i];
                let zc = ws.buffer[ic].conj();
                let e = (zk + zc) * 0.5;
                let o = (zk - zc) * Complex::new(0.0, -0.5);
                *pw = (e + tw * o).norm_sqr();
            }
        } else {
            for (pw, c) in ws.power.iter_mut().zip(&ws.buffer[p.first_bin..]) {
                *pw = c.norm_sqr();
            }
        }
        true
    }
}

/// Natural logarithm of a positive normal `f32`, within 3e-7 relative (far inside the
/// 0.01 tolerance of the spectra). Unlike the libm call it has no branches, so the loop over a
/// window's bins vectorises; the caller sends zero, subnormal and non-finite values to `ln`.
#[inline(always)]
fn ln_normal(x: f32) -> f32 {
    let bits = x.to_bits();
    // x = 2^e * m with m in [sqrt(1/2), sqrt(2)).
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e += big as i32;
    // ln(m) = 2 atanh(s) with s = (m - 1) / (m + 1), |s| < 0.172: an odd series to s^9.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let r = s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0))));
    e as f32 * std::f32::consts::LN_2 + (2.0 * s + s * r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tukey_matches_scipy_values() {
        // scipy.signal.windows.tukey(8, 0.5, sym=True)
        let w = Window::Tukey(0.5).values(8, true);
        let expected = [0.0, 0.61126047, 1.0, 1.0, 1.0, 1.0, 0.61126047, 0.0];
        for (a, b) in w.iter().zip(expected) {
            assert!((a - b).abs() < 1e-7, "{w:?}");
        }
        // Periodic: the symmetric window of length 9 without its last value.
        let p = Window::Tukey(0.5).values(8, false);
        let s9 = Window::Tukey(0.5).values(9, true);
        assert_eq!(p, s9[..8]);
    }

    #[test]
    fn fast_ln_matches_ln_over_the_normal_range() {
        let mut x = f32::MIN_POSITIVE;
        let mut worst = 0f64;
        while x < f32::MAX / 1.0001 {
            let got = ln_normal(x) as f64;
            let want = (x as f64).ln();
            // f32 itself carries 6e-8 relative error on the result.
            worst = worst.max((got - want).abs() / want.abs().max(1.0));
            x *= 1.000_37;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }

    #[test]
    fn even_and_odd_lengths_match_a_direct_dft() {
        for n in [64usize, 63, 1000, 999] {
            let params = SpectrumParams {
                sampling_rate: 1.0,
                window_len: n,
                hop: n,
                first_bin: 0,
                last_bin: n / 2,
                scale: Scale::Cryocube,
                window: Window::Boxcar,
            };
            let stft = Stft::new(params);
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 113) as f32 - 56.0) * 0.37 + (i as f32 * 0.3).sin())
                .collect();
            let mut out = vec![0f32; n / 2 + 1];
            let mut ws = stft.workspace();
            stft.channel(&x, 1, &mut out, n / 2 + 1, &mut ws);
            assert_eq!(out[0], 0.0, "the seed's numerics zero the DC bin");
            for (k, got) in out.iter().enumerate().skip(1) {
                let (mut re, mut im) = (0f64, 0f64);
                for (i, v) in x.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * (k * i) as f64 / n as f64;
                    re += *v as f64 * a.cos();
                    im += *v as f64 * a.sin();
                }
                let want = 10.0 * (re * re + im * im).ln();
                assert!(
                    (*got as f64 - want).abs() < 1e-3,
                    "n={n} bin {k}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn tone_peaks_in_its_bin_and_zero_power_is_minus_infinity() {
        let params = SpectrumParams {
            sampling_rate: 100.0,
            window_len: 100,
            hop: 50,
            first_bin: 0,
            last_bin: 50,
            scale: Scale::Db,
            window: Window::Hann,
        };
        let stft = Stft::new(params);
        let x: Vec<f32> = (0..200)
            .map(|i| (2.0 * std::f32::consts::PI * 10.0 * i as f32 / 100.0).sin())
            .collect();
        let mut out = vec![0f32; 3 * 51];
        let mut ws = stft.workspace();
        stft.channel(&x, 3, &mut out, 51, &mut ws);
        let peak = (0..51).max_by(|a, b| out[*a].total_cmp(&out[*b])).unwrap();
        assert_eq!(peak, 10);
        let zeros = vec![0f32; 100];
        stft.channel(&zeros, 1, &mut out, 51, &mut ws);
        assert!(out[..51].iter().all(|v| *v == f32::NEG_INFINITY));
    }

    #[test]
    fn nan_sample_makes_the_window_nan() {
        let params = SpectrumParams {
            sampling_rate: 10.0,
            window_len: 10,
            hop: 10,
            first_bin: 0,
            last_bin: 5,
            scale: Scale::Cryocube,
            window: Window::Tukey(0.25),
        };
        let stft = Stft::new(params);
        let mut x = vec![1f32; 20];
        x[3] = f32::NAN;
        let mut out = vec![0f32; 12];
        stft.channel(&x, 2, &mut out, 6, &mut stft.workspace());
        assert!(out[..6].iter().all(|v| v.is_nan()));
        assert!(out[6..].iter().all(|v| !v.is_nan()));
    }
}
