//! Versions, tags, restore, cleanup and row deletes: Lance's time travel, made visible.

use std::collections::BTreeMap;
use std::time::Duration;

use lance::dataset::cleanup::CleanupPolicyBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{bail_invalid, Error, Result};
use crate::storage::{Location, VersionSpec};

/// One version of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Version number.
    pub version: u64,
    /// Commit time (RFC 3339).
    pub committed_at: String,
    /// Tags pointing at it.
    pub tags: Vec<String>,
    /// What the commit did (Append, Delete, Rewrite = compaction, CreateIndex...).
    pub operation: String,
    /// Rows in this version (deletions excluded).
    pub rows: u64,
    /// Fragments in this version.
    pub fragments: usize,
    /// Whether it is the latest version.
    pub latest: bool,
}

/// A tag and the version it points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagInfo {
    /// Tag name.
    pub name: String,
    /// Version it points at.
    pub version: u64,
}

async fn tag_map(location: &Location, dataset: &lance::Dataset) -> Result<BTreeMap<String, u64>> {
    Ok(dataset
        .tags()
        .list()
        .await
        .map_err(|e| location.lance_error("list tags", e))?
        .into_iter()
        .map(|(name, t)| (name, t.version))
        .collect())
}

/// Every version still on storage, oldest first.
pub async fn versions(location: &Location) -> Result<Vec<VersionInfo>> {
    let dataset = location.open(None).await?;
    let tags = tag_map(location, &dataset).await?;
    let latest = dataset.version().version;
    let list = dataset
        .versions()
        .await
        .map_err(|e| location.lance_error("list versions", e))?;
    let mut out = Vec::with_capacity(list.len());
    for v in list {
        let at = location.open(Some(&VersionSpec::Number(v.version))).await?;
        let rows = at
            .count_rows(None)
            .await
            .map_err(|e| location.lance_error("count rows", e))? as u64;
        let operation = at
            .read_transaction()
            .await
            .map_err(|e| location.lance_error("read transaction", e))?
            .map(|t| t.operation.name().to_string())
            .unwrap_or_default();
        out.push(VersionInfo {
            version: v.version,
            committed_at: v.timestamp.to_rfc3339(),
            tags: tags
                .iter()
                .filter(|(_, tv)| **tv == v.version)
                .map(|(n, _)| n.clone())
                .collect(),
            operation,
            rows,
            fragments: at.get_fragments().len(),
            latest: v.version == latest,
        });
    }
    Ok(out)
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReport {
    /// Rows deleted.
    pub rows_deleted: u64,
    /// Rows left.
    pub rows: u64,
    /// The latest version afterwards.
    pub version: u64,
}

/// Delete the rows matching an SQL predicate.
pub async fn delete_rows(location: &Location, predicate: &str) -> Result<DeleteReport> {
    if predicate.trim().is_empty() {
        bail_invalid!("--where needs a predicate, e.g. \"id < 100\"");
    }
    let mut dataset = location.open(None).await?;
    let result = dataset
        .delete(predicate)
        .await
        .map_err(|e| location.lance_error(&format!("delete where {predicate}"), e))?;
    let after = &result.new_dataset;
    Ok(DeleteReport {
        rows_deleted: result.num_deleted_rows,
        rows: after
            .count_rows(None)
            .await
            .map_err(|e| location.lance_error("count rows", e))? as u64,
        version: after.version().version,
    })
}

/// All tags, by name.
pub async fn list_tags(location: &Location) -> Result<Vec<TagInfo>> {
    let dataset = location.open(None).await?;
    Ok(tag_map(location, &dataset)
        .await?
        .into_iter()
        .map(|(name, version)| TagInfo { name, version })
        .collect())
}

fn check_tag_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
        && !name.ends_with(".lock");
    if !ok {
        bail_invalid!(
            "tag name '{name}' is not allowed; use letters, digits, '-', '_' and '.' (e.g. v1.0-prod)"
        );
    }
    Ok(())
}

/// Point a new tag at `version` (latest when `None`).
pub async fn create_tag(location: &Location, name: &str, version: Option<u64>) -> Result<TagInfo> {
    check_tag_name(name)?;
    let dataset = location.open(None).await?;
    let version = version.unwrap_or(dataset.version().version);
    if tag_map(location, &dataset).await?.contains_key(name) {
        return Err(Error::AlreadyExists(format!(
            "tag '{name}' already exists; delete it first with `lanceflow tag delete {} {name}`",
            location.uri()
        )));
    }
    dataset.tags().create(name, version).await.map_err(|e| {
        location.lance_error(&format!("create tag '{name}' at version {version}"), e)
    })?;
    Ok(TagInfo {
        name: name.to_string(),
        version,
    })
}

