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

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// How spectra are scaled (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Cryocube,
    Db,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::Cryocube => "cryocube",
            Scale::Db => "db",
        }
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
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    Tukey(f64),
    Hann,
    Hamming,
    Blackman,
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
#[derive(Clone, Debug)]
pub struct SpectrumParams {
    pub sampling_rate: f64,
    /// Window length in samples.
    pub window_len: usize,
    /// Hop between window starts in samples.
    pub hop: usize,
    /// Kept FFT bins `first_bin ..= last_bin`.
    pub first_bin: usize,
    pub last_bin: usize,
    pub scale: Scale,
    pub window: Window,
}

impl SpectrumParams {
    pub fn n_bins(&self) -> usize {
        self.last_bin - self.first_bin + 1
    }
    pub fn frequencies(&self) -> Vec<f64> {
        (self.first_bin..=self.last_bin)
            .map(|k| k as f64 * self.sampling_rate / self.window_len as f64)
            .collect()
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

/// A planned transform; cheap to share between threads, each of which keeps a [`Workspace`].
pub struct Stft {
    params: SpectrumParams,
    taper: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    /// `log_factor * ln(power * power_factor)` gives the scaled value of each bin.
    log_factor: f64,
    /// Per-bin multiplier of |X|^2 (density scaling and one-sided doubling for `db`).
    power_factor: Vec<f64>,
}

/// Per-thread scratch space.
pub struct Workspace {
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl Stft {
    pub fn new(params: SpectrumParams) -> Stft {
        let m = params.window_len;
        let symmetric = params.scale == Scale::Cryocube;
        let w = params.window.values(m, symmetric);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(m);
        let (log_factor, power_factor) = match params.scale {
            Scale::Cryocube => (10.0, vec![1.0; params.n_bins()]),
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
                        if k == 0 || Some(k) == nyquist {
                            base
                        } else {
                            2.0 * base
                        }
                    })
                    .collect();
                (10.0 / std::f64::consts::LN_10, pf)
            }
        };
        Stft {
            taper: w.iter().map(|v| *v as f32).collect(),
            fft,
            log_factor,
            power_factor,
            params,
        }
    }

    pub fn params(&self) -> &SpectrumParams {
        &self.params
    }

    pub fn workspace(&self) -> Workspace {
        Workspace {
            input: self.fft.make_input_vec(),
            output: self.fft.make_output_vec(),
            scratch: self.fft.make_scratch_vec(),
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
            let mean = match p.scale {
                Scale::Db => x.iter().map(|v| *v as f64).sum::<f64>() / x.len() as f64,
                // No mean removal in the seed's numerics; the sum still flags gap (NaN) windows.
                Scale::Cryocube => x.iter().map(|v| *v as f64).sum::<f64>() * 0.0,
            };
            if mean.is_nan() {
                dst.fill(f32::NAN);
                continue;
            }
            let mean = mean as f32;
            for ((i, v), t) in ws.input.iter_mut().zip(x).zip(&self.taper) {
                *i = (*v - mean) * *t;
            }
            self.fft
                .process_with_scratch(&mut ws.input, &mut ws.output, &mut ws.scratch)
                .expect("buffers come from the same plan");
            for (j, d) in dst.iter_mut().enumerate() {
                let c = ws.output[p.first_bin + j];
                let power = (c.re as f64).powi(2) + (c.im as f64).powi(2);
                *d = (self.log_factor * (power * self.power_factor[j]).ln()) as f32;
            }
            if p.scale == Scale::Cryocube && p.first_bin == 0 {
                dst[0] = 0.0;
            }
        }
    }
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
