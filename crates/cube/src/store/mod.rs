//! Where a cube's bytes live: a local folder or a prefix in an S3 bucket.
//!
//! The writer, the reader, `patch` and resume talk to a [`Store`] of keys (`x/.zarray`,
//! `v/c/0/1/2`), never to the file system, so every command that writes or reads a cube works
//! on `s3://bucket/prefix.zarr` as on a folder. Each `put` is atomic for readers (a local file
//! is written aside and renamed; an S3 PUT is atomic by itself), which keeps the writer's
//! safety property: a store without its root metadata is unfinished, never half-written.

pub mod retry;
#[cfg(feature = "s3")]
pub mod s3;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    MaybeBytes, MaybeBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
};

use crate::lock::LOCK_KEY;
use crate::CubeError;
#[cfg(feature = "s3")]
pub use s3::{S3Client, S3Config};

/// `(bucket, key)` of `s3://bucket/key` (key possibly empty); `None` if it is no S3 URL.
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

/// A place for a cube given on the command line: a path or `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq)]
pub enum Location {
    /// A folder.
    Local(PathBuf),
    /// A prefix in an S3 bucket.
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix inside it, without leading or trailing `/`.
        prefix: String,
    },
}

impl Location {
    /// `s3://bucket/prefix` is an S3 prefix; anything else a local path.
    pub fn parse(text: &str) -> Result<Self, CubeError> {
        if text.trim().is_empty() {
            return Err(CubeError::Invalid {
                path: text.into(),
                message: "an empty path (is a variable unset?); name the cube's folder".into(),
            });
        }
        if text.starts_with("s3://") {
            let (bucket, prefix) = parse_s3_url(text).ok_or_else(|| CubeError::Invalid {
                path: text.into(),
                message: "an S3 location is s3://BUCKET/PREFIX".into(),
            })?;
            let prefix = prefix.trim_matches('/').to_string();
            if prefix.is_empty() {
                return Err(CubeError::Invalid {
                    path: text.into(),
                    message: "give the cube a prefix inside the bucket (s3://BUCKET/NAME.zarr): \
                              a whole bucket is not a cube"
                        .into(),
                });
            }
            Ok(Location::S3 { bucket, prefix })
        } else {
            Ok(Location::Local(PathBuf::from(text)))
        }
    }

    /// Connects to the location (S3: configuration from the AWS environment variables).
    pub fn open(&self) -> Result<Arc<dyn Store>, CubeError> {
        Ok(match self {
            Location::Local(p) => Arc::new(LocalStore { root: p.clone() }),
            #[cfg(not(feature = "s3"))]
            Location::S3 { .. } => {
                return Err(CubeError::Invalid {
                    path: self.display_path(),
                    message: "this cryocube was built without S3 support (the `s3` feature)".into(),
                })
            }
            #[cfg(feature = "s3")]
            Location::S3 { bucket, prefix } => {
                let client = S3Client::from_env().map_err(|message| CubeError::Invalid {
                    path: self.display_path(),
                    message,
                })?;
                Arc::new(S3Store {
                    client,
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                })
            }
        })
    }

    /// The location as errors and messages name it.
    pub fn display_path(&self) -> PathBuf {
        match self {
            Location::Local(p) => p.clone(),
            Location::S3 { .. } => PathBuf::from(self.to_string()),
        }
    }

    /// The location `sub` (a relative key path) below this one.
    pub fn join(&self, sub: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(sub)),
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: format!("{prefix}/{}", sub.trim_matches('/')),
            },
        }
    }

    /// Whether anything is there (a local path of any kind; any key under an S3 prefix),
    /// apart from the store's lock (taken before a store is created).
    pub fn exists(&self) -> Result<bool, CubeError> {
        match self {
            Location::Local(p) if p.is_dir() => Ok(!self.open()?.is_empty()?),
            Location::Local(p) => Ok(p.exists()),
            Location::S3 { .. } => Ok(!self.open()?.is_empty()?),
        }
    }

    /// Something that reads as a path in `format!`: `{}` of a [`Location`] without `.display()`.
    pub fn display(&self) -> String {
        self.to_string()
    }

    /// The folder, for a local location.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3 { .. } => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::Local(p.to_path_buf())
    }
}
impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::Local(p.clone())
    }
}
impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::Local(p)
    }
}
impl From<&Location> for Location {
    fn from(l: &Location) -> Self {
        l.clone()
    }
}

