//! `lanceflow-bench text`: full-text index build time and full-text, vector
//! and hybrid query latency on a copy of a dataset with text and vectors
//! (the demo corpus after `embed`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use arrow_array::Array as _;
use clap::Args;
use lanceflow::index::scalar::{create_scalar_index, ScalarIndexRequest, ScalarIndexType};
use lanceflow::search::hybrid::{search_hybrid, Fusion, HybridRequest};
use lanceflow::search::text::{search_text, TextSearchRequest};
use lanceflow::search::{search_vectors, VectorSearchRequest};
use lanceflow_cli::{embed_texts, print_json, Context, ModelArgs};
use serde::Serialize;

use crate::common::copy_dir;
use crate::stats::{median, percentile};

// `lanceflow-bench text` arguments (no doc comment: the subcommand's help is
// the one in main.rs).
#[derive(Debug, Args)]
pub(crate) struct TextArgs {
    /// A local dataset with a text column and an indexed vector column (e.g. the
    /// demo's out/wordnet.lance); it is copied first, never modified.
    uri: String,
    /// Text column to index.
    #[arg(long, default_value = "text")]
    column: String,
    /// Column whose values (spread over the dataset) are the queries.
    #[arg(long, default_value = "title")]
    query_column: String,
    /// Queries.
    #[arg(long, default_value_t = 50)]
    queries: usize,
    /// Timed rounds over the queries (after one warm-up round).
    #[arg(long, default_value_t = 2)]
    repeat: usize,
    /// Hits per query.
    #[arg(short = 'k', long, default_value_t = 10)]
    k: usize,
    /// IVF partitions probed by the vector leg.
    #[arg(long, default_value_t = 20)]
    nprobes: usize,
    /// Scratch directory for the copy (default: a temp dir).
    #[arg(long)]
    scratch: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Serialize)]
struct BenchTextReport {
    rows: usize,
    workers: usize,
    fts_build_seconds: f64,
    fts_segments: usize,
    queries: usize,
    text: Latency,
    vector: Latency,
    hybrid: Latency,
    hybrid_over_slowest_leg: f64,
    data_dir: String,
}

fn latency(ms: Vec<f64>) -> Latency {
    Latency {
        p50_ms: median(&ms).unwrap_or(f64::NAN),
        p99_ms: percentile(&ms, 99.0).unwrap_or(f64::NAN),
    }
}

/// Run the full-text / hybrid benchmark and print its report on `out`.
pub(crate) async fn run(ctx: &Context, args: TextArgs, out: &mut dyn Write) -> Result<()> {
    let source = Path::new(&args.uri);
    anyhow::ensure!(
        source.join("_versions").is_dir(),
        lanceflow::Error::InvalidInput(format!(
            "{} is not a local Lance dataset (lanceflow-bench text copies it first)",
            args.uri
        ))
    );
    let scratch = match &args.scratch {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("lanceflow-bench-text-{}", std::process::id())),
    };
    let copy = scratch.join("bench.lance");
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    copy_dir(source, &copy)
        .with_context(|| format!("copying {} to {}", args.uri, copy.display()))?;
    let location = ctx.uri_location(&copy.to_string_lossy())?;
    let dataset = location.open(None).await?;
    let rows = dataset.count_rows(None).await? as usize;

    // Build the full-text index (replacing one the source may have).
    let mut request = ScalarIndexRequest::new(args.column.clone(), ScalarIndexType::Inverted);
    request.name = Some("bench_fts".into());
    request.replace = true;
    let started = Instant::now();
    let report = create_scalar_index(
        &location,
        &request,
        &ctx.executor(),
        &lanceflow::progress::NoProgress,
    )
    .await?;
    let fts_build_seconds = started.elapsed().as_secs_f64();

    // Queries: titles of rows spread over the dataset, embedded up front.
    let mut scan = dataset.scan();
    scan.project(&[args.query_column.as_str()])?;
    let batch = scan.try_into_batch().await?;
    let col = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .context("the query column must be a string column")?;
    let step = (col.len() / args.queries.max(1)).max(1);
    let queries: Vec<String> = (0..col.len())
        .step_by(step)
        .take(args.queries)
        .filter(|&i| col.is_valid(i))
        .map(|i| col.value(i).replace(',', " "))
        .collect();
    let vectors = embed_texts(&args.model, queries.clone()).await?;

    let (mut text_ms, mut vector_ms, mut hybrid_ms) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=args.repeat {
        for (i, q) in queries.iter().enumerate() {
            let qv = lanceflow::vectors::Matrix {
                dim: vectors.dim,
                data: vectors.row(i).to_vec(),
            };
            let text = TextSearchRequest::new(q.clone(), args.k);
            let mut vector = VectorSearchRequest::new(qv, args.k);
            vector.nprobes = Some(args.nprobes);
            let t = Instant::now();
            search_text(&location, None, &text).await?;
            let text_t = t.elapsed().as_secs_f64() * 1000.0;
            let t = Instant::now();
            search_vectors(&location, None, &vector, 1).await?;
            let vector_t = t.elapsed().as_secs_f64() * 1000.0;
            let hybrid = HybridRequest {
                text: TextSearchRequest::new(q.clone(), 20),
                vector: VectorSearchRequest {
                    k: 20,
                    ..vector.clone()
                },
                k: args.k,
                fusion: Fusion::Rrf,
                rrf_k: 60.0,
                weights: vec![1.0, 1.0],
            };
            let t = Instant::now();
            search_hybrid(&location, None, &hybrid).await?;
            let hybrid_t = t.elapsed().as_secs_f64() * 1000.0;
            if round > 0 {
                // Round 0 warms the caches.
                text_ms.push(text_t);
                vector_ms.push(vector_t);
                hybrid_ms.push(hybrid_t);
            }
        }
    }
    let (text, vector, hybrid) = (latency(text_ms), latency(vector_ms), latency(hybrid_ms));
    let report = BenchTextReport {
        rows,
        workers: ctx.workers,
        fts_build_seconds,
        fts_segments: report.segments,
        queries: queries.len(),
        hybrid_over_slowest_leg: hybrid.p50_ms / text.p50_ms.max(vector.p50_ms),
        text,
        vector,
        hybrid,
        data_dir: copy.display().to_string(),
    };
    if ctx.json {
        return print_json(out, &report);
    }
    writeln!(
        out,
        "{} rows, {} workers: FTS build {:.2}s ({} segments); {} queries: text p50 {:.1} ms (p99 {:.1}), \
         vector p50 {:.1} ms (p99 {:.1}), hybrid p50 {:.1} ms (p99 {:.1}) = {:.2}× the slower leg",
        report.rows,
        report.workers,
        report.fts_build_seconds,
        report.fts_segments,
        report.queries,
        report.text.p50_ms,
        report.text.p99_ms,
        report.vector.p50_ms,
        report.vector.p99_ms,
        report.hybrid.p50_ms,
        report.hybrid.p99_ms,
        report.hybrid_over_slowest_leg
    )?;
    writeln!(out, "data: {}", report.data_dir)?;
    Ok(())
}
