//! `cryocube fetch`: the recipe's sources onto local disk, safely and only once.
//!
//! The seed downloaded whole files into memory, had no retries, checksums or resume, and
//! extracted archives without path checks. Here every download streams to `NAME.part`, a
//! dropped connection resumes with an HTTP `Range` request, server errors are retried with
//! exponential backoff, an optional `sha256` per source is verified, and a finished file gets a
//! small marker (`NAME.cryocube.json`: URL, size, sha256) so that the next run skips it.
//! Archives (tar, zip, gzip) are extracted into `extracted/` beside the file, refusing
//! absolute paths, `..`, links and absurd expansion ratios. Credentials for sources that need
//! them come from `CRYOCUBE_HTTP_USER` / `CRYOCUBE_HTTP_PASSWORD` or `~/.netrc`; they are never
//! logged and never prompted for. `s3://BUCKET/KEY` sources are read with the AWS
//! environment (see `cryocube_cube::store::s3`) through a presigned URL, so they resume and
//! retry like any HTTP download.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use cryocube_cube::store::retry::{parse_retry_after, Failure, RetryPolicy};
#[cfg(feature = "s3")]
use cryocube_cube::store::{s3, S3Client};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::recipe::{normalise, Recipe, SourceSpec};
use crate::GeoError;

/// How downloads behave.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Where sources go: `DIR/<source>/<file>`.
    pub dir: PathBuf,
    /// When to try again after a failed attempt (connection dropped, 5xx, 429).
    pub retry: RetryPolicy,
    /// Connect and read timeout. A server that stalls past it is tried once more, not for
    /// every retry.
    pub timeout: Duration,
    /// Largest download accepted: a larger `Content-Length` is refused before a byte is
    /// written, a body without one is cut off there and refused.
    pub max_bytes: u64,
    /// How far an archive may expand.
    pub limits: ExtractLimits,
}

/// The default of [`FetchOptions::max_bytes`]: 64 GiB, beyond any single polar product.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 30;
/// Redirects followed per download.
const MAX_REDIRECTS: u32 = 10;

/// How far an archive may expand: zip bombs (overlapping entries, nested archives) exceed any
/// real data's ratio by far.
#[derive(Clone, Copy, Debug)]
pub struct ExtractLimits {
    /// Largest ratio of extracted bytes to archive bytes.
    pub max_ratio: u64,
    /// Extracted bytes always accepted, whatever the ratio.
    pub free_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_ratio: 1000,
            free_bytes: 64 << 20,
        }
    }
}

impl FetchOptions {
    /// Downloads into `dir`, with the default retry policy, timeout and size limit.
    pub fn new(dir: PathBuf) -> Self {
        FetchOptions {
            dir,
            retry: RetryPolicy {
                retries: 5,
                base: Duration::from_millis(500),
                max_wait: Duration::from_secs(60),
            },
            timeout: Duration::from_secs(30),
            max_bytes: DEFAULT_MAX_BYTES,
            limits: ExtractLimits::default(),
        }
    }
}

/// What fetching one source gave.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The source's name in the recipe.
    pub source: String,
    /// The downloaded file.
    pub file: PathBuf,
    /// Its extracted files (empty unless it is an archive).
    pub extracted: Vec<PathBuf>,
    /// Whether it was already there, verified, and not downloaded again.
    pub cached: bool,
    /// Its size.
    pub bytes: u64,
    /// SHA-256 of the downloaded file (hex), for the provenance.
    pub sha256: String,
}

/// Progress of one download: source name, bytes so far, total if known.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, Option<u64>) + Sync);

fn fetch_err(url: &str, message: String) -> GeoError {
    GeoError::Fetch {
        url: url.to_string(),
        message,
    }
}

