//! The `lanceflow` binary: parse, validate, call the engine, render.
//!
//! Every error prints its message (which names the fix) and exits with code 2;
//! an internal error (a bug) exits with 1; a closed stdout pipe exits 0.

mod args;
mod bench;
mod bench_embed;
mod bench_maintain;
mod bench_text;
mod commands;
mod render;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The embedder runs one batch per thread with single-threaded GEMMs;
    // matrixmultiply's own worker threads would only contend with them. Set
    // here, before any thread exists (setting the environment later is racy).
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
    let cli = args::Cli::parse();
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
    let result = runtime.block_on(commands::run(cli, &mut out));
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err:#}");
            let code = match err.downcast_ref::<lanceflow::Error>() {
                Some(lanceflow::Error::Internal(_)) => 1,
                _ => 2,
            };
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Logs go to stderr, filtered by LANCEFLOW_LOG (default: warnings); spans
/// report their duration when they close (LANCEFLOW_LOG=lanceflow=info).
///
/// The default hides one benign lance warning: an IVF partition that gets no
/// rows in a segment ("partition N is empty, skipping"), which is routine for
/// the small segments `optimize` adds after an append.
fn init_tracing() {
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
