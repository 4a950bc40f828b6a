//! `lanceflow bench text`: full-text index build time and full-text, vector
//! and hybrid query latency on a copy of a dataset with text and vectors
//! (the demo corpus after `embed`).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use arrow_array::Array as _;
use lanceflow::scalar_index::{create_scalar_index, ScalarIndexRequest, ScalarIndexType};
use lanceflow::search::{search_vectors, VectorSearchRequest};
use lanceflow::text_search::{
    search_hybrid, search_text, Fusion, HybridRequest, TextSearchRequest,
};
use serde::Serialize;

use crate::args::BenchTextArgs;
use crate::bench::percentile;
use crate::commands::{print_json, Context};

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

/// Copy a directory tree (a local dataset) recursively.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    Latency {
        p50_ms: percentile(&ms, 50.0),
        p99_ms: percentile(&ms, 99.0),
    }
}

pub(crate) async fn bench_text(
    ctx: &Context,
    args: BenchTextArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let source = Path::new(&args.uri);
    anyhow::ensure!(
        source.join("_versions").is_dir(),
        lanceflow::Error::InvalidInput(format!(
            "{} is not a local Lance dataset (bench text copies it first)",
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
    let location = ctx.location(&copy.to_string_lossy())?;
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
    let vectors = crate::commands::embed_texts(&args.model, queries.clone()).await?;

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
