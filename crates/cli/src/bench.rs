//! `lanceflow bench vector`: build time, recall against brute force, latency.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use lanceflow::ingest::{IngestRequest, WriteMode};
use lanceflow::search::{VectorSearchRequest, VectorSearcher};
use lanceflow::vector_index::{Metric, VectorIndexRequest, VectorIndexType};
use lanceflow::vectors::{
    brute_force_knn, clustered_vectors, recall_at_k, write_generated_parquet, write_npy,
    ClusteredSpec, ExactMetric, Matrix,
};
use serde::Serialize;

use crate::args::BenchVectorArgs;
use crate::commands::{print_json, Context};

#[derive(Serialize)]
struct BenchVectorReport {
    rows: usize,
    dim: usize,
    queries: usize,
    workers: usize,
    index_type: String,
    metric: String,
    partitions: usize,
    sub_vectors: Option<usize>,
    segments: usize,
    segments_built: usize,
    build_seconds: f64,
    train_seconds: f64,
    commit_seconds: f64,
    k: usize,
    nprobes: usize,
    refine_factor: u32,
    recall_at_k: f64,
    in_process_p50_ms: f64,
    in_process_p99_ms: f64,
    distributed_p50_ms: f64,
    distributed_p99_ms: f64,
    distributed_recall_at_k: f64,
    distributed_equal_fraction: f64,
    data_dir: String,
}

