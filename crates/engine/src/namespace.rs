//! Lance namespaces: a table named by a namespace (a catalog of tables) and
//! a table id instead of a URI.
//!
//! A namespace is resolved once, on the driver, into a plain [`Location`]:
//! the table's URI and the storage options to reach it (the caller's options,
//! overridden by those the namespace vends — credential vending). Tasks carry
//! that location like any other, so workers never talk to the namespace.
//!
//! Two implementations, the ones pylance's `lance.namespace` wraps (from the
//! `lance-namespace-impls` crate):
//! - `dir`: a directory (local, `s3://`, `oss://`) whose tables are
//!   `ROOT/NAME.lance` datasets, with lance's `__manifest` table for nested
//!   namespaces. Properties: `root`, `storage.*` (the caller's storage options
//!   are passed as `storage.*` unless given).
//! - `rest`: a server speaking the Lance REST namespace spec. Properties:
//!   `uri`, `delimiter`, `header.*`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use lance_namespace::models::{
    DeclareTableRequest, DescribeTableRequest, ListNamespacesRequest, ListTablesRequest,
};
use lance_namespace::{ErrorCode, LanceNamespace, NamespaceError};
use lance_namespace_impls::ConnectBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{bail_invalid, ensure_invalid, without_source_location, Error, Result};
use crate::storage::{parse_uri, Location, StorageOptions};

/// The namespace implementations this build has.
pub const IMPLEMENTATIONS: [&str; 2] = ["dir", "rest"];

/// Most tables or child namespaces read from one listing (pages × page size).
const MAX_LISTED: usize = 1_000_000;
/// Page size asked of `list_tables` / `list_namespaces`.
const PAGE: i32 = 1000;
/// Deepest nesting of namespaces followed when listing a whole tree.
const MAX_DEPTH: usize = 16;

/// Which namespace, and how to connect to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSpec {
    implementation: String,
    properties: BTreeMap<String, String>,
}

impl NamespaceSpec {
    /// A namespace of implementation `dir` or `rest` with its connection
    /// properties (`root` for `dir`, `uri` for `rest`).
    pub fn new(implementation: &str, properties: BTreeMap<String, String>) -> Result<Self> {
        let implementation = implementation.trim().to_ascii_lowercase();
        let required = match implementation.as_str() {
            "dir" => "root",
            "rest" => "uri",
            other => bail_invalid!(
                "unknown namespace implementation '{other}'; use one of {}",
                IMPLEMENTATIONS.join(", ")
            ),
        };
        let value = properties
            .get(required)
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        ensure_invalid!(
            !value.is_empty(),
            "the '{implementation}' namespace needs the property '{required}' \
             (e.g. --namespace {implementation}:{})",
            if required == "root" {
                "/data/kb"
            } else {
                "http://127.0.0.1:2333"
            }
        );
        let mut properties = properties;
        if implementation == "dir" {
            // A relative local root is taken from the current directory, as
            // every local dataset path is.
            let (root, _) = parse_uri(&value)?;
            properties.insert("root".into(), root);
        } else {
            ensure_invalid!(
                value.starts_with("http://") || value.starts_with("https://"),
                "the rest namespace's uri '{value}' must start with http:// or https://"
            );
        }
        Ok(Self {
            implementation,
            properties,
        })
    }

    /// `IMPL:TARGET`: `dir:/data/kb`, `dir:s3://bucket/kb`,
    /// `rest:http://host:port` (the target is the `root` or the `uri`).
    pub fn parse(text: &str) -> Result<Self> {
        let Some((implementation, target)) = text.trim().split_once(':') else {
            bail_invalid!(
                "namespace '{text}' must be IMPL:TARGET, e.g. dir:/data/kb or rest:http://127.0.0.1:2333"
            );
        };
        let key = if implementation.trim().eq_ignore_ascii_case("rest") {
            "uri"
        } else {
            "root"
        };
        Self::new(
            implementation,
            BTreeMap::from([(key.to_string(), target.to_string())]),
        )
    }

    /// `dir` or `rest`.
    pub fn implementation(&self) -> &str {
        &self.implementation
    }

