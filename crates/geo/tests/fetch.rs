//! `fetch` against a real HTTP server on 127.0.0.1 serving `../shared/data/polar`: a download
//! that loses its connection midway resumes with a Range request and ends with the same bytes;
//! a 500 before the 200 is retried; a second run skips what is there and verified; sha256 is
//! checked; a zipped shapefile is extracted; archives with traversal entries, links or an
//! absurd expansion are refused without writing outside their folder.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryocube_geo::fetch::{extract, fetch_source, ArchiveKind, ExtractLimits, FetchOptions};
use cryocube_geo::recipe::SourceSpec;
use cryocube_geo::GeoError;

fn polar() -> PathBuf {
    common::shared("data/polar")
}

/// What the server does wrong, once each.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Answer the first request with this status.
    fail_first: Option<u16>,
    /// Announce the whole body on the first 200 but close after this many bytes.
    drop_after: Option<usize>,
}

/// A minimal HTTP/1.1 file server (GET, `Range: bytes=N-`), one thread per connection.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(root: PathBuf, faults: Faults) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let served = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, seen, served) = (root.clone(), seen.clone(), served.clone());
                std::thread::spawn(move || handle(stream, &root, faults, &seen, &served));
            }
        });
        Server { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn handle(
    stream: TcpStream,
    root: &Path,
    faults: Faults,
    seen: &Mutex<Vec<String>>,
    served: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse::<usize>().ok();
        }
    }
    let n = served.fetch_add(1, Ordering::SeqCst);
    seen.lock().unwrap().push(format!(
        "{path} {}",
        range.map(|r| format!("from {r}")).unwrap_or_default()
    ));
    let mut out = stream;
    if let (0, Some(code)) = (n, faults.fail_first) {
        let _ = write!(
            out,
            "HTTP/1.1 {code} Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let Ok(body) = std::fs::read(root.join(path.trim_start_matches('/'))) else {
        let _ = write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    };
    let from = range.unwrap_or(0).min(body.len());
    let head = match range {
        Some(r) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {r}-{}/{}\r\n",
            body.len() - 1,
            body.len()
        ),
        None => "HTTP/1.1 200 OK\r\n".to_string(),
    };
    let _ = write!(
        out,
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len() - from
    );
    let mut slice = &body[from..];
    if let (None, Some(cut)) = (range, faults.drop_after) {
        slice = &slice[..cut.min(slice.len())];
    }
    let _ = out.write_all(slice);
    let _ = out.flush();
}

fn source(name: &str, url: &str) -> SourceSpec {
    serde_json::from_value(serde_json::json!({
        "name": name, "download_url": url, "variable_names": ["x"]
    }))
    .unwrap()
}

fn options(dir: &Path) -> FetchOptions {
    let mut o = FetchOptions::new(dir.to_path_buf());
    o.retry.base = Duration::from_millis(10);
    o.timeout = Duration::from_secs(10);
    o
}

fn quiet(_: &str, _: u64, _: Option<u64>) {}

#[test]
fn a_dropped_connection_resumes_and_a_second_run_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        polar(),
        Faults {
            drop_after: Some(300_000),
            ..Faults::default()
        },
    );
    let s = source("Gravity", &server.url("geotiff/ant4d_fa.tif"));
    let got = fetch_source(&s, tmp.path(), &options(tmp.path()), &quiet).unwrap();
    let original = std::fs::read(polar().join("geotiff/ant4d_fa.tif")).unwrap();
    assert_eq!(std::fs::read(&got.file).unwrap(), original);
    assert!(!got.cached);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(
        reqs[1].ends_with("from 300000"),
        "resumed with Range: {reqs:?}"
    );

    let again = fetch_source(&s, tmp.path(), &options(tmp.path()), &quiet).unwrap();
    assert!(again.cached);
    assert_eq!(server.requests().len(), 2, "nothing downloaded again");
}

