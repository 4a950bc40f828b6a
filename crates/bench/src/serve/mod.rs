//! `lanceflow-bench serve`: a load test of the retrieval service, the way
//! the seed's online RAG test runs it (many concurrent clients, text query →
//! embedding → search), next to the in-process latency of the same requests.

mod adversary;
mod client;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use hyper::body::Bytes;
use lanceflow::search::retrieval::{Mode, RetrievalRequest, RetrievalResponse, Retriever};
use lanceflow_cli::serve::{bind, serve_until, ServeOptions, ServeState};
use lanceflow_cli::{print_json, Context, ModelArgs};
use serde::Serialize;

use self::adversary::{Answer, FaultProxy};
use self::client::{authority, Client};
use crate::stats::{median, percentile};

// `lanceflow-bench serve` arguments (no doc comment: the subcommand's help is
// the one in main.rs).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A running service (e.g. http://127.0.0.1:8080). Without it, --dataset
    /// is served in this process on a free loopback port.
    #[arg(long, value_name = "URL", required_unless_present = "dataset")]
    url: Option<String>,
    /// Dataset to serve in-process (also measures the in-process latency).
    #[arg(long, value_name = "URI")]
    dataset: Option<String>,
    /// Concurrent clients (each with one keep-alive connection).
    #[arg(long, default_value_t = 36)]
    concurrency: usize,
    /// Requests in all (after the warm-up).
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Each mode's requests run in this many slices, the modes taking turns.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Warm-up requests (not measured).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Modes to measure in turn: vector, text, hybrid (comma-separated).
    #[arg(long, default_value = "vector", value_delimiter = ',', value_parser = ["vector", "text", "hybrid"])]
    mode: Vec<String>,
    /// Query texts, one per line (default: built-in questions).
    #[arg(long, value_name = "FILE")]
    queries: Option<PathBuf>,
    /// Hits per query.
    #[arg(short = 'k', long, default_value_t = 10)]
    k: usize,
    /// IVF partitions probed.
    #[arg(long)]
    nprobes: Option<usize>,
    /// Refine factor.
    #[arg(long)]
    refine_factor: Option<u32>,
    /// Columns to return (default: every non-vector column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    columns: Option<Vec<String>>,
    /// Environment variable holding the service's API key.
    #[arg(long, value_name = "NAME")]
    api_key_env: Option<String>,
    /// Meanwhile one more client sends adversarial bodies (k × refine_factor
    /// past the bound, a 60,000-term filter, malformed JSON, ...) in a loop;
    /// each must get a 4xx, 503 or 504 with a JSON body.
    #[arg(long)]
    adversary: bool,
    /// Check every answer against the engine's own answer to the same
    /// request in this process (needs --dataset).
    #[arg(long, requires = "dataset")]
    verify: bool,
    /// A fault-injecting proxy (scripts/s3_fault_proxy.py) between the
    /// served s3:// --dataset and its store: --fault-rule is installed for
    /// the measured load only.
    #[arg(long, value_name = "URL", requires_all = ["fault_rule", "dataset"])]
    fault_proxy: Option<String>,
    /// The proxy's rule (or an array of rules), e.g. '{"fault": "error500",
    /// "probability": 0.05, "times": 0}' (5% of requests to the store
    /// answered 500).
    #[arg(long, value_name = "JSON", requires = "fault_proxy")]
    fault_rule: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
}

/// The query-vector length of the adversary's vector bodies (the model's).
const ADVERSARY_DIM: usize = 384;

/// Questions of the kind a RAG front end sends (used without --queries).
const BUILTIN_QUERIES: &[&str] = &[
    "What are the applications of deep learning in healthcare?",
    "a small domesticated carnivorous mammal",
    "how do plants turn sunlight into energy",
    "the study of the structure of the universe",
    "a musical instrument with strings played with a bow",
    "a sudden violent shaking of the ground",
    "someone who writes computer programs",
    "an illness caused by a virus that affects the lungs",
    "the process of buying and selling goods",
    "a building where sick people are treated",
    "a large body of salt water",
    "feeling of great happiness",
    "the act of moving from one country to another",
    "a device that measures temperature",
    "to travel by air",
    "an official document giving permission",
    "food made from flour water and yeast",
    "the highest point of a mountain",
    "a person who teaches at a university",
    "money paid for work",
];

/// Latency percentiles in milliseconds (p50 is the median; see `stats`).
#[derive(Debug, Clone, Default, Serialize)]
struct Percentiles {
    p50: f64,
    p95: f64,
    p99: f64,
}

