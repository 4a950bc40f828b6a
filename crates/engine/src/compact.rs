//! Distributed compaction: many small fragments become few large ones.
//!
//! Plan → tasks → execute → commit, with the lance crate doing the format work:
//! - **plan** (driver): `plan_compaction` against the latest version picks runs
//!   of adjacent small fragments (and fragments with many deletions);
//! - **execute** (worker): one `CompactionTask` rewrites one run of fragments
//!   into new, uncommitted data files;
//! - **commit** (driver): `commit_compaction` publishes every rewrite in one
//!   version and remaps the existing indexes onto the new row addresses, with
//!   **the same options the plan used** (lance-ray passes defaults at commit).
//!
//! Rows appended while the rewrite runs are kept: a compaction's commit and an
//! append touch different fragments, and Lance rebases one over the other.

use std::sync::Arc;
use std::time::Instant;

use lance::dataset::index::DatasetIndexRemapperOptions;
use lance::dataset::optimize::{
    commit_compaction, plan_compaction, CompactionOptions, CompactionTask, RewriteResult,
};
use lance::Dataset;
use serde::{Deserialize, Serialize};

use crate::dataset::fragments::fragment_ranges;
use crate::error::{ensure_invalid, Error, Result};
use crate::namespace::{Intent, Namespace};
use crate::progress::{note, Progress};
use crate::spine::Executor;
use crate::spine::{run_tasks, DistributedOp};
use crate::storage::{Location, VersionSpec};

/// What to compact and how; unset fields take the lance crate's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompactRequest {
    /// Fragments with fewer rows are merged with their neighbours; rewritten
    /// fragments hold about this many rows (default 1,048,576).
    pub target_rows_per_fragment: Option<usize>,
    /// Rows per row group in the rewritten files (default 1,024).
    pub max_rows_per_group: Option<usize>,
    /// Rewrite fragments whose share of deleted rows reaches the threshold so
    /// the deleted rows are gone for good (default true).
    pub materialize_deletions: Option<bool>,
    /// Share of deleted rows (0..=1) that makes a fragment worth rewriting
    /// (default 0.1).
    pub deletion_threshold: Option<f32>,
}

impl CompactRequest {
    /// The lance options this request stands for, checked.
    pub fn to_lance(&self) -> Result<CompactionOptions> {
        let mut options = CompactionOptions::default();
        if let Some(rows) = self.target_rows_per_fragment {
            ensure_invalid!(
                rows > 0,
                "--target-rows-per-fragment must be at least 1 (e.g. 1048576)"
            );
            options.target_rows_per_fragment = rows;
        }
        if let Some(rows) = self.max_rows_per_group {
            ensure_invalid!(
                rows > 0,
                "--max-rows-per-group must be at least 1 (e.g. 1024)"
            );
            options.max_rows_per_group = rows;
        }
        if let Some(on) = self.materialize_deletions {
            options.materialize_deletions = on;
        }
        if let Some(t) = self.deletion_threshold {
            ensure_invalid!(
                t.is_finite() && (0.0..=1.0).contains(&t),
                "--deletion-threshold must be a share between 0 and 1 (e.g. 0.1), got {t}"
            );
            options.materialize_deletions_threshold = t;
        }
        Ok(options)
    }
}

/// One task: rewrite one run of adjacent fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactTask {
    /// The dataset.
    pub location: Location,
    /// The lance task (fragments, read version, options).
    pub task: CompactionTask,
}

/// What one task rewrote (not yet committed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactOutput {
    /// The lance result, handed to `commit_compaction` as it is.
    pub result: RewriteResult,
    /// Live rows rewritten.
    pub rows: u64,
}

/// The rewrite as the worker knows it.
pub struct CompactOp;

impl DistributedOp for CompactOp {
    const NAME: &'static str = "compact";
    type Task = CompactTask;
    type Output = CompactOutput;

    fn label(task: &CompactTask) -> String {
        let ids: Vec<u32> = task
            .task
            .task
            .fragments
            .iter()
            .filter_map(|f| u32::try_from(f.id).ok())
            .collect();
        format!("fragments {}", fragment_ranges(&ids))
    }

    async fn execute(task: CompactTask) -> Result<CompactOutput> {
        execute(task).await
    }
}