fn io_err(path: &Path, source: std::io::Error) -> GeoError {
    GeoError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Fetches every source of the recipe, in order.
pub fn fetch_all(
    recipe: &Recipe,
    opts: &FetchOptions,
    progress: Progress,
) -> Result<Vec<Fetched>, GeoError> {
    let base = recipe.path.parent().unwrap_or(Path::new("."));
    recipe
        .properties()
        .sources
        .iter()
        .map(|s| fetch_source(s, base, opts, progress).map_err(|e| e.in_source(&s.name)))
        .collect()
}

/// The file name a URL's last path segment gives.
fn url_file_name(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

/// Fetches one source into `opts.dir/<normalised source name>/`. Relative `file:` URLs are
/// relative to `base` (the recipe's folder).
pub fn fetch_source(
    source: &SourceSpec,
    base: &Path,
    opts: &FetchOptions,
    progress: Progress,
) -> Result<Fetched, GeoError> {
    let expanded = expand_env(source.download_url.trim())?;
    let url = expanded.as_str();
    let name = url_file_name(url).ok_or_else(|| fetch_err(url, "the URL names no file".into()))?;
    let dir = opts.dir.join(normalise(&source.name));
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let dest = dir.join(&name);
    let marker = dir.join(format!("{name}.cryocube.json"));
    let expected = source.sha256.as_deref().map(str::to_ascii_lowercase);

    let marked = std::fs::read(&marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let cached = match &marked {
        Some(m) => {
            let size = std::fs::metadata(&dest).map(|m| m.len()).ok();
            m["url"] == url
                && size.is_some()
                && m["size"].as_u64() == size
                && m["sha256"].is_string()
                && expected.as_deref().is_none_or(|h| m["sha256"] == h)
        }
        None => false,
    };
    let (bytes, sha256) = if cached {
        let size = std::fs::metadata(&dest)
            .map_err(|e| io_err(&dest, e))?
            .len();
        let digest = marked
            .as_ref()
            .and_then(|m| m["sha256"].as_str())
            .unwrap_or_default()
            .to_string();
        (size, digest)
    } else {
        let _ = std::fs::remove_file(&marker);
        let n = if let Some(path) = url.strip_prefix("file://") {
            copy_local(&base.join(path), &dest, &source.name, progress)?
        } else {
            fetch_remote(source, url, &dest, opts, progress)?
        };
        let digest = sha256_file(&dest)?;
        if let Some(h) = &expected {
            if *h != digest {
                let bad = dest.with_file_name(format!("{name}.bad"));
                let _ = std::fs::rename(&dest, &bad);
                return Err(fetch_err(
                    url,
                    format!(
                        "sha256 is {digest}, the recipe says {h}; the file is kept as {}",
                        bad.display()
                    ),
                ));
            }
        }
        let m = json!({"url": url, "size": n, "sha256": digest});
        std::fs::write(&marker, serde_json::to_vec_pretty(&m).expect("JSON"))
            .map_err(|e| io_err(&marker, e))?;
        (n, digest)
    };
    if is_shapefile(&name) {
        fetch_sidecars(source, url, base, &dest, cached, opts, progress)?;
    }
    let extracted = match archive_kind(source, &name) {
        Some(kind) => extract(&dest, &dir.join("extracted"), kind, &opts.limits)?,
        None => Vec::new(),
    };
    Ok(Fetched {
        source: source.name.clone(),
        file: dest,
        extracted,
        cached,
        bytes,
        sha256,
    })
}

/// `${NAME}` in a URL is the environment variable NAME (e.g. a data folder that differs
/// between machines); an unset variable is an error, never an empty string.
pub fn expand_env(url: &str) -> Result<String, GeoError> {
    let mut out = String::new();
    let mut rest = url;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start + 2..].find('}') else {
            return Err(fetch_err(url, "an unclosed ${ in the URL".into()));
        };
        let name = &rest[start + 2..start + 2 + len];
        let value = std::env::var(name).map_err(|_| {
            fetch_err(
                url,
                format!("the URL uses ${{{name}}} but the environment variable {name} is not set"),
            )
        })?;
        out.push_str(&value);
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_shapefile(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".shp")
}

/// A shapefile is several files: `.shx` and `.dbf` must come with the `.shp`; `.prj` and
/// `.cpg` come when the server has them (GL_VARIABILITY.shp has no `.prj`).
fn fetch_sidecars(
    source: &SourceSpec,
    url: &str,
    base: &Path,
    dest: &Path,
    cached: bool,
    opts: &FetchOptions,
    progress: Progress,
) -> Result<(), GeoError> {
    let upper = url.ends_with(".SHP");
    for (ext, required) in [("shx", true), ("dbf", true), ("prj", false), ("cpg", false)] {
        let ext = if upper {
            ext.to_ascii_uppercase()
        } else {
            ext.to_string()
        };
        let side_url = format!("{}.{ext}", &url[..url.len() - 4]);
        let side = dest.with_extension(&ext);
        if cached && side.is_file() {
            continue;
        }
        let _ = std::fs::remove_file(&side);
        let got = if let Some(path) = side_url.strip_prefix("file://") {
            let src = base.join(path);
            if src.is_file() {
                copy_local(&src, &side, &source.name, progress).map(|_| ())
            } else {
                Err(fetch_err(&side_url, "no such file".into()))
            }
        } else {
            fetch_remote(source, &side_url, &side, opts, progress).map(|_| ())
        };
        match got {
            Ok(()) => {}
            Err(GeoError::Fetch { message, .. })
                if !required && (message == "no such file" || message.starts_with("HTTP 404")) => {}
            Err(GeoError::Fetch { url, message }) if required => {
                return Err(fetch_err(
                    &url,
                    format!("{message} (a shapefile needs its .shx and .dbf beside the .shp)"),
                ))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn copy_local(src: &Path, dest: &Path, name: &str, progress: Progress) -> Result<u64, GeoError> {
    if src.exists() && !src.is_file() {
        return Err(GeoError::Io {
            path: src.to_path_buf(),
            message: "not a regular file (a folder, FIFO or device)".into(),
        });
    }
    let mut from = File::open(src).map_err(|e| io_err(src, e))?;
    let total = from.metadata().map(|m| m.len()).ok();
    let part = part_path(dest);
    let mut to = File::create(&part).map_err(|e| io_err(&part, e))?;
    let n = copy_with_progress(&mut from, &mut to, 0, total, name, progress)
        .map_err(|e| io_err(src, e))?;
    drop(to);
    std::fs::rename(&part, dest).map_err(|e| io_err(dest, e))?;
    Ok(n)
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

fn copy_with_progress(
    from: &mut impl Read,
    to: &mut impl Write,
    start: u64,
    total: Option<u64>,
    name: &str,
    progress: Progress,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = start;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(done);
        }
        to.write_all(&buf[..n])?;
        done += n as u64;
        progress(name, done, total);
    }
}

/// A failed attempt: worth retrying (with the server's `Retry-After`) or not.
type Attempt = Failure<String>;

/// Downloads an http(s) or s3:// URL to `dest`.
fn fetch_remote(
    source: &SourceSpec,
    url: &str,
    dest: &Path,
    opts: &FetchOptions,
    progress: Progress,
) -> Result<u64, GeoError> {
    let name = &source.name;
    if url.starts_with("http://") || url.starts_with("https://") {
        let auth = credentials(source, url)?;
        let remote = Remote {
            url,
            shown: url,
            denied:
                "set CRYOCUBE_HTTP_USER / CRYOCUBE_HTTP_PASSWORD or a ~/.netrc entry for the host",
        };
        download(&remote, dest, opts, auth, name, progress)
    } else if url.starts_with("s3://") {
        s3_remote(source, url, dest, opts, progress)
    } else {
        Err(fetch_err(
            url,
            "unsupported scheme (http, https, s3 and file are)".into(),
        ))
    }
}

#[cfg(not(feature = "s3"))]
fn s3_remote(
    _: &SourceSpec,
    url: &str,
    _: &Path,
    _: &FetchOptions,
    _: Progress,
) -> Result<u64, GeoError> {
    Err(fetch_err(
        url,
        "this cryocube was built without S3 support (the `s3` feature)".into(),
    ))
}

/// Downloads `s3://bucket/key` through a presigned URL.
#[cfg(feature = "s3")]
fn s3_remote(
    source: &SourceSpec,
    url: &str,
    dest: &Path,
    opts: &FetchOptions,
    progress: Progress,
) -> Result<u64, GeoError> {
    let (bucket, key) = s3::parse_url(url)
        .filter(|(_, k)| !k.is_empty())
        .ok_or_else(|| fetch_err(url, "an S3 source is s3://BUCKET/KEY".into()))?;
    let client = S3Client::from_env().map_err(|m| fetch_err(url, m))?;
    // A presigned URL lets the resumable HTTP download do the work; it is never shown.
    let signed = client.presign_get(&bucket, &key, 12 * 3600);
    let remote = Remote {
        url: &signed,
        shown: url,
        denied: "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL",
    };
    download(&remote, dest, opts, None, &source.name, progress)
}

/// What to download, and how to speak of it: `shown` is the URL messages name (a presigned
/// URL carries a signature that must not reach logs).
struct Remote<'a> {
    url: &'a str,
    shown: &'a str,
    /// What to do about a 401/403.
    denied: &'a str,
}

fn download(
    remote: &Remote,
    dest: &Path,
    opts: &FetchOptions,
    auth: Option<String>,
    name: &str,
    progress: Progress,
) -> Result<u64, GeoError> {
    let url = remote.shown;
    // Redirects are followed here, not by ureq: only to http(s), with credentials only for
    // the host they were meant for.
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(opts.timeout)
        .timeout_read(opts.timeout)
        .redirects(0)
        .build();
    let part = part_path(dest);
    let mut stalls = 0;
    let got = opts.retry.run(
        |_| {
            download_once(&agent, remote, &part, auth.as_deref(), name, opts, progress).map_err(
                |f| match f {
                    // A server that stalls once may be busy; one that stalls again is gone.
                    Failure::Transient { error, .. } if error.contains("timed out") => {
                        stalls += 1;
                        if stalls > 1 {
                            Failure::Permanent(format!(
                                "{error} (twice; the server does not answer)"
                            ))
                        } else {
                            Failure::transient(error)
                        }
                    }
                    f => f,
                },
            )
        },
        |m, n, wait| {
            log::warn!(
                "{url}: {m}; retrying in {:.1} s ({} of {})",
                wait.as_secs_f64(),
                n + 1,
                opts.retry.retries
            )
        },
    );
    match got {
        Ok(n) => {
            std::fs::rename(&part, dest).map_err(|e| io_err(dest, e))?;
            Ok(n)
        }
        Err(m) if part.exists() && std::fs::metadata(&part).is_ok_and(|m| m.len() > 0) => {
            Err(fetch_err(
                url,
                format!(
                    "{m} (what arrived is kept in {} and resumed next time)",
                    part.display()
                ),
            ))
        }
        Err(m) => {
            let _ = std::fs::remove_file(&part);
            Err(fetch_err(url, m))
        }
    }
}

/// The response to a GET of `remote`, redirects followed: a 2xx, or why not.
fn get_following(
    agent: &ureq::Agent,
    remote: &Remote,
    headers: &[(&str, String)],
    auth: Option<&str>,
) -> Result<ureq::Response, Attempt> {
    let mut at =
        url::Url::parse(remote.url).map_err(|e| Failure::Permanent(format!("not a URL: {e}")))?;
    let origin = at.host_str().map(str::to_string);
    for _ in 0..=MAX_REDIRECTS {
        let mut req = agent.get(at.as_str());
        for (k, v) in headers {
            req = req.set(k, v);
        }
        if let Some(a) = auth.filter(|_| at.host_str().map(str::to_string) == origin) {
            req = req.set("Authorization", a);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                let retry_after = parse_retry_after(r.header("Retry-After"));
                let text = format!("HTTP {code} {}", r.status_text());
                return Err(match code {
                    416 => Failure::Transient {
                        error: "HTTP 416".into(),
                        retry_after,
                    },
                    500.. | 429 => Failure::Transient {
                        error: text,
                        retry_after,
                    },
                    401 | 403 => Failure::Permanent(format!(
                        "HTTP {code}: access refused; {}",
                        remote.denied
                    )),
                    _ => Failure::Permanent(text),
                });
            }
            Err(e) => return Err(Failure::transient(e.to_string())),
        };
        let code = resp.status();
        if (200..300).contains(&code) {
            return Ok(resp);
        }
        if !(300..400).contains(&code) || code == 304 {
            return Err(Failure::Permanent(format!(
                "HTTP {code} {}: not a file",
                resp.status_text()
            )));
        }
        let next = resp.header("Location").ok_or_else(|| {
            Failure::Permanent(format!("HTTP {code} redirect without a Location"))
        })?;
        let target = at.join(next).map_err(|e| {
            Failure::Permanent(format!(
                "HTTP {code} redirect to {next:?}, which is not a URL ({e})"
            ))
        })?;
        if !matches!(target.scheme(), "http" | "https") {
            return Err(Failure::Permanent(format!(
                "HTTP {code} redirect to a {}: URL, which is refused (only http and https)",
                target.scheme()
            )));
        }
        at = target;
    }
    Err(Failure::Permanent(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

fn download_once(
    agent: &ureq::Agent,
    remote: &Remote,
    part: &Path,
    auth: Option<&str>,
    name: &str,
    opts: &FetchOptions,
    progress: Progress,
) -> Result<u64, Attempt> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut headers = Vec::new();
    if have > 0 {
        headers.push(("Range", format!("bytes={have}-")));
    }
    let resp = match get_following(agent, remote, &headers, auth) {
        Err(Failure::Transient { error, .. }) if error == "HTTP 416" && have > 0 => {
            // The partial file is not a prefix of what the server has now: start again.
            let _ = std::fs::remove_file(part);
            return Err(Failure::transient(
                "the partial download does not fit the file; starting again".into(),
            ));
        }
        r => r?,
    };
    let length: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
    let (start, file) = if resp.status() == 206 && have > 0 {
        let from = resp
            .header("Content-Range")
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<u64>().ok());
        if from != Some(have) {
            let _ = std::fs::remove_file(part);
            return Err(Failure::transient(
                "the server resumed at another offset; starting again".into(),
            ));
        }
        (have, std::fs::OpenOptions::new().append(true).open(part))
    } else {
        (0, File::create(part))
    };
    let total = length.map(|l| l + start);
    if let Some(t) = total.filter(|t| *t > opts.max_bytes) {
        return Err(Failure::Permanent(format!(
            "{t} bytes, more than the limit of {} bytes (--max-size)",
            opts.max_bytes
        )));
    }
    let mut file = file.map_err(|e| Failure::Permanent(format!("{}: {e}", part.display())))?;
    // Never more than announced, never more than the limit (+1 to see it passed).
    let allowed = total.unwrap_or(opts.max_bytes + 1).min(opts.max_bytes + 1) - start;
    let mut body = resp.into_reader().take(allowed);
    let got = copy_with_progress(&mut body, &mut file, start, total, name, progress)
        .map_err(|e| Failure::transient(format!("connection lost: {e}")))?;
    file.flush()
        .map_err(|e| Failure::Permanent(format!("{}: {e}", part.display())))?;
    if got > opts.max_bytes {
        drop(file);
        let _ = std::fs::remove_file(part);
        return Err(Failure::Permanent(format!(
            "the body runs past the limit of {} bytes (--max-size); nothing kept",
            opts.max_bytes
        )));
    }
    match total {
        Some(t) if got != t => Err(Failure::transient(format!(
            "connection closed after {got} of {t} bytes"
        ))),
        _ => Ok(got),
    }
}

/// A `Basic` header for sources that need credentials: environment first, then `~/.netrc`.
fn credentials(source: &SourceSpec, url: &str) -> Result<Option<String>, GeoError> {
    let wanted = matches!(source.credentials, Some(serde_json::Value::Bool(true)))
        || source.credentials.as_ref().is_some_and(|v| v.is_string());
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', ':', '?']).next())
        .unwrap_or_default();
    let env = (
        std::env::var("CRYOCUBE_HTTP_USER").ok(),
        std::env::var("CRYOCUBE_HTTP_PASSWORD").ok(),
    );
    let pair = match env {
        (Some(u), Some(p)) => Some((u, p)),
        _ => netrc_entry(host),
    };
    match pair {
        Some((u, p)) => {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            Ok(Some(format!("Basic {token}")))
        }
        None if wanted => Err(fetch_err(
            url,
            format!("the recipe says this source needs credentials: set CRYOCUBE_HTTP_USER and CRYOCUBE_HTTP_PASSWORD, or add `machine {host} login ... password ...` to ~/.netrc"),
        )),
        None => Ok(None),
    }
}

/// `(login, password)` of `host` in `~/.netrc` (or `$NETRC`).
fn netrc_entry(host: &str) -> Option<(String, String)> {
    let path = std::env::var_os("NETRC")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")))?;
    parse_netrc(&std::fs::read_to_string(path).ok()?, host)
}

/// The login and password a `.netrc` text gives for `host`: its `machine` entry, else the
/// `default` entry. Values are taken as values even when they read like keywords (a password
/// `machine`); `macdef` bodies (up to the next empty line) are skipped.
fn parse_netrc(text: &str, host: &str) -> Option<(String, String)> {
    let mut kept = String::new();
    let mut in_macro = false;
    for line in text.lines() {
        if in_macro {
            in_macro = !line.trim().is_empty();
            continue;
        }
        if line.split_whitespace().next() == Some("macdef") {
            in_macro = true;
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    #[derive(Default)]
    struct Entry<'a> {
        machine: Option<&'a str>,
        login: Option<&'a str>,
        password: Option<&'a str>,
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut words = kept.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "machine" => entries.push(Entry {
                machine: Some(words.next().unwrap_or_default()),
                ..Entry::default()
            }),
            "default" => entries.push(Entry::default()),
            "login" | "password" | "account" => {
                let value = words.next();
                if let Some(e) = entries.last_mut() {
                    match w {
                        "login" => e.login = value,
                        "password" => e.password = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let pick = |e: &Entry| Some((e.login?.to_string(), e.password?.to_string()));
    entries
        .iter()
        .find(|e| e.machine == Some(host))
        .or_else(|| entries.iter().find(|e| e.machine.is_none()))
        .and_then(pick)
}

fn sha256_file(path: &Path) -> Result<String, GeoError> {
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Archive kinds we extract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A tar archive.
    Tar,
    /// A gzip-compressed tar archive.
    TarGz,
    /// One gzip-compressed file.
    Gzip,
    /// A zip archive.
    Zip,
}

fn archive_kind(source: &SourceSpec, name: &str) -> Option<ArchiveKind> {
    let lower = name.to_ascii_lowercase();
    let declared = source
        .compression_format
        .as_deref()
        .map(str::to_ascii_lowercase);
    match declared.as_deref() {
        Some("zip") => return Some(ArchiveKind::Zip),
        Some("tar") if lower.ends_with(".gz") || lower.ends_with(".tgz") => {
            return Some(ArchiveKind::TarGz)
        }
        Some("tar") => return Some(ArchiveKind::Tar),
        Some("tar.gz" | "tgz") => return Some(ArchiveKind::TarGz),
        Some("gzip" | "gz") if lower.ends_with(".tar.gz") => return Some(ArchiveKind::TarGz),
        Some("gzip" | "gz") => return Some(ArchiveKind::Gzip),
        _ => {}
    }
    if lower.ends_with(".zip") && source.compressed != Some(false) {
        Some(ArchiveKind::Zip)
    } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        Some(ArchiveKind::TarGz)
    } else if lower.ends_with(".tar") {
        Some(ArchiveKind::Tar)
    } else {
        None
    }
}

/// `entry` as a path inside the extraction folder, or why it is refused.
fn safe_relative(entry: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in entry.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("has a `..` component".into()),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path".into()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("is empty".into());
    }
    Ok(out)
}

/// Extracts `archive` into `into` (once: a marker records completion) and lists the files.
pub fn extract(
    archive: &Path,
    into: &Path,
    kind: ArchiveKind,
    limits: &ExtractLimits,
) -> Result<Vec<PathBuf>, GeoError> {
    let marker = into.join(".cryocube-complete");
    if marker.exists() {
        return list_files(into);
    }
    if into.exists() {
        std::fs::remove_dir_all(into).map_err(|e| io_err(into, e))?;
    }
    std::fs::create_dir_all(into).map_err(|e| io_err(into, e))?;
    let size = std::fs::metadata(archive)
        .map_err(|e| io_err(archive, e))?
        .len();
    let budget = size.saturating_mul(limits.max_ratio).max(limits.free_bytes);
    let refuse = |what: String| {
        let _ = std::fs::remove_dir_all(into);
        GeoError::Archive {
            path: archive.to_path_buf(),
            message: what,
        }
    };
    let mut written = 0u64;
    let mut write_entry = |rel: &Path, reader: &mut dyn Read| -> Result<(), GeoError> {
        let path = into.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let mut out = File::create(&path).map_err(|e| io_err(&path, e))?;
        let left = budget - written;
        let n =
            std::io::copy(&mut reader.take(left + 1), &mut out).map_err(|e| io_err(&path, e))?;
        written += n;
        if n > left {
            return Err(GeoError::Archive {
                path: archive.to_path_buf(),
                message: format!(
                    "expands to more than {budget} bytes ({}x its size): refused as a likely archive bomb",
                    limits.max_ratio
                ),
            });
        }
        Ok(())
    };
    let file = File::open(archive).map_err(|e| io_err(archive, e))?;
    let result = match kind {
        ArchiveKind::Zip => {
            let mut zip = zip::ZipArchive::new(file)
                .map_err(|e| refuse(format!("not a readable zip: {e}")))?;
            (|| {
                for i in 0..zip.len() {
                    let mut entry = zip
                        .by_index(i)
                        .map_err(|e| refuse(format!("entry {i}: {e}")))?;
                    let raw = PathBuf::from(entry.name());
                    let rel = safe_relative(&raw)
                        .map_err(|why| refuse(format!("entry {:?} {why}", entry.name())))?;
                    if entry.is_symlink() {
                        return Err(refuse(format!("entry {:?} is a link", entry.name())));
                    }
                    if entry.is_dir() {
                        continue;
                    }
                    write_entry(&rel, &mut entry)?;
                }
                Ok(())
            })()
        }
        ArchiveKind::Tar | ArchiveKind::TarGz => {
            let reader: Box<dyn Read> = if kind == ArchiveKind::TarGz {
                Box::new(flate2::read::GzDecoder::new(file))
            } else {
                Box::new(file)
            };
            let mut tar = tar::Archive::new(reader);
            (|| {
                let entries = tar
                    .entries()
                    .map_err(|e| refuse(format!("not a readable tar: {e}")))?;
                for entry in entries {
                    let mut entry =
                        entry.map_err(|e| refuse(format!("not a readable tar: {e}")))?;
                    let raw = entry
                        .path()
                        .map_err(|e| refuse(format!("entry with a bad name: {e}")))?
                        .into_owned();
                    let rel = safe_relative(&raw)
                        .map_err(|why| refuse(format!("entry {} {why}", raw.display())))?;
                    let t = entry.header().entry_type();
                    if t.is_symlink() || t.is_hard_link() {
                        return Err(refuse(format!("entry {} is a link", raw.display())));
                    }
                    if t.is_dir() {
                        continue;
                    }
                    if !t.is_file() {
                        return Err(refuse(format!(
                            "entry {} is not a regular file",
                            raw.display()
                        )));
                    }
                    write_entry(&rel, &mut entry)?;
                }
                Ok(())
            })()
        }
        ArchiveKind::Gzip => {
            let stem = archive
                .file_stem()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("data"));
            let mut gz = flate2::read::GzDecoder::new(file);
            write_entry(&stem, &mut gz)
        }
    };
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(into);
        return Err(e);
    }
    std::fs::write(&marker, b"").map_err(|e| io_err(&marker, e))?;
    list_files(into)
}

fn list_files(dir: &Path) -> Result<Vec<PathBuf>, GeoError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| io_err(&d, e))? {
            let p = e.map_err(|e| io_err(&d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != ".cryocube-complete") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_entries_defaults_and_keyword_like_values() {
        let text = "machine a.org login alice password machine\n\
                    macdef init\n\
                    machine evil.org login mallory password x\n\
                    \n\
                    machine b.org\n  login bob\n  password s3cret\n\
                    default login anon password guest\n";
        let got = |h: &str| parse_netrc(text, h);
        assert_eq!(got("a.org"), Some(("alice".into(), "machine".into())));
        assert_eq!(got("b.org"), Some(("bob".into(), "s3cret".into())));
        assert_eq!(
            got("evil.org"),
            Some(("anon".into(), "guest".into())),
            "macdef body skipped"
        );
        assert_eq!(got("c.org"), Some(("anon".into(), "guest".into())));
        assert_eq!(
            parse_netrc("machine a.org login x", "a.org"),
            None,
            "no password"
        );
        assert_eq!(parse_netrc("", "a.org"), None);
        assert_eq!(parse_netrc("login x password y machine", "a.org"), None);
    }
}