/// The keys of a cube and their bytes. Keys are relative, `/`-separated, never start with `/`.
pub trait Store: Send + Sync + fmt::Debug {
    /// The store as messages name it (a path or an `s3://` URL).
    fn path(&self) -> PathBuf;
    /// Bytes `start..end` of a key (`end` None: to the end); `None` if the key is absent.
    fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<Vec<u8>>, CubeError>;
    /// The whole value of a key; `None` if the key is absent.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CubeError> {
        self.get_range(key, 0, None)
    }
    /// The size of a key in bytes; `None` if it is absent.
    fn size(&self, key: &str) -> Result<Option<u64>, CubeError>;
    /// Whether a key is stored.
    fn exists(&self, key: &str) -> Result<bool, CubeError> {
        Ok(self.size(key)?.is_some())
    }
    /// Stores a key; readers see the old bytes or the new, never a part.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), CubeError>;
    /// Removes a key; an absent key is not an error.
    fn delete(&self, key: &str) -> Result<(), CubeError>;
    /// Every key under `prefix` ("" for all) with its size.
    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, CubeError>;
    /// The names one level below the root that hold keys (the arrays of a group).
    fn children(&self) -> Result<Vec<String>, CubeError>;
    /// Whether anything at all is stored.
    fn is_empty(&self) -> Result<bool, CubeError>;
    /// Removes every key under `folder/`.
    fn delete_folder(&self, folder: &str) -> Result<(), CubeError>;
    /// Removes every key (the store itself, for `--overwrite`).
    fn clear(&self) -> Result<(), CubeError>;
}

/// A folder on a local disk.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// The store in the folder `root` (created when the first key is written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }
    fn file(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

impl Store for LocalStore {
    fn path(&self) -> PathBuf {
        self.root.clone()
    }

    fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<Vec<u8>>, CubeError> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.file(key);
        // A folder (an array's or a group's) is not a key.
        let mut file = match std::fs::File::open(&path) {
            Ok(_) if path.is_dir() => return Ok(None),
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CubeError::io(&path, e)),
        };
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(start))
            .map_err(|e| CubeError::io(&path, e))?;
        match end {
            Some(end) => {
                bytes.resize(end.saturating_sub(start) as usize, 0);
                file.read_exact(&mut bytes)
                    .map_err(|e| CubeError::io(&path, e))?;
            }
            None => {
                file.read_to_end(&mut bytes)
                    .map_err(|e| CubeError::io(&path, e))?;
            }
        }
        Ok(Some(bytes))
    }

    fn size(&self, key: &str) -> Result<Option<u64>, CubeError> {
        match std::fs::metadata(self.file(key)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CubeError::io(self.file(key), e)),
        }
    }

    /// Written aside and renamed. No fsync: zarrs' filesystem store syncs every chunk, which
    /// made a run wait for the disk once per chunk; a killed process loses nothing written
    /// (the page cache outlives it), and the job's plan makes a killed run resumable.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), CubeError> {
        let path = self.file(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| CubeError::io(dir, e))?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.cryocube-tmp"));
        std::fs::write(&tmp, bytes).map_err(|e| CubeError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| CubeError::io(&path, e))
    }

    fn delete(&self, key: &str) -> Result<(), CubeError> {
        let path = self.file(key);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CubeError::io(&path, e)),
            _ => Ok(()),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, CubeError> {
        fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, u64)>) -> Result<(), CubeError> {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(CubeError::io(dir, e)),
            };
            for e in entries {
                let e = e.map_err(|e| CubeError::io(dir, e))?;
                let name = e.file_name().to_string_lossy().into_owned();
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let meta = e.metadata().map_err(|err| CubeError::io(e.path(), err))?;
                if meta.is_dir() {
                    walk(&e.path(), &key, out)?;
                } else {
                    out.push((key, meta.len()));
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        // Walk from the deepest folder the prefix names, then filter by the rest.
        let dir_part = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        walk(&self.root.join(dir_part), dir_part, &mut out)?;
        out.retain(|(k, _)| k.starts_with(prefix));
        out.sort();
        Ok(out)
    }

    fn children(&self) -> Result<Vec<String>, CubeError> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .map_err(|e| CubeError::io(&self.root, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn is_empty(&self) -> Result<bool, CubeError> {
        match std::fs::read_dir(&self.root) {
            Ok(mut rd) => Ok(rd.all(|e| e.is_ok_and(|e| e.file_name() == LOCK_KEY))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(CubeError::io(&self.root, e)),
        }
    }

    fn delete_folder(&self, folder: &str) -> Result<(), CubeError> {
        let dir = self.file(folder);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CubeError::io(&dir, e)),
            _ => Ok(()),
        }
    }

    /// Everything but the lock file: its holder is the one clearing, and a new lock file
    /// would let another writer lock a different inode.
    fn clear(&self) -> Result<(), CubeError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CubeError::io(&self.root, e)),
        };
        for e in entries {
            let e = e.map_err(|e| CubeError::io(&self.root, e))?;
            if e.file_name() == LOCK_KEY {
                continue;
            }
            let path = e.path();
            let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CubeError::io(&path, e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A prefix in an S3 bucket.
#[cfg(feature = "s3")]
#[derive(Debug)]
pub struct S3Store {
    client: S3Client,
    bucket: String,
    prefix: String,
}

#[cfg(feature = "s3")]
impl S3Store {
    /// The cube at `s3://bucket/prefix`, reached through `client`.
    pub fn new(client: S3Client, bucket: &str, prefix: &str) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            prefix: prefix.trim_matches('/').into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}/{key}", self.prefix)
    }
    fn err(&self, e: s3::S3Error) -> CubeError {
        CubeError::Invalid {
            path: e.url.into(),
            message: e.message,
        }
    }
}

