//! A synchronous S3 client: requests signed by `rusty-s3` (SigV4 presigned URLs, listing and
//! multipart responses parsed by it), sent over a blocking `ureq` pool.
//!
//! Why not an async SDK: the cube writer is synchronous and parallel (rayon workers store
//! chunks concurrently); an SDK would bring a runtime into every command for a handful of
//! verbs. `rusty-s3` is sans-IO: it signs and parses, we send. Configuration follows the AWS
//! conventions, so the credentials a user already has for the AWS CLI, boto3 or s3fs work
//! unchanged; the environment wins over the files:
//!
//! | variable | meaning |
//! |---|---|
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | credentials (none anywhere: unsigned requests, for public buckets) |
//! | `AWS_PROFILE` | the profile of `~/.aws/credentials` and `~/.aws/config` to use (`default`) |
//! | `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE` | other places for those two files |
//! | `AWS_REGION` or `AWS_DEFAULT_REGION` | region (else the profile's `region`, else `us-east-1`) |
//! | `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` | another S3 server (else the profile's `endpoint_url`), e.g. `http://127.0.0.1:3900` |
//! | `AWS_S3_ADDRESSING_STYLE` | `path` or `virtual`; default `path` with a custom endpoint, `virtual` on AWS |
//! | `CRYOCUBE_S3_MULTIPART_MB` | objects larger than this go up in parts (default 64) |
//!
//! Failures that may pass (connection trouble, a body cut midway, 5xx, 429) are retried with
//! exponential backoff, jitter and the server's `Retry-After`. Secrets are never logged: errors
//! name the `s3://` URL and the server's error code only.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use super::retry::{parse_retry_after, Failure, RetryPolicy};

use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject, GetObject,
    HeadObject, ListObjectsV2, PutObject, UploadPart,
};
use rusty_s3::{Bucket, S3Action, UrlStyle};

/// How to reach an S3 service.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// `scheme://host[:port]`, no trailing slash.
    pub endpoint: String,
    /// The region requests are signed for.
    pub region: String,
    /// Keys, or `None` for anonymous requests.
    pub credentials: Option<Credentials>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual hosts.
    pub path_style: bool,
}

/// AWS credentials (never logged).
#[derive(Clone)]
pub struct Credentials {
    /// The access key id.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
    /// A session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.access_key)
    }
}

/// An S3 failure, already phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {message}")]
pub struct S3Error {
    /// The `s3://` URL of the request (never a signed one).
    pub url: String,
    /// What went wrong.
    pub message: String,
    /// Worth trying again (connection trouble, 5xx, throttling).
    pub transient: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The `[section]` of an AWS INI file (`~/.aws/credentials` names profiles plainly,
/// `~/.aws/config` as `profile NAME` except `default`).
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    out
}

/// The settings of profile `profile` from the AWS credentials and config files.
fn profile_settings(profile: &str) -> Vec<(String, String)> {
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let mut out = Vec::new();
    if let Some(text) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        out.extend(ini_section(&text, profile));
    }
    if let Some(text) =
        file("AWS_CONFIG_FILE", "config").and_then(|p| std::fs::read_to_string(p).ok())
    {
        let section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        out.extend(ini_section(&text, &section));
    }
    out
}

impl S3Config {
    /// The configuration the AWS environment variables and profile files describe.
    pub fn from_env() -> Result<Self, String> {
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let settings = profile_settings(&profile);
        let setting = |k: &str| {
            settings
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| setting("region"))
            .unwrap_or_else(|| "us-east-1".into());
        let custom = env("AWS_ENDPOINT_URL_S3")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| setting("endpoint_url"));
        let path_style = match env("AWS_S3_ADDRESSING_STYLE").as_deref() {
            Some("path") => true,
            Some("virtual") => false,
            Some("auto") | None => custom.is_some(),
            Some(other) => {
                return Err(format!(
                    "AWS_S3_ADDRESSING_STYLE is `{other}`; use `path` or `virtual`"
                ))
            }
        };
        let endpoint = match custom {
            Some(e) => {
                let e = e.trim_end_matches('/').to_string();
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    return Err(format!(
                        "the S3 endpoint `{e}` must start with http:// or https://"
                    ));
                }
                e
            }
            None => format!("https://s3.{region}.amazonaws.com"),
        };
        let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key), Some(secret_key)) => Some(Credentials {
                access_key,
                secret_key,
                session_token: env("AWS_SESSION_TOKEN"),
            }),
            (None, None) => match (
                setting("aws_access_key_id"),
                setting("aws_secret_access_key"),
            ) {
                (Some(access_key), Some(secret_key)) => Some(Credentials {
                    access_key,
                    secret_key,
                    session_token: setting("aws_session_token"),
                }),
                (None, None) if env("AWS_PROFILE").is_some() && settings.is_empty() => {
                    return Err(format!(
                        "AWS_PROFILE is `{profile}`, but no such profile is in ~/.aws/credentials or ~/.aws/config"
                    ))
                }
                (None, None) => None,
                _ => {
                    return Err(format!(
                        "profile `{profile}` has only one of aws_access_key_id and aws_secret_access_key"
                    ))
                }
            },
            _ => {
                return Err(
                    "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".into(),
                )
            }
        };
        Ok(S3Config {
            endpoint,
            region,
            credentials,
            path_style,
        })
    }
}

