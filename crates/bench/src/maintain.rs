//! `lanceflow-bench maintain`: incremental index optimisation against a full
//! rebuild, and distributed compaction, on clustered vectors appended as
//! many small fragments; search latency before and after each step.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use lanceflow::compact::{compact, CompactRequest};
use lanceflow::index::optimize::{optimize, OptimizeRequest};
use lanceflow::index::vector::{create_vector_index, Metric, VectorIndexRequest, VectorIndexType};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::search::{VectorSearchRequest, VectorSearcher};
use lanceflow::vectors::{clustered_vectors, write_generated_parquet, ClusteredSpec, Matrix};
use lanceflow::Location;
use lanceflow_cli::{print_json, Context};
use serde::Serialize;

use crate::common::copy_dir;
use crate::stats::median;

// `lanceflow-bench maintain` arguments (no doc comment: the subcommand's help is
// the one in main.rs).
#[derive(Debug, Args)]
pub(crate) struct MaintainArgs {
    /// Rows in the end (clustered unit vectors).
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Dimension.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Fragments in the end (rows / fragments rows each).
    #[arg(long, default_value_t = 40)]
    fragments: usize,
    /// Share of the rows appended after the index is built.
    #[arg(long, default_value_t = 0.1)]
    append_share: f64,
    /// Vector index type.
    #[arg(long = "type", default_value = "IVF_PQ")]
    index_type: VectorIndexType,
    /// IVF partitions probed by the timed searches.
    #[arg(long, default_value_t = 20)]
    nprobes: usize,
    /// Scratch directory (default: a temp dir); keeps a copy of the dataset
    /// before compaction for reference tools.
    #[arg(long)]
    scratch: Option<PathBuf>,
}

#[derive(Serialize)]
struct Step {
    step: String,
    seconds: f64,
    fragments: usize,
    search_p50_ms: f64,
}

#[derive(Serialize)]
struct BenchMaintainReport {
    rows: usize,
    appended_rows: usize,
    dim: usize,
    index_type: String,
    workers: usize,
    steps: Vec<Step>,
    optimize_over_rebuild: f64,
    compact_seconds: f64,
    compact_fragments_before: usize,
    compact_fragments_after: usize,
    /// A copy of the dataset just before compaction, for reference tools.
    before_compaction: String,
}

