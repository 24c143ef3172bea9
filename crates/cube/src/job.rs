//! One job model for every command that writes a cube: **plan -> tasks -> commit**.
//!
//! A campaign outgrows one machine, so `das`, `build` and `pyramid` all split their work the
//! same way:
//!
//! - the **plan** fixes the output's layout (arrays, chunks, coordinates, every attribute
//!   that does not depend on the data) and cuts the work into numbered **units** (time
//!   blocks, grid chunks, pyramid chunk ranges). It is stored inside the unfinished cube under
//!   [`JOB_DIR`], so any machine that sees the store can run a task of it;
//! - a **task** `i` of `n` takes the contiguous share [`share`]`(units, i, n)`, writes only the
//!   chunks of its units and records each finished unit under its own key (no two tasks ever
//!   write the same key, which is what makes them safe to run at once, even on S3 where there
//!   is no atomic append). A task run again skips the units already recorded;
//! - the **commit** checks that every unit is recorded (else it names the missing ones and the
//!   tasks that own them), lets the command turn the units' records into data-derived
//!   attributes, publishes the cube and removes the plan.
//!
//! The store stays unpublished (no root metadata, a plan present) until the commit, so no
//! reader ever takes a half-written cube for a complete one. A single-process run is the same
//! three steps in one go, so there is one code path to get right.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::store::Store;
use crate::CubeError;

/// The hidden folder of an unfinished cube's job (readers ignore dot-keys).
pub const JOB_DIR: &str = ".cryocube";
/// The plan: gzip-compressed JSON (the plan of 20 000 input files stays small).
pub const PLAN_KEY: &str = ".cryocube/plan.json.gz";
const DONE_DIR: &str = ".cryocube/done";
const TASKS_DIR: &str = ".cryocube/tasks";
/// More units than this is no plan we write (a month of DAS is about 100 000 blocks): a
/// store that says so is damaged, and its number must not size an allocation.
pub const MAX_UNITS: u64 = 50_000_000;
/// The largest plan text read back (a month's plan is tens of MB).
const MAX_PLAN_BYTES: u64 = 256 << 20;

/// What the plan says: enough for any task to do its units without scanning the inputs again,
/// and for the commit to publish the cube.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// Which command's job it is (`das`, `das-append`, `build`, `pyramid`).
    pub kind: String,
    /// What must be equal for another run to continue this job (inputs, options, version).
    pub fingerprint: String,
    /// Units of work, numbered `0 .. units`.
    pub units: u64,
    /// What one unit is, for messages ("time block", "grid chunk").
    pub unit_name: String,
    /// When and where it was planned.
    pub created: String,
    /// The host and process that planned it (for messages).
    pub planned_on: String,
    /// The command's own description of the work (inputs, geometry, attributes).
    pub payload: Value,
}

/// Units `i` of `n` tasks run: a contiguous share, as even as the division allows, the same
/// whichever machine asks.
pub fn share(units: u64, index: u64, count: u64) -> Range<u64> {
    let at = |i: u64| (units as u128 * i as u128 / count.max(1) as u128) as u64;
    at(index)..at(index + 1)
}

/// The task of `count` whose [`share`] holds `unit` (< `units`): the last whose share starts
/// at or before it, `ceil((unit + 1) count / units) - 1`.
pub fn owner(units: u64, unit: u64, count: u64) -> u64 {
    let (u, n, t) = (unit as u128 + 1, count as u128, units.max(1) as u128);
    ((u * n).div_ceil(t) - 1) as u64
}

/// A task's units: its share, and those of them already recorded.
pub struct TaskUnits {
    /// The units this task owns.
    pub share: Range<u64>,
    /// Every recorded unit of the job (sorted), for skipping.
    pub done: Vec<u64>,
    /// How many of the share's units were recorded before this task started.
    pub already: u64,
}

/// A planned job inside a store.
#[derive(Clone)]
pub struct Job {
    store: Arc<dyn Store>,
    /// The plan as stored.
    pub plan: Plan,
}

