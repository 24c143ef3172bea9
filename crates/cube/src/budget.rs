//! The resource budget: every size that comes from input (a file's header or clock, an
//! option, a store's metadata) is checked here before anything of that size is allocated or
//! created.
//!
//! Without it one file with a wrong clock, `--chunks 1000000,1000000` or a store whose
//! metadata claims 10^12 windows turns into a multi-terabyte allocation and an abort, or a
//! cube of millions of empty chunks. With it the user gets a refusal that names the cause
//! and the size, before the output exists.

use std::path::PathBuf;

use crate::CubeError;

/// Most chunk objects one array may have: far beyond any cube of ours (a month of DAS at the
/// default chunks is ~10^5), far below what a wrong grid or clock produces.
pub const MAX_CHUNKS: u128 = 1 << 32;

/// The memory a command may use for buffers sized from input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Bytes.
    pub memory: u64,
}

impl Budget {
    /// `CRYOCUBE_MEMORY_MB` when set, otherwise half of this machine's memory (at least 1 GiB).
    pub fn from_env() -> Budget {
        if let Some(mb) = std::env::var("CRYOCUBE_MEMORY_MB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Budget {
                memory: mb.saturating_mul(1 << 20),
            };
        }
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .unwrap_or(8 << 30);
        Budget {
            memory: (total / 2).max(1 << 30),
        }
    }

    /// Refuses `bytes` of memory for `what` (e.g. "the time coordinate of 3.2e9 windows")
    /// caused by `cause` (the option or file it comes from) when it exceeds the budget.
    pub fn check_memory(
        &self,
        path: impl Into<PathBuf>,
        what: &str,
        cause: &str,
        bytes: u128,
    ) -> Result<(), CubeError> {
        if bytes <= self.memory as u128 {
            return Ok(());
        }
        Err(CubeError::Budget {
            path: path.into(),
            message: format!(
                "{what} would take {} of memory, more than the budget of {} ({cause}; CRYOCUBE_MEMORY_MB sets the budget)",
                human_bytes(bytes),
                human_bytes(self.memory as u128)
            ),
        })
    }
}

/// The number of elements of `shape`, or `None` when it does not fit in 128 bits.
pub fn elements(shape: &[u64]) -> Option<u128> {
    shape
        .iter()
        .try_fold(1u128, |n, &d| n.checked_mul(d as u128))
}

/// Checks an array's layout as declared or as read from a store: every chunk side at least 1,
/// the shape's size representable, a chunk within the memory budget and a number of chunk
/// objects within [`MAX_CHUNKS`].
pub fn check_layout(
    budget: &Budget,
    path: impl Into<PathBuf>,
    array: &str,
    shape: &[u64],
    chunks: &[u64],
    element_bytes: u64,
) -> Result<(), CubeError> {
    let path = path.into();
    let invalid = |message: String| CubeError::Array {
        path: path.clone(),
        array: array.to_string(),
        message,
    };
    if shape.len() != chunks.len() {
        return Err(invalid(format!(
            "shape {shape:?} and chunks {chunks:?} differ in rank"
        )));
    }
    if chunks.contains(&0) {
        return Err(invalid(format!("chunks {chunks:?}: a chunk side of 0")));
    }
    let cells = elements(shape).ok_or_else(|| invalid(format!("shape {shape:?} overflows")))?;
    let chunk_bytes = elements(chunks)
        .and_then(|n| n.checked_mul(element_bytes as u128))
        .ok_or_else(|| invalid(format!("chunks {chunks:?} overflow")))?;
    budget.check_memory(
        &path,
        &format!("one chunk {chunks:?} of array `{array}`"),
        "the chunk shape",
        chunk_bytes,
    )?;
    let n_chunks: u128 = shape
        .iter()
        .zip(chunks)
        .map(|(&s, &c)| s.div_ceil(c) as u128)
        .try_fold(1u128, |n, d| n.checked_mul(d))
        .unwrap_or(u128::MAX);
    if n_chunks > MAX_CHUNKS {
        return Err(CubeError::Budget {
            path,
            message: format!(
                "array `{array}` of shape {shape:?} ({} cells) in chunks {chunks:?} would be {n_chunks} chunk objects, more than {MAX_CHUNKS}",
                human_count(cells)
            ),
        });
    }
    Ok(())
}

/// `1.5 GiB`, `640 KiB`.
pub fn human_bytes(bytes: u128) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// `3.2e9` for large counts, the number itself for small ones.
pub fn human_count(n: u128) -> String {
    if n < 1_000_000 {
        n.to_string()
    } else {
        format!("{:.1e}", n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_size_and_the_cause() {
        let b = Budget { memory: 1 << 30 };
        assert!(b.check_memory("c.zarr", "x", "y", 1 << 30).is_ok());
        let e = b
            .check_memory("c.zarr", "the time coordinate", "a.h5's clock", 1 << 40)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1.0 TiB") && e.contains("a.h5's clock") && e.contains("c.zarr"),
            "{e}"
        );
        let e = check_layout(&b, "c", "v", &[10, 10], &[0, 5], 4).unwrap_err();
        assert!(e.to_string().contains("a chunk side of 0"), "{e}");
        let e = check_layout(&b, "c", "v", &[u64::MAX, 1 << 40, 1], &[1, 1, 1], 4).unwrap_err();
        assert!(e.to_string().contains("chunk objects"), "{e}");
        let e = check_layout(&b, "c", "v", &[10], &[1 << 40], 4).unwrap_err();
        assert!(e.to_string().contains("budget"), "{e}");
        assert!(check_layout(&b, "c", "v", &[1000, 64, 101], &[256, 64, 101], 4).is_ok());
        assert_eq!(elements(&[u64::MAX, u64::MAX, u64::MAX]), None);
    }
}