/// A bucket/key pair parsed from `s3://bucket/key`.
pub use super::parse_s3_url as parse_url;

/// One object of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// The key, the bucket's prefix included.
    pub key: String,
    /// Bytes.
    pub size: u64,
}

/// One page of a listing: objects, common prefixes, the token of the next page.
type Page = (Vec<Listed>, Vec<String>, Option<String>);

/// A connection pool and the signing configuration; cheap to share between threads.
#[derive(Clone, Debug)]
pub struct S3Client {
    config: S3Config,
    credentials: Option<rusty_s3::Credentials>,
    agent: ureq::Agent,
    multipart_above: usize,
}

const RETRIES: u32 = 4;
/// Signed URLs are made for one request, right before it: a short validity is enough.
const VALID: Duration = Duration::from_secs(900);
/// Parts of a multipart upload (the AWS CLI uses 8 MiB; fewer, larger requests here).
const PART: usize = 16 << 20;

/// One attempt's outcome: done, or an error that may pass, with the server's wish of a wait.
struct Failed {
    error: S3Error,
    retry_after: Option<Duration>,
}

impl From<S3Error> for Failed {
    fn from(error: S3Error) -> Self {
        Failed {
            error,
            retry_after: None,
        }
    }
}

impl S3Client {
    /// A client for `config`.
    pub fn new(config: S3Config) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .max_idle_connections_per_host(16)
            .build();
        let credentials = config.credentials.as_ref().map(|c| match &c.session_token {
            Some(t) => rusty_s3::Credentials::new_with_token(&c.access_key, &c.secret_key, t),
            None => rusty_s3::Credentials::new(&c.access_key, &c.secret_key),
        });
        let multipart_above = env("CRYOCUBE_S3_MULTIPART_MB")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .map_or(64 << 20, |mb| (mb * 1048576.0) as usize);
        S3Client {
            config,
            credentials,
            agent,
            multipart_above,
        }
    }

    /// A client configured as the AWS CLI is (environment, `~/.aws` profiles).
    pub fn from_env() -> Result<Self, String> {
        S3Config::from_env().map(Self::new)
    }

    /// Its configuration.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    fn bucket(&self, name: &str) -> Result<Bucket, S3Error> {
        let endpoint = self.config.endpoint.parse().map_err(|e| S3Error {
            url: format!("s3://{name}"),
            message: format!("the endpoint {} is not a URL: {e}", self.config.endpoint),
            transient: false,
        })?;
        let style = if self.config.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        Bucket::new(
            endpoint,
            style,
            name.to_string(),
            self.config.region.clone(),
        )
        .map_err(|e| S3Error {
            url: format!("s3://{name}"),
            message: format!(
                "cannot address this bucket at {}: {e}",
                self.config.endpoint
            ),
            transient: false,
        })
    }

    /// Runs `attempt` under the one retry policy ([`RetryPolicy`]).
    fn retry<T>(&self, mut attempt: impl FnMut() -> Result<T, Failed>) -> Result<T, S3Error> {
        RetryPolicy {
            retries: RETRIES,
            base: Duration::from_millis(200),
            max_wait: Duration::from_secs(30),
        }
        .run(
            |_| {
                attempt().map_err(|f| {
                    if f.error.transient {
                        Failure::Transient {
                            error: f.error,
                            retry_after: f.retry_after,
                        }
                    } else {
                        Failure::Permanent(f.error)
                    }
                })
            },
            |e, _, wait| log::debug!("{e}; retrying in {wait:?}"),
        )
    }

    /// Sends one request to a signed URL; `None` for a 404 of an object.
    fn send(
        &self,
        method: &str,
        url: &url::Url,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        shown: &str,
        bucket: &str,
    ) -> Result<Option<ureq::Response>, Failed> {
        let mut req = self.agent.request(method, url.as_str());
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        match result {
            Ok(r) => Ok(Some(r)),
            Err(ureq::Error::Status(404, r)) => {
                let (code, _) = error_code(r);
                if code == "NoSuchBucket" {
                    Err(S3Error {
                        url: shown.into(),
                        message: format!("no bucket `{bucket}` at {}", self.config.endpoint),
                        transient: false,
                    }
                    .into())
                } else {
                    Ok(None)
                }
            }
            Err(ureq::Error::Status(status, r)) => {
                let retry_after = parse_retry_after(r.header("Retry-After"));
                let (code, message) = error_code(r);
                let hint = match status {
                    401 | 403 => "; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the AWS profile), AWS_REGION and AWS_ENDPOINT_URL",
                    _ => "",
                };
                Err(Failed {
                    error: S3Error {
                        url: shown.into(),
                        message: format!("HTTP {status} {code} {message}{hint}")
                            .replace("  ", " ")
                            .trim()
                            .to_string(),
                        transient: status >= 500 || status == 429,
                    },
                    retry_after,
                })
            }
            Err(e) => Err(S3Error {
                url: shown.into(),
                message: format!("{} unreachable: {e}", self.config.endpoint),
                transient: true,
            }
            .into()),
        }
    }

    /// An object's bytes (`range`: first byte and optional end, exclusive); `None` if absent.
    /// A body cut midway is asked for again.
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Option<Vec<u8>>, S3Error> {
        let headers: Vec<(&str, String)> = match range {
            Some((start, Some(end))) if end > start => {
                vec![("Range", format!("bytes={start}-{}", end - 1))]
            }
            Some((_, Some(_))) => return Ok(Some(Vec::new())),
            Some((start, None)) => vec![("Range", format!("bytes={start}-"))],
            None => vec![],
        };
        let b = self.bucket(bucket)?;
        let shown = format!("s3://{bucket}/{key}");
        self.retry(|| {
            let url = GetObject::new(&b, self.credentials.as_ref(), key).sign(VALID);
            let Some(resp) = self.send("GET", &url, &headers, None, &shown, bucket)? else {
                return Ok(None);
            };
            let expected: Option<usize> =
                resp.header("Content-Length").and_then(|v| v.parse().ok());
            let mut bytes = Vec::with_capacity(expected.unwrap_or(0).min(1 << 30));
            let read = resp.into_reader().read_to_end(&mut bytes);
            match (read, expected) {
                (Ok(_), Some(n)) if n != bytes.len() => Err(S3Error {
                    url: shown.clone(),
                    message: format!("connection lost after {} of {n} bytes", bytes.len()),
                    transient: true,
                }
                .into()),
                (Ok(_), _) => Ok(Some(bytes)),
                (Err(e), _) => Err(S3Error {
                    url: shown.clone(),
                    message: format!("connection lost after {} bytes: {e}", bytes.len()),
                    transient: true,
                }
                .into()),
            }
        })
    }

    /// An object's size; `None` if absent.
    pub fn head(&self, bucket: &str, key: &str) -> Result<Option<u64>, S3Error> {
        let b = self.bucket(bucket)?;
        let shown = format!("s3://{bucket}/{key}");
        self.retry(|| {
            let url = HeadObject::new(&b, self.credentials.as_ref(), key).sign(VALID);
            Ok(self
                .send("HEAD", &url, &[], None, &shown, bucket)?
                .and_then(|r| r.header("Content-Length").and_then(|v| v.parse().ok())))
        })
    }

    /// Stores an object whole; above the multipart threshold in parts, each retried alone.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<(), S3Error> {
        if bytes.len() > self.multipart_above {
            return self.put_in_parts(bucket, key, bytes);
        }
        let b = self.bucket(bucket)?;
        let shown = format!("s3://{bucket}/{key}");
        self.retry(|| {
            let url = PutObject::new(&b, self.credentials.as_ref(), key).sign(VALID);
            self.send("PUT", &url, &[], Some(bytes), &shown, bucket)?;
            Ok(())
        })
    }

    fn put_in_parts(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<(), S3Error> {
        let b = self.bucket(bucket)?;
        let creds = self.credentials.as_ref();
        let shown = format!("s3://{bucket}/{key}");
        let bad = |m: String| S3Error {
            url: shown.clone(),
            message: m,
            transient: false,
        };
        let text = self.retry(|| {
            let url = CreateMultipartUpload::new(&b, creds, key).sign(VALID);
            let resp = self
                .send("POST", &url, &[], Some(&[]), &shown, bucket)?
                .ok_or_else(|| bad("the multipart upload could not be started (404)".into()))?;
            text_of(resp, &shown)
        })?;
        let upload = CreateMultipartUpload::parse_response(&text).map_err(|e| {
            bad(format!(
                "unreadable answer to starting a multipart upload: {e}"
            ))
        })?;
        let id = upload.upload_id().to_string();
        let parts = (|| -> Result<Vec<String>, S3Error> {
            let mut etags = Vec::new();
            for (i, part) in bytes.chunks(PART).enumerate() {
                let number =
                    u16::try_from(i + 1).map_err(|_| bad("more than 65535 parts".into()))?;
                let etag = self.retry(|| {
                    let url = UploadPart::new(&b, creds, key, number, &id).sign(VALID);
                    let resp = self
                        .send("PUT", &url, &[], Some(part), &shown, bucket)?
                        .ok_or_else(|| bad(format!("part {number}: the upload is gone (404)")))?;
                    resp.header("ETag")
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("part {number}: no ETag in the answer")).into())
                })?;
                etags.push(etag);
            }
            let action =
                CompleteMultipartUpload::new(&b, creds, key, &id, etags.iter().map(String::as_str));
            let url = action.sign(VALID);
            let body = action.body();
            self.retry(|| {
                self.send("POST", &url, &[], Some(body.as_bytes()), &shown, bucket)?;
                Ok(())
            })?;
            Ok(etags)
        })();
        if let Err(e) = parts {
            // Parts of an abandoned upload cost storage until aborted.
            let url = AbortMultipartUpload::new(&b, creds, key, &id).sign(VALID);
            let _ = self.send("DELETE", &url, &[], None, &shown, bucket);
            return Err(e);
        }
        Ok(())
    }

    /// Deletes an object; deleting an absent one is not an error (S3 semantics).
    pub fn delete(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        let b = self.bucket(bucket)?;
        let shown = format!("s3://{bucket}/{key}");
        self.retry(|| {
            let url = DeleteObject::new(&b, self.credentials.as_ref(), key).sign(VALID);
            self.send("DELETE", &url, &[], None, &shown, bucket)?;
            Ok(())
        })
    }

    /// One page of a listing: objects, common prefixes, the token of the next page.
    fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: bool,
        max: Option<usize>,
        token: Option<&str>,
    ) -> Result<Page, S3Error> {
        let b = self.bucket(bucket)?;
        let shown = format!("s3://{bucket}/{prefix}");
        let text = self.retry(|| {
            let mut action = ListObjectsV2::new(&b, self.credentials.as_ref());
            action.with_prefix(prefix);
            if delimiter {
                action.with_delimiter("/");
            }
            if let Some(m) = max {
                action.with_max_keys(m);
            }
            if let Some(t) = token {
                action.with_continuation_token(t);
            }
            let url = action.sign(VALID);
            let resp = self
                .send("GET", &url, &[], None, &shown, bucket)?
                .ok_or_else(|| S3Error {
                    url: shown.clone(),
                    message: "listing answered 404".into(),
                    transient: false,
                })?;
            text_of(resp, &shown)
        })?;
        parse_listing(&text).map_err(|message| S3Error {
            url: shown.clone(),
            message,
            transient: false,
        })
    }

    /// The first `max` objects under `prefix` (one request, whatever is there).
    pub fn list_some(&self, bucket: &str, prefix: &str, max: u32) -> Result<Vec<Listed>, S3Error> {
        Ok(self
            .list_page(bucket, prefix, false, Some(max as usize), None)?
            .0)
    }

    /// Every object under `prefix`, and with `delimiter` the common prefixes one level down.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: bool,
    ) -> Result<(Vec<Listed>, Vec<String>), S3Error> {
        let mut objects = Vec::new();
        let mut prefixes = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (o, p, next) = self.list_page(bucket, prefix, delimiter, None, token.as_deref())?;
            objects.extend(o);
            prefixes.extend(p);
            match next {
                Some(t) => token = Some(t),
                None => return Ok((objects, prefixes)),
            }
        }
    }

    /// A URL that reads an object without further credentials for `expires` seconds, so that
    /// plain HTTP code (resumable downloads) can fetch it. Only `host` is signed: a `Range`
    /// header may be added.
    pub fn presign_get(&self, bucket: &str, key: &str, expires: u64) -> String {
        match self.bucket(bucket) {
            Ok(b) => GetObject::new(&b, self.credentials.as_ref(), key)
                .sign(Duration::from_secs(expires.clamp(1, 7 * 24 * 3600)))
                .to_string(),
            Err(_) => format!("{}/{bucket}/{key}", self.config.endpoint),
        }
    }
}