fn percentiles(ms: Vec<f64>) -> Percentiles {
    Percentiles {
        p50: median(&ms).unwrap_or(f64::NAN),
        p95: percentile(&ms, 95.0).unwrap_or(f64::NAN),
        p99: percentile(&ms, 99.0).unwrap_or(f64::NAN),
    }
}

/// One mode's figures.
#[derive(Debug, Clone, Serialize)]
struct ModeReport {
    mode: String,
    requests: usize,
    errors: usize,
    /// Status codes of failed requests, with counts.
    error_statuses: Vec<(u16, usize)>,
    /// Successful answers compared with the engine's own (--verify).
    verified: usize,
    /// ...of which differed (other hits or fields, another version).
    wrong: usize,
    seconds: f64,
    qps: f64,
    /// Client-side, request sent → body received.
    end_to_end_ms: Percentiles,
    /// Server-side search time without embedding (the response's timings).
    retrieval_ms: Percentiles,
    /// Server-side embedding time.
    embed_ms: Percentiles,
    /// The same requests through the engine in this process, one at a time.
    in_process_sequential_ms: Option<Percentiles>,
    /// ...and `concurrency` at a time.
    in_process_concurrent_ms: Option<Percentiles>,
    /// p99 end to end ÷ the in-process p50 at the same concurrency (target
    /// ≤ 4): what serving over HTTP adds to the engine's own latency under
    /// the same load.
    p99_over_in_process_p50: Option<f64>,
    /// p99 end to end ÷ the in-process p50 one at a time. For reference: with
    /// `concurrency` closed-loop clients on `cores` cores a request waits for
    /// about concurrency ÷ (QPS × p50) others (Little's law), so this stays
    /// near concurrency ÷ cores ÷ (QPS ÷ capacity) whatever the service does.
    p99_over_sequential_p50: Option<f64>,
    /// QPS ÷ (cores ÷ in-process sequential p50) (target ≥ 0.8).
    qps_over_capacity: Option<f64>,
    /// End-to-end p50 of each round's slice.
    round_p50_ms: Vec<f64>,
}

fn read_queries(args: &ServeArgs) -> Result<Vec<String>> {
    let queries: Vec<String> = match &args.queries {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| {
                lanceflow::Error::InvalidInput(format!("--queries {}: {e}", file.display()))
            })?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => BUILTIN_QUERIES.iter().map(|q| q.to_string()).collect(),
    };
    if queries.is_empty() {
        return Err(lanceflow::Error::InvalidInput(
            "--queries holds no query; write one text per line".into(),
        )
        .into());
    }
    Ok(queries)
}

fn request_for(args: &ServeArgs, mode: Mode, query: &str) -> RetrievalRequest {
    RetrievalRequest {
        query: Some(query.to_string()),
        mode,
        k: args.k,
        nprobes: args.nprobes,
        refine_factor: args.refine_factor,
        columns: args.columns.clone(),
        ..Default::default()
    }
}

/// The same requests through the engine directly: one at a time, then
/// `concurrency` at a time.
async fn in_process(
    retriever: &Arc<Retriever>,
    requests: &[RetrievalRequest],
    concurrency: usize,
    warmup: usize,
) -> Result<(Percentiles, Percentiles)> {
    for r in requests.iter().cycle().take(warmup) {
        retriever.search(r).await?;
    }
    let sequential = requests.len().min(200);
    let mut ms = Vec::with_capacity(sequential);
    for r in requests.iter().cycle().take(sequential) {
        let t = Instant::now();
        retriever.search(r).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let concurrent_total = requests.len().min(1000);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (retriever, next) = (retriever.clone(), next.clone());
        let requests: Arc<[RetrievalRequest]> = requests.to_vec().into();
        tasks.spawn(async move {
            let mut ms = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= concurrent_total {
                    return Ok::<_, lanceflow::Error>(ms);
                }
                let t = Instant::now();
                retriever.search(&requests[i % requests.len()]).await?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        });
    }
    let mut concurrent = Vec::with_capacity(concurrent_total);
    while let Some(done) = tasks.join_next().await {
        concurrent.extend(done??);
    }
    Ok((percentiles(ms), percentiles(concurrent)))
}

struct Sample {
    end_to_end_ms: f64,
    status: u16,
    retrieval_ms: f64,
    embed_ms: f64,
    /// Whether the answer equals the engine's own (None: not checked).
    correct: Option<bool>,
}

