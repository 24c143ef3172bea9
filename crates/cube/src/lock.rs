//! Who may write a store now: one exclusive writer (a run, `--append`, a plan, a commit), or
//! any number of tasks of one plan (shared: they own disjoint units).
//!
//! - **Local folders** use the operating system's file lock on `STORE/.cryocube-lock`
//!   (`flock`; on NFS v4 and Lustre mounted with `flock` it is cluster-wide). The kernel
//!   releases it when the holder dies, so a crash never leaves a lock behind; the holder's name
//!   (host, pid, start) is written into the file so a refused writer can say who holds it.
//! - **S3** has no locks, and Garage 2.5 ignores `If-None-Match: *` on PUT (AWS honours it),
//!   so a conditional PUT is no lock there. We use Lamport's bakery algorithm, which needs only
//!   keys that each contender writes alone and a consistent read of the others (S3 and Garage
//!   give read-after-write and list-after-write consistency): each contender writes its own
//!   ticket under `STORE/.cryocube-lock/`, first "choosing", then with a number one above
//!   every ticket it sees, and holds the lock once no conflicting ticket with a smaller
//!   (number, id) remains. Tickets carry a heartbeat renewed every [`HEARTBEAT`]; one older
//!   than [`STALE_AFTER`] belongs to a crashed holder and is removed by the next contender
//!   (at once when the holder ran on the contender's own machine and its process is gone).
//!   What this does not cover: a holder paused for longer than [`STALE_AFTER`] (its lock is
//!   taken over while it sleeps), and stores whose listing lags behind writes.

use std::fs::File;
use std::io::{Seek, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::store::{Location, Store};
use crate::CubeError;

/// The lock of a local store (a file) and the folder of an S3 store's tickets.
pub const LOCK_KEY: &str = ".cryocube-lock";
/// How often an S3 lock holder renews its ticket.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// A ticket not renewed for this long belongs to a holder that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// Exclusive (one writer) or shared (tasks of one plan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// One writer, nobody else.
    Exclusive,
    /// Tasks of one planned job: many at once, no exclusive writer.
    Shared,
}

/// A held lock; released when dropped.
pub struct StoreLock {
    inner: Inner,
}

enum Inner {
    Local {
        file: File,
        path: PathBuf,
        exclusive: bool,
        /// The store folder, when taking the lock created it.
        created_dir: Option<PathBuf>,
    },
    S3 {
        store: Arc<dyn Store>,
        key: String,
        stop: Arc<AtomicBool>,
        beat: Option<std::thread::JoinHandle<()>>,
    },
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn holder_doc(mode: LockMode, what: &str) -> Value {
    json!({
        "holder": crate::job::this_process(),
        "mode": match mode { LockMode::Exclusive => "exclusive", LockMode::Shared => "shared" },
        "command": what,
        "since": crate::cf::now_iso(),
    })
}

fn describe(doc: &Value) -> String {
    format!(
        "{} ({}, since {})",
        doc["holder"].as_str().unwrap_or("an unknown process"),
        doc["command"].as_str().unwrap_or("cryocube"),
        doc["since"].as_str().unwrap_or("?")
    )
}

fn locked(path: PathBuf, holder: String) -> CubeError {
    CubeError::Invalid {
        path,
        message: format!(
            "another cryocube is writing this store: {holder}; wait for it (--wait) or stop it first"
        ),
    }
}

impl StoreLock {
    /// Takes the lock of `location` for `what` (the command, for messages). With `wait` it
    /// waits for the holder; without, a held lock is an error naming the holder.
    pub fn acquire(
        location: &Location,
        mode: LockMode,
        wait: bool,
        what: &str,
    ) -> Result<StoreLock, CubeError> {
        match location {
            Location::Local(root) => Self::local(root, mode, wait, what),
            Location::S3 { .. } => Self::s3(location.open()?, mode, wait, what),
        }
    }