/// The plan of a compaction.
#[derive(Debug, Clone)]
pub struct CompactPlan {
    /// The dataset.
    pub location: Location,
    /// Pinned version.
    pub read_version: u64,
    /// The options every task and the commit use.
    pub options: CompactionOptions,
    /// Fragments in the pinned version.
    pub fragments_before: usize,
    /// One task per run of fragments to rewrite (empty: nothing to do).
    pub tasks: Vec<CompactTask>,
}

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactReport {
    /// Dataset URI.
    pub uri: String,
    /// Whether anything was rewritten (false: nothing to do, no new version).
    pub compacted: bool,
    /// Rewrite tasks run.
    pub tasks: usize,
    /// Fragments before.
    pub fragments_before: usize,
    /// Fragments after (in the committed version).
    pub fragments_after: usize,
    /// Fragments replaced.
    pub fragments_removed: usize,
    /// Fragments written.
    pub fragments_added: usize,
    /// Live rows rewritten.
    pub rows_rewritten: u64,
    /// The version planned against.
    pub read_version: u64,
    /// The latest version after the command (= read_version when nothing was done).
    pub version: u64,
    /// Seconds rewriting.
    pub rewrite_seconds: f64,
    /// Seconds committing (including index remapping).
    pub commit_seconds: f64,
    /// Wall-clock seconds, plan to commit.
    pub seconds: f64,
}

/// Pin the latest version and ask the lance crate what to rewrite.
pub async fn plan(location: &Location, request: &CompactRequest) -> Result<CompactPlan> {
    let options = request.to_lance()?;
    let dataset = location.open(None).await?;
    let read_version = dataset.version().version;
    let lance_plan = plan_compaction(&dataset, &options)
        .await
        .map_err(|e| location.lance_error("plan compaction", e))?;
    let tasks = lance_plan
        .compaction_tasks()
        .map(|task| CompactTask {
            location: location.clone(),
            task,
        })
        .collect();
    Ok(CompactPlan {
        location: location.clone(),
        read_version,
        options: lance_plan.options().clone(),
        fragments_before: dataset.get_fragments().len(),
        tasks,
    })
}

/// Rewrite one run of fragments (worker side).
pub async fn execute(task: CompactTask) -> Result<CompactOutput> {
    let location = &task.location;
    let dataset = location
        .open(Some(&VersionSpec::Number(task.task.read_version)))
        .await?;
    let result = task
        .task
        .execute(&dataset)
        .await
        .map_err(|e| location.lance_error("rewrite fragments", e))?;
    let rows = result
        .new_fragments
        .iter()
        .map(|f| f.num_rows().unwrap_or(0) as u64)
        .sum();
    Ok(CompactOutput { result, rows })
}

/// Commit every rewrite in one version, remapping the indexes; returns the
/// dataset at the new version.
pub async fn commit(plan: &CompactPlan, outputs: Vec<CompactOutput>) -> Result<Dataset> {
    let location = &plan.location;
    // The latest version, not the pinned one: rows appended meanwhile are
    // rebased, not lost.
    let mut dataset = location.open(None).await?;
    let results = outputs.into_iter().map(|o| o.result).collect();
    commit_compaction(
        &mut dataset,
        results,
        Arc::new(DatasetIndexRemapperOptions::default()),
        &plan.options,
    )
    .await
    .map_err(|e| location.lance_error("commit compaction", e))?;
    Ok(dataset)
}

