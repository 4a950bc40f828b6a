//! The engine's operations, registered once: the only module that names
//! every operation a worker can execute.
//!
//! The spine ([`crate::spine`]) knows no operation; executors are handed
//! [`registry`] (the local executor through [`local_executor`], the Python
//! package's workers through [`execute_task`]).

use std::sync::{Arc, LazyLock};

use crate::compact::CompactOp;
use crate::embed::EmbedOp;
use crate::error::Result;
use crate::evolve::AddColumnsOp;
use crate::index::optimize::{OptimizeBuildOp, OptimizeMergeOp};
use crate::index::scalar::ScalarSegmentOp;
use crate::index::vector::train::{KMeansStepOp, PqTrainOp, SampleOp};
use crate::index::vector::VectorSegmentOp;
use crate::ingest::IngestOp;
use crate::search::distributed::VectorSearchOp;
use crate::spine::{execute_json, LocalExecutor, Registry, TaskHandler, TaskSpec};

static REGISTRY: LazyLock<Arc<Registry>> = LazyLock::new(|| {
    Arc::new(
        Registry::new()
            .register::<IngestOp>()
            .register::<EmbedOp>()
            .register::<AddColumnsOp>()
            .register::<VectorSegmentOp>()
            .register::<ScalarSegmentOp>()
            .register::<VectorSearchOp>()
            .register::<CompactOp>()
            .register::<OptimizeBuildOp>()
            .register::<OptimizeMergeOp>()
            .register::<SampleOp>()
            .register::<KMeansStepOp>()
            .register::<PqTrainOp>(),
    )
});

/// Every operation of the engine, as a task handler.
pub fn registry() -> Arc<Registry> {
    REGISTRY.clone()
}

/// Names of every operation a worker can execute.
pub fn names() -> Vec<&'static str> {
    REGISTRY.operations()
}

/// The embedded default executor: `workers` tasks at once (0: one per core)
/// in this process, running the engine's operations.
pub fn local_executor(workers: usize) -> LocalExecutor {
    LocalExecutor::new(workers, registry())
}

/// Execute one task and return its result as JSON (the worker side).
#[tracing::instrument(level = "debug", skip_all, fields(op = %spec.operation, task = spec.index))]
pub async fn execute_task(spec: &TaskSpec) -> Result<serde_json::Value> {
    REGISTRY.execute(spec).await
}

/// Execute a task given as a JSON string, returning the result as a JSON
/// string: the boundary the Python package and other processes use.
pub async fn execute_task_json(spec_json: &str) -> Result<String> {
    execute_json(REGISTRY.as_ref(), spec_json).await
}
