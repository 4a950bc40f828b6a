//! `lanceflow-bench vector`: build time, recall against brute force, latency,
//! with pylance's figures side by side when it is installed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use lanceflow::index::vector::{Metric, VectorIndexRequest, VectorIndexType};
use lanceflow::ingest::{IngestRequest, WriteMode};
use lanceflow::search::{VectorSearchRequest, VectorSearcher};
use lanceflow::vectors::{
    brute_force_knn, clustered_vectors, recall_at_k, write_generated_parquet, write_npy,
    ClusteredSpec, Matrix,
};
use lanceflow_cli::{print_json, segments_text, Context, TrainingArgs};
use serde::Serialize;

use crate::common::reference_script;
use crate::stats::{median, percentile};

// `lanceflow-bench vector` arguments (no doc comment: the subcommand's help is
// the one in main.rs).
#[derive(Debug, Args)]
pub(crate) struct VectorArgs {
    /// Rows of clustered vectors to generate.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Dimension.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Cluster centres of the generator.
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    /// Rows per fragment.
    #[arg(long, default_value_t = 10_000)]
    max_rows_per_file: usize,
    /// Index type.
    #[arg(long = "type", default_value = "IVF_PQ")]
    index_type: VectorIndexType,
    /// Metric.
    #[arg(long, default_value = "l2")]
    metric: Metric,
    /// IVF partitions (default: sqrt(rows)).
    #[arg(long)]
    partitions: Option<usize>,
    /// PQ sub-vectors (default: dim/8).
    #[arg(long)]
    sub_vectors: Option<usize>,
    /// Queries (taken from the generator with another seed).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Partitions probed.
    #[arg(long, default_value_t = 10)]
    nprobes: usize,
    /// Refine factor (0: none).
    #[arg(long, default_value_t = 5)]
    refine_factor: u32,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    training: TrainingArgs,
    /// At most R rows per index segment (see `index vector --rows-per-segment`).
    #[arg(long, value_name = "R")]
    rows_per_segment: Option<u64>,
    /// Commit one segment per build task (see `index vector --keep-segments`).
    #[arg(long)]
    keep_segments: bool,
    /// Use this dataset (with a `vector` column) instead of generating one; it is indexed in place.
    #[arg(long)]
    dataset: Option<String>,
    /// Search rounds: every query once per round. With pylance installed, its
    /// rounds alternate with lanceflow's (scripts/bench_pylance_vector.py).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Skip pylance's side-by-side figures even when pylance is installed.
    #[arg(long)]
    no_reference: bool,
    /// Scratch directory (default: a temp dir).
    #[arg(long)]
    scratch: Option<PathBuf>,
}

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
    /// `distributed` or `lance` (see `--training`).
    trained_by: Option<lanceflow::index::vector::Training>,
    commit_seconds: f64,
    k: usize,
    nprobes: usize,
    refine_factor: u32,
    recall_at_k: f64,
    /// Over every round's queries.
    in_process_p50_ms: f64,
    in_process_p99_ms: f64,
    rounds: Vec<RoundReport>,
    /// pylance on the same data, its rounds interleaved with lanceflow's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pylance: Option<PylanceReport>,
    distributed_p50_ms: f64,
    distributed_p99_ms: f64,
    distributed_recall_at_k: f64,
    distributed_equal_fraction: f64,
    data_dir: String,
}

/// One search round: every query once, in turn by lanceflow and pylance.
#[derive(Serialize)]
struct RoundReport {
    lanceflow_p50_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pylance_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pylance_on_lanceflow_index_p50_ms: Option<f64>,
}

#[derive(Serialize)]
struct PylanceReport {
    version: String,
    build_seconds: f64,
    recall_at_k: f64,
    /// Over every round's queries, pylance on its own index.
    p50_ms: f64,
    p99_ms: f64,
    /// pylance searching the index lanceflow built (the same index, so the
    /// gap to lanceflow's figure is the search path alone).
    on_lanceflow_index_p50_ms: Option<f64>,
    /// Median over rounds of lanceflow's p50 ÷ pylance's p50 in the same round.
    p50_ratio_median: f64,
}