/// Plan, rewrite on `executor`, commit once. Nothing to do: no new version.
pub async fn compact(
    location: &Location,
    request: &CompactRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<CompactReport> {
    let started = Instant::now();
    let plan = plan(location, request).await?;
    let mut report = CompactReport {
        uri: location.uri().to_string(),
        compacted: false,
        tasks: plan.tasks.len(),
        fragments_before: plan.fragments_before,
        fragments_after: plan.fragments_before,
        fragments_removed: 0,
        fragments_added: 0,
        rows_rewritten: 0,
        read_version: plan.read_version,
        version: plan.read_version,
        rewrite_seconds: 0.0,
        commit_seconds: 0.0,
        seconds: 0.0,
    };
    if plan.tasks.is_empty() {
        note(
            progress,
            CompactOp::NAME,
            format!(
                "nothing to compact in version {} ({} fragment(s))",
                plan.read_version, plan.fragments_before
            ),
        );
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    note(
        progress,
        CompactOp::NAME,
        format!(
            "{} rewrite task(s) over {} of {} fragments (planned against version {})",
            plan.tasks.len(),
            plan.tasks
                .iter()
                .map(|t| t.task.task.fragments.len())
                .sum::<usize>(),
            plan.fragments_before,
            plan.read_version
        ),
    );
    let rewrite_started = Instant::now();
    let outputs = run_tasks::<CompactOp>(executor, &plan.tasks, progress).await?;
    report.rewrite_seconds = rewrite_started.elapsed().as_secs_f64();
    report.rows_rewritten = outputs.iter().map(|o| o.rows).sum();
    for o in &outputs {
        report.fragments_removed += o.result.metrics.fragments_removed;
        report.fragments_added += o.result.metrics.fragments_added;
    }
    let commit_started = Instant::now();
    let committed = commit(&plan, outputs).await?;
    report.commit_seconds = commit_started.elapsed().as_secs_f64();
    report.version = committed.version().version;
    report.fragments_after = committed.get_fragments().len();
    report.compacted = true;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One table's compaction in [`compact_database`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCompaction {
    /// The table's id in the namespace.
    pub table_id: Vec<String>,
    /// What compacting it did.
    pub report: CompactReport,
}

/// What [`compact_database`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseCompactReport {
    /// The namespace (`dir:ROOT`, `rest:URL`).
    pub namespace: String,
    /// The child namespace whose tables were compacted (`[]`: the root).
    pub database: Vec<String>,
    /// Every table, in listing order.
    pub tables: Vec<TableCompaction>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Compact every table the namespace lists under `database` (one level, as
/// lance-ray's `compact_database`), one after another, each distributed on
/// `executor` and committed once. The options are checked before any table
/// is touched; the first table that fails stops the run, named in the error
/// (the tables before it stay compacted: each is its own commit).
pub async fn compact_database(
    namespace: &Namespace,
    database: &[String],
    request: &CompactRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<DatabaseCompactReport> {
    let started = Instant::now();
    request.to_lance()?;
    let tables = namespace.tables(database, false).await?;
    note(
        progress,
        CompactOp::NAME,
        format!(
            "{} table(s) in namespace {}{}",
            tables.len(),
            namespace.spec(),
            if database.is_empty() {
                String::new()
            } else {
                format!(" / {}", database.join("."))
            }
        ),
    );
    let mut out = Vec::with_capacity(tables.len());
    for (done, table) in tables.iter().enumerate() {
        let compacted = async {
            let location = namespace.locate(table, Intent::Read).await?;
            compact(&location, request, executor, progress).await
        }
        .await;
        let report = compacted.map_err(|e| {
            let message = format!(
                "compacting table '{table}' ({} of {}; the {done} before it are compacted): {e}",
                done + 1,
                tables.len()
            );
            match e {
                Error::TasksFailed { .. } => Error::Storage(message),
                other => Error::from_kind(other.kind(), message),
            }
        })?;
        out.push(TableCompaction {
            table_id: table.parts().to_vec(),
            report,
        });
    }
    Ok(DatabaseCompactReport {
        namespace: namespace.spec().to_string(),
        database: database.to_vec(),
        tables: out,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_kept() {
        let request = CompactRequest {
            target_rows_per_fragment: Some(5000),
            max_rows_per_group: Some(256),
            materialize_deletions: Some(false),
            deletion_threshold: Some(0.3),
        };
        let options = request.to_lance().unwrap();
        assert_eq!(options.target_rows_per_fragment, 5000);
        assert_eq!(options.max_rows_per_group, 256);
        assert!(!options.materialize_deletions);
        assert!((options.materialize_deletions_threshold - 0.3).abs() < 1e-6);

        let zero = CompactRequest {
            target_rows_per_fragment: Some(0),
            ..Default::default()
        };
        assert!(zero
            .to_lance()
            .unwrap_err()
            .to_string()
            .contains("--target-rows-per-fragment"));
        let bad = CompactRequest {
            deletion_threshold: Some(1.5),
            ..Default::default()
        };
        assert!(bad.to_lance().is_err());
    }
}