/// The body of an answer as text; a connection lost while reading it may pass.
fn text_of(resp: ureq::Response, shown: &str) -> Result<String, Failed> {
    resp.into_string().map_err(|e| {
        Failed::from(S3Error {
            url: shown.to_string(),
            message: format!("connection lost: {e}"),
            transient: true,
        })
    })
}

/// The `<Code>` and `<Message>` of an S3 error answer, to name the failure.
fn error_code(resp: ureq::Response) -> (String, String) {
    error_fields(&resp.into_string().unwrap_or_default())
}

/// The `<Code>` and `<Message>` of an S3 error body (the rest of S3's XML is read by
/// `rusty-s3`); empty when absent. Any text is accepted: a proxy may answer with HTML.
pub fn error_fields(body: &str) -> (String, String) {
    let get = |tag: &str| {
        let open = format!("<{tag}>");
        body.find(&open)
            .map(|i| &body[i + open.len()..])
            .and_then(|rest| rest.find(&format!("</{tag}>")).map(|j| &rest[..j]))
            .map(|t| {
                t.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&")
            })
            .unwrap_or_default()
    };
    (get("Code"), get("Message"))
}

/// One page of a ListObjectsV2 answer: objects, common prefixes, the continuation token.
pub type ListingPage = (Vec<Listed>, Vec<String>, Option<String>);

