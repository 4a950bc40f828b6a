//! `lanceflow-bench ingest`: ingest a file into a fresh dataset, repeat,
//! report the best and the median run in rows/s.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lanceflow::ingest::{IngestRequest, WriteMode};
use lanceflow_cli::{human_bytes, print_json, Context};
use serde::Serialize;

use crate::stats::{median, percentile};

/// `lanceflow-bench ingest` arguments.
#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Input file.
    input: PathBuf,
    /// Most rows per fragment.
    #[arg(long, default_value_t = 10_000)]
    max_rows_per_file: usize,
    /// Runs (the best and the median are reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Scratch directory for the datasets (default: a temp dir).
    #[arg(long)]
    scratch: Option<PathBuf>,
}

#[derive(Serialize)]
struct BenchIngestReport {
    input: PathBuf,
    rows: u64,
    input_bytes: u64,
    fragments: usize,
    workers: usize,
    runs_seconds: Vec<f64>,
    best_seconds: f64,
    /// The median run (see `stats`: the mean of the two middle runs for an
    /// even `--repeat`).
    median_seconds: f64,
    best_rows_per_second: f64,
    median_rows_per_second: f64,
}

/// Run the ingest benchmark and print its report on `out`.
pub(crate) async fn run(ctx: &Context, args: IngestArgs, out: &mut dyn Write) -> Result<()> {
    let IngestArgs {
        input,
        max_rows_per_file,
        repeat,
        scratch,
    } = args;
    let repeat = repeat.max(1);
    let tmp = tempfile::Builder::new()
        .prefix("lanceflow-bench-")
        .tempdir_in(scratch.unwrap_or_else(std::env::temp_dir))?;
    let mut runs = Vec::new();
    let mut last = None;
    for i in 0..repeat {
        let target = tmp.path().join(format!("run{i}.lance"));
        let location = ctx.uri_location(&target.to_string_lossy())?;
        let mut request = IngestRequest::new(vec![input.clone()], WriteMode::Create);
        request.max_rows_per_file = max_rows_per_file;
        let report = lanceflow::ingest::ingest(
            &location,
            &request,
            &ctx.executor(),
            &lanceflow::progress::NoProgress,
        )
        .await?;
        runs.push(report.seconds);
        last = Some(report);
        std::fs::remove_dir_all(&target)?;
    }
    // At least one run (repeat ≥ 1), so the figures exist.
    let (Some(last), Some(best), Some(median)) = (last, percentile(&runs, 0.0), median(&runs))
    else {
        return Ok(());
    };
    let report = BenchIngestReport {
        input,
        rows: last.rows_written,
        input_bytes: last.input_bytes,
        fragments: last.fragments_written,
        workers: ctx.workers,
        runs_seconds: runs,
        best_seconds: best,
        median_seconds: median,
        best_rows_per_second: last.rows_written as f64 / best,
        median_rows_per_second: last.rows_written as f64 / median,
    };
    if ctx.json {
        return print_json(out, &report);
    }
    writeln!(
        out,
        "lanceflow ingest: {} rows ({}) → {} fragments; best {:.3}s ({:.0} rows/s), median {:.3}s ({:.0} rows/s) over {} run(s)",
        report.rows,
        human_bytes(report.input_bytes),
        report.fragments,
        report.best_seconds,
        report.best_rows_per_second,
        report.median_seconds,
        report.median_rows_per_second,
        repeat
    )?;
    Ok(())
}
