//! CF-packed int16: floats stored as integer codes `step` apart (`scale_factor`, `add_offset`).
//!
//! A quarter of float64 and half of float32, with an error bound the user chooses: the value
//! is `add_offset + code * scale_factor`, at most half a step from the float it stands for.
//! xarray, netCDF and GDAL unpack such arrays without being asked (CF 1.10 section 8.1).
//!
//! Two codes are reserved: the lowest (`_FillValue`) is NaN, as CF says, and the one above it
//! is `-inf` (zero power in a log spectrum), named by `cryocube_neg_inf_code`. CF has no
//! `-inf` code, so other readers show it as the lowest value a cube can hold, well below
//! every real value; ours read `-inf`. Encoding and decoding live here together so the two
//! cannot drift apart.

use serde_json::{json, Value};

use crate::cf::format_number;
use crate::{ArraySpec, Attrs};

/// The code of NaN (CF `_FillValue`, the store's fill value).
pub const FILL_CODE: i16 = i16::MIN;
/// The code of `-inf`.
pub const NEG_INF_CODE: i16 = i16::MIN + 1;
/// The lowest and highest code of a finite value.
const LOWEST: i32 = i16::MIN as i32 + 2;
const HIGHEST: i32 = i16::MAX as i32;
/// Codes available to finite values.
pub const FINITE_CODES: u32 = (HIGHEST - LOWEST) as u32 + 1;

/// How int16 codes map to values.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Packing {
    /// The spacing of values (CF `scale_factor`).
    pub step: f64,
    /// The value of code 0 (CF `add_offset`).
    pub offset: f64,
}

/// Values outside what a packing can hold: the finite extremes of the chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overflow {
    /// The lowest finite value (or the value that would not fit).
    pub min: f64,
    /// The highest finite value.
    pub max: f64,
    /// A `+inf` (no code stands for it).
    pub pos_inf: bool,
}

impl Packing {
    /// A packing of `step` centred on the values `lo ..= hi`. The offset is a whole number
    /// of steps, so that every stored value is a multiple of the step.
    pub fn centred(step: f64, lo: f64, hi: f64) -> Packing {
        let mid = if lo.is_finite() && hi.is_finite() {
            (lo + hi) / 2.0
        } else {
            0.0
        };
        // Centre of the finite codes, which are one more above 0 than below it.
        let centre_code = (LOWEST + HIGHEST) as f64 / 2.0;
        Packing {
            step,
            offset: ((mid / step) - centre_code).round() * step,
        }
    }

    /// How many decimals step and offset have (0.05: 2), if few; values are shown with them.
    fn decimals(&self) -> Option<usize> {
        (0..=9).find(|&d| {
            let m = 10f64.powi(d as i32);
            let whole = |x: f64| ((x * m).round() - x * m).abs() < 1e-6;
            whole(self.step) && whole(self.offset)
        })
    }

    /// `v` with the packing's decimals.
    pub fn show(&self, v: f64) -> String {
        match self.decimals() {
            Some(d) => format_number(format!("{v:.d$}").parse().unwrap_or(v)),
            None => format_number(v),
        }
    }

    /// The lowest and highest value the packing holds.
    pub fn range(&self) -> (f64, f64) {
        (
            self.offset + LOWEST as f64 * self.step,
            self.offset + HIGHEST as f64 * self.step,
        )
    }

    /// The smallest step that holds `lo ..= hi` (rounded up to two significant digits), with
    /// the offset centred on them.
    pub fn smallest_step(lo: f64, hi: f64) -> f64 {
        // Two codes spare: rounding to the grid may push an end half a step outwards.
        let exact = (hi - lo) / (FINITE_CODES - 3) as f64;
        if !(exact > 0.0 && exact.is_finite()) {
            return f64::MIN_POSITIVE;
        }
        let magnitude = 10f64.powf(exact.log10().floor() - 1.0);
        (exact / magnitude).ceil() * magnitude
    }