/// The `id` column of the first query's hits (ids are row positions of the
/// generated data, as the brute-force truth counts them).
fn hit_ids(res: &lanceflow::search::SearchResults) -> Vec<u64> {
    res.results
        .first()
        .map(|q| {
            q.hits
                .iter()
                .filter_map(|h| h.fields.get("id").and_then(serde_json::Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub(crate) async fn bench_vector(
    ctx: &Context,
    args: BenchVectorArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let metric = Metric::parse(&args.metric)?;
    let index_type = VectorIndexType::parse(&args.index_type)?;
    let exact = match metric {
        Metric::L2 => ExactMetric::L2,
        Metric::Cosine => ExactMetric::Cosine,
        Metric::Dot => ExactMetric::Dot,
    };
    let scratch = tempfile::Builder::new()
        .prefix("lanceflow-bench-vector-")
        .tempdir_in(args.scratch.clone().unwrap_or_else(std::env::temp_dir))?;
    // Keep the data for side-by-side runs (pylance, lance-ray) when a scratch
    // directory was named.
    let scratch_path = if args.scratch.is_some() {
        scratch.keep()
    } else {
        scratch.path().to_path_buf()
    };

    let spec = ClusteredSpec::new(args.rows + args.queries, args.dim, args.clusters, args.seed);
    let (all, labels) = clustered_vectors(&spec)?;
    let data = Matrix::new(args.dim, all.data[..args.rows * args.dim].to_vec())?;
    let queries = Matrix::new(args.dim, all.data[args.rows * args.dim..].to_vec())?;
    write_npy(&scratch_path.join("queries.npy"), &queries)?;

    let uri = match &args.dataset {
        Some(uri) => uri.clone(),
        None => {
            let parquet = scratch_path.join("vectors.parquet");
            write_generated_parquet(&parquet, &data, &labels[..args.rows])?;
            let target = scratch_path.join("vectors.lance");
            let location = ctx.location(&target.to_string_lossy())?;
            let mut request = IngestRequest::new(vec![parquet], WriteMode::Create);
            request.max_rows_per_file = args.max_rows_per_file;
            lanceflow::ingest::ingest(
                &location,
                &request,
                &ctx.executor(),
                &lanceflow::progress::NoProgress,
            )
            .await?;
            target.to_string_lossy().into_owned()
        }
    };
    let location = ctx.location(&uri)?;

    let mut request = VectorIndexRequest::new("vector", index_type, metric);
    request.partitions = args.partitions;
    request.sub_vectors = args.sub_vectors;
    request.distributed_training = args.distributed_training;
    request.rows_per_segment = args.rows_per_segment;
    request.keep_segments = args.keep_segments;
    request.seed = args.seed;
    let started = Instant::now();
    let report = lanceflow::vector_index::create_vector_index(
        &location,
        &request,
        &ctx.executor(),
        &lanceflow::progress::NoProgress,
    )
    .await?;
    let build_seconds = started.elapsed().as_secs_f64();

    let truth = brute_force_knn(&data, &queries, args.k, exact);
    let refine = (args.refine_factor > 0).then_some(args.refine_factor);
    let one = |i: usize| -> Result<VectorSearchRequest> {
        let mut r =
            VectorSearchRequest::new(Matrix::new(args.dim, queries.row(i).to_vec())?, args.k);
        r.nprobes = Some(args.nprobes);
        r.refine_factor = refine;
        r.columns = Some(vec!["id".to_string()]);
        Ok(r)
    };
    // Open once and warm the index cache, as a serving process would.
    let searcher = VectorSearcher::open(&location, None).await?;
    searcher.search(&one(0)?, 1).await?;
    let mut local_ms = Vec::with_capacity(args.queries);
    let mut local_ids = Vec::with_capacity(args.queries);
    for i in 0..queries.rows() {
        let req = one(i)?;
        let t = Instant::now();
        let res = searcher.search(&req, 1).await?;
        local_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        local_ids.push(hit_ids(&res));
    }
    let executor = ctx.executor();
    searcher.search_distributed(&one(0)?, &executor).await?;
    let mut dist_ms = Vec::with_capacity(args.queries);
    let mut dist_ids = Vec::with_capacity(args.queries);
    for i in 0..queries.rows() {
        let req = one(i)?;
        let t = Instant::now();
        let res = searcher.search_distributed(&req, &executor).await?;
        dist_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        dist_ids.push(hit_ids(&res));
    }
    let equal = local_ids
        .iter()
        .zip(&dist_ids)
        .filter(|(a, b)| a == b)
        .count() as f64
        / local_ids.len().max(1) as f64;
    local_ms.sort_by(f64::total_cmp);
    dist_ms.sort_by(f64::total_cmp);
    let report = BenchVectorReport {
        rows: args.rows,
        dim: args.dim,
        queries: args.queries,
        workers: ctx.workers,
        index_type: index_type.as_str().to_string(),
        metric: metric.as_str().to_string(),
        partitions: report.partitions,
        sub_vectors: report.sub_vectors,
        segments: report.segments,
        segments_built: report.segments_built,
        build_seconds,
        train_seconds: report.train_seconds,
        commit_seconds: report.commit_seconds,
        k: args.k,
        nprobes: args.nprobes,
        refine_factor: args.refine_factor,
        recall_at_k: recall_at_k(&truth, &local_ids),
        in_process_p50_ms: percentile(&local_ms, 50.0),
        in_process_p99_ms: percentile(&local_ms, 99.0),
        distributed_p50_ms: percentile(&dist_ms, 50.0),
        distributed_p99_ms: percentile(&dist_ms, 99.0),
        distributed_recall_at_k: recall_at_k(&truth, &dist_ids),
        distributed_equal_fraction: equal,
        data_dir: scratch_path.display().to_string(),
    };
    if ctx.json {
        return print_json(out, &report);
    }
    writeln!(
        out,
        "{} {} on {} × {} ({} partitions{}, {}, {} worker(s))",
        report.index_type,
        report.metric,
        report.rows,
        report.dim,
        report.partitions,
        report
            .sub_vectors
            .map(|m| format!(", {m} sub-vectors"))
            .unwrap_or_default(),
        crate::commands::segments_text(report.segments_built, report.segments),
        report.workers
    )?;
    writeln!(
        out,
        "  build            {:.2} s (training {:.2} s, commit {:.2} s)",
        report.build_seconds, report.train_seconds, report.commit_seconds
    )?;
    writeln!(
        out,
        "  recall@{}        {:.4} (nprobes {}, refine {})",
        report.k, report.recall_at_k, report.nprobes, report.refine_factor
    )?;
    writeln!(
        out,
        "  in-process       p50 {:.2} ms, p99 {:.2} ms over {} queries",
        report.in_process_p50_ms, report.in_process_p99_ms, report.queries
    )?;
    writeln!(
        out,
        "  distributed      p50 {:.2} ms, p99 {:.2} ms; recall {:.4}; same hits as in-process for {:.1}% of queries",
        report.distributed_p50_ms,
        report.distributed_p99_ms,
        report.distributed_recall_at_k,
        report.distributed_equal_fraction * 100.0
    )?;
    if args.scratch.is_some() {
        writeln!(out, "  data kept in     {}", report.data_dir)?;
    }
    Ok(())
}
