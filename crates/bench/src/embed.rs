//! `lanceflow-bench embed`: embedding throughput on short glosses and long
//! paragraphs, next to sentence-transformers (PyTorch CPU) when installed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;
use lanceflow::embedding::{Backend, Embedder, EmbedderOptions};
use lanceflow_cli::{print_json, Context, ModelArgs};
use serde::Serialize;

use crate::common::reference_script;

// `lanceflow-bench embed` arguments (no doc comment: the subcommand's help is
// the one in main.rs).
#[derive(Debug, Args)]
pub(crate) struct EmbedArgs {
    /// WordNet database directory (the texts).
    #[arg(long, default_value = lanceflow::corpus::DEFAULT_WORDNET_DIR)]
    dict: PathBuf,
    /// Short texts (WordNet glosses).
    #[arg(long, default_value_t = 5000)]
    short: usize,
    /// Long paragraphs (at least 200 tokens each).
    #[arg(long, default_value_t = 2000)]
    long: usize,
    /// Skip the sentence-transformers reference.
    #[arg(long)]
    no_reference: bool,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "auto,native")]
    backends: Vec<Backend>,
    /// Scratch directory (default: a temp dir).
    #[arg(long)]
    scratch: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct Workload {
    name: String,
    texts: usize,
    tokens: usize,
    mean_tokens: f64,
    backend: String,
    threads: usize,
    seconds: f64,
    texts_per_second: f64,
    tokens_per_second: f64,
    /// sentence-transformers on the same texts and threads, when installed.
    reference_texts_per_second: Option<f64>,
    /// ours ÷ reference.
    speedup: Option<f64>,
    /// Lowest cosine between our vectors and the reference's.
    min_cosine_vs_reference: Option<f64>,
    reference_peak_rss_mb: Option<f64>,
}

#[derive(Serialize)]
struct BenchEmbedReport {
    model: String,
    workloads: Vec<Workload>,
    /// Peak resident memory of this process (model, texts, vectors).
    peak_rss_mb: f64,
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Glosses: the `text` field of the WordNet corpus, in file order.
fn glosses(dict: &Path, scratch: &Path) -> Result<Vec<String>> {
    let jsonl = scratch.join("wordnet.jsonl");
    lanceflow::corpus::convert_wordnet(dict, &jsonl, None)?;
    let text = std::fs::read_to_string(&jsonl)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect())
}

/// Paragraphs of at least `min_tokens` tokens, built from consecutive glosses.
fn paragraphs(
    e: &Embedder,
    glosses: &[String],
    count: usize,
    min_tokens: usize,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut tokens = 0usize;
    for g in glosses.iter().cycle().take(glosses.len() * 4) {
        if out.len() == count {
            break;
        }
        current.push_str(g);
        current.push_str(". ");
        tokens += e
            .tokenize(&[g.as_str()])?
            .first()
            .map_or(0, |ids| ids.len().saturating_sub(1));
        if tokens >= min_tokens + 8 {
            out.push(std::mem::take(&mut current));
            tokens = 0;
        }
    }
    anyhow::ensure!(out.len() == count, "not enough text for {count} paragraphs");
    Ok(out)
}