async fn p50(location: &Location, queries: &Matrix, nprobes: usize) -> Result<f64> {
    let searcher = VectorSearcher::open(location, None).await?;
    let mut ms = Vec::with_capacity(queries.rows() * 2);
    for round in 0..2 {
        for q in 0..queries.rows() {
            let one = Matrix::new(queries.dim, queries.row(q).to_vec())?;
            let mut request = VectorSearchRequest::new(one, 10);
            request.nprobes = Some(nprobes);
            request.columns = Some(vec!["id".into()]);
            let started = Instant::now();
            searcher.search(&request, 1).await?;
            if round > 0 {
                ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    Ok(median(&ms).unwrap_or(f64::NAN))
}

async fn fragments(location: &Location) -> Result<usize> {
    Ok(location.open(None).await?.get_fragments().len())
}

/// Run the maintenance benchmark and print its report on `out`.
pub(crate) async fn run(ctx: &Context, args: MaintainArgs, out: &mut dyn Write) -> Result<()> {
    anyhow::ensure!(
        args.rows >= 1000 && args.fragments >= 2,
        lanceflow::Error::InvalidInput(
            "--rows must be at least 1000 and --fragments at least 2".into()
        )
    );
    anyhow::ensure!(
        args.append_share > 0.0 && args.append_share < 1.0,
        lanceflow::Error::InvalidInput("--append-share must be between 0 and 1".into())
    );
    let scratch = match &args.scratch {
        Some(dir) => dir.clone(),
        None => {
            std::env::temp_dir().join(format!("lanceflow-bench-maintain-{}", std::process::id()))
        }
    };
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    std::fs::create_dir_all(&scratch)?;
    let index_type = args.index_type;
    let exec = ctx.executor();

    // Data: clustered unit vectors plus held-out queries; the last share of
    // the rows arrives later as an append.
    let queries_n = 100;
    let total = args
        .rows
        .checked_add(queries_n)
        .filter(|n| n.checked_mul(args.dim).is_some())
        .ok_or_else(|| {
            lanceflow::Error::InvalidInput(format!(
                "--rows {} of dimension {} are too many values",
                args.rows, args.dim
            ))
        })?;
    let spec = ClusteredSpec::new(total, args.dim, 100, 42);
    let (all, labels) = clustered_vectors(&spec)?;
    let appended = ((args.rows as f64) * args.append_share).round() as usize;
    let base = args.rows - appended;
    let d = args.dim;
    let part = |from: usize, to: usize| Matrix::new(d, all.data[from * d..to * d].to_vec());
    let base_file = scratch.join("base.parquet");
    let append_file = scratch.join("append.parquet");
    write_generated_parquet(&base_file, &part(0, base)?, &labels[..base])?;
    write_generated_parquet(
        &append_file,
        &part(base, args.rows)?,
        &labels[base..args.rows],
    )?;
    let queries = part(args.rows, args.rows + queries_n)?;
    let per_fragment = args.rows.div_ceil(args.fragments);

    let location = Location::resolve(&scratch.join("bench.lance").to_string_lossy(), &ctx.options)?;
    let mut request = IngestRequest::new(vec![base_file], WriteMode::Create);
    request.max_rows_per_file = per_fragment;
    ingest(&location, &request, &exec, &NoProgress).await?;

    let mut steps = Vec::new();
    let index_request = {
        let mut r = VectorIndexRequest::new("vector", index_type, Metric::Cosine);
        r.replace = true;
        r
    };
    let started = Instant::now();
    create_vector_index(&location, &index_request, &exec, &NoProgress).await?;
    steps.push(Step {
        step: format!("build {} on {base} rows", index_type.as_str()),
        seconds: started.elapsed().as_secs_f64(),
        fragments: fragments(&location).await?,
        search_p50_ms: p50(&location, &queries, args.nprobes).await?,
    });

    let mut request = IngestRequest::new(vec![append_file], WriteMode::Append);
    request.max_rows_per_file = per_fragment;
    let started = Instant::now();
    ingest(&location, &request, &exec, &NoProgress).await?;
    steps.push(Step {
        step: format!("append {appended} rows (flat-scanned until optimised)"),
        seconds: started.elapsed().as_secs_f64(),
        fragments: fragments(&location).await?,
        search_p50_ms: p50(&location, &queries, args.nprobes).await?,
    });

    let started = Instant::now();
    optimize(&location, &OptimizeRequest::default(), &exec, &NoProgress).await?;
    let optimize_seconds = started.elapsed().as_secs_f64();
    steps.push(Step {
        step: format!("optimize: index the {appended} new rows"),
        seconds: optimize_seconds,
        fragments: fragments(&location).await?,
        search_p50_ms: p50(&location, &queries, args.nprobes).await?,
    });

    let copy = scratch.join("before-compaction.lance");
    copy_dir(&scratch.join("bench.lance"), &copy)?;
    let report = compact(&location, &CompactRequest::default(), &exec, &NoProgress).await?;
    steps.push(Step {
        step: format!(
            "compact {} → {} fragments",
            report.fragments_before, report.fragments_after
        ),
        seconds: report.seconds,
        fragments: report.fragments_after,
        search_p50_ms: p50(&location, &queries, args.nprobes).await?,
    });

    let started = Instant::now();
    create_vector_index(&location, &index_request, &exec, &NoProgress).await?;
    let rebuild_seconds = started.elapsed().as_secs_f64();
    steps.push(Step {
        step: format!("full rebuild on {} rows", args.rows),
        seconds: rebuild_seconds,
        fragments: fragments(&location).await?,
        search_p50_ms: p50(&location, &queries, args.nprobes).await?,
    });

    let result = BenchMaintainReport {
        rows: args.rows,
        appended_rows: appended,
        dim: args.dim,
        index_type: index_type.as_str().to_string(),
        workers: ctx.workers,
        optimize_over_rebuild: optimize_seconds / rebuild_seconds,
        compact_seconds: report.seconds,
        compact_fragments_before: report.fragments_before,
        compact_fragments_after: report.fragments_after,
        before_compaction: copy.to_string_lossy().into_owned(),
        steps,
    };
    if ctx.json {
        return print_json(out, &result);
    }
    writeln!(
        out,
        "{} rows × {} ({} appended), {}, {} workers",
        result.rows, result.dim, result.appended_rows, result.index_type, result.workers
    )?;
    writeln!(
        out,
        "| step | seconds | fragments | search p50 (ms, nprobes {}) |",
        args.nprobes
    )?;
    writeln!(out, "|---|---|---|---|")?;
    for s in &result.steps {
        writeln!(
            out,
            "| {} | {:.2} | {} | {:.2} |",
            s.step, s.seconds, s.fragments, s.search_p50_ms
        )?;
    }
    writeln!(
        out,
        "optimize / full rebuild = {:.3}; dataset before compaction kept at {}",
        result.optimize_over_rebuild, result.before_compaction
    )?;
    Ok(())
}
