//! Where datasets live: URI validation, storage options and their sources.
//!
//! Storage options are merged from, lowest precedence first: built-in defaults
//! for long jobs on object storage, the usual environment variables, the
//! config file, then `--storage-option key=value`. The merged options travel
//! inside tasks (a worker on another machine needs them), so their `Debug`
//! and [`StorageOptions::redacted`] forms hide every secret.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use lance::dataset::builder::DatasetBuilder;
use lance::dataset::Dataset;
use lance::io::{ObjectStore, ObjectStoreParams, StorageOptionsAccessor};
use lance::session::Session;
use serde::{Deserialize, Serialize};

use crate::error::{bail_invalid, Error, Result};

/// The storage back ends lanceflow speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// A path on the local file system (`/data/kb` or `file:///data/kb`).
    Local,
    /// Amazon S3 or any S3-compatible server (`s3://bucket/path`).
    S3,
    /// Alibaba Cloud OSS (`oss://bucket/path`).
    Oss,
    /// An in-process store, gone when the process exits (`memory://name`).
    Memory,
}

impl Scheme {
    /// Whether this is remote object storage (where retries and timeouts matter).
    pub fn is_object_store(self) -> bool {
        matches!(self, Scheme::S3 | Scheme::Oss)
    }
}

/// Environment variables read for each scheme, and the option each becomes.
const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
    ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    ("AWS_SESSION_TOKEN", "aws_session_token"),
    ("AWS_ENDPOINT_URL", "aws_endpoint"),
    ("AWS_ENDPOINT", "aws_endpoint"),
    ("AWS_DEFAULT_REGION", "aws_region"),
    ("AWS_REGION", "aws_region"),
];
const OSS_ENV: &[(&str, &str)] = &[
    ("OSS_ENDPOINT", "oss_endpoint"),
    ("OSS_ACCESS_KEY_ID", "oss_access_key_id"),
    ("OSS_ACCESS_KEY_SECRET", "oss_secret_access_key"),
    ("OSS_SECURITY_TOKEN", "oss_security_token"),
    ("OSS_REGION", "oss_region"),
];

/// Defaults for long jobs on object storage (the OSS guide's advice): a slow
/// or flaky store delays a job instead of failing it.
pub const OBJECT_STORE_DEFAULTS: &[(&str, &str)] = &[
    ("timeout", "120s"),
    ("connect_timeout", "10s"),
    ("client_max_retries", "15"),
];

/// Friendlier names accepted for object_store's keys.
const ALIASES: &[(&str, &str)] = &[("request_timeout", "timeout")];

/// Key-value options for the object store (credentials, endpoint, timeouts).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StorageOptions(BTreeMap<String, String>);

impl StorageOptions {
    /// An empty set of options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set one option (aliases such as `request_timeout` are normalised).
    pub fn set(&mut self, key: impl AsRef<str>, value: impl Into<String>) {
        let key = normalise_key(key.as_ref());
        self.0.insert(key, value.into());
    }

    /// Parse `key=value`, as given to `--storage-option`.
    pub fn set_pair(&mut self, pair: &str) -> Result<()> {
        let Some((key, value)) = pair.split_once('=') else {
            bail_invalid!(
                "storage option '{}' is not key=value; write e.g. --storage-option aws_region=us-east-1",
                redact_pair(pair)
            );
        };
        if key.trim().is_empty() {
            bail_invalid!(
                "storage option has an empty key; write e.g. --storage-option aws_region=us-east-1"
            );
        }
        self.set(key.trim(), value.trim());
        Ok(())
    }

    /// Options taken from the environment variables that apply to `scheme`.
    pub fn from_env(scheme: Scheme) -> Self {
        Self::from_env_with(scheme, |k| std::env::var(k).ok())
    }

