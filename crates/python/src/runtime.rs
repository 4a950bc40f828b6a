//! One async runtime per process, and blocking on it with the GIL released.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::InternalError;

/// The runtime of this process. A child created by `fork` inherits the
/// parent's runtime object but none of its threads, so it gets a new one
/// (the inherited one is leaked: dropping it would join threads that do not
/// exist in the child).
fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);
    let mut guard = RUNTIME
        .lock()
        .map_err(|_| InternalError::new_err("runtime lock poisoned"))?;
    let pid = std::process::id();
    if let Some((owner, rt)) = guard.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("lanceflow")
            .build()
            .map_err(|e| InternalError::new_err(format!("cannot start the async runtime: {e}")))?,
    );
    if let Some(inherited) = guard.replace((pid, rt.clone())) {
        std::mem::forget(inherited);
    }
    Ok(rt)
}

/// Run `work` on the runtime with the GIL released, checking for Ctrl-C
/// every 100 ms: a pending KeyboardInterrupt cancels the work (dropping its
/// future aborts its tasks; nothing is committed) and is raised.
pub(crate) fn block_on_interruptible<F, Fut, T>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = T>,
    T: Send,
{
    let rt = runtime()?;
    py.detach(move || {
        rt.block_on(async move {
            let fut = work();
            tokio::pin!(fut);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    out = &mut fut => return Ok(out),
                    _ = tick.tick() => {
                        Python::attach(|py| py.check_signals())?;
                    }
                }
            }
        })
    })
}

/// [`block_on_interruptible`] for engine work: its error becomes the
/// exception of its kind.
pub(crate) fn run<F, Fut, T>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = lanceflow::Result<T>>,
    T: Send,
{
    block_on_interruptible(py, work)?.map_err(crate::errors::to_py_err)
}