/// `total` requests from `concurrency` clients, each on its own connection.
async fn load(
    authority: &str,
    authorization: Option<String>,
    bodies: Arc<Vec<Bytes>>,
    expected: Option<Arc<Vec<Answer>>>,
    concurrency: usize,
    total: usize,
) -> Result<(Vec<Sample>, f64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(Client::connect(authority, authorization.clone()).await?);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut client in clients {
        let (next, bodies, expected) = (next.clone(), bodies.clone(), expected.clone());
        let authority = authority.to_string();
        let authorization = authorization.clone();
        tasks.spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return samples;
                }
                let t = Instant::now();
                let result = client
                    .post("/v1/search", bodies[i % bodies.len()].clone())
                    .await;
                let end_to_end_ms = t.elapsed().as_secs_f64() * 1e3;
                match result {
                    Ok((status, body)) => {
                        let response = serde_json::from_slice::<RetrievalResponse>(&body).ok();
                        let timings = response.as_ref().map(|r| r.timings.clone());
                        let correct = match (&expected, status.is_success()) {
                            (Some(expected), true) => Some(
                                response
                                    .is_some_and(|r| Answer::of(r) == expected[i % expected.len()]),
                            ),
                            _ => None,
                        };
                        samples.push(Sample {
                            end_to_end_ms,
                            status: status.as_u16(),
                            retrieval_ms: timings.as_ref().map_or(f64::NAN, |t| t.retrieval_ms),
                            embed_ms: timings.as_ref().map_or(f64::NAN, |t| t.embed_ms),
                            correct,
                        });
                    }
                    Err(e) => {
                        tracing::warn!("request failed: {e:#}");
                        samples.push(Sample {
                            end_to_end_ms,
                            status: 0,
                            retrieval_ms: f64::NAN,
                            embed_ms: f64::NAN,
                            correct: None,
                        });
                        // A broken connection: open a new one and go on.
                        match Client::connect(&authority, authorization.clone()).await {
                            Ok(c) => client = c,
                            Err(_) => return samples,
                        }
                    }
                }
            }
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done?);
    }
    Ok((samples, started.elapsed().as_secs_f64()))
}