/// Units as a compact text: `0-4, 7, 9-12`.
pub fn ranges_text(units: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < units.len() {
        if out.len() == 20 {
            out.push("...".into());
            break;
        }
        let mut j = i;
        while j + 1 < units.len() && units[j + 1] == units[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            units[i].to_string()
        } else {
            format!("{}-{}", units[i], units[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// `host pid N` of this process, as locks and task records name it.
pub fn this_process() -> String {
    format!("{} pid {}", host_name(), std::process::id())
}

fn done_key(unit: u64) -> String {
    format!("{DONE_DIR}/{unit:010}")
}

impl Job {
    /// Stores a new plan (replacing any earlier plan and its records).
    pub fn create(store: Arc<dyn Store>, plan: Plan) -> Result<Job, CubeError> {
        if plan.units > MAX_UNITS {
            return Err(CubeError::Invalid {
                path: store.path(),
                message: format!(
                    "the job would have {} {}s, more than {MAX_UNITS}: choose larger chunks",
                    plan.units, plan.unit_name
                ),
            });
        }
        store.delete_folder(DONE_DIR)?;
        store.delete_folder(TASKS_DIR)?;
        let text = serde_json::to_vec(&plan).map_err(|e| CubeError::Invalid {
            path: store.path(),
            message: format!("the plan cannot be written: {e}"),
        })?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text)
            .and_then(|_| gz.flush())
            .map_err(|e| CubeError::io(store.path().join(PLAN_KEY), e))?;
        let bytes = gz
            .finish()
            .map_err(|e| CubeError::io(store.path().join(PLAN_KEY), e))?;
        store.put(PLAN_KEY, &bytes)?;
        Ok(Job { store, plan })
    }

    /// The job planned in `store`, if there is one.
    pub fn open(store: Arc<dyn Store>) -> Result<Option<Job>, CubeError> {
        let Some(bytes) = store.get(PLAN_KEY)? else {
            return Ok(None);
        };
        let bad = |m: String| CubeError::Invalid {
            path: store.path().join(PLAN_KEY),
            message: format!("unreadable plan ({m}); plan again with --overwrite"),
        };
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .take(MAX_PLAN_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| bad(e.to_string()))?;
        if text.len() as u64 > MAX_PLAN_BYTES {
            return Err(bad(format!("larger than {MAX_PLAN_BYTES} bytes")));
        }
        let plan: Plan = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if plan.units > MAX_UNITS {
            return Err(bad(format!(
                "{} units, more than any plan holds ({MAX_UNITS})",
                plan.units
            )));
        }
        Ok(Some(Job { store, plan }))
    }

    /// The store the job lives in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The payload as the command's own type.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, CubeError> {
        serde_json::from_value(self.plan.payload.clone()).map_err(|e| CubeError::Invalid {
            path: self.store.path().join(PLAN_KEY),
            message: format!(
                "a plan of `{}` that this version cannot read ({e}); plan again with --overwrite",
                self.plan.kind
            ),
        })
    }

    /// Units `index` of `count` tasks own; an index out of range is refused.
    pub fn share_of(&self, index: u64, count: u64) -> Result<Range<u64>, CubeError> {
        if count == 0 || index >= count {
            return Err(CubeError::Invalid {
                path: self.store.path(),
                message: format!(
                    "task index {index} is out of range for {count} task(s) (indices 0..{})",
                    count.saturating_sub(1)
                ),
            });
        }
        Ok(share(self.plan.units, index, count))
    }

    /// Starts task `index` of `count`: its share (an index out of range is refused), recorded
    /// as started, with the units already done.
    pub fn start_task(&self, index: u64, count: u64) -> Result<TaskUnits, CubeError> {
        let share = self.share_of(index, count)?;
        self.record_task(index, count)?;
        let done = self.done_units()?;
        let already = share
            .clone()
            .filter(|u| done.binary_search(u).is_ok())
            .count() as u64;
        Ok(TaskUnits {
            share,
            done,
            already,
        })
    }

    /// Records that a task started (for the commit's report of who owns missing units).
    pub fn record_task(&self, index: u64, count: u64) -> Result<(), CubeError> {
        let doc = json!({"index": index, "count": count, "by": this_process(), "started": crate::cf::now_iso()});
        self.store.put(
            &format!("{TASKS_DIR}/{index}-of-{count}"),
            &crate::store::json_bytes(&doc),
        )
    }

    /// Marks a unit finished, with what the commit needs from it (e.g. counts of valid cells).
    /// Written after all of the unit's chunks, so a recorded unit is a complete one.
    pub fn mark_done(&self, unit: u64, record: &Value) -> Result<(), CubeError> {
        self.store.put(
            &done_key(unit),
            &serde_json::to_vec(record).unwrap_or_default(),
        )
    }

    /// The units recorded as finished (one listing of the small `done` folder).
    pub fn done_units(&self) -> Result<Vec<u64>, CubeError> {
        let mut units: Vec<u64> = self
            .store
            .list(&format!("{DONE_DIR}/"))?
            .into_iter()
            .filter_map(|(k, _)| k.rsplit('/').next().and_then(|n| n.parse().ok()))
            .filter(|u| *u < self.plan.units)
            .collect();
        units.sort_unstable();
        units.dedup();
        Ok(units)
    }

    /// Every unit's record, read in parallel; an error lists the units not finished and the
    /// tasks that own them.
    pub fn records(&self) -> Result<BTreeMap<u64, Value>, CubeError> {
        let done = self.done_units()?;
        if done.len() as u64 != self.plan.units {
            return Err(self.missing_error(&done)?);
        }
        let records: Vec<(u64, Value)> = done
            .par_iter()
            .map(|&u| -> Result<(u64, Value), CubeError> {
                let bytes = self.store.get(&done_key(u))?.unwrap_or_default();
                Ok((u, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
            })
            .collect::<Result<_, _>>()?;
        Ok(records.into_iter().collect())
    }

    fn missing_error(&self, done: &[u64]) -> Result<CubeError, CubeError> {
        let done: std::collections::HashSet<u64> = done.iter().copied().collect();
        let missing: Vec<u64> = (0..self.plan.units).filter(|u| !done.contains(u)).collect();
        let mut counts: Vec<u64> = self
            .store
            .list(&format!("{TASKS_DIR}/"))?
            .iter()
            .filter_map(|(k, _)| k.rsplit_once("-of-").and_then(|(_, n)| n.parse().ok()))
            .collect();
        counts.sort_unstable();
        counts.dedup();
        let owners = match counts.last() {
            None => "no task has run yet".to_string(),
            Some(&n) => {
                let mut tasks: Vec<u64> = missing
                    .iter()
                    .map(|&u| owner(self.plan.units, u, n))
                    .collect();
                tasks.dedup();
                format!(
                    "owned by task(s) {} of {n} (run them again: `cryocube task {} --index I --count {n}`)",
                    ranges_text(&tasks),
                    self.store.path().display()
                )
            }
        };
        Ok(CubeError::Invalid {
            path: self.store.path(),
            message: format!(
                "cannot commit: {} of {} {}s are not finished ({}: {}); nothing was published",
                missing.len(),
                self.plan.units,
                self.plan.unit_name,
                ranges_text(&missing),
                owners
            ),
        })
    }

    /// Removes the plan and the records, after the cube is published: the plan goes first,
    /// since its absence is what makes the store read as complete.
    pub fn remove(self) -> Result<(), CubeError> {
        self.store.delete(PLAN_KEY)?;
        self.store.delete_folder(JOB_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_unit_once_in_order() {
        for units in [0u64, 1, 5, 7, 100, 1001] {
            for count in [1u64, 2, 3, 4, 7, 13] {
                let mut next = 0;
                for i in 0..count {
                    let r = share(units, i, count);
                    assert_eq!(r.start, next, "{units} units, task {i} of {count}");
                    assert!(r.end - r.start <= units.div_ceil(count));
                    next = r.end;
                }
                assert_eq!(next, units);
            }
        }
    }

    #[test]
    fn the_owner_of_a_unit_is_the_task_whose_share_holds_it() {
        for units in [1u64, 5, 7, 14, 100, 1001] {
            for count in [1u64, 2, 3, 4, 7, 13, 200] {
                for u in 0..units {
                    let i = owner(units, u, count);
                    assert!(
                        share(units, i, count).contains(&u),
                        "unit {u} of {units}, {count} tasks: owner {i}"
                    );
                }
            }
        }
    }

    /// A damaged store whose plan claims 10^15 units is refused when opened (its number never
    /// sizes an allocation), and no plan of that many units is written.
    #[test]
    fn plans_with_absurd_unit_counts_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(crate::store::LocalStore::new(tmp.path()));
        let plan = Plan {
            kind: "das".into(),
            fingerprint: "x".into(),
            units: 1_000_000_000_000_000,
            unit_name: "time block".into(),
            created: String::new(),
            planned_on: String::new(),
            payload: Value::Null,
        };
        let e = Job::create(store.clone(), plan.clone()).err().unwrap();
        assert!(e.to_string().contains("choose larger chunks"), "{e}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&serde_json::to_vec(&plan).unwrap()).unwrap();
        store.put(PLAN_KEY, &gz.finish().unwrap()).unwrap();
        let e = Job::open(store).err().unwrap();
        assert!(e.to_string().contains("more than any plan holds"), "{e}");
    }

    #[test]
    fn ranges_are_compact() {
        assert_eq!(ranges_text(&[0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
        assert_eq!(ranges_text(&[]), "");
    }
}