#[cfg(feature = "s3")]
impl Store for S3Store {
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("s3://{}/{}", self.bucket, self.prefix))
    }

    fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<Vec<u8>>, CubeError> {
        let range = (start > 0 || end.is_some()).then_some((start, end));
        self.client
            .get(&self.bucket, &self.key(key), range)
            .map_err(|e| self.err(e))
    }

    fn size(&self, key: &str) -> Result<Option<u64>, CubeError> {
        self.client
            .head(&self.bucket, &self.key(key))
            .map_err(|e| self.err(e))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), CubeError> {
        self.client
            .put(&self.bucket, &self.key(key), bytes)
            .map_err(|e| self.err(e))
    }

    fn delete(&self, key: &str) -> Result<(), CubeError> {
        self.client
            .delete(&self.bucket, &self.key(key))
            .map_err(|e| self.err(e))
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, CubeError> {
        let base = format!("{}/", self.prefix);
        let (objects, _) = self
            .client
            .list(&self.bucket, &format!("{base}{prefix}"), false)
            .map_err(|e| self.err(e))?;
        let mut out: Vec<(String, u64)> = objects
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&base).map(|k| (k.to_string(), o.size)))
            .collect();
        out.sort();
        Ok(out)
    }

    fn children(&self) -> Result<Vec<String>, CubeError> {
        let base = format!("{}/", self.prefix);
        let (_, prefixes) = self
            .client
            .list(&self.bucket, &base, true)
            .map_err(|e| self.err(e))?;
        let mut names: Vec<String> = prefixes
            .iter()
            .filter_map(|p| p.strip_prefix(&base))
            .map(|p| p.trim_end_matches('/').to_string())
            .filter(|p| !p.is_empty())
            .collect();
        names.sort();
        Ok(names)
    }

    /// One request whatever the cube's size: at most two keys are asked for.
    fn is_empty(&self) -> Result<bool, CubeError> {
        let base = format!("{}/", self.prefix);
        let listed = self
            .client
            .list_some(&self.bucket, &base, 100)
            .map_err(|e| self.err(e))?;
        Ok(listed.iter().all(|o| {
            o.key
                .strip_prefix(&base)
                .is_some_and(|k| k.starts_with(&format!("{LOCK_KEY}/")))
        }))
    }

    fn delete_folder(&self, folder: &str) -> Result<(), CubeError> {
        use rayon::prelude::*;
        let keys = self.list(&format!("{}/", folder.trim_end_matches('/')))?;
        keys.par_iter().try_for_each(|(k, _)| self.delete(k))
    }

    /// Everything but the lock tickets (the clearing writer holds one).
    fn clear(&self) -> Result<(), CubeError> {
        use rayon::prelude::*;
        let keys = self.list("")?;
        keys.par_iter()
            .filter(|(k, _)| !k.starts_with(&format!("{LOCK_KEY}/")))
            .try_for_each(|(k, _)| self.delete(k))
    }
}

/// JSON as every metadata document of a store is written: pretty, ending in a newline.
pub(crate) fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("JSON values always serialise");
    b.push(b'\n');
    b
}

/// A JSON document of a store; `None` if absent.
pub(crate) fn read_json(
    store: &dyn Store,
    key: &str,
) -> Result<Option<serde_json::Value>, CubeError> {
    match store.get(key)? {
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| CubeError::Invalid {
                path: store.path().join(key),
                message: format!("invalid JSON: {e}"),
            }),
        None => Ok(None),
    }
}

/// Lets zarrs decode arrays (sharded or not) from any [`Store`].
#[derive(Debug)]
pub(crate) struct ZarrsView(pub Arc<dyn Store>);

fn storage_err(e: CubeError) -> StorageError {
    StorageError::Other(e.to_string())
}

impl ReadableStorageTraits for ZarrsView {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let key = key.as_str().to_string();
        let Some(size) = self.0.size(&key).map_err(storage_err)? else {
            return Ok(None);
        };
        let out = byte_ranges.map(move |r| {
            let (start, end) = (r.start(size), r.end(size));
            self.0
                .get_range(&key, start, Some(end))
                .map_err(storage_err)?
                .map(zarrs::storage::Bytes::from)
                .ok_or_else(|| StorageError::Other(format!("{key} vanished while read")))
        });
        Ok(Some(Box::new(out)))
    }

    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        Ok(self
            .0
            .get(key.as_str())
            .map_err(storage_err)?
            .map(zarrs::storage::Bytes::from))
    }

    fn get_partial(
        &self,
        key: &StoreKey,
        byte_range: ByteRange,
    ) -> Result<MaybeBytes, StorageError> {
        let (start, end) = match byte_range {
            ByteRange::FromStart(s, None) => (s, None),
            ByteRange::FromStart(s, Some(len)) => (s, Some(s + len)),
            ByteRange::Suffix(_) => {
                let Some(size) = self.0.size(key.as_str()).map_err(storage_err)? else {
                    return Ok(None);
                };
                (byte_range.start(size), Some(size))
            }
        };
        Ok(self
            .0
            .get_range(key.as_str(), start, end)
            .map_err(storage_err)?
            .map(zarrs::storage::Bytes::from))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.0.size(key.as_str()).map_err(storage_err)
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}
