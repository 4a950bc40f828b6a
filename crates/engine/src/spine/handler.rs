//! The worker side: turn one [`TaskSpec`] into its result.
//!
//! An executor is given a [`TaskHandler`] and calls it for every task it
//! runs; it never names an operation. The engine's handler is a [`Registry`]
//! of operations, built once in the `operations` module (the only module that
//! names them all); tests build registries of their own test operations.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::spine::task::{DistributedOp, TaskSpec};

/// Executes serialized tasks: what every executor is given.
pub trait TaskHandler: Send + Sync {
    /// Run one task and return its result as JSON. Must not commit.
    fn execute<'a>(&'a self, spec: &'a TaskSpec) -> BoxFuture<'a, Result<serde_json::Value>>;

    /// Names of the operations this handler executes.
    fn operations(&self) -> Vec<&'static str>;
}

type Execute = for<'a> fn(&'a TaskSpec) -> BoxFuture<'a, Result<serde_json::Value>>;

/// A [`TaskHandler`] that dispatches on the operation's name.
#[derive(Default, Clone)]
pub struct Registry {
    operations: BTreeMap<&'static str, Execute>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an operation (a second registration of the same name replaces
    /// the first).
    #[must_use]
    pub fn register<O: DistributedOp>(mut self) -> Self {
        self.operations.insert(O::NAME, execute_boxed::<O>);
        self
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.operations.keys()).finish()
    }
}

impl TaskHandler for Registry {
    fn execute<'a>(&'a self, spec: &'a TaskSpec) -> BoxFuture<'a, Result<serde_json::Value>> {
        match self.operations.get(spec.operation.as_str()) {
            Some(execute) => execute(spec),
            None => Box::pin(async move {
                Err(Error::NotSupported(format!(
                    "this worker does not know the operation '{}' (known: {}); driver and \
                     worker must run the same lanceflow version",
                    spec.operation,
                    self.operations().join(", ")
                )))
            }),
        }
    }

    fn operations(&self) -> Vec<&'static str> {
        self.operations.keys().copied().collect()
    }
}

fn execute_boxed<O: DistributedOp>(spec: &TaskSpec) -> BoxFuture<'_, Result<serde_json::Value>> {
    Box::pin(execute_spec::<O>(spec))
}

/// Decode a task of operation `O`, run it and encode its output.
async fn execute_spec<O: DistributedOp>(spec: &TaskSpec) -> Result<serde_json::Value> {
    let task: O::Task = serde_json::from_value(spec.payload.clone()).map_err(|e| {
        Error::Internal(format!(
            "task {} of '{}' could not be decoded (driver and worker versions differ?): {e}",
            spec.index, spec.operation
        ))
    })?;
    let output = O::execute(task).await?;
    Ok(serde_json::to_value(output)?)
}

/// Execute a task given as a JSON string, returning the result as a JSON
/// string: the boundary other processes use.
pub async fn execute_json(handler: &dyn TaskHandler, spec_json: &str) -> Result<String> {
    let spec: TaskSpec = serde_json::from_str(spec_json)
        .map_err(|e| Error::InvalidInput(format!("not a lanceflow task: {e}")))?;
    let value = handler.execute(&spec).await?;
    Ok(serde_json::to_string(&value)?)
}
