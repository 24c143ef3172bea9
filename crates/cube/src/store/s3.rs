//! A small synchronous S3 client: AWS Signature V4 over `ureq`.
//!
//! Why not an SDK: the cube writer is synchronous and parallel (rayon workers store chunks
//! concurrently); the async clients would bring a runtime into every command for five verbs
//! (GET with a range, HEAD, PUT, DELETE, LIST). Configuration follows the AWS conventions so
//! that the credentials a user already has for the AWS CLI, boto3 or s3fs work unchanged:
//!
//! | variable | meaning |
//! |---|---|
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | credentials (none: unsigned requests, for public buckets) |
//! | `AWS_REGION` or `AWS_DEFAULT_REGION` | region (default `us-east-1`) |
//! | `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` | another S3 server, e.g. `http://127.0.0.1:3900` |
//! | `AWS_S3_ADDRESSING_STYLE` | `path` or `virtual`; default `path` with a custom endpoint, `virtual` on AWS |
//!
//! Secrets are never logged: errors name the `s3://` URL and the server's error code only.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How to reach an S3 service.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// `scheme://host[:port]`, no trailing slash.
    pub endpoint: String,
    pub region: String,
    pub credentials: Option<Credentials>,
    pub path_style: bool,
}

#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
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
    pub url: String,
    pub message: String,
    /// Worth trying again (connection trouble, 5xx, throttling).
    pub transient: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl S3Config {
    /// The configuration the AWS environment variables describe.
    pub fn from_env() -> Result<Self, String> {
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let custom = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL"));
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
            (None, None) => None,
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
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// A connection pool and a signer; cheap to share between threads.
#[derive(Clone, Debug)]
pub struct S3Client {
    config: S3Config,
    agent: ureq::Agent,
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const RETRIES: u32 = 4;

impl S3Client {
    pub fn new(config: S3Config) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .max_idle_connections_per_host(16)
            .build();
        S3Client { config, agent }
    }

    pub fn from_env() -> Result<Self, String> {
        S3Config::from_env().map(Self::new)
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// `(url, host header, canonical path)` of an object (or of the bucket when `key` is "").
    fn address(&self, bucket: &str, key: &str) -> (String, String, String) {
        let (scheme, host) = self
            .config
            .endpoint
            .split_once("://")
            .unwrap_or(("https", &self.config.endpoint));
        let encoded_key = uri_encode(key, false);
        if self.config.path_style {
            let path = format!("/{}/{}", uri_encode(bucket, true), encoded_key);
            (format!("{scheme}://{host}{path}"), host.to_string(), path)
        } else {
            let host = format!("{bucket}.{host}");
            let path = format!("/{encoded_key}");
            (format!("{scheme}://{host}{path}"), host, path)
        }
    }

    /// Sends one signed request, retrying transient failures with backoff.
    fn send(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<Option<ureq::Response>, S3Error> {
        // A listing is named by its prefix.
        let named = match query.iter().find(|(k, _)| *k == "prefix") {
            Some((_, prefix)) if key.is_empty() => prefix.as_str(),
            _ => key,
        };
        let shown = format!("s3://{bucket}/{named}");
        let mut delay = Duration::from_millis(200);
        for attempt in 0..=RETRIES {
            match self.send_once(method, bucket, key, query, headers, body, &shown) {
                Err(e) if e.transient && attempt < RETRIES => {
                    log::debug!("{e}; retrying in {delay:?}");
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    #[allow(clippy::too_many_arguments)]
    fn send_once(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        shown: &str,
    ) -> Result<Option<ureq::Response>, S3Error> {
        let (url, host, path) = self.address(bucket, key);
        let payload = match body {
            Some(b) => hex(&Sha256::digest(b)),
            None => EMPTY_SHA256.to_string(),
        };
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut signed: Vec<(String, String)> = vec![
            ("host".into(), host),
            ("x-amz-content-sha256".into(), payload.clone()),
            ("x-amz-date".into(), now.clone()),
        ];
        for (k, v) in headers {
            signed.push((k.to_ascii_lowercase(), v.clone()));
        }
        let query_text = canonical_query(query);
        let mut req = self.agent.request(
            method,
            &if query_text.is_empty() {
                url
            } else {
                format!("{url}?{query_text}")
            },
        );
        if let Some(c) = &self.config.credentials {
            if let Some(t) = &c.session_token {
                signed.push(("x-amz-security-token".into(), t.clone()));
            }
            let auth = authorization(
                c,
                &self.config.region,
                method,
                &path,
                &query_text,
                &mut signed,
                &payload,
                &now,
            );
            req = req.set("Authorization", &auth);
        }
        for (k, v) in &signed {
            if k != "host" {
                req = req.set(k, v);
            }
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
                    })
                } else {
                    Ok(None)
                }
            }
            Err(ureq::Error::Status(status, r)) => {
                let (code, message) = error_code(r);
                let hint = match status {
                    401 | 403 => "; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_REGION, AWS_ENDPOINT_URL)",
                    _ => "",
                };
                Err(S3Error {
                    url: shown.into(),
                    message: format!("HTTP {status} {code} {message}{hint}")
                        .replace("  ", " ")
                        .trim()
                        .to_string(),
                    transient: status >= 500 || status == 429,
                })
            }
            Err(e) => Err(S3Error {
                url: shown.into(),
                message: format!("{} unreachable: {e}", self.config.endpoint),
                transient: true,
            }),
        }
    }

    /// An object's bytes (`range`: first byte and optional end, exclusive); `None` if absent.
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Option<Vec<u8>>, S3Error> {
        let headers: Vec<(&str, String)> = match range {
            Some((start, Some(end))) if end > start => {
                vec![("range", format!("bytes={start}-{}", end - 1))]
            }
            Some((_, Some(_))) => return Ok(Some(Vec::new())),
            Some((start, None)) => vec![("range", format!("bytes={start}-"))],
            None => vec![],
        };
        let Some(resp) = self.send("GET", bucket, key, &[], &headers, None)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).map_err(|e| S3Error {
            url: format!("s3://{bucket}/{key}"),
            message: format!("connection lost: {e}"),
            transient: true,
        })?;
        Ok(Some(bytes))
    }

    /// An object's size; `None` if absent.
    pub fn head(&self, bucket: &str, key: &str) -> Result<Option<u64>, S3Error> {
        Ok(self
            .send("HEAD", bucket, key, &[], &[], None)?
            .and_then(|r| r.header("Content-Length").and_then(|v| v.parse().ok())))
    }

    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<(), S3Error> {
        self.send("PUT", bucket, key, &[], &[], Some(bytes))
            .map(|_| ())
    }

    /// Deletes an object; deleting an absent one is not an error (S3 semantics).
    pub fn delete(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        self.send("DELETE", bucket, key, &[], &[], None).map(|_| ())
    }

    /// The first `max` objects under `prefix` (one request, whatever is there).
    pub fn list_some(&self, bucket: &str, prefix: &str, max: u32) -> Result<Vec<Listed>, S3Error> {
        let query = vec![
            ("list-type", "2".to_string()),
            ("max-keys", max.to_string()),
            ("prefix", prefix.into()),
        ];
        let resp = self
            .send("GET", bucket, "", &query, &[], None)?
            .ok_or_else(|| S3Error {
                url: format!("s3://{bucket}/{prefix}"),
                message: "listing answered 404".into(),
                transient: false,
            })?;
        let body = resp.into_string().map_err(|e| S3Error {
            url: format!("s3://{bucket}/{prefix}"),
            message: format!("connection lost: {e}"),
            transient: true,
        })?;
        Ok(xml_elements(&body, "Contents")
            .filter_map(|c| {
                let key = xml_elements(c, "Key").next().map(xml_unescape)?;
                let size = xml_elements(c, "Size").next()?.trim().parse().ok()?;
                Some(Listed { key, size })
            })
            .collect())
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
            let mut query = vec![("list-type", "2".to_string()), ("prefix", prefix.into())];
            if delimiter {
                query.push(("delimiter", "/".into()));
            }
            if let Some(t) = &token {
                query.push(("continuation-token", t.clone()));
            }
            let resp = self
                .send("GET", bucket, "", &query, &[], None)?
                .ok_or_else(|| S3Error {
                    url: format!("s3://{bucket}/{prefix}"),
                    message: "listing answered 404".into(),
                    transient: false,
                })?;
            let body = resp.into_string().map_err(|e| S3Error {
                url: format!("s3://{bucket}/{prefix}"),
                message: format!("connection lost: {e}"),
                transient: false,
            })?;
            for contents in xml_elements(&body, "Contents") {
                let key = xml_elements(contents, "Key").next().map(xml_unescape);
                let size = xml_elements(contents, "Size")
                    .next()
                    .and_then(|s| s.trim().parse().ok());
                if let (Some(key), Some(size)) = (key, size) {
                    objects.push(Listed { key, size });
                }
            }
            for common in xml_elements(&body, "CommonPrefixes") {
                if let Some(p) = xml_elements(common, "Prefix").next() {
                    prefixes.push(xml_unescape(p));
                }
            }
            let truncated = xml_elements(&body, "IsTruncated").next() == Some("true");
            token = xml_elements(&body, "NextContinuationToken")
                .next()
                .map(xml_unescape);
            if !truncated || token.is_none() {
                return Ok((objects, prefixes));
            }
        }
    }

    /// A URL that reads an object without further credentials for `expires` seconds, so that
    /// plain HTTP code (resumable downloads) can fetch it. Only `host` is signed: a `Range`
    /// header may be added.
    pub fn presign_get(&self, bucket: &str, key: &str, expires: u64) -> String {
        let (url, host, path) = self.address(bucket, key);
        let Some(c) = &self.config.credentials else {
            return url;
        };
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        presign(c, &self.config.region, &url, &host, &path, &now, expires)
    }
}

/// The query-string form of a signed GET.
fn presign(
    c: &Credentials,
    region: &str,
    url: &str,
    host: &str,
    path: &str,
    now: &str,
    expires: u64,
) -> String {
    let scope = format!("{}/{region}/s3/aws4_request", &now[..8]);
    let mut query = vec![
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", format!("{}/{scope}", c.access_key)),
        ("X-Amz-Date", now.to_string()),
        ("X-Amz-Expires", expires.to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(t) = &c.session_token {
        query.push(("X-Amz-Security-Token", t.clone()));
    }
    let query_text = canonical_query(&query);
    let canonical = format!("GET\n{path}\n{query_text}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let signature = sign(c, region, now, &scope, &canonical);
    format!("{url}?{query_text}&X-Amz-Signature={signature}")
}

/// The `Authorization` header of a request; sorts `headers` into canonical order.
#[allow(clippy::too_many_arguments)]
fn authorization(
    c: &Credentials,
    region: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &mut [(String, String)],
    payload: &str,
    now: &str,
) -> String {
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload}");
    let scope = format!("{}/{region}/s3/aws4_request", &now[..8]);
    let signature = sign(c, region, now, &scope, &canonical);
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
        c.access_key
    )
}

fn sign(c: &Credentials, region: &str, now: &str, scope: &str, canonical: &str) -> String {
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{now}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", c.secret_key).as_bytes(),
        &now.as_bytes()[..8],
    );
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    hex(&hmac(&key, to_sign.as_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, `/` kept in paths.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn canonical_query(query: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `<Code>` and `<Message>` of an S3 error body.
fn error_code(resp: ureq::Response) -> (String, String) {
    let body = resp.into_string().unwrap_or_default();
    let get = |tag| {
        xml_elements(&body, tag)
            .next()
            .map(xml_unescape)
            .unwrap_or_default()
    };
    (get("Code"), get("Message"))
}

/// The texts of the `<tag>` elements in `xml` (S3 listings are flat enough for this).
fn xml_elements<'a>(xml: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let len = rest[start..].find(&close)?;
        let text = &rest[start..start + len];
        rest = &rest[start + len + close.len()..];
        Some(text)
    })
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Credentials {
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    /// The "GET Object" example of the S3 SigV4 documentation (header authentication).
    #[test]
    fn header_signature_matches_the_aws_example() {
        let mut headers = vec![
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
            ("range".to_string(), "bytes=0-9".to_string()),
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string()),
        ];
        let auth = authorization(
            &example(),
            "us-east-1",
            "GET",
            "/test.txt",
            "",
            &mut headers,
            EMPTY_SHA256,
            "20130524T000000Z",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// The presigned URL example of the S3 SigV4 documentation (query authentication).
    #[test]
    fn presigned_url_matches_the_aws_example() {
        let url = presign(
            &example(),
            "us-east-1",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            "20130524T000000Z",
            86400,
        );
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }

    #[test]
    fn listing_xml_is_read() {
        let xml = "<ListBucketResult><IsTruncated>false</IsTruncated>\
            <Contents><Key>a/b&amp;c</Key><Size>12</Size></Contents>\
            <Contents><Key>a/d</Key><Size>0</Size></Contents>\
            <CommonPrefixes><Prefix>a/e/</Prefix></CommonPrefixes></ListBucketResult>";
        let keys: Vec<_> = xml_elements(xml, "Contents")
            .map(|c| xml_unescape(xml_elements(c, "Key").next().unwrap()))
            .collect();
        assert_eq!(keys, ["a/b&c", "a/d"]);
        assert_eq!(xml_elements(xml, "Prefix").next(), Some("a/e/"));
    }

    #[test]
    fn urls_are_parsed() {
        assert_eq!(
            parse_url("s3://b/p/q.zarr"),
            Some(("b".into(), "p/q.zarr".into()))
        );
        assert_eq!(parse_url("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(parse_url("s3:///x"), None);
        assert_eq!(uri_encode("a b/c+d", false), "a%20b/c%2Bd");
    }
}