    /// The packing of a stored array, if it is CF-packed integers.
    pub fn of(spec: &ArraySpec) -> Option<Packing> {
        if spec.dtype.is_float() {
            return None;
        }
        let num = |k: &str| spec.attrs.get(k).and_then(Value::as_f64);
        let (scale, offset) = (num("scale_factor"), num("add_offset"));
        if scale.is_none() && offset.is_none() {
            return None;
        }
        Some(Packing {
            step: scale.unwrap_or(1.0),
            offset: offset.unwrap_or(0.0),
        })
    }

    /// The attributes that make readers unpack: CF packing, the fill and `-inf` codes, and
    /// the error bound stated for users.
    pub fn attrs(&self) -> Attrs {
        let mut a = Attrs::new();
        a.insert("scale_factor".into(), json!(self.step));
        a.insert("add_offset".into(), json!(self.offset));
        a.insert("_FillValue".into(), json!(FILL_CODE));
        a.insert("cryocube_neg_inf_code".into(), json!(NEG_INF_CODE));
        // Our own names: CF 1.12's `quantization*` attributes describe bit rounding.
        a.insert("cryocube_quantization_step".into(), json!(self.step));
        a.insert("cryocube_max_abs_error".into(), json!(self.step / 2.0));
        let (lo, hi) = self.range();
        let neg_inf_shown = self.offset + NEG_INF_CODE as f64 * self.step;
        a.insert(
            "cryocube_quantization".into(),
            json!(format!(
                "int16 codes {} apart (value = add_offset + code * scale_factor), each at most {} from the value computed; code {FILL_CODE} is NaN (_FillValue), code {NEG_INF_CODE} is -inf (cryocube_neg_inf_code; readers that do not know it show {}); finite values span {} .. {}",
                format_number(self.step),
                format_number(self.step / 2.0),
                self.show(neg_inf_shown),
                self.show(lo),
                self.show(hi)
            )),
        );
        a
    }

    /// Encodes `values` into `codes` (cleared first). NaN takes the fill code, `-inf` its
    /// code; a finite value outside [`Packing::range`] or a `+inf` is an [`Overflow`].
    pub fn encode(&self, values: &[f32], codes: &mut Vec<i16>) -> Result<(), Overflow> {
        // Rounding as a shifted truncation (`as i32` of a positive number is its floor): one
        // conversion instruction where `f64::round` is a libm call on baseline x86-64.
        const SHIFT: f64 = 65536.0;
        let (lo, hi) = (LOWEST as f64 + SHIFT, HIGHEST as f64 + SHIFT + 1.0);
        let inv = 1.0 / self.step;
        let mut bad = false;
        codes.clear();
        codes.extend(values.iter().map(|&v| {
            let t = (v as f64 - self.offset) * inv + SHIFT + 0.5;
            // In range: floor(x + 0.5) is a finite code. NaN fails both comparisons.
            if t >= lo && t < hi {
                (t as i32 - SHIFT as i32) as i16
            } else if v.is_nan() {
                FILL_CODE
            } else if v == f32::NEG_INFINITY {
                NEG_INF_CODE
            } else {
                bad = true;
                0
            }
        }));
        if bad {
            let finite = values.iter().filter(|v| v.is_finite());
            return Err(Overflow {
                min: finite.clone().fold(f64::INFINITY, |m, v| m.min(*v as f64)),
                max: finite.fold(f64::NEG_INFINITY, |m, v| m.max(*v as f64)),
                pos_inf: values.contains(&f32::INFINITY),
            });
        }
        Ok(())
    }
}

/// How a stored packed array's codes become values, as its attributes say (arrays packed by
/// other tools name their own fill code, and have no `-inf` code).
#[derive(Clone, Copy, Debug)]
pub struct Unpacking {
    packing: Packing,
    fill: Option<f64>,
    neg_inf: Option<f64>,
    /// 10^d for a step and offset of d decimals (0.05: 100): values are rounded to them, so
    /// that 45.95 reads as 45.95, not 45.949999999999996.
    decimals: Option<f64>,
}