#[test]
fn a_500_before_the_200_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        polar(),
        Faults {
            fail_first: Some(500),
            ..Faults::default()
        },
    );
    let s = source("Masks", &server.url("masks/Thw70_SF2018_mask.tif"));
    let got = fetch_source(&s, tmp.path(), &options(tmp.path()), &quiet).unwrap();
    assert_eq!(
        std::fs::read(&got.file).unwrap(),
        std::fs::read(polar().join("masks/Thw70_SF2018_mask.tif")).unwrap()
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn missing_files_and_bad_checksums_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(polar(), Faults::default());
    let s = source("Nothing", &server.url("geotiff/nope.tif"));
    let e = fetch_source(&s, tmp.path(), &options(tmp.path()), &quiet).unwrap_err();
    assert!(
        matches!(&e, GeoError::Fetch { message, .. } if message.contains("404")),
        "{e}"
    );

    let mut s = source("Mask", &server.url("masks/Thw124_SF2018_mask.tif"));
    s.sha256 = Some("00".repeat(32));
    let e = fetch_source(&s, tmp.path(), &options(tmp.path()), &quiet).unwrap_err();
    assert!(
        e.to_string().contains("sha256 is") && e.to_string().contains(".bad"),
        "{e}"
    );
    // The right checksum passes (computed independently with sha256sum).
    let out = std::process::Command::new("sha256sum")
        .arg(polar().join("masks/Thw124_SF2018_mask.tif"))
        .output()
        .expect("sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    s.sha256 = Some(hex);
    fetch_source(&s, tmp.path(), &options(tmp.path()), &quiet).unwrap();
}

#[test]
fn a_zipped_shapefile_is_extracted() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(polar(), Faults::default());
    let s = source(
        "DML lakes",
        &server.url("vector/subglacial_lakes/DML_Lakes_Combined.zip"),
    );
    let got = fetch_source(&s, tmp.path(), &options(tmp.path()), &quiet).unwrap();
    let names: Vec<String> = got
        .extracted
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for ext in ["shp", "shx", "dbf", "prj"] {
        assert!(names.iter().any(|n| n.ends_with(ext)), "{names:?}");
    }
    assert!(got
        .extracted
        .iter()
        .all(|p| p.starts_with(tmp.path().join("dml_lakes/extracted"))));
}

#[test]
fn file_urls_are_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!(
        "file://{}",
        polar().join("masks/Thw142_SF2018_mask.tif").display()
    );
    let got = fetch_source(&source("m", &url), tmp.path(), &options(tmp.path()), &quiet).unwrap();
    assert_eq!(
        std::fs::read(&got.file).unwrap(),
        std::fs::read(polar().join("masks/Thw142_SF2018_mask.tif")).unwrap()
    );
}

fn zip_with(entries: &[(&str, Vec<u8>)], path: &Path) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

/// A tar with one entry whose name is written raw (the tar crate refuses to write bad names).
fn tar_with_raw_name(name: &str, kind: tar::EntryType, link: Option<&str>, path: &Path) {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    header.set_size(if link.is_some() { 0 } else { 4 });
    header.set_mode(0o644);
    if let Some(l) = link {
        header.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    header.set_cksum();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let data: &[u8] = if link.is_some() { b"" } else { b"evil" };
    b.append(&header, data).unwrap();
    b.finish().unwrap();
}

#[test]
fn unsafe_archives_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = ExtractLimits::default();
    let into = tmp.path().join("box/extracted");
    let cases: Vec<(PathBuf, ArchiveKind, &str)> = {
        let z = tmp.path().join("up.zip");
        zip_with(
            &[
                ("ok.txt", b"fine".to_vec()),
                ("../evil.txt", b"evil".to_vec()),
            ],
            &z,
        );
        let t1 = tmp.path().join("abs.tar");
        tar_with_raw_name("/tmp/cryocube-evil.txt", tar::EntryType::Regular, None, &t1);
        let t2 = tmp.path().join("up.tar");
        tar_with_raw_name("../evil.txt", tar::EntryType::Regular, None, &t2);
        let t3 = tmp.path().join("link.tar");
        tar_with_raw_name(
            "innocent",
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
            &t3,
        );
        vec![
            (z, ArchiveKind::Zip, "`..`"),
            (t1, ArchiveKind::Tar, "absolute"),
            (t2, ArchiveKind::Tar, "`..`"),
            (t3, ArchiveKind::Tar, "link"),
        ]
    };
    for (archive, kind, why) in cases {
        let e = extract(&archive, &into, kind, &limits).unwrap_err();
        assert!(
            matches!(&e, GeoError::Archive { message, .. } if message.contains(why)),
            "{}: {e}",
            archive.display()
        );
        assert!(!into.exists(), "{}: nothing left behind", archive.display());
    }
    assert!(!tmp.path().join("box/evil.txt").exists() && !tmp.path().join("evil.txt").exists());
    assert!(!Path::new("/tmp/cryocube-evil.txt").exists());

    // An archive bomb: 8 MB of zeros in a few kB, with a tight budget.
    let bomb = tmp.path().join("bomb.zip");
    zip_with(&[("zeros.bin", vec![0u8; 8 << 20])], &bomb);
    let tight = ExtractLimits {
        max_ratio: 100,
        free_bytes: 1 << 20,
    };
    let e = extract(&bomb, &into, ArchiveKind::Zip, &tight).unwrap_err();
    assert!(e.to_string().contains("archive bomb"), "{e}");
    assert!(!into.exists());
    // The same archive within its budget extracts.
    let files = extract(&bomb, &into, ArchiveKind::Zip, &limits).unwrap();
    let mut n = 0;
    std::fs::File::open(&files[0])
        .unwrap()
        .read_to_end(&mut Vec::new())
        .map(|k| n = k)
        .unwrap();
    assert_eq!(n, 8 << 20);
}

/// What a hostile server answers to request `n` (0-based) for `path`.
enum Answer {
    /// These bytes, then close.
    Raw(Vec<u8>),
    /// The head, then bytes without end.
    Endless(String),
    /// Nothing at all, connection held open.
    Stall,
}

