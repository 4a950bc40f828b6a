//! Index segments as they travel and land: encoded by workers, decoded and
//! committed (merged into one physical segment, or kept apart) by the
//! driver; index-name checks shared by every index build.

use base64::Engine as _;
use lance::dataset::Dataset;
use lance::index::DatasetIndexExt;
use lance_table::format::{pb, IndexMetadata};
use prost::Message as _;

use std::time::Instant;

use crate::error::{ensure_invalid, Error, Result};
use crate::progress::Progress;
use crate::spine::{run_tasks, DistributedOp, Executor};
use crate::storage::{Location, VersionSpec};

/// A segment as a worker returns it: lance's protobuf, base64.
pub(crate) fn encode_segment(segment: &IndexMetadata) -> String {
    let bytes = pb::IndexMetadata::from(segment).encode_to_vec();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An index `name` may be (re)built on `column`: no index of that name on
/// another column, and an existing one only with `replace`.
pub(crate) async fn check_index_name(
    location: &Location,
    dataset: &Dataset,
    name: &str,
    column: &str,
    replace: bool,
) -> Result<()> {
    let existing = dataset
        .load_indices_by_name(name)
        .await
        .map_err(|e| location.lance_error("list indices", e))?;
    if let Some(first) = existing.first() {
        let on = first
            .fields
            .first()
            .and_then(|id| dataset.schema().field_by_id(*id))
            .map(|f| f.name.clone())
            .unwrap_or_default();
        if on != column {
            return Err(Error::AlreadyExists(format!(
                "an index named '{name}' already exists on column '{on}'; choose another --name"
            )));
        }
        if !replace {
            return Err(Error::AlreadyExists(format!(
                "an index named '{name}' already exists on '{column}'; pass --replace to rebuild \
                 it or choose another --name"
            )));
        }
    }
    Ok(())
}

/// Decode a segment a worker returned.
pub(crate) fn decode_segment(encoded: &str) -> Result<IndexMetadata> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| Error::Internal(format!("index segment is not base64: {e}")))?;
    let proto = pb::IndexMetadata::decode(bytes.as_slice())
        .map_err(|e| Error::Internal(format!("index segment does not decode: {e}")))?;
    IndexMetadata::try_from(proto).map_err(|e| Error::Internal(format!("index segment: {e}")))
}

/// What committing a build's segments did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The version committed.
    pub version: u64,
    /// Physical segments the index has in that version.
    pub segments: usize,
}

/// Commit the segments the workers built (`encoded`, as [`encode_segment`]
/// writes them) as index `name` on `column`, in one new version of
/// `read_version`.
///
/// Unless `keep_segments`, several segments are first merged into one
/// physical segment (`merge_existing_index_segments`, which rewrites their
/// partitions side by side): a query then probes one index instead of one per
/// segment. The merged-away sources were never in a manifest and are removed
/// after the commit. Kept segments are what a distributed search spreads over.
pub(crate) async fn commit_segments<'a>(
    location: &Location,
    read_version: u64,
    name: &str,
    column: &str,
    encoded: impl IntoIterator<Item = &'a str>,
    keep_segments: bool,
) -> Result<Committed> {
    let segments = encoded
        .into_iter()
        .map(decode_segment)
        .collect::<Result<Vec<_>>>()?;
    ensure_invalid!(!segments.is_empty(), "no index segments were built");
    let mut dataset = location
        .open(Some(&VersionSpec::Number(read_version)))
        .await?;
    let merge = !keep_segments && segments.len() > 1;
    let merged_away: Vec<_> = if merge {
        segments.iter().map(|s| s.uuid).collect()
    } else {
        Vec::new()
    };
    let segments = if merge {
        vec![dataset
            .merge_existing_index_segments(segments)
            .await
            .map_err(|e| location.lance_error("merge index segments", e))?]
    } else {
        segments
    };
    let count = segments.len();
    dataset
        .commit_existing_index_segments(name, column, segments)
        .await
        .map_err(|e| location.lance_error("commit index", e))?;
    // The index is committed: removing the merged-away sources (referenced
    // by no manifest) is best effort.
    if merge {
        match dataset.object_store(None).await {
            Ok(store) => {
                for uuid in merged_away {
                    let dir = dataset.indices_dir().join(uuid.to_string());
                    if let Err(e) = store.remove_dir_all(dir).await {
                        tracing::warn!("could not remove merged index segment {uuid}: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("could not remove the merged index segments: {e}"),
        }
    }
    Ok(Committed {
        version: dataset.version().version,
        segments: count,
    })
}

/// A segment task's output: it carries one encoded segment.
pub(crate) trait BuiltSegment {
    /// The segment, as [`encode_segment`] wrote it.
    fn segment(&self) -> &str;
}

/// What running a build's segment tasks and committing them did.
pub(crate) struct Built<T> {
    pub(crate) outputs: Vec<T>,
    pub(crate) committed: Committed,
    pub(crate) build_seconds: f64,
    pub(crate) commit_seconds: f64,
}

/// Where a build's segments land: index `name` on `column`, one new version
/// on top of `read_version`.
pub(crate) struct SegmentTarget<'a> {
    pub(crate) location: &'a Location,
    pub(crate) read_version: u64,
    pub(crate) name: &'a str,
    pub(crate) column: &'a str,
    pub(crate) keep_segments: bool,
}

impl SegmentTarget<'_> {
    /// Commit the segments of `outputs` (merged into one unless kept).
    pub(crate) async fn commit<T: BuiltSegment>(&self, outputs: &[T]) -> Result<Committed> {
        commit_segments(
            self.location,
            self.read_version,
            self.name,
            self.column,
            outputs.iter().map(BuiltSegment::segment),
            self.keep_segments,
        )
        .await
    }

    /// Run the segment tasks on `executor`, then commit what they built.
    pub(crate) async fn build<O>(
        &self,
        executor: &dyn Executor,
        tasks: &[O::Task],
        progress: &dyn Progress,
    ) -> Result<Built<O::Output>>
    where
        O: DistributedOp,
        O::Output: BuiltSegment,
    {
        let started = Instant::now();
        let outputs = run_tasks::<O>(executor, tasks, progress).await?;
        let build_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let committed = self.commit(&outputs).await?;
        Ok(Built {
            outputs,
            committed,
            build_seconds,
            commit_seconds: started.elapsed().as_secs_f64(),
        })
    }
}