    /// The connection properties.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// Set a connection property (`--namespace-property key=value`).
    pub fn set_property(&mut self, key: &str, value: &str) -> Result<()> {
        let key = key.trim();
        ensure_invalid!(
            !key.is_empty(),
            "a namespace property needs a name (key=value)"
        );
        let checked = Self::new(&self.implementation, {
            let mut p = self.properties.clone();
            p.insert(key.to_string(), value.to_string());
            p
        })?;
        *self = checked;
        Ok(())
    }
}

impl fmt::Display for NamespaceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.implementation == "rest" {
            "uri"
        } else {
            "root"
        };
        let target = self.properties.get(key).map(String::as_str).unwrap_or("");
        write!(f, "{}:{target}", self.implementation)
    }
}

crate::error::from_str_by_parse!(NamespaceSpec);

/// A table's id in its namespace: the names of its parent namespaces, then
/// its own (`["docs"]`, `["team", "docs"]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableId(Vec<String>);

impl TableId {
    /// A table id from its parts (at least one, none empty).
    pub fn new(parts: Vec<String>) -> Result<Self> {
        ensure_invalid!(
            !parts.is_empty(),
            "a table id needs at least the table's name"
        );
        ensure_invalid!(
            parts.len() <= MAX_DEPTH,
            "a table id has at most {MAX_DEPTH} parts, not {}",
            parts.len()
        );
        for part in &parts {
            ensure_invalid!(
                !part.trim().is_empty(),
                "table id {parts:?} has an empty part; name each namespace and the table"
            );
        }
        Ok(Self(parts))
    }

    /// `docs` or `team.docs` (parts separated by dots).
    pub fn parse(text: &str) -> Result<Self> {
        Self::new(text.trim().split('.').map(str::to_string).collect())
    }

    /// The parts, outermost namespace first.
    pub fn parts(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

crate::error::from_str_by_parse!(TableId);

/// A table named through a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRef {
    /// The namespace.
    pub namespace: NamespaceSpec,
    /// The table in it.
    pub table: TableId,
}

/// What the caller will do with a table it names: reading needs the table to
/// exist; a write declares it in the namespace when it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Open an existing table.
    Read,
    /// Write into it (create it in the namespace when missing).
    Write,
}

