//! `info`: what a dataset holds at one version.

use std::sync::Arc;

use arrow_schema::Schema as ArrowSchema;
use lance::dataset::statistics::DatasetStatisticsExt;
use lance::index::DatasetIndexExt;
use lance::Dataset;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::Result;
use crate::storage::{Location, VersionSpec};

/// One column of the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Arrow type, as arrow prints it.
    pub data_type: String,
    /// Whether nulls are allowed.
    pub nullable: bool,
    /// Bytes on disk (compressed), when the file format records it.
    pub bytes_on_disk: u64,
}

/// One index (all its segments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// Index name.
    pub name: String,
    /// Indexed columns.
    pub columns: Vec<String>,
    /// Index type (`IVF_PQ`, `BTREE`, `INVERTED`...).
    pub index_type: String,
    /// Number of segments.
    pub segments: usize,
    /// Rows covered (approximate, may include deleted rows).
    pub rows_indexed: u64,
    /// Fragments not covered by any segment (searched by flat scan).
    pub unindexed_fragments: usize,
}

/// What `lanceflow info` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Dataset URI.
    pub uri: String,
    /// The version described.
    pub version: u64,
    /// The latest version of the dataset.
    pub latest_version: u64,
    /// When the described version was committed (RFC 3339).
    pub committed_at: String,
    /// Rows (deletions excluded).
    pub rows: u64,
    /// Fragments.
    pub fragments: usize,
    /// Bytes of column data on disk.
    pub size_bytes: u64,
    /// Columns.
    pub schema: Vec<ColumnInfo>,
    /// Indexes.
    pub indices: Vec<IndexInfo>,
    /// Tags pointing at the described version.
    pub tags: Vec<String>,
    /// Storage options in effect, secrets shown as `****`.
    pub storage_options: BTreeMap<String, String>,
}

/// Describe the dataset at `at` (latest when `None`).
pub async fn info(location: &Location, at: Option<&VersionSpec>) -> Result<DatasetInfo> {
    let dataset = Arc::new(location.open(at).await?);
    let err = |ctx: &str| {
        let ctx = ctx.to_string();
        move |e| location.lance_error(&ctx, e)
    };
    let rows = dataset.count_rows(None).await.map_err(err("count rows"))? as u64;
    let latest_version = dataset
        .latest_version_id()
        .await
        .map_err(err("read latest version"))?;
    let stats = dataset
        .calculate_data_stats()
        .await
        .map_err(err("compute sizes"))?;
    let lance_schema = dataset.schema();
    let arrow = ArrowSchema::from(lance_schema);
    let mut schema = Vec::with_capacity(arrow.fields().len());
    for field in arrow.fields() {
        let bytes = lance_schema
            .field(field.name())
            .map(|f| {
                let mut ids = Vec::new();
                collect_field_ids(f, &mut ids);
                stats
                    .fields
                    .iter()
                    .filter(|s| ids.contains(&(s.id as i32)))
                    .map(|s| s.bytes_on_disk)
                    .sum()
            })
            .unwrap_or(0);
        schema.push(ColumnInfo {
            name: field.name().clone(),
            data_type: field.data_type().to_string(),
            nullable: field.is_nullable(),
            bytes_on_disk: bytes,
        });
    }
    let size_bytes = stats.fields.iter().map(|f| f.bytes_on_disk).sum();

    let indices = index_infos(location, &dataset).await?;

    let version = dataset.version();
    let tags = dataset
        .tags()
        .list()
        .await
        .map_err(err("list tags"))?
        .into_iter()
        .filter(|(_, t)| t.version == version.version)
        .map(|(name, _)| name)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(DatasetInfo {
        uri: location.uri().to_string(),
        version: version.version,
        latest_version,
        committed_at: version.timestamp.to_rfc3339(),
        rows,
        fragments: dataset.fragments().len(),
        size_bytes,
        schema,
        indices,
        tags,
        storage_options: location.options().redacted(),
    })
}

fn collect_field_ids(field: &lance::datatypes::Field, out: &mut Vec<i32>) {
    out.push(field.id);
    for child in &field.children {
        collect_field_ids(child, out);
    }
}

/// Every user index of the opened dataset version, by name.
pub(crate) async fn index_infos(location: &Location, dataset: &Dataset) -> Result<Vec<IndexInfo>> {
    let lance_schema = dataset.schema();
    let mut indices = Vec::new();
    let fragment_ids: Vec<u64> = dataset.fragments().iter().map(|f| f.id).collect();
    for desc in dataset
        .describe_indices(None)
        .await
        .map_err(|e| location.lance_error("list indices", e))?
    {
        let columns = desc
            .field_ids()
            .iter()
            .filter_map(|id| lance_schema.field_by_id(*id as i32).map(|f| f.name.clone()))
            .collect();
        let covered = |frag: u64| {
            desc.segments().iter().any(|s| {
                s.fragment_bitmap
                    .as_ref()
                    .is_some_and(|b| u32::try_from(frag).is_ok_and(|f| b.contains(f)))
            })
        };
        indices.push(IndexInfo {
            name: desc.name().to_string(),
            columns,
            index_type: desc.index_type().to_string(),
            segments: desc.segments().len(),
            rows_indexed: desc.rows_indexed(),
            unindexed_fragments: fragment_ids.iter().filter(|f| !covered(**f)).count(),
        });
    }
    indices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(indices)
}