fn reference(
    model: &Path,
    texts: &[String],
    threads: usize,
    batch: usize,
    scratch: &Path,
    name: &str,
) -> Option<(serde_json::Value, lanceflow::vectors::Matrix)> {
    // The checkout the command runs in, else the one the binary was built in.
    let script = reference_script("bench_st_embed.py")?;
    let texts_file = scratch.join(format!("{name}.json"));
    let npy = scratch.join(format!("{name}.npy"));
    std::fs::write(&texts_file, serde_json::to_vec(texts).ok()?).ok()?;
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(model)
        .arg(&texts_file)
        .arg(threads.to_string())
        .arg(batch.to_string())
        .arg(&npy)
        .output()
        .ok()?;
    if !out.status.success() {
        tracing::warn!(
            "sentence-transformers reference unavailable: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let vectors = lanceflow::vectors::read_npy(&npy).ok()?;
    Some((stats, vectors))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-30)
}

/// Run the embedding benchmark and print its report on `out`.
pub(crate) async fn run(ctx: &Context, args: EmbedArgs, out: &mut dyn Write) -> Result<()> {
    let threads = args
        .model
        .threads
        .unwrap_or_else(lanceflow::spine::default_workers);
    let options = EmbedderOptions {
        threads,
        ..args.model.options()
    };
    let scratch_dir;
    let scratch: PathBuf = match &args.scratch {
        Some(p) => {
            std::fs::create_dir_all(p)?;
            p.clone()
        }
        None => {
            scratch_dir = tempfile::tempdir()?;
            scratch_dir.path().to_path_buf()
        }
    };
    let backends = args.backends.clone();
    anyhow::ensure!(!backends.is_empty(), "--backends names no backend");
    let embedders = backends
        .iter()
        .map(|&backend| {
            Embedder::load(&EmbedderOptions {
                backend,
                ..options.clone()
            })
        })
        .collect::<lanceflow::Result<Vec<_>>>()?;
    let embedder = embedders.first().context("--backends names no backend")?;
    let all = glosses(&args.dict, &scratch).context("reading WordNet glosses")?;
    let short: Vec<String> = all.iter().take(args.short).cloned().collect();
    let long = paragraphs(embedder, &all, args.long, 200)?;

    let mut workloads = Vec::new();
    for (name, texts) in [("wordnet_glosses", &short), ("long_paragraphs", &long)] {
        let reference = if args.no_reference {
            None
        } else {
            reference(
                embedder.model_dir(),
                texts,
                threads,
                options.batch_size,
                &scratch,
                name,
            )
        };
        for embedder in &embedders {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            // Warm-up (page in the weights, size the allocator).
            embedder.embed(&refs[..refs.len().min(64)])?;
            let started = Instant::now();
            let (ours, tokens) = embedder.embed_with_stats(&refs)?;
            let seconds = started.elapsed().as_secs_f64();
            let texts_per_second = texts.len() as f64 / seconds;
            let mut w = Workload {
                name: name.to_string(),
                texts: texts.len(),
                tokens,
                mean_tokens: tokens as f64 / texts.len().max(1) as f64,
                backend: embedder.backend().as_str().into(),
                threads,
                seconds,
                texts_per_second,
                tokens_per_second: tokens as f64 / seconds,
                reference_texts_per_second: None,
                speedup: None,
                min_cosine_vs_reference: None,
                reference_peak_rss_mb: None,
            };
            {
                if let Some((stats, theirs)) = &reference {
                    let tps = stats["texts_per_second"].as_f64();
                    w.reference_texts_per_second = tps;
                    w.speedup = tps.map(|t| texts_per_second / t);
                    w.reference_peak_rss_mb = stats["peak_rss_mb"].as_f64();
                    if theirs.rows() == ours.rows() {
                        w.min_cosine_vs_reference = Some(
                            (0..ours.rows())
                                .map(|i| cosine(ours.row(i), theirs.row(i)))
                                .fold(1.0, f64::min),
                        );
                    }
                }
            }
            workloads.push(w);
        }
    }
    let report = BenchEmbedReport {
        model: embedder.model_dir().display().to_string(),
        workloads,
        peak_rss_mb: peak_rss_mb(),
    };
    if ctx.json {
        return print_json(out, &report);
    }
    writeln!(out, "model: {}", report.model)?;
    for w in &report.workloads {
        let reference = match (w.reference_texts_per_second, w.speedup) {
            (Some(r), Some(s)) => format!(
                "; sentence-transformers {:.1} texts/s → {:.2}×, min cosine {:.6}",
                r,
                s,
                w.min_cosine_vs_reference.unwrap_or(f64::NAN)
            ),
            _ => "; sentence-transformers not measured".into(),
        };
        writeln!(
            out,
            "{:<16} {:<6} {:>5} texts, {:>6.1} tokens/text, {} threads: {:.1} texts/s, {:.0} tokens/s{reference}",
            w.name, w.backend, w.texts, w.mean_tokens, w.threads, w.texts_per_second, w.tokens_per_second
        )?;
    }
    writeln!(out, "peak memory: {:.0} MB", report.peak_rss_mb)?;
    Ok(())
}