/// A connected namespace.
pub struct Namespace {
    spec: NamespaceSpec,
    client: Arc<dyn LanceNamespace>,
    options: StorageOptions,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Namespace {
    /// Connect; `options` are the caller's storage options (passed to a `dir`
    /// namespace as its `storage.*` properties unless given there).
    pub async fn connect(spec: &NamespaceSpec, options: &StorageOptions) -> Result<Self> {
        let mut properties: HashMap<String, String> = spec
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if spec.implementation == "dir" {
            let root = spec
                .properties
                .get("root")
                .map(String::as_str)
                .unwrap_or("");
            // The root's own back end decides the defaults (region, endpoint).
            let resolved = Location::resolve(root, options)?;
            for (key, value) in resolved.options().to_hash_map() {
                properties.entry(format!("storage.{key}")).or_insert(value);
            }
        }
        let client = ConnectBuilder::new(spec.implementation.clone())
            .properties(properties)
            .session(crate::storage::shared_session())
            .connect()
            .await
            .map_err(|e| namespace_error(spec, "connect to the namespace", e))?;
        Ok(Self {
            spec: spec.clone(),
            client,
            options: options.clone(),
        })
    }

    /// The namespace this is connected to.
    pub fn spec(&self) -> &NamespaceSpec {
        &self.spec
    }

    /// Where `table` lives and how to reach it. With [`Intent::Write`] a
    /// table the namespace does not know is declared first.
    pub async fn locate(&self, table: &TableId, intent: Intent) -> Result<Location> {
        let described = self
            .client
            .describe_table(DescribeTableRequest {
                id: Some(table.parts().to_vec()),
                ..Default::default()
            })
            .await;
        let (location, vended, managed) = match described {
            Ok(r) => (r.location, r.storage_options, r.managed_versioning),
            Err(e) if intent == Intent::Write && code_of(&e) == Some(ErrorCode::TableNotFound) => {
                let declared = self
                    .client
                    .declare_table(DeclareTableRequest {
                        id: Some(table.parts().to_vec()),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| self.table_error(table, "declare", e))?;
                (
                    declared.location,
                    declared.storage_options,
                    declared.managed_versioning,
                )
            }
            Err(e) => return Err(self.table_error(table, "describe", e)),
        };
        if managed == Some(true) {
            return Err(Error::NotSupported(format!(
                "table '{table}' in namespace {} has its versions managed by the namespace \
                 (table_version_tracking_enabled); lanceflow commits through lance's own manifest: \
                 turn that property off for tables lanceflow writes",
                self.spec
            )));
        }
        let Some(uri) = location.filter(|l| !l.trim().is_empty()) else {
            return Err(Error::Storage(format!(
                "namespace {} gave no location for table '{table}'",
                self.spec
            )));
        };
        // The namespace's options win: it vends the credentials for the table.
        let mut options = self.options.clone();
        for (key, value) in vended.unwrap_or_default() {
            options.set(key, value);
        }
        Location::resolve(&uri, &options)
    }

    /// Every table under the namespace `parent` (`[]`: the root) and, when
    /// `recursive`, under its child namespaces, in listing order.
    pub async fn tables(&self, parent: &[String], recursive: bool) -> Result<Vec<TableId>> {
        let mut out = Vec::new();
        let mut pending = vec![parent.to_vec()];
        while let Some(namespace) = pending.pop() {
            for name in self.list(&namespace, Listing::Tables).await? {
                let mut id = namespace.clone();
                id.push(name);
                out.push(TableId::new(id)?);
                ensure_invalid!(
                    out.len() <= MAX_LISTED,
                    "namespace {} lists more than {MAX_LISTED} tables",
                    self.spec
                );
            }
            if recursive && namespace.len() < MAX_DEPTH {
                let children = match self.list(&namespace, Listing::Namespaces).await {
                    Ok(children) => children,
                    // A namespace without nesting (a plain directory) has no children.
                    Err(Error::NotSupported(_)) => Vec::new(),
                    Err(e) => return Err(e),
                };
                for child in children.into_iter().rev() {
                    let mut id = namespace.clone();
                    id.push(child);
                    pending.push(id);
                }
            }
        }
        Ok(out)
    }

    async fn list(&self, namespace: &[String], what: Listing) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = match what {
                Listing::Tables => {
                    let r = self
                        .client
                        .list_tables(ListTablesRequest {
                            id: Some(namespace.to_vec()),
                            page_token: token.clone(),
                            limit: Some(PAGE),
                            include_declared: Some(false),
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| self.listing_error(namespace, "tables", e))?;
                    (r.tables, r.page_token)
                }
                Listing::Namespaces => {
                    let r = self
                        .client
                        .list_namespaces(ListNamespacesRequest {
                            id: Some(namespace.to_vec()),
                            page_token: token.clone(),
                            limit: Some(PAGE),
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| self.listing_error(namespace, "namespaces", e))?;
                    (r.namespaces, r.page_token)
                }
            };
            let empty_page = page.is_empty();
            names.extend(page);
            ensure_invalid!(
                names.len() <= MAX_LISTED,
                "namespace {} lists more than {MAX_LISTED} entries",
                self.spec
            );
            match next.filter(|t| !t.is_empty()) {
                // A server that keeps paging without entries would loop forever.
                Some(t) if !empty_page && token.as_deref() != Some(t.as_str()) => token = Some(t),
                _ => break,
            }
        }
        Ok(names)
    }

    fn table_error(&self, table: &TableId, action: &str, err: lance::Error) -> Error {
        match code_of(&err) {
            Some(ErrorCode::TableNotFound) => Error::NotFound(format!(
                "namespace {} has no table '{table}'; list its tables, or write one there with \
                 `lanceflow ingest ... --namespace {} --table {table}`",
                self.spec, self.spec
            )),
            Some(ErrorCode::NamespaceNotFound) => Error::NotFound(format!(
                "namespace {} has no namespace for table '{table}' ({}); create the parent \
                 namespace first",
                self.spec,
                namespace_message(&err)
            )),
            _ => namespace_error(&self.spec, &format!("{action} table '{table}'"), err),
        }
    }

    fn listing_error(&self, namespace: &[String], what: &str, err: lance::Error) -> Error {
        match code_of(&err) {
            Some(ErrorCode::NamespaceNotFound) => Error::NotFound(format!(
                "namespace {} has no child namespace '{}'",
                self.spec,
                namespace.join(".")
            )),
            _ => namespace_error(&self.spec, &format!("list {what}"), err),
        }
    }
}

#[derive(Clone, Copy)]
enum Listing {
    Tables,
    Namespaces,
}

/// Resolve a table reference with the caller's storage options.
pub async fn resolve(
    table: &TableRef,
    options: &StorageOptions,
    intent: Intent,
) -> Result<Location> {
    Namespace::connect(&table.namespace, options)
        .await?
        .locate(&table.table, intent)
        .await
}

/// The namespace error code inside a lance error, when there is one.
fn code_of(err: &lance::Error) -> Option<ErrorCode> {
    match err {
        lance::Error::Namespace { source, .. } => source
            .downcast_ref::<NamespaceError>()
            .map(NamespaceError::code),
        _ => None,
    }
}

fn namespace_message(err: &lance::Error) -> String {
    match err {
        lance::Error::Namespace { source, .. } => match source.downcast_ref::<NamespaceError>() {
            Some(e) => e.message().to_string(),
            None => without_source_location(&source.to_string()),
        },
        other => without_source_location(&other.to_string()),
    }
}

/// A namespace failure as ours, by the namespace's error code.
fn namespace_error(spec: &NamespaceSpec, context: &str, err: lance::Error) -> Error {
    let message = format!("namespace {spec}: {context}: {}", namespace_message(&err));
    match code_of(&err) {
        Some(
            ErrorCode::InvalidInput
            | ErrorCode::TableSchemaValidationError
            | ErrorCode::InvalidTableState,
        ) => Error::InvalidInput(message),
        Some(
            ErrorCode::NamespaceNotFound
            | ErrorCode::TableNotFound
            | ErrorCode::TableVersionNotFound
            | ErrorCode::TableTagNotFound,
        ) => Error::NotFound(message),
        Some(ErrorCode::TableAlreadyExists | ErrorCode::NamespaceAlreadyExists) => {
            Error::AlreadyExists(message)
        }
        Some(ErrorCode::Unsupported) => Error::NotSupported(message),
        Some(ErrorCode::ConcurrentModification) => Error::CommitConflict(message),
        Some(ErrorCode::PermissionDenied | ErrorCode::Unauthenticated) => Error::InvalidInput(
            format!("{message} (check the namespace's credentials / header.* properties)"),
        ),
        Some(_) => Error::Storage(message),
        // Not a namespace error: lance's own mapping (connection failures,
        // missing buckets) knows the rest.
        None => Error::lance(context, &spec.to_string(), err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_check_their_target() {
        let dir = NamespaceSpec::parse("dir:/data/kb").unwrap();
        assert_eq!(dir.implementation(), "dir");
        assert_eq!(dir.properties()["root"], "/data/kb");
        assert_eq!(dir.to_string(), "dir:/data/kb");
        let s3 = NamespaceSpec::parse("DIR:s3://bucket/kb/").unwrap();
        assert_eq!(s3.properties()["root"], "s3://bucket/kb");
        let rest = NamespaceSpec::parse("rest:http://127.0.0.1:2333").unwrap();
        assert_eq!(rest.properties()["uri"], "http://127.0.0.1:2333");
        for bad in [
            "nocolon",
            "glue:/x",
            "dir:",
            "rest:127.0.0.1:80",
            "dir:ftp://x/y",
        ] {
            assert!(
                matches!(NamespaceSpec::parse(bad), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
        let mut spec = NamespaceSpec::parse("rest:http://h:1").unwrap();
        spec.set_property("delimiter", ".").unwrap();
        assert_eq!(spec.properties()["delimiter"], ".");
        assert!(spec.set_property("uri", "").is_err());
        assert_eq!(spec.properties()["uri"], "http://h:1");
    }

    #[test]
    fn table_ids_need_named_parts() {
        assert_eq!(TableId::parse("docs").unwrap().parts(), ["docs"]);
        assert_eq!(
            TableId::parse("team.docs").unwrap().to_string(),
            "team.docs"
        );
        for bad in ["", ".docs", "team..docs", "a."] {
            assert!(TableId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TableId::new(vec!["x".into(); MAX_DEPTH + 1]).is_err());
    }
}