/// Run the load test and print its report on `out`.
pub(crate) async fn run(ctx: &Context, args: ServeArgs, out: &mut dyn Write) -> Result<()> {
    if args.concurrency == 0 || args.requests == 0 {
        return Err(lanceflow::Error::InvalidInput(
            "--concurrency and --requests must be at least 1".into(),
        )
        .into());
    }
    let queries = read_queries(&args)?;
    let modes: Vec<Mode> = args
        .mode
        .iter()
        .map(|m| match m.as_str() {
            "text" => Mode::Text,
            "hybrid" => Mode::Hybrid,
            _ => Mode::Vector,
        })
        .collect();
    let authorization = match &args.api_key_env {
        Some(name) => Some(format!(
            "Bearer {}",
            std::env::var(name).map_err(|_| lanceflow::Error::InvalidInput(format!(
                "--api-key-env {name}: the environment variable is not set"
            )))?
        )),
        None => None,
    };

    // The fault proxy and its rule, checked before any work.
    let faults = match (&args.fault_proxy, &args.fault_rule, &args.dataset) {
        (Some(proxy), Some(rule), Some(dataset)) => {
            let rule: serde_json::Value = serde_json::from_str(rule).map_err(|e| {
                lanceflow::Error::InvalidInput(format!("--fault-rule is not JSON: {e}"))
            })?;
            Some((FaultProxy::new(proxy, dataset)?, rule))
        }
        _ => None,
    };

    // In-process service (and baseline) when a dataset is given.
    let mut local = None;
    if let Some(uri) = &args.dataset {
        let location = ctx.uri_location(uri)?;
        let needs_model = modes.iter().any(|m| *m != Mode::Text);
        let retriever = Arc::new(
            Retriever::open(location, None, needs_model.then(|| args.model.options())).await?,
        );
        let (listener, addr) = bind("127.0.0.1:0").await?;
        let state = ServeState::new(
            retriever.clone(),
            ServeOptions {
                api_key: authorization
                    .as_ref()
                    .map(|a| a.trim_start_matches("Bearer ").to_string()),
                max_concurrency: args
                    .concurrency
                    .clamp(64, tokio::sync::Semaphore::MAX_PERMITS),
                ..ServeOptions::default()
            },
        )?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(listener, state, async {
            let _ = stopped.await;
        }));
        local = Some((retriever, format!("http://{addr}"), stop, server));
    }
    let url = match (&args.url, &local) {
        (Some(url), _) => url.clone(),
        (None, Some((_, url, _, _))) => url.clone(),
        (None, None) => {
            return Err(lanceflow::Error::InvalidInput("give --url or --dataset".into()).into())
        }
    };
    let authority = authority(&url)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Per mode: the requests, the in-process baseline and a warm-up.
    struct Prepared {
        mode: Mode,
        bodies: Arc<Vec<Bytes>>,
        expected: Option<Arc<Vec<Answer>>>,
        baseline: Option<(Percentiles, Percentiles)>,
        samples: Vec<Sample>,
        seconds: f64,
        round_p50s: Vec<f64>,
    }
    let mut prepared = Vec::with_capacity(modes.len());
    for mode in modes {
        let requests: Vec<RetrievalRequest> = queries
            .iter()
            .map(|q| request_for(&args, mode, q))
            .collect();
        let bodies: Arc<Vec<Bytes>> = Arc::new(
            requests
                .iter()
                .map(|r| serde_json::to_vec(r).map(Bytes::from))
                .collect::<Result<_, _>>()?,
        );
        let baseline = match &local {
            Some((retriever, ..)) => {
                Some(in_process(retriever, &requests, args.concurrency, args.warmup).await?)
            }
            None => None,
        };
        let expected = match (&local, args.verify) {
            (Some((retriever, ..)), true) => {
                let mut answers = Vec::with_capacity(requests.len());
                for r in &requests {
                    answers.push(Answer::of(retriever.search(r).await?));
                }
                Some(Arc::new(answers))
            }
            _ => None,
        };
        // Warm-up over HTTP (one client).
        let mut client = Client::connect(&authority, authorization.clone()).await?;
        for body in bodies.iter().cycle().take(args.warmup) {
            let (status, text) = client.post("/v1/search", body.clone()).await?;
            if !status.is_success() {
                return Err(lanceflow::Error::InvalidInput(format!(
                    "the service answered {status} to a warm-up request: {}",
                    String::from_utf8_lossy(&text)
                ))
                .into());
            }
        }
        prepared.push(Prepared {
            mode,
            bodies,
            expected,
            baseline,
            samples: Vec::new(),
            seconds: 0.0,
            round_p50s: Vec::new(),
        });
    }
    // Storage faults and the adversary cover the measured load only.
    if let Some((proxy, rule)) = &faults {
        proxy.install(rule).await?;
    }
    let stop_adversary = Arc::new(AtomicBool::new(false));
    let adversary = args.adversary.then(|| {
        tokio::spawn(adversary::adversary(
            authority.clone(),
            authorization.clone(),
            adversary::bodies(ADVERSARY_DIM),
            stop_adversary.clone(),
        ))
    });
    // The measured load: each mode's requests in `rounds` slices, the modes
    // taking turns (in alternating order), so that a drift of the machine's
    // speed — tens of percent within a minute on a shared machine — falls on
    // every mode alike instead of on whichever ran last.
    let rounds = args.rounds.clamp(1, args.requests);
    for round in 0..rounds {
        // Round r ends after requests · (r + 1) / rounds requests (in u128: no
        // overflow whatever --requests is).
        let end = |r: usize| (args.requests as u128 * r as u128 / rounds as u128) as usize;
        let slice = end(round + 1) - end(round);
        let order: Vec<usize> = if round % 2 == 0 {
            (0..prepared.len()).collect()
        } else {
            (0..prepared.len()).rev().collect()
        };
        for i in order {
            let p = &mut prepared[i];
            let (samples, seconds) = load(
                &authority,
                authorization.clone(),
                p.bodies.clone(),
                p.expected.clone(),
                args.concurrency,
                slice,
            )
            .await?;
            p.round_p50s.push(
                percentiles(
                    samples
                        .iter()
                        .filter(|s| (200..300).contains(&s.status))
                        .map(|s| s.end_to_end_ms)
                        .collect(),
                )
                .p50,
            );
            p.samples.extend(samples);
            p.seconds += seconds;
        }
    }

    stop_adversary.store(true, Ordering::Relaxed);
    let adversary = match adversary {
        Some(task) => Some(task.await?),
        None => None,
    };
    let s3_faults_injected = match &faults {
        Some((proxy, _)) => Some(proxy.clear().await?),
        None => None,
    };
    // The service still answers after all of it.
    let alive_after = match Client::connect(&authority, authorization.clone()).await {
        Ok(mut client) => client
            .send("GET", "/health", Bytes::new())
            .await
            .is_ok_and(|(status, _)| status.is_success()),
        Err(_) => false,
    };

    let mut reports = Vec::new();
    for p in prepared {
        let Prepared {
            mode,
            baseline,
            samples,
            seconds,
            round_p50s,
            ..
        } = p;
        let ok: Vec<&Sample> = samples
            .iter()
            .filter(|s| (200..300).contains(&s.status))
            .collect();
        let mut statuses = std::collections::BTreeMap::new();
        for s in samples.iter().filter(|s| !(200..300).contains(&s.status)) {
            *statuses.entry(s.status).or_insert(0usize) += 1;
        }
        let verified = ok.iter().filter(|s| s.correct.is_some()).count();
        let wrong = ok.iter().filter(|s| s.correct == Some(false)).count();
        let end_to_end = percentiles(ok.iter().map(|s| s.end_to_end_ms).collect());
        let qps = ok.len() as f64 / seconds;
        let (seq, conc) = match baseline {
            Some((s, c)) => (Some(s), Some(c)),
            None => (None, None),
        };
        reports.push(ModeReport {
            mode: format!("{mode:?}").to_lowercase(),
            requests: samples.len(),
            errors: samples.len() - ok.len(),
            error_statuses: statuses.into_iter().collect(),
            verified,
            wrong,
            seconds,
            qps,
            retrieval_ms: percentiles(ok.iter().map(|s| s.retrieval_ms).collect()),
            embed_ms: percentiles(ok.iter().map(|s| s.embed_ms).collect()),
            p99_over_in_process_p50: conc.as_ref().map(|c| end_to_end.p99 / c.p50),
            p99_over_sequential_p50: seq.as_ref().map(|s| end_to_end.p99 / s.p50),
            qps_over_capacity: seq.as_ref().map(|s| qps / (cores as f64 / (s.p50 / 1e3))),
            end_to_end_ms: end_to_end,
            in_process_sequential_ms: seq,
            in_process_concurrent_ms: conc,
            round_p50_ms: round_p50s,
        });
    }
    if let Some((_, _, stop, server)) = local {
        let _ = stop.send(());
        server.await??;
    }

    let p50_of = |mode: &str| {
        reports
            .iter()
            .find(|r| r.mode == mode)
            .map(|r| r.end_to_end_ms.p50)
    };
    let hybrid_over_vector = match (p50_of("hybrid"), p50_of("vector")) {
        (Some(h), Some(v)) => Some(h / v),
        _ => None,
    };
    // The same ratio round by round (both modes measured side by side).
    let rounds_of = |mode: &str| {
        reports
            .iter()
            .find(|r| r.mode == mode)
            .map(|r| &r.round_p50_ms)
    };
    let round_ratios: Option<Vec<f64>> = match (rounds_of("hybrid"), rounds_of("vector")) {
        (Some(h), Some(v)) => Some(h.iter().zip(v).map(|(h, v)| h / v).collect()),
        _ => None,
    };
    let ratio_median = round_ratios.as_deref().and_then(median);
    let checks = target_checks(&reports, hybrid_over_vector);
    if ctx.json {
        return print_json(
            out,
            &serde_json::json!({
                "url": url,
                "concurrency": args.concurrency,
                "cores": cores,
                "modes": reports,
                "rounds": rounds,
                "hybrid_p50_over_vector_p50": hybrid_over_vector,
                "hybrid_over_vector_by_round": round_ratios,
                "hybrid_over_vector_round_median": ratio_median,
                "targets": checks,
                "adversary": adversary,
                "s3_faults_injected": s3_faults_injected,
                "alive_after": alive_after,
            }),
        );
    }
    writeln!(
        out,
        "{url}: {} concurrent clients, {} requests per mode in {rounds} round(s), {cores} cores",
        args.concurrency, args.requests
    )?;
    writeln!(
        out,
        "| mode | QPS | end-to-end p50 / p95 / p99 ms | retrieval p50 / p95 / p99 ms | embed p50 ms | errors | in-process p50 (1 at a time) | in-process p50 / p99 ({} at a time) | p99 ÷ in-process p50 (same concurrency / 1 at a time) | QPS ÷ capacity |",
        args.concurrency
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
    for r in &reports {
        let fmt = |p: &Percentiles| format!("{:.1} / {:.1} / {:.1}", p.p50, p.p95, p.p99);
        writeln!(
            out,
            "| {} | {:.1} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            r.mode,
            r.qps,
            fmt(&r.end_to_end_ms),
            fmt(&r.retrieval_ms),
            r.embed_ms.p50,
            r.errors,
            r.in_process_sequential_ms
                .as_ref()
                .map_or("—".into(), |p| format!("{:.1} ms", p.p50)),
            r.in_process_concurrent_ms
                .as_ref()
                .map_or("—".into(), |p| format!("{:.1} / {:.1} ms", p.p50, p.p99)),
            match (r.p99_over_in_process_p50, r.p99_over_sequential_p50) {
                (Some(c), Some(s)) => format!("{c:.2}× / {s:.1}×"),
                _ => "—".into(),
            },
            r.qps_over_capacity
                .map_or("—".into(), |x| format!("{x:.2}")),
        )?;
    }
    if let Some(ratio) = hybrid_over_vector {
        write!(out, "hybrid p50 ÷ vector p50 (end to end): {ratio:.2}×")?;
        match (&round_ratios, ratio_median) {
            (Some(r), Some(median)) if r.len() > 1 => {
                let each: Vec<String> = r.iter().map(|x| format!("{x:.2}")).collect();
                writeln!(out, "; by round {} (median {median:.2}×)", each.join(", "))?;
            }
            _ => writeln!(out)?,
        }
    }
    if reports.iter().any(|r| r.verified > 0) {
        let each: Vec<String> = reports
            .iter()
            .map(|r| format!("{} {} of {} wrong", r.mode, r.wrong, r.verified))
            .collect();
        writeln!(
            out,
            "answers checked against the engine's own: {}",
            each.join("; ")
        )?;
    }
    if let Some(a) = &adversary {
        let statuses: Vec<String> = a.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        writeln!(
            out,
            "adversary: {} bodies sent, answers {}, {} closed connection(s), {} broken promise(s){}",
            a.sent,
            statuses.join(" "),
            a.connection_errors,
            a.broken.len(),
            if a.broken.is_empty() {
                String::new()
            } else {
                format!(": {}", a.broken.join("; "))
            }
        )?;
    }
    if let Some(injected) = &s3_faults_injected {
        writeln!(out, "S3 faults injected during the load: {injected}")?;
    }
    writeln!(
        out,
        "/health after the load: {}",
        if alive_after { "200" } else { "NO ANSWER" }
    )?;
    if !checks.is_empty() {
        let each: Vec<String> = checks
            .iter()
            .map(|c| {
                let verdict = if c.met { "met" } else { "NOT met" };
                format!("{} {:.2} ({} {verdict})", c.name, c.value, c.bound)
            })
            .collect();
        writeln!(out, "targets: {}", each.join("; "))?;
    }
    Ok(())
}

