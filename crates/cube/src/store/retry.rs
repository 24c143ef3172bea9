//! The one retry policy of every network request cryocube makes (S3 requests, downloads of
//! recipe sources): exponential backoff with full jitter, at least the server's `Retry-After`,
//! a cap on any single wait, and a bounded number of attempts.
//!
//! Jitter keeps many tasks of one Slurm array that failed together from retrying together.

use std::time::Duration;

/// How often and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The wait before the first retry (before jitter); doubled for each one after.
    pub base: Duration,
    /// The longest single wait, whatever the backoff or the server ask.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base: Duration::from_millis(250),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// What one attempt gave when it failed.
#[derive(Debug)]
pub enum Failure<E> {
    /// Worth another attempt (a dropped connection, HTTP 5xx or 429), after at least
    /// `retry_after` when the server said so.
    Transient {
        /// What failed.
        error: E,
        /// The server's `Retry-After`, if it said one.
        retry_after: Option<Duration>,
    },
    /// Will fail again (404, 403, a bad request): stop.
    Permanent(E),
}

impl<E> Failure<E> {
    /// A transient failure without `Retry-After`.
    pub fn transient(error: E) -> Self {
        Failure::Transient {
            error,
            retry_after: None,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry `n` (0 = the first): `base * 2^n` scaled by a random factor in
    /// [0.5, 1.5), at least `retry_after`, at most `max_wait`.
    pub fn wait(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.base.saturating_mul(1u32 << n.min(16));
        backoff
            .mul_f64(0.5 + jitter_fraction())
            .max(retry_after.unwrap_or_default())
            .min(self.max_wait)
    }

    /// Runs `attempt` (given its number, 0-based) until it succeeds, fails for good, or the
    /// retries are used up; `on_retry` hears of each transient failure and the wait.
    pub fn run<T, E>(
        &self,
        mut attempt: impl FnMut(u32) -> Result<T, Failure<E>>,
        mut on_retry: impl FnMut(&E, u32, Duration),
    ) -> Result<T, E> {
        let mut n = 0;
        loop {
            match attempt(n) {
                Ok(v) => return Ok(v),
                Err(Failure::Permanent(e)) => return Err(e),
                Err(Failure::Transient { error, .. }) if n >= self.retries => return Err(error),
                Err(Failure::Transient { error, retry_after }) => {
                    let wait = self.wait(n, retry_after);
                    on_retry(&error, n, wait);
                    std::thread::sleep(wait);
                    n += 1;
                }
            }
        }
    }
}

/// `Retry-After` as seconds (the HTTP-date form is rare from storage servers and is
/// treated as absent).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A number in [0, 1) that differs between calls and processes (no global state, no extra
/// crate: the standard library's randomly seeded hasher over the clock).
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_with_jitter_honour_retry_after_and_stay_capped() {
        let p = RetryPolicy {
            retries: 3,
            base: Duration::from_millis(100),
            max_wait: Duration::from_secs(2),
        };
        let waits: Vec<Duration> = (0..200).map(|_| p.wait(2, None)).collect();
        // 400 ms scaled by [0.5, 1.5).
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_millis(200) && *w < Duration::from_millis(600)));
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(
            distinct.len() > 20,
            "jitter: {} distinct waits",
            distinct.len()
        );
        assert_eq!(
            p.wait(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(p.wait(10, None), Duration::from_secs(2));
        assert_eq!(
            p.wait(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(2)
        );
        assert_eq!(parse_retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }

    #[test]
    fn transient_failures_are_retried_permanent_ones_are_not() {
        let p = RetryPolicy {
            retries: 2,
            base: Duration::from_millis(1),
            max_wait: Duration::from_millis(5),
        };
        let mut calls = 0;
        let mut heard = Vec::new();
        let r: Result<(), &str> = p.run(
            |_| {
                calls += 1;
                Err(Failure::transient("503"))
            },
            |e, n, _| heard.push((e.to_string(), n)),
        );
        assert_eq!((r, calls), (Err("503"), 3));
        assert_eq!(heard, vec![("503".to_string(), 0), ("503".to_string(), 1)]);
        let mut calls = 0;
        let r: Result<(), &str> = p.run(
            |_| {
                calls += 1;
                Err(Failure::Permanent("404"))
            },
            |_, _, _| {},
        );
        assert_eq!((r, calls), (Err("404"), 1));
        let r: Result<u32, &str> = p.run(
            |n| {
                if n < 2 {
                    Err(Failure::transient("x"))
                } else {
                    Ok(n)
                }
            },
            |_, _, _| {},
        );
        assert_eq!(r, Ok(2));
    }
}