/// A server that answers each request as `script` says.
fn scripted(
    script: impl Fn(usize, &str) -> Answer + Send + Sync + 'static,
) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let script = Arc::new(script);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (script, seen) = (script.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let mut out = stream;
                match script(n, &path) {
                    Answer::Raw(bytes) => {
                        let _ = out.write_all(&bytes);
                    }
                    Answer::Endless(head) => {
                        let _ = out.write_all(head.as_bytes());
                        let block = vec![b'x'; 64 << 10];
                        while out.write_all(&block).is_ok() {}
                    }
                    Answer::Stall => std::thread::sleep(Duration::from_secs(30)),
                }
            });
        }
    });
    (port, count)
}

/// Every hostile answer fails with a clear message, no panic, and nothing that a later run
/// would take for a finished download (no file, no marker).
#[test]
fn hostile_servers_never_leave_a_finished_download() {
    let head = |status: &str, extra: &str| {
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .into_bytes()
    };
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "no-location",
            Answer::Raw(head("302 Found", "")),
            "redirect without a Location",
        ),
        (
            "not-modified",
            Answer::Raw(head("304 Not Modified", "")),
            "HTTP 304",
        ),
        (
            "bad-location",
            Answer::Raw(head("302 Found", "Location: http://[::bad\r\n")),
            "which is not a URL",
        ),
        (
            "to-file",
            Answer::Raw(head("302 Found", "Location: file:///etc/passwd\r\n")),
            "a file: URL, which is refused",
        ),
        (
            "endless",
            Answer::Endless("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".into()),
            "runs past the limit of 1048576 bytes",
        ),
        (
            "announced-huge",
            Answer::Raw(
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            "more than the limit of 1048576 bytes",
        ),
        ("gone", Answer::Raw(head("410 Gone", "")), "HTTP 410"),
    ];
    for (name, answer, expect) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let answer = Arc::new(Mutex::new(Some(answer)));
        let (port, _) = scripted(move |_, _| {
            answer
                .lock()
                .unwrap()
                .take()
                .unwrap_or(Answer::Raw(head("500 Again", "")))
        });
        let mut opts = options(tmp.path());
        opts.max_bytes = 1 << 20;
        opts.retry.retries = 0;
        let s = source(name, &format!("http://127.0.0.1:{port}/{name}.tif"));
        let e = fetch_source(&s, tmp.path(), &opts, &quiet).unwrap_err();
        assert!(e.to_string().contains(expect), "{name}: {e}");
        let left: Vec<_> = walk(tmp.path());
        assert!(
            !left.iter().any(|p| p.ends_with(format!("{name}.tif"))
                || p.to_string_lossy().ends_with(".cryocube.json")),
            "{name}: left {left:?}"
        );
        assert!(
            !left
                .iter()
                .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 1 << 20)),
            "{name}: more than the limit kept: {left:?}"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// A redirect to another path of the same server is followed; a 503 with `Retry-After: 1`
/// is retried no sooner than a second later; a server that stalls is given up on after its
/// second silence, not after every retry.
#[test]
fn redirects_retry_after_and_stalls() {
    let tmp = tempfile::tempdir().unwrap();
    let file = polar().join("geotiff/ant4d_fa.tif");
    let bytes = std::fs::read(&file).unwrap();
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let (port, count) = scripted(move |n, path| {
        t.lock().unwrap().push(std::time::Instant::now());
        match (n, path) {
            (0, _) => Answer::Raw(
                b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            (_, "/first.tif") => Answer::Raw(
                b"HTTP/1.1 301 Moved\r\nLocation: /data/second.tif\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            (_, "/data/second.tif") => {
                let body = std::fs::read(polar().join("geotiff/ant4d_fa.tif")).unwrap();
                let mut text = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                text.extend_from_slice(&body);
                Answer::Raw(text)
            }
            _ => Answer::Raw(b"HTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n".to_vec()),
        }
    });
    let s = source("Redirected", &format!("http://127.0.0.1:{port}/first.tif"));
    let got = fetch_source(&s, tmp.path(), &options(tmp.path()), &quiet).unwrap();
    assert_eq!(std::fs::read(&got.file).unwrap(), bytes);
    assert_eq!(count.load(Ordering::SeqCst), 3, "503, 301, 200");
    let t = times.lock().unwrap();
    assert!(
        t[1] - t[0] >= Duration::from_millis(990),
        "Retry-After honoured: {:?}",
        t[1] - t[0]
    );

    let (port, count) = scripted(|_, _| Answer::Stall);
    let mut opts = options(tmp.path());
    opts.timeout = Duration::from_millis(500);
    opts.retry.retries = 5;
    let s = source("Stalled", &format!("http://127.0.0.1:{port}/x.tif"));
    let e = fetch_source(&s, tmp.path(), &opts, &quiet).unwrap_err();
    assert!(e.to_string().contains("does not answer"), "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 2, "two attempts, not six");
}
