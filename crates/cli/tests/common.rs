//! Helpers for the command-line tests: the real data folder and running the binary.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use cryocube_cube::store::{LocalStore, S3Client, S3Config, Store};

/// `shared/` beside the checkout (or `CRYOCUBE_SHARED`); missing data fails loudly.
pub fn shared() -> PathBuf {
    let base = std::env::var_os("CRYOCUBE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    assert!(
        base.join("data/das/MANIFEST.md").is_file(),
        "real data not found at {} (set CRYOCUBE_SHARED to the shared/ folder)",
        base.display()
    );
    base
}

pub fn das(name: &str) -> PathBuf {
    shared().join("data/das").join(name)
}

/// The three synthetic Rhone-like files (MANIFEST), in time order.
pub fn synthetic_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(das("synthetic"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "MANIFEST: three synthetic files");
    files
}

pub fn cryocube(args: &[&str]) -> Output {
    cryocube_with(args, &[])
}

/// [`cryocube`] with extra environment variables (e.g. the S3 server's).
pub fn cryocube_with(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(args)
        .env("RUST_LOG", "info")
        // The example recipe's URLs name the data folder through this variable.
        .env("CRYOCUBE_SHARED", shared())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run cryocube")
}

/// `cryocube das INPUTS -o OUT ARGS...`: its output, success or not.
pub fn das_run(inputs: &[&Path], out: &Path, args: &[&str]) -> Output {
    let mut a = vec!["das"];
    a.extend(inputs.iter().map(|i| p(i)));
    a.extend(["-o", p(out)]);
    a.extend(args);
    cryocube(&a)
}

/// [`das_run`] that must succeed; what it said.
pub fn das_ok(inputs: &[&Path], out: &Path, args: &[&str]) -> String {
    let o = das_run(inputs, out, args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every key of a store (a folder or any [`Store`]) and its bytes; in the root metadata, the
/// lines that name when or by which command it was made (`date_created`, `date_modified`,
/// `history`) are left out.
pub fn store_keys(store: &dyn Store) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (key, _) in store.list("").unwrap() {
        let mut bytes = store.get(&key).unwrap().unwrap();
        if key == ".zmetadata" || key == ".zattrs" || key == "zarr.json" {
            let text = String::from_utf8(bytes).unwrap();
            bytes = text
                .lines()
                .filter(|l| {
                    !["\"date_created\"", "\"date_modified\"", "\"history\""]
                        .iter()
                        .any(|k| l.contains(k))
                })
                // The last attribute has no trailing comma; which one is last varies.
                .map(|l| l.trim_end_matches(','))
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes();
        }
        out.insert(key, bytes);
    }
    out
}

/// [`store_keys`] of a local store.
pub fn store_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    store_keys(&LocalStore::new(root))
}

/// Asserts two local stores hold the same files with the same bytes (see [`store_keys`]).
pub fn assert_same_store(a: &Path, b: &Path) {
    assert_same_stores(&LocalStore::new(a), &LocalStore::new(b));
}

