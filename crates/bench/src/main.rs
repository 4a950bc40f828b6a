//! `lanceflow-bench`: lanceflow's benchmarks (throughput and latency
//! figures, not tests), apart from the product binary `lanceflow`.
//!
//! This file parses the command line and hands each subcommand to its
//! module; it is the only one that knows them all. The benchmark modules
//! (`ingest`, `vector`, `maintain`, `embed`, `text`, `serve`) never import
//! each other or this file: they share code through [`common`] and
//! [`stats`] (the one median and percentile), and take what a command does
//! the same way (options and executor, rendering, the HTTP service) from the
//! `lanceflow-cli` library. Reports go to stdout (text, or JSON with
//! `--json`); errors exit as the CLI's do (2 for what the user can fix, 1
//! for a bug, 0 when stdout was closed early).

mod common;
mod embed;
mod ingest;
mod maintain;
mod serve;
mod stats;
mod text;
mod vector;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lanceflow_cli::{Context, ExecutorKind, GlobalArgs};

/// lanceflow benchmarks: throughput and latency figures, not tests.
#[derive(Debug, Parser)]
#[command(name = "lanceflow-bench", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Ingest throughput: ingest a file into a fresh dataset, repeat, report rows/s.
    Ingest(ingest::IngestArgs),
    /// Vector index: build time, recall@10 against brute force, search latency.
    Vector(Box<vector::VectorArgs>),
    /// Maintenance: optimise after an append vs a full rebuild, compaction, search p50.
    Maintain(maintain::MaintainArgs),
    /// Embedding throughput (WordNet glosses, long paragraphs) vs sentence-transformers.
    Embed(Box<embed::EmbedArgs>),
    /// Full-text index build and full-text / vector / hybrid query latency, on a copy
    /// of a dataset with text and vectors.
    Text(Box<text::TextArgs>),
    /// Load test of the retrieval service: QPS and latency percentiles at a
    /// concurrency, next to the in-process latency of the same requests.
    Serve(Box<serve::ServeArgs>),
}

/// Run one parsed command line, writing the report to `out`.
async fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    if cli.global.executor == ExecutorKind::Ray {
        return Err(lanceflow::Error::NotSupported(
            "lanceflow-bench runs its tasks on the local executor (--executor local); \
             for figures on Ray run scripts/bench_ray.py"
                .into(),
        )
        .into());
    }
    let ctx = Context::new(&cli.global, None)?;
    match cli.command {
        BenchCommand::Ingest(args) => ingest::run(&ctx, args, out).await,
        BenchCommand::Vector(args) => vector::run(&ctx, *args, out).await,
        BenchCommand::Maintain(args) => maintain::run(&ctx, args, out).await,
        BenchCommand::Embed(args) => embed::run(&ctx, *args, out).await,
        BenchCommand::Text(args) => text::run(&ctx, *args, out).await,
        BenchCommand::Serve(args) => serve::run(&ctx, *args, out).await,
    }
}

fn main() -> ExitCode {
    lanceflow_cli::set_process_defaults();
    let cli = Cli::parse();
    lanceflow_cli::init_tracing();
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
    let result = runtime.block_on(run(cli, &mut out));
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => lanceflow_cli::report(&err),
    }
}