    fn local(
        root: &std::path::Path,
        mode: LockMode,
        wait: bool,
        what: &str,
    ) -> Result<StoreLock, CubeError> {
        if root.exists() && !root.is_dir() {
            return Err(CubeError::NotAStore { path: root.into() });
        }
        let created_dir = !root.exists();
        std::fs::create_dir_all(root).map_err(|e| CubeError::io(root, e))?;
        let path = root.join(LOCK_KEY);
        let try_take = |f: &File| match mode {
            LockMode::Exclusive => f.try_lock(),
            LockMode::Shared => f.try_lock_shared(),
        };
        let mut announced = false;
        let mut file = loop {
            // Again each time: a holder that made the folder removes it if it stayed empty.
            std::fs::create_dir_all(root).map_err(|e| CubeError::io(root, e))?;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| CubeError::io(&path, e))?;
            match try_take(&file) {
                Ok(()) => {
                    // An exclusive holder deletes the file when it is done; a lock on a file
                    // that is no longer at the path locks nothing: open the new one.
                    use std::os::unix::fs::MetadataExt;
                    let held = file.metadata().map_err(|e| CubeError::io(&path, e))?;
                    match std::fs::metadata(&path) {
                        Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => break file,
                        _ => continue,
                    }
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let text = std::fs::read(&path).unwrap_or_default();
                    let holder = serde_json::from_slice::<Value>(&text)
                        .map(|d| describe(&d))
                        .unwrap_or_else(|_| "tasks of this store's plan (cryocube task)".into());
                    if !wait {
                        return Err(locked(root.into(), holder));
                    }
                    if !announced {
                        log::info!("{}: waiting for {holder}", root.display());
                        announced = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(CubeError::io(&path, e)),
            }
        };
        if mode == LockMode::Exclusive {
            // A name left by a holder that crashed: the kernel released its lock.
            let old = std::fs::read(&path).unwrap_or_default();
            if let Ok(doc) = serde_json::from_slice::<Value>(&old) {
                log::warn!(
                    "{}: taking over the lock of {}, which is no longer running",
                    root.display(),
                    describe(&doc)
                );
            }
            let text = crate::store::json_bytes(&holder_doc(mode, what));
            file.set_len(0)
                .and_then(|_| file.rewind())
                .and_then(|_| file.write_all(&text))
                .map_err(|e| CubeError::io(&path, e))?;
        }
        Ok(StoreLock {
            inner: Inner::Local {
                file,
                path,
                exclusive: mode == LockMode::Exclusive,
                created_dir: created_dir.then(|| root.to_path_buf()),
            },
        })
    }

    fn s3(
        store: Arc<dyn Store>,
        mode: LockMode,
        wait: bool,
        what: &str,
    ) -> Result<StoreLock, CubeError> {
        let id = format!(
            "{}-{}-{:08x}",
            crate::job::this_process().replace(' ', "-"),
            (now_secs() * 1e6) as u64,
            rand_u32()
        );
        let key = format!("{LOCK_KEY}/{id}");
        let mut doc = holder_doc(mode, what);
        let put = |doc: &mut Value, choosing: bool, number: u64| {
            doc["choosing"] = json!(choosing);
            doc["number"] = json!(number);
            doc["heartbeat"] = json!(now_secs());
            store.put(&key, &crate::store::json_bytes(doc))
        };
        put(&mut doc, true, 0)?;
        let release = || {
            let _ = store.delete(&key);
        };
        let result = (|| -> Result<(), CubeError> {
            let others = tickets(store.as_ref(), &id)?;
            let number = others
                .iter()
                .filter_map(|t| t["number"].as_u64())
                .max()
                .unwrap_or(0)
                + 1;
            put(&mut doc, false, number)?;
            let mut announced = false;
            let mut last_beat = now_secs();
            loop {
                let others = tickets(store.as_ref(), &id)?;
                let blocker = others.iter().find(|t| {
                    let theirs = t["mode"] == "exclusive";
                    let conflict = theirs || mode == LockMode::Exclusive;
                    let n = t["number"].as_u64().unwrap_or(0);
                    let tid = t["id"].as_str().unwrap_or_default();
                    conflict
                        && (t["choosing"] == true || (n != 0 && (n, tid) < (number, id.as_str())))
                });
                let Some(b) = blocker else { return Ok(()) };
                if b["choosing"] == true && b["number"].as_u64() == Some(0) {
                    // Someone is picking a number: it takes one request; look again.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                if !wait {
                    return Err(locked(store.path(), describe(b)));
                }
                if !announced {
                    log::info!("{}: waiting for {}", store.path().display(), describe(b));
                    announced = true;
                }
                if now_secs() - last_beat > HEARTBEAT.as_secs_f64() {
                    put(&mut doc, false, number)?;
                    last_beat = now_secs();
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })();
        if let Err(e) = result {
            release();
            return Err(e);
        }
        // Renew the ticket while held.
        let stop = Arc::new(AtomicBool::new(false));
        let beat = {
            let (store, key, stop) = (store.clone(), key.clone(), stop.clone());
            let mut doc = doc.clone();
            std::thread::spawn(move || {
                let mut slept = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    slept += Duration::from_millis(100);
                    if slept >= HEARTBEAT {
                        slept = Duration::ZERO;
                        doc["heartbeat"] = json!(now_secs());
                        if let Err(e) = store.put(&key, &crate::store::json_bytes(&doc)) {
                            log::warn!("could not renew the store lock: {e}");
                        }
                    }
                }
            })
        };
        Ok(StoreLock {
            inner: Inner::S3 {
                store,
                key,
                stop,
                beat: Some(beat),
            },
        })
    }
}

/// The other contenders' tickets (their `id` added); stale ones are removed.
fn tickets(store: &dyn Store, own: &str) -> Result<Vec<Value>, CubeError> {
    let mut out = Vec::new();
    for (key, _) in store.list(&format!("{LOCK_KEY}/"))? {
        let id = key.rsplit('/').next().unwrap_or_default().to_string();
        if id == own {
            continue;
        }
        let Some(bytes) = store.get(&key)? else {
            continue;
        };
        let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let age = now_secs() - doc["heartbeat"].as_f64().unwrap_or(0.0);
        if age > STALE_AFTER.as_secs_f64() || dead_here(&doc) {
            log::warn!(
                "{}: taking over the lock of {}, not renewed for {:.0} s (its holder is gone)",
                store.path().display(),
                describe(&doc),
                age
            );
            store.delete(&key)?;
            continue;
        }
        doc["id"] = json!(id);
        out.push(doc);
    }
    Ok(out)
}

/// Whether a ticket's holder ran on this machine and is no longer running (then there is
/// no need to wait for its heartbeat to age).
fn dead_here(doc: &Value) -> bool {
    let me = crate::job::this_process();
    let (Some((host, _)), Some((their_host, pid))) = (
        me.split_once(" pid "),
        doc["holder"].as_str().and_then(|h| h.split_once(" pid ")),
    ) else {
        return false;
    };
    host == their_host
        && pid.parse::<u32>().is_ok()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(now_secs().to_bits() as u128);
    h.finish() as u32
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        match &mut self.inner {
            Inner::Local {
                file,
                path,
                exclusive,
                created_dir,
            } => {
                // The sole holder removes the file (waiters notice and open the new one), so
                // a finished store holds nothing of ours; shared holders leave it.
                if *exclusive {
                    let _ = std::fs::remove_file(path);
                    // A folder made only to hold the lock of a run that wrote nothing.
                    if let Some(dir) = created_dir {
                        let _ = std::fs::remove_dir(dir);
                    }
                }
                let _ = file.unlock();
            }
            Inner::S3 {
                store,
                key,
                stop,
                beat,
            } => {
                stop.store(true, Ordering::Relaxed);
                if let Some(b) = beat.take() {
                    let _ = b.join();
                }
                let _ = store.delete(key);
            }
        }
    }
}