/// One of the service's targets with its measured value.
#[derive(Debug, Serialize)]
struct TargetCheck {
    name: &'static str,
    value: f64,
    /// "≥ 0.8", "≤ 4": the bound the value must keep.
    bound: &'static str,
    met: bool,
}

/// The service's targets: vector QPS ≥ 0.8 × capacity (cores ÷ in-process
/// p50), vector p99 ≤ 4 × the in-process p50 at the same concurrency, hybrid
/// p50 ≤ 1.2 × vector p50. Only those the run measured.
fn target_checks(reports: &[ModeReport], hybrid_over_vector: Option<f64>) -> Vec<TargetCheck> {
    let vector = reports.iter().find(|r| r.mode == "vector");
    let candidates = [
        (
            "vector QPS ÷ capacity",
            vector.and_then(|r| r.qps_over_capacity),
            "≥ 0.8",
            true,
            0.8,
        ),
        (
            "vector p99 ÷ in-process p50 (same concurrency)",
            vector.and_then(|r| r.p99_over_in_process_p50),
            "≤ 4",
            false,
            4.0,
        ),
        (
            "hybrid p50 ÷ vector p50",
            hybrid_over_vector,
            "≤ 1.2",
            false,
            1.2,
        ),
    ];
    candidates
        .into_iter()
        .filter_map(|(name, value, bound, at_least, limit)| {
            value.map(|value| TargetCheck {
                name,
                value,
                bound,
                met: if at_least {
                    value >= limit
                } else {
                    value <= limit
                },
            })
        })
        .collect()
}