    /// [`StorageOptions::from_env`] with an injected environment (for tests).
    pub fn from_env_with(scheme: Scheme, env: impl Fn(&str) -> Option<String>) -> Self {
        let table = match scheme {
            Scheme::S3 => AWS_ENV,
            Scheme::Oss => OSS_ENV,
            Scheme::Local | Scheme::Memory => &[],
        };
        let mut out = Self::new();
        for (var, key) in table {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                out.set(key, value);
            }
        }
        out
    }

    /// Overlay `other` on top of `self` (other wins).
    pub fn merge(&mut self, other: &StorageOptions) {
        for (k, v) in &other.0 {
            self.0.insert(k.clone(), v.clone());
        }
    }

    /// Look an option up.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every option, by key (secrets included: hand them only to code that
    /// opens the store, never to output).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The options with every secret value replaced by `****`.
    pub fn redacted(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) {
                    "****".to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect()
    }

    /// Every non-empty secret value (used to scrub messages from dependencies).
    pub(crate) fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|(k, v)| is_secret_key(k) && v.len() >= 4)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn to_hash_map(&self) -> HashMap<String, String> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

fn normalise_key(key: &str) -> String {
    let lower = key.trim().to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map(|(_, canonical)| canonical.to_string())
        .unwrap_or(lower)
}

/// Whether an option's value must never be shown.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "access_key_id",
        "credential",
        "session",
        "sas",
    ]
    .iter()
    .any(|needle| k.contains(needle))
        || k.ends_with("_key")
        || k == "key"
}

fn redact_pair(pair: &str) -> String {
    match pair.split_once('=') {
        Some((k, _)) if is_secret_key(k) => format!("{k}=****"),
        _ => pair.to_string(),
    }
}

/// A validated dataset location: URI, back end and the storage options to reach it.
///
/// This is what tasks carry so that any worker can open the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    uri: String,
    scheme: Scheme,
    options: StorageOptions,
}

impl Location {
    /// Validate `uri` and attach the options that apply to it: defaults for
    /// object stores, then `env`, then `explicit` (config file and command line,
    /// already merged by the caller).
    pub fn resolve(uri: &str, explicit: &StorageOptions) -> Result<Self> {
        Self::resolve_with_env(uri, explicit, |k| std::env::var(k).ok())
    }

    /// [`Location::resolve`] with an injected environment.
    pub fn resolve_with_env(
        uri: &str,
        explicit: &StorageOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let (uri, scheme) = parse_uri(uri)?;
        let mut options = StorageOptions::new();
        if scheme.is_object_store() {
            for (k, v) in OBJECT_STORE_DEFAULTS {
                options.set(k, *v);
            }
        }
        options.merge(&StorageOptions::from_env_with(scheme, env));
        options.merge(explicit);
        if scheme == Scheme::S3 {
            // A plain-http endpoint (a local MinIO or moto) needs allow_http.
            let plain_http = options
                .get("aws_endpoint")
                .is_some_and(|e| e.starts_with("http://"));
            if plain_http
                && options.get("aws_allow_http").is_none()
                && options.get("allow_http").is_none()
            {
                options.set("allow_http", "true");
            }
        }
        if scheme == Scheme::Oss
            && options.get("oss_endpoint").is_none()
            && options.get("endpoint").is_none()
        {
            bail_invalid!(
                "'{uri}' needs an OSS endpoint: set OSS_ENDPOINT (e.g. https://oss-cn-hangzhou.aliyuncs.com) \
                 or pass --storage-option oss_endpoint=..."
            );
        }
        Ok(Self {
            uri,
            scheme,
            options,
        })
    }

    /// Build a location without environment or defaults (tests, workers).
    pub fn from_parts(uri: &str, options: StorageOptions) -> Result<Self> {
        let (uri, scheme) = parse_uri(uri)?;
        Ok(Self {
            uri,
            scheme,
            options,
        })
    }

    /// The normalised URI (local paths are made absolute).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The back end.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The storage options (print only [`StorageOptions::redacted`]).
    pub fn options(&self) -> &StorageOptions {
        &self.options
    }

    /// Object store parameters for lance.
    pub fn store_params(&self) -> ObjectStoreParams {
        if self.options.is_empty() {
            // Equal params let the session's store registry reuse one store.
            return ObjectStoreParams::default();
        }
        ObjectStoreParams {
            storage_options_accessor: Some(Arc::new(StorageOptionsAccessor::with_static_options(
                self.options.to_hash_map(),
            ))),
            ..Default::default()
        }
    }

