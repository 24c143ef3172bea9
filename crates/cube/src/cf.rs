//! CF and ACDD encodings shared by every cube: time coordinates, attribute helpers.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Value};

use crate::Attrs;

/// The CF units string of our int64 time coordinates.
pub const TIME_UNITS: &str = "microseconds since 1970-01-01T00:00:00";

/// Attributes of a CF time coordinate in UTC microseconds. `label` says what instant of a
/// window or cell a time names ("start" or "centre"), which CF has no standard key for.
pub fn time_attrs(label: &str) -> Attrs {
    let mut a = Attrs::new();
    a.insert("standard_name".into(), json!("time"));
    a.insert(
        "long_name".into(),
        json!(format!("time (UTC) of the window {label}")),
    );
    a.insert("axis".into(), json!("T"));
    a.insert("units".into(), json!(TIME_UNITS));
    a.insert("calendar".into(), json!("proleptic_gregorian"));
    a.insert("time_label".into(), json!(label));
    a
}

/// A number as messages show it: plain when it reads well, in exponent form when it would
/// run to dozens of digits (a corrupt header's sampling rate of 1e300).
pub fn format_number(v: f64) -> String {
    let a = v.abs();
    if v.is_finite() && a != 0.0 && !(1e-4..1e9).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Formats UTC microseconds as ISO 8601 with a `Z`, to the microsecond when needed.
pub fn format_utc_us(us: i64) -> String {
    match Utc.timestamp_micros(us).single() {
        Some(t) if us % 1_000_000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) if us % 1_000 == 0 => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("{us} µs since 1970"),
    }
}

/// Parses what [`format_utc_us`] writes (any RFC 3339 time) back to UTC microseconds.
pub fn parse_utc_us(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_micros())
}

/// A recipe's time stamp to UTC microseconds: a date (`2013-01-01`, midnight UTC) or any
/// RFC 3339 time (`2013-01-01T12:00:00Z`).
pub fn parse_date_or_time_us(text: &str) -> Option<i64> {
    parse_utc_us(text).or_else(|| {
        chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
    })
}

/// Decodes CF `"<unit> since <date>"` values to UTC microseconds (for cubes written by others).
pub fn decode_time(values: &[f64], units: &str) -> Option<Vec<i64>> {
    let (unit, since) = units.split_once(" since ")?;
    let unit = unit.trim();
    let since = since.trim().trim_end_matches('Z');
    let epoch = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(since, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(since, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    // Calendar months and years (climatologies say "months since"): whole numbers only, as
    // a fraction of a month has no fixed length.
    let months_per = match unit {
        "months" | "month" => Some(1),
        "years" | "year" => Some(12),
        _ => None,
    };
    if let Some(per) = months_per {
        return values
            .iter()
            .map(|v| {
                if v.fract() != 0.0 || !v.is_finite() {
                    return None;
                }
                let months = (*v as i64).checked_mul(per)?;
                let step = chrono::Months::new(u32::try_from(months.unsigned_abs()).ok()?);
                let t = if months >= 0 {
                    epoch.checked_add_months(step)
                } else {
                    epoch.checked_sub_months(step)
                }?;
                Some(DateTime::<Utc>::from_naive_utc_and_offset(t, Utc).timestamp_micros())
            })
            .collect();
    }
    let scale_us = match unit {
        "days" | "day" => 86_400e6,
        "hours" | "hour" => 3_600e6,
        "minutes" | "minute" => 60e6,
        "seconds" | "second" | "s" => 1e6,
        "milliseconds" | "millisecond" | "ms" => 1e3,
        "microseconds" | "microsecond" | "us" => 1.0,
        "nanoseconds" | "nanosecond" | "ns" => 1e-3,
        _ => return None,
    };
    let epoch_us = DateTime::<Utc>::from_naive_utc_and_offset(epoch, Utc).timestamp_micros();
    Some(
        values
            .iter()
            .map(|v| epoch_us + (v * scale_us).round() as i64)
            .collect(),
    )
}

/// `date_created` and friends: now, in UTC, to the second.
pub fn now_iso() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Shorthand for building attribute maps in order.
pub fn attrs<const N: usize>(pairs: [(&str, Value); N]) -> Attrs {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips_through_cf_units() {
        let us = 1_595_376_000_123_456; // 2020-07-22T00:00:00.123456Z
        assert_eq!(format_utc_us(us), "2020-07-22T00:00:00.123456Z");
        assert_eq!(parse_utc_us(&format_utc_us(us)), Some(us));
        assert_eq!(
            parse_utc_us("2020-07-22T02:00:00+02:00"),
            Some(1_595_376_000_000_000)
        );
        assert_eq!(decode_time(&[us as f64], TIME_UNITS), Some(vec![us]));
        assert_eq!(
            decode_time(&[1.5], "seconds since 2020-07-22 00:00:00"),
            Some(vec![1_595_376_001_500_000])
        );
        assert_eq!(
            parse_date_or_time_us("2020-07-22"),
            Some(1_595_376_000_000_000)
        );
        assert_eq!(parse_date_or_time_us("22/07/2020"), None);
        assert_eq!(decode_time(&[1.0], "furlongs since 2020-01-01"), None);
        // Calendar months: January and July 1979 of a climatology counted from December.
        let months = decode_time(&[1.0, 7.0, -1.0], "months since 1978-12-01").unwrap();
        let text: Vec<String> = months.into_iter().map(format_utc_us).collect();
        assert_eq!(
            text,
            [
                "1979-01-01T00:00:00Z",
                "1979-07-01T00:00:00Z",
                "1978-11-01T00:00:00Z"
            ]
        );
        assert_eq!(
            decode_time(&[2.0], "years since 2000-02-29").map(|t| format_utc_us(t[0])),
            Some("2002-02-28T00:00:00Z".into())
        );
        assert_eq!(decode_time(&[1.5], "months since 2000-01-01"), None);
    }
}