impl Unpacking {
    /// The unpacking of `spec`, if it is CF-packed integers.
    pub fn of(spec: &ArraySpec) -> Option<Unpacking> {
        let num = |k: &str| spec.attrs.get(k).and_then(Value::as_f64);
        let packing = Packing::of(spec)?;
        let decimals = packing.decimals().map(|d| 10f64.powi(d as i32));
        Some(Unpacking {
            packing,
            fill: num("_FillValue"),
            neg_inf: num("cryocube_neg_inf_code"),
            decimals,
        })
    }

    /// The value of a stored code.
    pub fn value(&self, code: f64) -> f64 {
        if Some(code) == self.fill {
            f64::NAN
        } else if Some(code) == self.neg_inf {
            f64::NEG_INFINITY
        } else {
            let v = code * self.packing.step + self.packing.offset;
            match self.decimals {
                Some(m) => (v * m).round() / m,
                None => v,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_within_half_a_step() {
        let p = Packing::centred(0.05, -180.0, 20.0);
        let spec = ArraySpec::coordinate("v", "x", 1, crate::DType::I16, p.attrs());
        let u = Unpacking::of(&spec).unwrap();
        let values: Vec<f32> = (0..2000)
            .map(|i| -180.0 + i as f32 * 0.1003)
            .chain([f32::NAN, f32::NEG_INFINITY])
            .collect();
        let mut codes = Vec::new();
        p.encode(&values, &mut codes).unwrap();
        for (v, c) in values.iter().zip(&codes) {
            let back = u.value(*c as f64);
            if v.is_nan() {
                assert!(back.is_nan());
            } else if v.is_infinite() {
                assert_eq!(back, f64::NEG_INFINITY);
            } else {
                assert!((back - *v as f64).abs() <= 0.025 + 1e-4, "{v} -> {back}");
            }
        }
        // A whole number of steps: stored values are multiples of the step.
        assert!((p.offset / 0.05 - (p.offset / 0.05).round()).abs() < 1e-9);
    }

    #[test]
    fn values_read_as_the_decimals_of_the_step() {
        let p = Packing {
            step: 0.05,
            offset: -100.0,
        };
        let spec = ArraySpec::coordinate("v", "x", 1, crate::DType::I16, p.attrs());
        let u = Unpacking::of(&spec).unwrap();
        assert_ne!(
            2919.0 * 0.05 - 100.0,
            45.95,
            "the float artefact this avoids"
        );
        assert_eq!(u.value(2919.0), 45.95);
        assert!(u.value(-32768.0).is_nan());
        assert_eq!(u.value(-32767.0), f64::NEG_INFINITY);
    }

    #[test]
    fn values_beyond_the_range_overflow_and_the_smallest_step_holds_them() {
        let p = Packing::centred(0.001, 0.0, 10.0);
        let (lo, hi) = p.range();
        assert!(lo < 0.0 && hi > 10.0 && hi - lo < 65.6, "{lo} {hi}");
        let mut codes = Vec::new();
        // The ends of the range are the lowest and highest finite codes; a step beyond is not.
        p.encode(&[lo as f32, hi as f32], &mut codes).unwrap();
        assert_eq!(codes, [NEG_INF_CODE + 1, i16::MAX]);
        assert!(p.encode(&[(hi + p.step) as f32], &mut codes).is_err());
        assert!(p.encode(&[(lo - p.step) as f32], &mut codes).is_err());
        let err = p.encode(&[5.0, -100.0, 90.0], &mut codes).unwrap_err();
        assert_eq!((err.min, err.max, err.pos_inf), (-100.0, 90.0, false));
        let s = Packing::smallest_step(-100.0, 90.0);
        assert!((190.0 / 65533.0..1.1 * 190.0 / 65533.0).contains(&s), "{s}");
        let fit = Packing::centred(s, -100.0, 90.0);
        fit.encode(&[5.0, -100.0, 90.0], &mut codes).unwrap();
        assert!(p.encode(&[f32::INFINITY], &mut codes).unwrap_err().pos_inf);
    }
}