    /// The process-wide lance session (caches, object store registry).
    ///
    /// Every open, write and commit in this process goes through it, so
    /// caches are shared and an in-memory store lives as long as the process.
    pub fn session(&self) -> Arc<Session> {
        shared_session()
    }

    /// The dataset's object store and the directory `rel` (`a/b/c`) under
    /// the dataset, for lanceflow's own files (checkpoints, training shards);
    /// the dataset itself need not exist yet. `context` names the step in errors.
    pub(crate) async fn store_dir(
        &self,
        rel: &str,
        context: &str,
    ) -> Result<(Arc<ObjectStore>, object_store::path::Path)> {
        self.pin_memory_store().await?;
        let (store, mut dir) = ObjectStore::from_uri_and_params(
            self.session().store_registry(),
            self.uri(),
            &self.store_params(),
        )
        .await
        .map_err(|e| self.lance_error(context, e))?;
        for part in rel.split('/') {
            dir = dir.join(part);
        }
        Ok((store, dir))
    }

    /// Keep a `memory://` store alive for the life of the process: lance's
    /// registry holds stores weakly, and the plan, its tasks and the commit
    /// each open the store anew.
    pub(crate) async fn pin_memory_store(&self) -> Result<()> {
        if self.scheme != Scheme::Memory {
            return Ok(());
        }
        static PINNED: OnceLock<Mutex<HashMap<String, Arc<ObjectStore>>>> = OnceLock::new();
        let pinned = PINNED.get_or_init(Default::default);
        let known = pinned
            .lock()
            .map(|m| m.contains_key(&self.uri))
            .unwrap_or(false);
        if known {
            return Ok(());
        }
        let (store, _) = ObjectStore::from_uri_and_params(
            self.session().store_registry(),
            &self.uri,
            &self.store_params(),
        )
        .await
        .map_err(|e| self.lance_error("open in-memory store", e))?;
        if let Ok(mut m) = pinned.lock() {
            m.entry(self.uri.clone()).or_insert(store);
        }
        Ok(())
    }