/// Remove a tag (the version stays until cleanup removes it).
pub async fn delete_tag(location: &Location, name: &str) -> Result<TagInfo> {
    let dataset = location.open(None).await?;
    let Some(version) = tag_map(location, &dataset).await?.get(name).copied() else {
        return Err(Error::NotFound(format!(
            "no tag '{name}' on '{}'; list tags with `lanceflow tag list {}`",
            location.uri(),
            location.uri()
        )));
    };
    dataset
        .tags()
        .delete(name)
        .await
        .map_err(|e| location.lance_error(&format!("delete tag '{name}'"), e))?;
    Ok(TagInfo {
        name: name.to_string(),
        version,
    })
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The version whose contents were restored.
    pub restored: u64,
    /// The new latest version (same contents as `restored`).
    pub new_version: u64,
}

/// Make the contents of an old version the latest version (a new commit;
/// history is kept).
pub async fn restore(location: &Location, at: &VersionSpec) -> Result<RestoreReport> {
    let mut dataset = location.open(Some(at)).await?;
    let restored = dataset.version().version;
    dataset
        .restore()
        .await
        .map_err(|e| location.lance_error(&format!("restore version {restored}"), e))?;
    Ok(RestoreReport {
        restored,
        new_version: dataset.version().version,
    })
}

/// What a cleanup removed (or would remove, with `dry_run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// Old versions removed.
    pub old_versions: u64,
    /// Bytes freed.
    pub bytes_removed: u64,
    /// Data files removed.
    pub data_files_removed: u64,
    /// Index files removed.
    pub index_files_removed: u64,
    /// Files that could not be deleted (found again by the next cleanup).
    pub failed_deletes: u64,
}

/// The oldest age a cleanup accepts: 1000 years of 365.25 days (humantime's
/// `y`). Older ages ask for the same thing, and unbounded ones overflow the
/// clock arithmetic.
pub const MAX_AGE: Duration = Duration::from_secs(1000 * 31_557_600);

/// Parse an age such as `7d`, `12h`, `30m` or `0s` (at most 1000y).
pub fn parse_age(text: &str) -> Result<Duration> {
    let age = humantime::parse_duration(text.trim()).map_err(|e| {
        Error::InvalidInput(format!(
            "'{text}' is not an age ({e}); write e.g. 7d, 12h, 30m or 0s"
        ))
    })?;
    if age > MAX_AGE {
        return Err(Error::InvalidInput(format!(
            "the age '{text}' is more than 1000 years; write at most 1000y"
        )));
    }
    Ok(age)
}

/// Remove versions older than `older_than` and the files only they used.
/// Tagged versions and the latest version are always kept.
pub async fn cleanup(
    location: &Location,
    older_than: Duration,
    dry_run: bool,
) -> Result<CleanupReport> {
    let dataset = location.open(None).await?;
    let before = chrono::Duration::from_std(older_than.min(MAX_AGE))
        .ok()
        .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
        .ok_or_else(|| Error::InvalidInput("the age is more than 1000 years".into()))?;
    let policy = CleanupPolicyBuilder::default()
        .before_timestamp(before)
        .error_if_tagged_old_versions(false)
        .build();
    let operation = dataset.cleanup(policy);
    let stats = if dry_run {
        operation
            .explain()
            .await
            .map_err(|e| location.lance_error("plan cleanup", e))?
            .stats
    } else {
        operation
            .execute()
            .await
            .map_err(|e| location.lance_error("cleanup", e))?
    };
    Ok(CleanupReport {
        dry_run,
        old_versions: stats.old_versions,
        bytes_removed: stats.bytes_removed,
        data_files_removed: stats.data_files_removed,
        index_files_removed: stats.index_files_removed,
        failed_deletes: stats.failed_deletes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_age("0s").unwrap(), Duration::ZERO);
        assert!(parse_age("soon").unwrap_err().to_string().contains("7d"));
        assert_eq!(parse_age("1000y").unwrap(), MAX_AGE);
        let too_old = parse_age("1000000y").unwrap_err().to_string();
        assert!(too_old.contains("at most 1000y"), "{too_old}");
    }

    #[test]
    fn tag_names_are_checked() {
        assert!(check_tag_name("v1.0-prod").is_ok());
        assert!(check_tag_name("bad name").is_err());
        assert!(check_tag_name("").is_err());
    }
}
