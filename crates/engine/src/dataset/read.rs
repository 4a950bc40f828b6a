//! Reading one pinned version as tasks: one task per group of fragments, the
//! column projection and the filter pushed down into each task's scan. This
//! is what a Ray Dataset over a Lance dataset needs (`lanceflow.read_lance`):
//! the driver plans and validates once, each read task scans its fragments.

use std::sync::Arc;

use arrow_array::{Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use lance_io::stream::RecordBatchStream as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::{Location, VersionSpec};

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    /// Only these columns (all when `None`).
    pub columns: Option<Vec<String>>,
    /// Only rows matching this SQL predicate.
    pub filter: Option<String>,
    /// Fragments per read task (at least 1).
    pub fragments_per_task: usize,
    /// Only these fragments (all when `None`), read in dataset order.
    pub fragment_ids: Option<Vec<u32>>,
    /// Add each row's address (`_rowaddr`, uint64) and fragment id
    /// (`_fragid`, uint64: the address's upper 32 bits) after the columns.
    pub with_metadata: bool,
}

impl ReadRequest {
    /// Every column and row of every fragment, `fragments_per_task` fragments a task.
    pub fn new(fragments_per_task: usize) -> Self {
        Self {
            columns: None,
            filter: None,
            fragments_per_task,
            fragment_ids: None,
            with_metadata: false,
        }
    }
}

/// Row address column lance adds on request.
pub const ROW_ADDR: &str = "_rowaddr";
/// Fragment id column a read adds with `with_metadata`.
pub const FRAGMENT_ID: &str = "_fragid";

/// One read task: a group of fragments of one pinned version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadTask {
    /// The dataset.
    pub location: Location,
    /// The pinned version every task reads.
    pub version: u64,
    /// Fragment ids, in dataset order.
    pub fragments: Vec<u32>,
    /// Live rows in these fragments (before the filter).
    pub rows: u64,
    /// Projection.
    pub columns: Option<Vec<String>>,
    /// Filter.
    pub filter: Option<String>,
    /// Add `_rowaddr` and `_fragid`.
    #[serde(default)]
    pub with_metadata: bool,
}

/// Plan a read of `at` (latest when `None`): validate the projection and the
/// filter once, then cut the fragments into groups.
pub async fn plan_read(
    location: &Location,
    at: Option<&VersionSpec>,
    request: &ReadRequest,
) -> Result<Vec<ReadTask>> {
    if request.fragments_per_task == 0 {
        return Err(Error::InvalidInput(
            "fragments per read task must be at least 1".into(),
        ));
    }
    if let Some(filter) = &request.filter {
        crate::limits::check_filter(filter)?;
    }
    let dataset = location.open(at).await?;
    for column in request.columns.iter().flatten() {
        crate::dataset::columns::require_column(&dataset, column)?;
    }
    let mut scanner = dataset.scan();
    if let Some(columns) = &request.columns {
        scanner
            .project(columns)
            .map_err(|e| Error::InvalidInput(format!("cannot read columns {columns:?}: {e}")))?;
    }
    if request.with_metadata {
        scanner.with_row_address();
    }
    if let Some(filter) = &request.filter {
        scanner
            .filter(filter)
            .map_err(|e| Error::InvalidInput(format!("bad filter '{filter}': {e}")))?;
    }
    scanner
        .create_plan()
        .await
        .map_err(|e| Error::InvalidInput(format!("cannot plan the read: {e}")))?;
    let version = dataset.version().version;
    let mut fragments: Vec<(u32, u64)> = dataset
        .get_fragments()
        .iter()
        .map(|f| {
            let meta = f.metadata();
            (meta.id as u32, meta.num_rows().unwrap_or(0) as u64)
        })
        .collect();
    if let Some(wanted) = &request.fragment_ids {
        if wanted.is_empty() {
            return Err(Error::InvalidInput(
                "the fragment list is empty; name at least one fragment, or none to read all"
                    .into(),
            ));
        }
        let present: std::collections::HashSet<u32> = fragments.iter().map(|f| f.0).collect();
        if let Some(missing) = wanted.iter().find(|id| !present.contains(id)) {
            let ids: Vec<u32> = fragments.iter().map(|f| f.0).collect();
            return Err(Error::NotFound(format!(
                "fragment {missing} is not in version {version} of {}; its fragments are {}",
                location.uri(),
                crate::dataset::fragments::fragment_ranges(&ids)
            )));
        }
        fragments.retain(|(id, _)| wanted.contains(id));
    }
    Ok(fragments
        .chunks(request.fragments_per_task)
        .map(|group| ReadTask {
            location: location.clone(),
            version,
            fragments: group.iter().map(|(id, _)| *id).collect(),
            rows: group.iter().map(|(_, rows)| rows).sum(),
            columns: request.columns.clone(),
            filter: request.filter.clone(),
            with_metadata: request.with_metadata,
        })
        .collect())
}

/// The metadata of fragments `ids` of the opened `dataset`, or a not-found
/// error naming the first id the version lacks.
pub(crate) fn fragment_metadata(
    location: &Location,
    dataset: &lance::dataset::Dataset,
    ids: &[u32],
) -> Result<Vec<lance_table::format::Fragment>> {
    ids.iter()
        .map(|id| {
            dataset
                .get_fragment(*id as usize)
                .map(|f| f.metadata().clone())
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "fragment {id} is not in version {} of {}",
                        dataset.version().version,
                        location.uri()
                    ))
                })
        })
        .collect()
}

/// Execute one read task: its fragments' rows (projected, filtered) in
/// dataset order, with the schema (also when no row matches).
pub async fn read(task: &ReadTask) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let location = &task.location;
    location.pin_memory_store().await?;
    let dataset = location
        .open(Some(&VersionSpec::Number(task.version)))
        .await?;
    let fragments = fragment_metadata(location, &dataset, &task.fragments)?;
    let mut scanner = dataset.scan();
    scanner.with_fragments(fragments);
    scanner.scan_in_order(true);
    if let Some(columns) = &task.columns {
        scanner
            .project(columns)
            .map_err(|e| location.lance_error("read", e))?;
    }
    if let Some(filter) = &task.filter {
        scanner
            .filter(filter)
            .map_err(|e| location.lance_error("read", e))?;
    }
    if task.with_metadata {
        scanner.with_row_address();
    }
    let stream = scanner
        .try_into_stream()
        .await
        .map_err(|e| location.lance_error("read", e))?;
    let schema = stream.schema();
    let batches = stream
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| location.lance_error("read", e))?;
    if !task.with_metadata {
        return Ok((schema, batches));
    }
    with_fragment_ids(schema, batches)
}

/// `_fragid` (the upper 32 bits of `_rowaddr`) after the columns read.
fn with_fragment_ids(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(FRAGMENT_ID, DataType::UInt64, true));
    let extended = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let batches = batches
        .into_iter()
        .map(|batch| {
            let addresses = batch
                .column_by_name(ROW_ADDR)
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                .ok_or_else(|| Error::Internal("the read returned no _rowaddr".into()))?;
            let fragment_ids: UInt64Array = addresses.unary(|address| address >> 32);
            let mut columns = batch.columns().to_vec();
            columns.push(Arc::new(fragment_ids));
            RecordBatch::try_new(extended.clone(), columns)
                .map_err(|e| Error::Internal(format!("add _fragid: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((extended, batches))
}