/// Asserts two stores hold the same keys with the same bytes (see [`store_keys`]).
pub fn assert_same_stores(a: &dyn Store, b: &dyn Store) {
    let (fa, fb) = (store_keys(a), store_keys(b));
    let (ka, kb) = (fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    assert!(!ka.is_empty(), "{} is empty", a.path().display());
    assert_eq!(
        ka,
        kb,
        "{} and {} hold different keys",
        a.path().display(),
        b.path().display()
    );
    for (k, v) in &fa {
        assert!(
            v == &fb[k],
            "{k} differs between {} and {}",
            a.path().display(),
            b.path().display()
        );
    }
}

/// Starts `cryocube args`, kills it once the job in `store` has recorded `blocks` units.
pub fn kill_after_blocks(args: &[&str], store: &Path, blocks: u64) {
    kill_after_blocks_in(args, &[], &LocalStore::new(store), blocks)
}

/// [`kill_after_blocks`] for any store, with extra environment variables for the run.
pub fn kill_after_blocks_in(
    args: &[&str],
    env: &[(String, String)],
    store: &dyn Store,
    blocks: u64,
) {
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(args)
        .env("CRYOCUBE_SHARED", shared())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .spawn()
        .unwrap();
    // The child runs in slices of a few milliseconds and is looked at while stopped, so a
    // fast run cannot finish between two looks (the kill lands right after unit `blocks`).
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let _ = Command::new("kill").args([sig, &pid]).status();
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let on_s3 = store.path().to_string_lossy().starts_with("s3://");
    loop {
        signal("-STOP");
        // Units the job has recorded.
        let done = store
            .list(".cryocube/done/")
            .map(|l| l.len() as u64)
            .unwrap_or(0);
        if done >= blocks {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no progress");
        signal("-CONT");
        // A listing a few times a second is enough on S3; on disk it costs nothing.
        std::thread::sleep(Duration::from_millis(if on_s3 { 100 } else { 3 }));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs `build RECIPE -o DIR/out.zarr --sources DIR/sources`; expects exit code 1, each of
/// `expect` in the message, no panic, and no output that looks complete.
pub fn assert_build_fails(dir: &Path, recipe: &Path, expect: &[&str]) {
    let out = dir.join("out.zarr");
    let o = cryocube(&[
        "build",
        p(recipe),
        "-o",
        p(&out),
        "--sources",
        p(&dir.join("sources")),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    // GDAL's message is said once, without the Rust binding's wrapping around it.
    assert!(!t.contains("CPL error class"), "{t}");
    for e in expect {
        assert!(t.contains(e), "the message lacks {e:?}: {t}");
    }
    assert!(
        !out.join(".zmetadata").exists() && !out.join(".zgroup").exists(),
        "an output that looks complete: {t}"
    );
}

/// A Python venv (cached in the target dir) with xarray, zarr, lexcube, dask, rioxarray, s3fs,
/// netCDF4 (a reader of source files that is not GDAL), h5py and scipy, pinned by
/// `tests/requirements.lock`.
pub fn venv() -> PathBuf {
    // Tests of one binary run as threads: one of them makes the venv, the others wait.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("py-venv");
    let python = dir.join("bin/python");
    // Exactly the packages of the lock file (a venv made from another lock is made again).
    let lock = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/requirements.lock"
    ))
    .expect("tests/requirements.lock");
    let stamp = dir.join("cryocube-requirements.lock");
    let ready = python.exists()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s == lock)
        && Command::new(&python)
            .args([
                "-c",
                "import xarray, zarr, lexcube, rioxarray, s3fs, netCDF4, pyproj, h5py, scipy",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        let s = Command::new("python3")
            .args(["-m", "venv", "--clear", p(&dir)])
            .status()
            .expect("python3 -m venv");
        assert!(
            s.success(),
            "python3 -m venv failed (is python3-venv installed?)"
        );
        let s = Command::new(dir.join("bin/pip"))
            .args(["install", "-q", "-r"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/requirements.lock"
            ))
            .status()
            .expect("pip install");
        assert!(
            s.success(),
            "pip install -r crates/cli/tests/requirements.lock failed"
        );
        std::fs::write(&stamp, &lock).unwrap();
    }
    python
}

/// A real S3 server (Garage) on 127.0.0.1, in a temporary folder, with bucket `test`; killed
/// when dropped. The binary is `CRYOCUBE_GARAGE`, or the one `make install-deps` builds into
/// `~/.cache/cryocube-tools/garage`, or `garage` on the PATH; without one the test fails.
pub struct Garage {
    child: Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

pub fn garage_binary() -> PathBuf {
    let candidates = [
        std::env::var_os("CRYOCUBE_GARAGE").map(PathBuf::from),
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/cryocube-tools/garage/bin/garage")),
    ];
    if let Some(p) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return p;
    }
    let on_path = Command::new("garage").arg("--version").output();
    assert!(
        on_path.is_ok_and(|o| o.status.success()),
        "no Garage S3 server: run `make install-deps` (cargo install garage@2.5.0 --locked --root ~/.cache/cryocube-tools/garage) or set CRYOCUBE_GARAGE"
    );
    PathBuf::from("garage")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Garage {
    pub fn start() -> Garage {
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let (s3, rpc) = (free_port(), free_port());
        let hex = |n: usize, seed: u64| -> String {
            (0..n)
                .map(|i| {
                    format!(
                        "{:x}",
                        (seed.wrapping_mul(31).wrapping_add(i as u64 * 7)) % 16
                    )
                })
                .collect()
        };
        let seed = u64::from(s3) * 1000 + u64::from(rpc);
        let access_key = format!("GK{}", hex(24, seed));
        let secret_key = hex(64, seed + 1);
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{0}/meta\"\ndata_dir = \"{0}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n",
                dir.path().display(),
                secret = hex(64, seed + 2),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let child = Command::new(garage_binary())
            .args([
                "-c",
                p(&config),
                "server",
                "--single-node",
                "--default-bucket",
            ])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &secret_key)
            .env("GARAGE_DEFAULT_BUCKET", "test")
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start garage");
        let g = Garage {
            child,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{s3}"),
            access_key,
            secret_key,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if g.client().list("test", "", false).is_ok() {
                return g;
            }
            assert!(
                Instant::now() < deadline,
                "Garage did not come up: {}",
                std::fs::read_to_string(g._dir.path().join("garage.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The AWS variables a user would set for this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("AWS_REGION", "garage"),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_S3_ADDRESSING_STYLE", "path"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn client(&self) -> S3Client {
        S3Client::new(S3Config {
            endpoint: self.endpoint.clone(),
            region: "garage".into(),
            credentials: Some(cryocube_cube::store::s3::Credentials {
                access_key: self.access_key.clone(),
                secret_key: self.secret_key.clone(),
                session_token: None,
            }),
            path_style: true,
        })
    }

    /// The store at `s3://test/{prefix}`.
    pub fn store(&self, prefix: &str) -> cryocube_cube::store::S3Store {
        cryocube_cube::store::S3Store::new(self.client(), "test", prefix)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-node Slurm cluster (Debian's slurmctld + slurmd, munge) in a temporary folder, on
/// free ports; its daemons are stopped when dropped. munged is started when not running.
pub struct Slurm {
    dir: tempfile::TempDir,
    pub conf: PathBuf,
}

impl Slurm {
    pub fn start() -> Slurm {
        use std::time::{Duration, Instant};
        for bin in ["slurmctld", "slurmd", "sbatch", "munged"] {
            assert!(
                Command::new("sh")
                    .args([
                        "-c",
                        &format!("command -v {bin} || test -x /usr/sbin/{bin}")
                    ])
                    .output()
                    .is_ok_and(|o| o.status.success()),
                "{bin} not found: `make test` installs slurmctld slurmd slurm-client munge"
            );
        }
        let munge_ok = || {
            Command::new("sh")
                .args(["-c", "munge -n | unmunge"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !munge_ok() {
            let s = Command::new("sh")
                .args([
                    "-c",
                    "mkdir -p /run/munge && chown munge:munge /run/munge && runuser -u munge -- /usr/sbin/munged",
                ])
                .status()
                .unwrap();
            assert!(s.success(), "munged did not start");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !munge_ok() {
                assert!(Instant::now() < deadline, "munge does not answer");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let (ctld, slurmd) = (free_port(), free_port());
        std::fs::create_dir_all(d.join("state")).unwrap();
        std::fs::create_dir_all(d.join("spool")).unwrap();
        let conf = d.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=cryocubetest\nSlurmctldHost={host}\nSlurmUser=root\nSlurmdUser=root\n\
                 AuthType=auth/munge\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
                 SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
                 SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
                 ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
                 SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\n\
                 JobAcctGatherType=jobacct_gather/none\nMpiDefault=none\nReturnToService=2\n\
                 SchedulerParameters=sched_min_interval=100000\n\
                 SlurmctldPort={ctld}\nSlurmdPort={slurmd}\nDefMemPerCPU=1000\n\
                 NodeName={host} CPUs=2 RealMemory=8000 State=UNKNOWN\n\
                 PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
                d = d.display()
            ),
        )
        .unwrap();
        for daemon in ["slurmctld", "slurmd"] {
            let s = Command::new(daemon)
                .args(["-f", p(&conf)])
                .env("SLURM_CONF", &conf)
                .status()
                .unwrap();
            assert!(s.success(), "{daemon} did not start");
        }
        let cluster = Slurm { dir, conf };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = cluster.run("sinfo", &["-h", "-o", "%T"]);
            if String::from_utf8_lossy(&o.stdout).trim() == "idle" {
                return cluster;
            }
            assert!(
                Instant::now() < deadline,
                "the Slurm node did not become idle: {}\n{}",
                text(&o),
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What a user of this cluster sets.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("SLURM_CONF".into(), p(&self.conf).into())]
    }

    /// Runs a Slurm client command against this cluster.
    pub fn run(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new(cmd)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap()
    }

    /// `squeue` state of a job (`PENDING`, `RUNNING`, ...; empty once it left the queue).
    pub fn state(&self, job: &str) -> String {
        let o = self.run("squeue", &["-h", "-j", job, "-o", "%T"]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Waits until none of `jobs` is in the queue any more.
    pub fn wait_gone(&self, jobs: &[&str]) {
        use std::time::{Duration, Instant};
        let deadline = Instant::now() + Duration::from_secs(300);
        let list = jobs.join(",");
        loop {
            let o = self.run("squeue", &["-h", "-j", &list, "-o", "%i %T %r"]);
            let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if out.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "jobs still queued: {out}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log"]
            .iter()
            .map(|f| {
                let t = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(20).collect();
                format!(
                    "--- {f}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        for pid in ["slurmd.pid", "slurmctld.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.path().join(pid)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        // slurmctld writes its state on the way out; give it a moment before the folder goes.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// An HTTP proxy on 127.0.0.1 in front of a server, recording the request line of every
/// request that passes (to count what a command asks an S3 server, on the wire).
pub struct CountingProxy {
    pub endpoint: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// PUTs still let through before every further PUT is answered 503 (`usize::MAX`: all).
    puts_left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Answers still to cut off 10 bytes into their body (a connection lost midway).
    cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingProxy {
    /// A proxy for `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> CountingProxy {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::{Arc, Mutex};
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let puts_left = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
        let left = puts_left.clone();
        let cuts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cut = cuts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (seen, upstream, left, cut) =
                    (seen.clone(), upstream.clone(), left.clone(), cut.clone());
                std::thread::spawn(move || {
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        return;
                    };
                    let (mut to_client, mut from_server) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let mut answer = client.try_clone().unwrap();
                    std::thread::spawn(move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        // Copies the answers; when a cut is asked for, the next answer's head
                        // and 10 bytes of its body pass, then the connection is dropped.
                        let mut buf = vec![0u8; 1 << 16];
                        let mut pending: Option<Vec<u8>> = None;
                        loop {
                            let n = match from_server.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if pending.is_none()
                                && cut
                                    .fetch_update(SeqCst, SeqCst, |c| c.checked_sub(1))
                                    .is_ok()
                            {
                                pending = Some(Vec::new());
                            }
                            match pending.as_mut() {
                                None => {
                                    if to_client.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                Some(held) => {
                                    held.extend_from_slice(&buf[..n]);
                                    if let Some(i) = held.windows(4).position(|w| w == b"\r\n\r\n")
                                    {
                                        let end = (i + 4 + 10).min(held.len());
                                        let _ = to_client.write_all(&held[..end]);
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to_client.shutdown(std::net::Shutdown::Both);
                        let _ = from_server.shutdown(std::net::Shutdown::Both);
                    });
                    let mut reader = BufReader::new(client);
                    let mut server = server;
                    loop {
                        // One request: its head, then Content-Length bytes of body.
                        let mut head = Vec::new();
                        let mut length = 0usize;
                        let mut first = String::new();
                        loop {
                            let mut line = String::new();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if first.is_empty() {
                                first = line.trim_end().to_string();
                            }
                            if let Some((k, v)) = line.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                            head.extend_from_slice(line.as_bytes());
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        use std::sync::atomic::Ordering::SeqCst;
                        let refuse = first.starts_with("PUT ")
                            && left
                                .fetch_update(SeqCst, SeqCst, |n| {
                                    (n != usize::MAX && n > 0).then(|| n - 1)
                                })
                                .is_err()
                            && left.load(SeqCst) == 0;
                        seen.lock().unwrap().push(first);
                        if refuse {
                            let _ = answer.write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                            );
                            continue;
                        }
                        if server.write_all(&head).is_err() || server.write_all(&body).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        CountingProxy {
            endpoint,
            requests,
            puts_left,
            cuts,
        }
    }

    /// Cuts the next `n` answers off 10 bytes into their body.
    pub fn cut_answers(&self, n: usize) {
        self.cuts.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets `n` more PUTs through, then answers every PUT with 503 (as an overloaded S3
    /// server does); `usize::MAX`: all go through again.
    pub fn fail_puts_after(&self, n: usize) {
        self.puts_left.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The request lines seen so far (`GET /bucket/key?... HTTP/1.1`), and forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}
