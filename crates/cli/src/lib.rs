//! The `lanceflow` command line as a library.
//!
//! Two front ends run this same code: the `lanceflow` binary, and the Python
//! package's entry point (`python -m lanceflow`), which injects its Ray
//! executor through [`ExecutorFactory`]. Arguments, validation, rendering and
//! exit codes therefore behave identically on both.
//!
//! Every error prints its message (which names the fix) and exits with code 2;
//! an internal error (a bug) exits with 1; a closed stdout pipe exits 0.

pub mod args;
pub mod commands;
pub mod context;
mod pipeline;
pub mod query_embedding;
pub mod render;
pub mod requests;
pub mod serve;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use lanceflow::Executor;

pub use args::{Cli, ExecutorKind, GlobalArgs, ModelArgs, TrainingArgs};
pub use context::{print_json, Context};
pub use query_embedding::{embed_texts, embed_with};
pub use render::reports::{human_bytes, segments_text};

/// Builds the executor for `--executor ray` (the Python package provides it).
pub trait ExecutorFactory: Send + Sync {
    /// An executor on the Ray cluster at `address` (None: Ray's own default)
    /// running `workers` tasks at once (None: sized from the live cluster).
    fn make(
        &self,
        address: Option<&str>,
        workers: Option<usize>,
    ) -> lanceflow::Result<Arc<dyn Executor>>;
}

/// Parse a command line (`argv[0]` is the program name).
pub fn parse<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(argv)
}

/// Run one parsed command line, writing results to `out`. `remote` builds
/// the executor when the command asks for `--executor ray`.
pub async fn run(
    cli: Cli,
    out: &mut dyn Write,
    remote: Option<&dyn ExecutorFactory>,
) -> anyhow::Result<()> {
    commands::run(cli, out, remote).await
}

/// The exit code for a failed command: 1 for a bug, 2 for anything the user
/// can fix, 0 when stdout was closed early (`lanceflow ... | head`).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return 0;
    }
    match err.downcast_ref::<lanceflow::Error>() {
        Some(lanceflow::Error::Internal(_)) => 1,
        _ => 2,
    }
}

/// The engine error behind a command failure, if there is one.
pub fn engine_error(err: &anyhow::Error) -> Option<&lanceflow::Error> {
    err.chain()
        .find_map(|c| c.downcast_ref::<lanceflow::Error>())
}

/// The embedder runs one batch per thread with single-threaded GEMMs;
/// matrixmultiply's own worker threads would only contend with them. Call
/// before any thread exists (setting the environment later is racy).
pub fn set_process_defaults() {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
}

/// Logs go to stderr, filtered by LANCEFLOW_LOG (default: warnings); spans
/// report their duration when they close (LANCEFLOW_LOG=lanceflow=info).
///
/// The default hides one benign lance warning: an IVF partition that gets no
/// rows in a segment ("partition N is empty, skipping"), which is routine for
/// the small segments `optimize` adds after an append.
pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("LANCEFLOW_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("warn,lance::index::vector::builder=error")
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The binary's `main`: parse the process arguments and run them. With
/// `--executor ray` the command is handed to the Python package, which runs
/// this same code with its Ray executor injected.
pub fn main() -> ExitCode {
    set_process_defaults();
    let cli = Cli::parse();
    if cli.global.executor == ExecutorKind::Ray {
        return run_through_python();
    }
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = runtime.block_on(run(cli, &mut out, None));
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Print a failed command's error on stderr and choose its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let code = exit_code(err);
    if code != 0 {
        let _ = writeln!(std::io::stderr().lock(), "error: {err:#}");
    }
    ExitCode::from(code)
}

/// Re-run this command line as `python3 -m lanceflow ...` (LANCEFLOW_PYTHON
/// picks the interpreter): Ray has no Rust API, so Ray runs go through the
/// Python package, which embeds this same CLI.
fn run_through_python() -> ExitCode {
    let python = std::env::var_os("LANCEFLOW_PYTHON").unwrap_or_else(|| "python3".into());
    let status = std::process::Command::new(&python)
        .args(["-m", "lanceflow"])
        .args(std::env::args_os().skip(1))
        .status();
    match status {
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!(
                "error: --executor ray runs through the Python package, but '{}' could not be \
                 started: {e}. Install Python 3 and the lanceflow wheel (see README, \"Run on \
                 Ray\"), or set LANCEFLOW_PYTHON to its interpreter",
                python.to_string_lossy()
            );
            ExitCode::from(2)
        }
    }
}