/// Reads a ListObjectsV2 answer (any bytes a server sends; an error, never a panic).
pub fn parse_listing(text: &str) -> Result<ListingPage, String> {
    let parsed =
        ListObjectsV2::parse_response(text).map_err(|e| format!("unreadable listing: {e}"))?;
    Ok((
        parsed
            .contents
            .into_iter()
            .map(|c| Listed {
                key: c.key,
                size: c.size.unwrap_or(0),
            })
            .collect(),
        parsed
            .common_prefixes
            .into_iter()
            .map(|p| p.prefix)
            .collect(),
        parsed.next_continuation_token,
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any answer body: no panic; a field found is a piece of the body (entities decoded).
        #[test]
        fn error_bodies_of_any_bytes(body in ".{0,400}", code in "[A-Za-z]{0,20}") {
            let text = format!("{body}<Code>{code}</Code>{body}");
            let (c, _) = error_fields(&text);
            prop_assert!(body.contains("<Code>") || c == code);
            let _ = error_fields(&body);
        }

        /// Listings cut, spliced and garbled: an error or a listing, never a panic; keys come
        /// from the text.
        #[test]
        fn listings_of_hostile_xml(cut in 0usize..2000, junk in ".{0,64}", at in 0usize..2000) {
            let good = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
    <ListBucketResult><Name>b</Name><Prefix>c.zarr/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>\
    <IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken>\
    <Contents><Key>c.zarr/.zgroup</Key><LastModified>2026-11-30T10:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>24</Size><StorageClass>STANDARD</StorageClass></Contents>\
    <Contents><Key>c.zarr/v/0.0</Key><LastModified>2026-11-30T10:00:00.000Z</LastModified><ETag>\"f\"</ETag><Size>99999999999999999999</Size><StorageClass>STANDARD</StorageClass></Contents>\
    <CommonPrefixes><Prefix>c.zarr/v/</Prefix></CommonPrefixes></ListBucketResult>";
            let cut = cut.min(good.len());
            let at = at.min(cut);
            let text = format!("{}{junk}{}", &good[..at], &good[at..cut]);
            if let Ok((objects, _, _)) = parse_listing(&text) {
                for o in objects {
                    prop_assert!(text.contains(&o.key));
                }
            }
        }
    }

    use super::*;

    #[test]
    fn urls_are_parsed() {
        assert_eq!(
            parse_url("s3://b/p/q.zarr"),
            Some(("b".into(), "p/q.zarr".into()))
        );
        assert_eq!(parse_url("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(parse_url("s3:///x"), None);
    }

    #[test]
    fn profiles_are_read_from_their_sections() {
        let text = "[default]\naws_access_key_id = A\n\n[other]\n# note\naws_access_key_id=B\nregion = eu-north-1\n[profile third]\nendpoint_url = http://x\n";
        assert_eq!(
            ini_section(text, "default"),
            [("aws_access_key_id".to_string(), "A".to_string())]
        );
        assert_eq!(
            ini_section(text, "other"),
            [
                ("aws_access_key_id".to_string(), "B".to_string()),
                ("region".to_string(), "eu-north-1".to_string())
            ]
        );
        assert_eq!(ini_section(text, "profile third")[0].1, "http://x");
        assert!(ini_section(text, "missing").is_empty());
    }
}