    /// Remove secret values from a message produced by a dependency.
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for secret in self.options.secret_values() {
            out = out.replace(secret, "****");
        }
        out
    }

    /// Map a lance error that happened during `context` into ours, scrubbed.
    pub(crate) fn lance_error(&self, context: &str, err: lance::Error) -> Error {
        match Error::lance(context, &self.uri, err) {
            Error::InvalidInput(m) => Error::InvalidInput(self.scrub(&m)),
            Error::NotFound(m) => Error::NotFound(self.scrub(&m)),
            Error::AlreadyExists(m) => Error::AlreadyExists(self.scrub(&m)),
            Error::NotSupported(m) => Error::NotSupported(self.scrub(&m)),
            Error::CommitConflict(m) => Error::CommitConflict(self.scrub(&m)),
            Error::Storage(m) => Error::Storage(self.scrub(&m)),
            Error::Internal(m) => Error::Internal(self.scrub(&m)),
            other @ Error::TasksFailed { .. } => other,
        }
    }

    /// A dataset builder with this location's storage options.
    pub fn builder(&self) -> DatasetBuilder {
        let builder = DatasetBuilder::from_uri(&self.uri).with_session(self.session());
        if self.options.is_empty() {
            builder
        } else {
            builder.with_storage_options(self.options.to_hash_map())
        }
    }

    /// Open the dataset at the latest version, or at `at`.
    #[tracing::instrument(level = "debug", skip_all, fields(uri = %self.uri))]
    pub async fn open(&self, at: Option<&VersionSpec>) -> Result<Dataset> {
        self.pin_memory_store().await?;
        let builder = match at {
            None => self.builder(),
            Some(VersionSpec::Number(v)) => self.builder().with_version(*v),
            Some(VersionSpec::Tag(t)) => self.builder().with_tag(t),
        };
        match builder.load().await {
            Ok(ds) => Ok(ds),
            Err(e) => match (self.lance_error("open dataset", e), at) {
                // Lance says "dataset not found" for a missing version: say which.
                (Error::NotFound(_), Some(spec)) if self.builder().load().await.is_ok() => {
                    let what = match spec {
                        VersionSpec::Number(v) => format!("version {v}"),
                        VersionSpec::Tag(t) => format!("tag '{t}'"),
                    };
                    Err(Error::NotFound(format!(
                        "'{}' has no {what}; list versions with `lanceflow versions {}` and tags \
                         with `lanceflow tag list {}`",
                        self.uri, self.uri, self.uri
                    )))
                }
                (err, _) => Err(err),
            },
        }
    }

    /// Open the dataset, or `None` when there is none at this URI yet.
    pub async fn open_if_exists(&self) -> Result<Option<Dataset>> {
        match self.open(None).await {
            Ok(ds) => Ok(Some(ds)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

static SESSION: OnceLock<Arc<Session>> = OnceLock::new();

pub(crate) fn shared_session() -> Arc<Session> {
    SESSION.get_or_init(|| Arc::new(Session::default())).clone()
}

/// Size the process-wide index cache (bytes; lance's default is 6 GiB).
/// Call before the first dataset is opened: the session is created once.
pub fn configure_index_cache(bytes: usize) -> Result<()> {
    if bytes == 0 {
        return Err(Error::InvalidInput(
            "the index cache size must be at least 1 byte (e.g. --cache-size 2GiB)".into(),
        ));
    }
    let mut created = false;
    SESSION.get_or_init(|| {
        created = true;
        Arc::new(Session::new(
            bytes,
            lance::dataset::DEFAULT_METADATA_CACHE_SIZE,
            Arc::new(lance::io::ObjectStoreRegistry::default()),
        ))
    });
    if created {
        Ok(())
    } else {
        Err(Error::Internal(
            "the index cache was sized after the first dataset was opened".into(),
        ))
    }
}

/// A version to read: a number or a tag (time travel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionSpec {
    /// A version number.
    Number(u64),
    /// A tag name.
    Tag(String),
}

/// Validate a dataset URI and tell its scheme; local paths become absolute.
pub fn parse_uri(uri: &str) -> Result<(String, Scheme)> {
    let uri = uri.trim();
    if uri.is_empty() {
        bail_invalid!("the dataset URI is empty; give a local path or s3://bucket/path, oss://bucket/path, memory://name");
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Ok((absolute_local(uri)?, Scheme::Local));
    };
    let scheme_lc = scheme.to_ascii_lowercase();
    let kind = match scheme_lc.as_str() {
        "file" => return Ok((absolute_local(rest)?, Scheme::Local)),
        "s3" | "s3a" => Scheme::S3,
        "oss" => Scheme::Oss,
        "memory" => Scheme::Memory,
        _ => bail_invalid!(
            "unsupported URI scheme '{scheme}' in '{uri}'; use a local path, file://, s3://bucket/path, \
             oss://bucket/path or memory://name"
        ),
    };
    if kind != Scheme::Memory {
        let bucket = rest.split('/').next().unwrap_or("");
        if bucket.is_empty() {
            bail_invalid!("'{uri}' names no bucket; write {scheme_lc}://BUCKET/path");
        }
    }
    let normalised = if scheme_lc == "s3a" {
        format!("s3://{rest}")
    } else {
        format!("{scheme_lc}://{rest}")
    };
    Ok((normalised.trim_end_matches('/').to_string(), kind))
}

fn absolute_local(path: &str) -> Result<String> {
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::Storage(format!("cannot resolve the current directory: {e}")))?
            .join(p)
    };
    let text = abs.to_string_lossy().to_string();
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn parses_schemes() {
        assert_eq!(
            parse_uri("s3://b/p/").unwrap(),
            ("s3://b/p".into(), Scheme::S3)
        );
        assert_eq!(parse_uri("oss://b/p").unwrap().1, Scheme::Oss);
        assert_eq!(parse_uri("memory://x").unwrap().1, Scheme::Memory);
        assert_eq!(
            parse_uri("file:///tmp/x").unwrap(),
            ("/tmp/x".into(), Scheme::Local)
        );
        let (abs, scheme) = parse_uri("rel/dir").unwrap();
        assert_eq!(scheme, Scheme::Local);
        assert!(abs.starts_with('/') && abs.ends_with("rel/dir"));
    }

    #[test]
    fn unknown_scheme_names_the_fix() {
        let err = parse_uri("ftp://host/x").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidInput(_)));
        assert!(msg.contains("ftp") && msg.contains("s3://"), "{msg}");
        assert!(parse_uri("s3:///nobucket").is_err());
    }

    #[test]
    fn precedence_defaults_env_explicit() {
        let mut explicit = StorageOptions::new();
        explicit.set("aws_region", "eu-west-1");
        explicit.set("request_timeout", "300s");
        let env = env_of(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_SECRET_ACCESS_KEY", "supersecretvalue"),
            ("OSS_ENDPOINT", "ignored-for-s3"),
        ]);
        let loc = Location::resolve_with_env("s3://bucket/kb", &explicit, env).unwrap();
        let o = loc.options();
        assert_eq!(o.get("aws_region"), Some("eu-west-1"));
        assert_eq!(o.get("timeout"), Some("300s"));
        assert_eq!(o.get("connect_timeout"), Some("10s"));
        assert_eq!(o.get("client_max_retries"), Some("15"));
        assert_eq!(o.get("aws_endpoint"), Some("http://127.0.0.1:9000"));
        assert_eq!(o.get("allow_http"), Some("true"));
        assert_eq!(o.get("oss_endpoint"), None);
    }

    #[test]
    fn local_paths_get_no_object_store_defaults() {
        let loc = Location::resolve_with_env("/tmp/kb", &StorageOptions::new(), |_| None).unwrap();
        assert!(loc.options().is_empty());
    }

    #[test]
    fn oss_needs_an_endpoint() {
        let err =
            Location::resolve_with_env("oss://b/kb", &StorageOptions::new(), |_| None).unwrap_err();
        assert!(err.to_string().contains("OSS_ENDPOINT"));
        let env = env_of(&[
            ("OSS_ENDPOINT", "https://oss-cn-hangzhou.aliyuncs.com"),
            ("OSS_ACCESS_KEY_SECRET", "topsecret"),
        ]);
        let loc = Location::resolve_with_env("oss://b/kb", &StorageOptions::new(), env).unwrap();
        assert_eq!(
            loc.options().get("oss_secret_access_key"),
            Some("topsecret")
        );
    }

    #[test]
    fn secrets_never_print() {
        let mut o = StorageOptions::new();
        o.set("aws_secret_access_key", "hunter2hunter2");
        o.set("aws_access_key_id", "AKIAEXAMPLE");
        o.set("aws_session_token", "tok-123456");
        o.set("oss_secret_access_key", "oss-secret");
        o.set("aws_region", "us-east-1");
        let shown = format!("{o:?} {:?}", o.redacted());
        for secret in ["hunter2hunter2", "AKIAEXAMPLE", "tok-123456", "oss-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("us-east-1"));
        let loc = Location::from_parts("s3://b/x", o).unwrap();
        assert_eq!(
            loc.scrub("failed with key hunter2hunter2"),
            "failed with key ****"
        );
        assert!(!format!("{loc:?}").contains("hunter2"));
    }

    #[test]
    fn bad_pairs_are_rejected_without_leaking() {
        let mut o = StorageOptions::new();
        assert!(o.set_pair("aws_region").is_err());
        assert!(o.set_pair("=x").is_err());
        o.set_pair("aws_region=us-east-1").unwrap();
        assert_eq!(o.get("aws_region"), Some("us-east-1"));
        assert_eq!(
            redact_pair("aws_secret_access_key=abc"),
            "aws_secret_access_key=****"
        );
    }
}