/// pylance searching the same data in a Python co-process
/// (`scripts/bench_pylance_vector.py --serve`), one round on request, so
/// that its rounds and lanceflow's alternate on the same machine state.
struct PylanceReference {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    ready: serde_json::Value,
}

impl PylanceReference {
    /// Start the co-process (it builds pylance's index first); `None`, with a
    /// warning, when Python, pylance or the script is missing or fails.
    fn start(data_dir: &Path, args: &VectorArgs) -> Option<Self> {
        let script = reference_script("bench_pylance_vector.py")?;
        let spawned = Command::new("python3")
            .arg(&script)
            .arg(data_dir)
            .arg("--serve")
            .args([
                "--type",
                args.index_type.as_str(),
                "--metric",
                args.metric.as_str(),
            ])
            .args(["--k", &args.k.to_string()])
            .args(["--nprobes", &args.nprobes.to_string()])
            .args(["--refine", &args.refine_factor.max(1).to_string()])
            .args(["--max-rows-per-file", &args.max_rows_per_file.to_string()])
            .args(
                args.partitions
                    .map(|p| ["--partitions".to_string(), p.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .args(
                args.sub_vectors
                    .map(|m| ["--sub-vectors".to_string(), m.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!("pylance reference unavailable: cannot run python3: {e}");
                return None;
            }
        };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return None;
        };
        let mut reference = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            ready: serde_json::Value::Null,
        };
        match reference.read_line() {
            Some(ready) => {
                reference.ready = ready;
                Some(reference)
            }
            None => {
                tracing::warn!(
                    "pylance reference unavailable (pip install pylance==14.0.2 for the \
                     side-by-side figures)"
                );
                None
            }
        }
    }

    fn read_line(&mut self) -> Option<serde_json::Value> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line).ok(),
            _ => None,
        }
    }

    /// One round on pylance's own index (`own`) or lanceflow's (`ours`):
    /// per-query latencies and recall.
    fn round(&mut self, which: &str) -> Round {
        writeln!(self.stdin, "{which}").ok()?;
        self.stdin.flush().ok()?;
        let answer = self.read_line()?;
        let latencies: Vec<f64> = answer
            .get("latencies_ms")?
            .as_array()?
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        Some((latencies, answer.get("recall_at_k")?.as_f64()?))
    }

    fn number(&self, key: &str) -> f64 {
        self.ready
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for PylanceReference {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

type Round = Option<(Vec<f64>, f64)>;

/// pylance's round on its own index, then on lanceflow's.
fn pylance_rounds(reference: Option<&mut PylanceReference>) -> (Round, Round) {
    match reference {
        Some(r) => (r.round("own"), r.round("ours")),
        None => (None, None),
    }
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

/// Run the vector index benchmark and print its report on `out`.
pub(crate) async fn run(ctx: &Context, args: VectorArgs, out: &mut dyn Write) -> Result<()> {
    if args.queries == 0 {
        return Err(lanceflow::Error::InvalidInput("--queries must be at least 1".into()).into());
    }
    let (metric, index_type) = (args.metric, args.index_type);
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

    let too_large = || {
        lanceflow::Error::InvalidInput(format!(
            "--rows {} and --queries {} of dimension {} are too many values",
            args.rows, args.queries, args.dim
        ))
    };
    let total = args.rows.checked_add(args.queries).ok_or_else(too_large)?;
    total.checked_mul(args.dim).ok_or_else(too_large)?;
    let spec = ClusteredSpec::new(total, args.dim, args.clusters, args.seed);
    let (all, labels) = clustered_vectors(&spec)?;
    // The first `rows` rows are the data, the rest the queries.
    let split = (args.rows * args.dim).min(all.data.len());
    let data = Matrix::new(args.dim, all.data[..split].to_vec())?;
    let queries = Matrix::new(args.dim, all.data[split..].to_vec())?;
    write_npy(&scratch_path.join("queries.npy"), &queries)?;

    let uri = match &args.dataset {
        Some(uri) => uri.clone(),
        None => {
            let parquet = scratch_path.join("vectors.parquet");
            write_generated_parquet(&parquet, &data, &labels[..args.rows.min(labels.len())])?;
            let target = scratch_path.join("vectors.lance");
            let location = ctx.uri_location(&target.to_string_lossy())?;
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
    let location = ctx.uri_location(&uri)?;

    let mut request = VectorIndexRequest::new("vector", index_type, metric);
    request.partitions = args.partitions;
    request.sub_vectors = args.sub_vectors;
    request.training = args.training.training();
    request.rows_per_segment = args.rows_per_segment;
    request.keep_segments = args.keep_segments;
    request.seed = args.seed;
    let started = Instant::now();
    let report = lanceflow::index::vector::create_vector_index(
        &location,
        &request,
        &ctx.executor(),
        &lanceflow::progress::NoProgress,
    )
    .await?;
    let build_seconds = started.elapsed().as_secs_f64();

    let truth = brute_force_knn(&data, &queries, args.k, metric);
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
    // pylance on the same data (it needs the generated Parquet file), its
    // rounds alternating with ours: timings on a shared machine drift by tens
    // of percent within a minute, so only rounds side by side compare.
    let mut reference = if args.no_reference || args.dataset.is_some() {
        None
    } else {
        PylanceReference::start(&scratch_path, &args)
    };
    // One unmeasured round on each side: every query's partitions and rows
    // in the caches before anything is timed.
    for i in 0..queries.rows() {
        searcher.search(&one(i)?, 1).await?;
    }
    let _ = pylance_rounds(reference.as_mut());
    let rounds = args.rounds.max(1);
    let mut local_ms = Vec::new();
    let mut local_ids = Vec::with_capacity(queries.rows());
    let mut local_answers = Vec::with_capacity(queries.rows());
    let mut round_reports = Vec::new();
    let mut pylance_ms = Vec::new();
    let mut pylance_recall = f64::NAN;
    let mut on_ours_ms = Vec::new();
    for round in 0..rounds {
        // Who goes first alternates, so neither always runs on a warmer machine.
        let pylance_first = round % 2 == 1;
        let (mut theirs, mut theirs_on_ours) = (None, None);
        if pylance_first {
            (theirs, theirs_on_ours) = pylance_rounds(reference.as_mut());
        }
        let mut round_ms = Vec::with_capacity(queries.rows());
        for i in 0..queries.rows() {
            let req = one(i)?;
            let t = Instant::now();
            let res = searcher.search(&req, 1).await?;
            round_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            if round == 0 {
                local_ids.push(hit_ids(&res));
                local_answers.push(res.results.into_iter().next());
            }
        }
        if !pylance_first {
            (theirs, theirs_on_ours) = pylance_rounds(reference.as_mut());
        }
        local_ms.extend_from_slice(&round_ms);
        let mut round_report = RoundReport {
            lanceflow_p50_ms: median(&round_ms).unwrap_or(f64::NAN),
            pylance_p50_ms: None,
            pylance_on_lanceflow_index_p50_ms: None,
        };
        if let Some((ms, recall)) = theirs {
            pylance_ms.extend_from_slice(&ms);
            pylance_recall = recall;
            round_report.pylance_p50_ms = Some(median(&ms).unwrap_or(f64::NAN));
        }
        if let Some((ms, _)) = theirs_on_ours {
            on_ours_ms.extend_from_slice(&ms);
            round_report.pylance_on_lanceflow_index_p50_ms = Some(median(&ms).unwrap_or(f64::NAN));
        }
        round_reports.push(round_report);
    }
    let pylance = reference.take().and_then(|r| {
        let ratios: Vec<f64> = round_reports
            .iter()
            .filter_map(|x| x.pylance_p50_ms.map(|p| x.lanceflow_p50_ms / p))
            .collect();
        // None without a pylance round.
        let p50_ratio_median = median(&ratios)?;
        Some(PylanceReport {
            version: r
                .ready
                .get("pylance_version")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .to_string(),
            build_seconds: r.number("pylance_build_s"),
            recall_at_k: pylance_recall,
            p50_ms: median(&pylance_ms).unwrap_or(f64::NAN),
            p99_ms: percentile(&pylance_ms, 99.0).unwrap_or(f64::NAN),
            on_lanceflow_index_p50_ms: median(&on_ours_ms),
            p50_ratio_median,
        })
    });
    let executor = ctx.executor();
    searcher.search_distributed(&one(0)?, &executor).await?;
    let mut dist_ms = Vec::with_capacity(queries.rows());
    let mut dist_ids = Vec::with_capacity(queries.rows());
    let mut dist_answers = Vec::with_capacity(queries.rows());
    for i in 0..queries.rows() {
        let req = one(i)?;
        let t = Instant::now();
        let res = searcher.search_distributed(&req, &executor).await?;
        dist_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        dist_ids.push(hit_ids(&res));
        dist_answers.push(res.results.into_iter().next());
    }
    // Same answers: equal distances, equal rows but where k cuts a tie.
    let equal = local_answers
        .iter()
        .zip(&dist_answers)
        .filter(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => a.same_answer(b).is_ok(),
            (a, b) => a.is_none() && b.is_none(),
        })
        .count() as f64
        / local_answers.len().max(1) as f64;
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
        trained_by: report.trained_by,
        commit_seconds: report.commit_seconds,
        k: args.k,
        nprobes: args.nprobes,
        refine_factor: args.refine_factor,
        recall_at_k: recall_at_k(&truth, &local_ids),
        in_process_p50_ms: median(&local_ms).unwrap_or(f64::NAN),
        in_process_p99_ms: percentile(&local_ms, 99.0).unwrap_or(f64::NAN),
        rounds: round_reports,
        pylance,
        distributed_p50_ms: median(&dist_ms).unwrap_or(f64::NAN),
        distributed_p99_ms: percentile(&dist_ms, 99.0).unwrap_or(f64::NAN),
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
        segments_text(report.segments_built, report.segments),
        report.workers
    )?;
    writeln!(
        out,
        "  build            {:.2} s (training {:.2} s{}, commit {:.2} s)",
        report.build_seconds,
        report.train_seconds,
        report
            .trained_by
            .map(|t| format!(" {}", t.as_str()))
            .unwrap_or_default(),
        report.commit_seconds
    )?;
    writeln!(
        out,
        "  recall@{}        {:.4} (nprobes {}, refine {})",
        report.k, report.recall_at_k, report.nprobes, report.refine_factor
    )?;
    writeln!(
        out,
        "  in-process       p50 {:.2} ms, p99 {:.2} ms over {} rounds of {} queries",
        report.in_process_p50_ms,
        report.in_process_p99_ms,
        report.rounds.len(),
        report.queries
    )?;
    if let Some(p) = &report.pylance {
        writeln!(
            out,
            "  pylance {:<8} build {:.2} s, recall@{} {:.4}, p50 {:.2} ms, p99 {:.2} ms{}",
            p.version,
            p.build_seconds,
            report.k,
            p.recall_at_k,
            p.p50_ms,
            p.p99_ms,
            p.on_lanceflow_index_p50_ms
                .map(|x| format!(" (on lanceflow's index {x:.2} ms)"))
                .unwrap_or_default()
        )?;
        let per_round: Vec<String> = report
            .rounds
            .iter()
            .filter_map(|r| {
                r.pylance_p50_ms
                    .map(|p| format!("{:.2}/{:.2}", r.lanceflow_p50_ms, p))
            })
            .collect();
        writeln!(
            out,
            "  p50 lanceflow/pylance per round (ms): {}; median ratio {:.2}×",
            per_round.join(", "),
            p.p50_ratio_median
        )?;
    }
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
