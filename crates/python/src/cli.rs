//! `python -m lanceflow`: the whole command line in-process, with the Python
//! executor (Ray) injected for `--executor ray`. The Python API does not go
//! through here: it calls the engine's typed functions ([`crate::api`]).

use pyo3::prelude::*;

use crate::errors::{error_of_kind, InvalidInputError};
use crate::executor::PyExecutorFactory;
use crate::runtime::block_on_interruptible;

/// The Python exception for a failed command (argument and I/O errors of the
/// CLI layer are the user's to fix: invalid input).
fn command_error(err: &anyhow::Error) -> PyErr {
    let message = format!("{err:#}");
    match lanceflow_cli::engine_error(err) {
        Some(e) => error_of_kind(e.kind(), message),
        None => InvalidInputError::new_err(message),
    }
}

/// Run a `lanceflow` command line in this process.
///
/// `argv[0]` is the program name. `executor_factory(address, workers)` builds
/// the executor for `--executor ray`. With `capture`, the command's output is
/// returned as a string and a failure raises the exception of its error kind;
/// without, output goes to stdout, errors to stderr, and the exit code is
/// returned (what `python -m lanceflow` does).
#[pyfunction]
#[pyo3(signature = (argv, executor_factory=None, capture=true))]
pub(crate) fn run_cli(
    py: Python<'_>,
    argv: Vec<String>,
    executor_factory: Option<Py<PyAny>>,
    capture: bool,
) -> PyResult<(u8, String)> {
    let cli = match lanceflow_cli::parse(&argv) {
        Ok(cli) => cli,
        Err(e) if e.exit_code() == 0 => return Ok((0, e.render().to_string())),
        Err(e) if capture => return Err(InvalidInputError::new_err(e.render().to_string())),
        Err(e) => {
            let _ = e.print();
            return Ok((e.exit_code().clamp(0, 255) as u8, String::new()));
        }
    };
    let factory = executor_factory.map(PyExecutorFactory);
    let result = block_on_interruptible(py, move || async move {
        let remote = factory
            .as_ref()
            .map(|f| f as &dyn lanceflow_cli::ExecutorFactory);
        if capture {
            let mut out = Vec::new();
            let done = lanceflow_cli::run(cli, &mut out, remote).await;
            done.map(|()| String::from_utf8_lossy(&out).into_owned())
        } else {
            let mut out = std::io::stdout();
            let done = lanceflow_cli::run(cli, &mut out, remote).await;
            use std::io::Write;
            let _ = out.flush();
            done.map(|()| String::new())
        }
    })?;
    match result {
        Ok(output) => Ok((0, output)),
        Err(err) if capture => Err(command_error(&err)),
        Err(err) => {
            let code = lanceflow_cli::exit_code(&err);
            let _ = lanceflow_cli::report(&err);
            Ok((code, String::new()))
        }
    }
}
