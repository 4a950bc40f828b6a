//! Distributed training of IVF centroids and PQ codebooks.
//!
//! The lance crate trains both on the driver alone, which dominates an
//! IVF_PQ build. Here training is plan → tasks → merge, in three stages:
//!
//! 1. **Sample.** One task per run of fragments draws its share of the
//!    training rows (proportional to its rows, seeded), normalises them for
//!    cosine, writes them as one `.npy` shard to a scratch directory of the
//!    dataset's store (`_lanceflow/train/<run>/`) and returns a small
//!    sub-sample that seeds k-means.
//! 2. **IVF k-means.** The driver seeds the centroids with k-means++ on the
//!    sub-samples, then iterates: one task per shard returns per-centroid
//!    sums and counts ([`Partial`]); the driver merges them in shard order
//!    and moves the centroids ([`crate::index::vector::kmeans::update`]) until the
//!    objective changes by less than 1e-4 or `max_iters` is reached.
//! 3. **PQ.** The M sub-quantizers are independent: each task trains a
//!    range of them, on the residuals (vector − nearest IVF centroid; raw
//!    vectors for dot, as lance does) of a seeded subset of the sample.
//!
//! The scratch directory is removed at the end. Merges happen in plan order
//! and every random draw is seeded from the plan, so the same seed, data and
//! plan give byte-identical artifacts whichever worker runs which task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arrow_array::{Array, FixedSizeListArray, Float32Array};
use arrow_schema::DataType;
use futures::TryStreamExt as _;
use lance::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::dataset::fragments::contiguous_runs;
use crate::error::{ensure_invalid, Error, Result};
use crate::index::metric::Metric;
use crate::index::vector::kmeans::{self, KMeansDistance, Partial, StopRule};
use crate::progress::{note, Progress};
use crate::spine::Executor;
use crate::spine::{run_tasks, DistributedOp};
use crate::storage::{Location, VersionSpec};
use crate::vectors::{npy_bytes, parse_npy, Matrix, Rng};

/// Rows of sub-sample per centroid that seed k-means++.
const SEED_ROWS_PER_CENTROID: usize = 32;

/// What to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    /// The index's metric.
    pub metric: Metric,
    /// IVF partitions.
    pub partitions: usize,
    /// PQ sub-vectors (0: no PQ codebook).
    pub sub_vectors: usize,
    /// Bits per PQ code.
    pub num_bits: usize,
    /// Training rows per centroid (IVF: × partitions; PQ: × 2^bits).
    pub sample_rate: usize,
    /// k-means iterations at most.
    pub max_iters: usize,
    /// Seed of every random draw.
    pub seed: u64,
}

/// Trained artifacts.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// IVF centroids (partitions × dim).
    pub centroids: Matrix,
    /// PQ codebook (2^bits × dim, sub-vector-major as lance lays it out).
    pub codebook: Option<Matrix>,
    /// IVF k-means iterations run.
    pub iterations: usize,
    /// Mean distance of a sample row to its IVF centroid (the k-means objective).
    pub objective: f64,
    /// Training rows drawn.
    pub sample_rows: usize,
    /// Shards (= sample tasks).
    pub shards: usize,
}

/// Stage 1: draw one shard of the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleTask {
    /// The dataset.
    pub location: Location,
    /// Pinned version.
    pub version: u64,
    /// Vector column.
    pub column: String,
    /// Fragments to draw from.
    pub fragments: Vec<u32>,
    /// Rows to draw (at most the fragments' live rows).
    pub take: usize,
    /// Seed of this shard's draw.
    pub seed: u64,
    /// Normalise rows (cosine).
    pub normalize: bool,
    /// Where the shard goes, relative to the dataset.
    pub shard: String,
    /// Rows of the drawn sample returned to seed k-means++.
    pub seed_rows: usize,
}

/// What a sample task returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleOutput {
    /// Rows written to the shard.
    pub rows: usize,
    /// A random subset of them, for k-means++.
    pub seeds: Matrix,
}

/// Stage 2: one k-means iteration over one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansStepTask {
    /// The dataset (whose store holds the shard).
    pub location: Location,
    /// The shard, relative to the dataset.
    pub shard: String,
    /// Current centroids.
    pub centroids: Matrix,
    /// Distance.
    pub distance: KMeansDistance,
}

/// Stage 3: train some of the PQ sub-quantizers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PqTrainTask {
    /// The dataset (whose store holds the shards).
    pub location: Location,
    /// Every shard, in plan order.
    pub shards: Vec<String>,
    /// IVF centroids (residuals are taken against them).
    pub ivf: Matrix,
    /// Train on residuals (L2, cosine) or on the vectors (dot).
    pub residual: bool,
    /// The sub-quantizers this task trains.
    pub sub_vectors: Vec<usize>,
    /// All sub-quantizers (the sub-vector width is dim / this).
    pub total_sub_vectors: usize,
    /// Bits per code (2^bits centroids each).
    pub num_bits: usize,
    /// Training rows at most.
    pub rows: usize,
    /// When to stop.
    pub stop: StopRule,
    /// Seed of the row subset and the seeding.
    pub seed: u64,
}

/// What a PQ task returns: one (2^bits × sub-dim) codebook per sub-quantizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PqTrainOutput {
    /// The sub-quantizers trained.
    pub sub_vectors: Vec<usize>,
    /// Their codebooks, in the same order.
    pub codebooks: Vec<Matrix>,
}

/// Stage 1 as the worker knows it.
pub struct SampleOp;

impl DistributedOp for SampleOp {
    const NAME: &'static str = "train_sample";
    type Task = SampleTask;
    type Output = SampleOutput;

    fn label(task: &SampleTask) -> String {
        format!(
            "{} rows of fragments {}",
            task.take,
            crate::dataset::fragments::fragment_ranges(&task.fragments)
        )
    }

    async fn execute(task: SampleTask) -> Result<SampleOutput> {
        sample(task).await
    }
}

/// Stage 2 as the worker knows it.
pub struct KMeansStepOp;

impl DistributedOp for KMeansStepOp {
    const NAME: &'static str = "train_kmeans_step";
    type Task = KMeansStepTask;
    type Output = Partial;

    fn label(task: &KMeansStepTask) -> String {
        format!("{} centroids over {}", task.centroids.rows(), task.shard)
    }

    async fn execute(task: KMeansStepTask) -> Result<Partial> {
        let shard = load_shard(&task.location, &task.shard).await?;
        let key = shard_key(&task.location, &task.shard);
        // This worker's bounds of the shard from an earlier iteration, if it
        // ran one: they only save work, the partial is the same without.
        let mut bounds = bounds_cache().lock().ok().and_then(|mut c| c.remove(&key));
        let (partial, bounds) = tokio::task::spawn_blocking(move || {
            let partial = Partial::step(&shard, &task.centroids, task.distance, &mut bounds);
            (partial, bounds)
        })
        .await
        .map_err(|e| Error::Internal(format!("k-means step: {e}")))?;
        if let Some(b) = &bounds {
            tracing::debug!(shard = %key, searched = b.searched(), "k-means step");
        }
        if let (Some(bounds), Ok(mut cache)) = (bounds, bounds_cache().lock()) {
            cache.insert(key, bounds);
        }
        partial
    }
}

/// Stage 3 as the worker knows it.
pub struct PqTrainOp;

impl DistributedOp for PqTrainOp {
    const NAME: &'static str = "train_pq";
    type Task = PqTrainTask;
    type Output = PqTrainOutput;

    fn label(task: &PqTrainTask) -> String {
        format!(
            "sub-vectors {}",
            crate::dataset::fragments::fragment_ranges(
                &task
                    .sub_vectors
                    .iter()
                    .map(|&m| m as u32)
                    .collect::<Vec<_>>()
            )
        )
    }

    async fn execute(task: PqTrainTask) -> Result<PqTrainOutput> {
        let mut shards = Vec::with_capacity(task.shards.len());
        for shard in &task.shards {
            shards.push(load_shard(&task.location, shard).await?);
        }
        tokio::task::spawn_blocking(move || train_pq(&task, &shards))
            .await
            .map_err(|e| Error::Internal(format!("PQ training: {e}")))?
    }
}

/// The dataset's object store and the scratch directory `rel` in it.
async fn scratch_store(
    location: &Location,
    rel: &str,
) -> Result<(Arc<lance::io::ObjectStore>, object_store::path::Path)> {
    location
        .store_dir(rel, "open the training scratch store")
        .await
}

/// Shards read by this process, by dataset URI and path: a worker reads each
/// shard once per training run, not once per k-means iteration. Bounded:
/// the oldest entries go first.
fn shard_cache() -> &'static Mutex<Vec<(String, Arc<Matrix>)>> {
    static CACHE: OnceLock<Mutex<Vec<(String, Arc<Matrix>)>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Vec::new()))
}

const SHARD_CACHE_ENTRIES: usize = 16;

/// Hamerly's bounds of the shards this process ran k-means steps on, by the
/// same key as the shard cache (dropped with it).
fn bounds_cache() -> &'static Mutex<HashMap<String, kmeans::Bounds>> {
    static CACHE: OnceLock<Mutex<HashMap<String, kmeans::Bounds>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn shard_key(location: &Location, shard: &str) -> String {
    format!("{}#{shard}", location.uri())
}

async fn load_shard(location: &Location, shard: &str) -> Result<Arc<Matrix>> {
    let key = shard_key(location, shard);
    if let Ok(cache) = shard_cache().lock() {
        if let Some((_, m)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(m.clone());
        }
    }
    let (store, path) = scratch_store(location, shard).await?;
    let bytes = store
        .read_one_all(&path)
        .await
        .map_err(|e| location.lance_error("read a training shard", e))?;
    let matrix = Arc::new(
        parse_npy(&bytes)
            .map_err(|e| Error::Internal(format!("training shard {shard} is unreadable: {e}")))?,
    );
    if let Ok(mut cache) = shard_cache().lock() {
        if cache.len() >= SHARD_CACHE_ENTRIES {
            cache.remove(0);
        }
        cache.push((key, matrix.clone()));
    }
    Ok(matrix)
}

fn forget_shards(location: &Location, run: &str) {
    let prefix = shard_key(location, run);
    if let Ok(mut cache) = shard_cache().lock() {
        cache.retain(|(k, _)| !k.starts_with(&prefix));
    }
    if let Ok(mut cache) = bounds_cache().lock() {
        cache.retain(|k, _| !k.starts_with(&prefix));
    }
}

/// `take` distinct indices of `0..n`, seeded, in draw order (Floyd's method
/// would lose the order; a partial Fisher–Yates over a map keeps it cheap).
fn draw(n: usize, take: usize, seed: u64) -> Vec<usize> {
    let take = take.min(n);
    let mut rng = Rng::new(seed);
    let mut swapped: HashMap<usize, usize> = HashMap::new();
    let mut out = Vec::with_capacity(take);
    for i in 0..take {
        let j = i + rng.below(n - i);
        let at_j = *swapped.get(&j).unwrap_or(&j);
        let at_i = *swapped.get(&i).unwrap_or(&i);
        swapped.insert(j, at_i);
        out.push(at_j);
    }
    out
}

/// Vectors of a FixedSizeList column as f32 rows; null or non-finite rows
/// are skipped (lance's trainer drops them too).
fn push_rows(fsl: &FixedSizeListArray, out: &mut Vec<f32>) -> Result<usize> {
    let values = fsl.values();
    let floats: Float32Array = match values.data_type() {
        DataType::Float32 => values
            .as_any()
            .downcast_ref::<Float32Array>()
            .cloned()
            .ok_or_else(|| Error::Internal("float32 values".into()))?,
        _ => arrow_cast::cast(values, &DataType::Float32)
            .map_err(|e| Error::Internal(format!("vector values to float32: {e}")))?
            .as_any()
            .downcast_ref::<Float32Array>()
            .cloned()
            .ok_or_else(|| Error::Internal("float32 cast".into()))?,
    };
    let dim = fsl.value_length() as usize;
    let offset = fsl.offset();
    let mut kept = 0;
    for i in 0..fsl.len() {
        if fsl.is_null(i) {
            continue;
        }
        let row = &floats.values()[(offset + i) * dim..(offset + i + 1) * dim];
        if row.iter().all(|v| v.is_finite()) {
            out.extend_from_slice(row);
            kept += 1;
        }
    }
    Ok(kept)
}

async fn sample(task: SampleTask) -> Result<SampleOutput> {
    let location = &task.location;
    location.pin_memory_store().await?;
    let dataset = location
        .open(Some(&VersionSpec::Number(task.version)))
        .await?;
    let dim = crate::dataset::columns::vector_dimension(&dataset, &task.column)?;
    let fragments = crate::dataset::read::fragment_metadata(location, &dataset, &task.fragments)?;
    let err = |e| location.lance_error("read vectors for training", e);
    let mut scanner = dataset.scan();
    scanner.with_fragments(fragments);
    scanner.scan_in_order(true);
    scanner.project(&[task.column.as_str()]).map_err(err)?;
    let mut stream = scanner.try_into_stream().await.map_err(err)?;
    let mut all = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = stream.try_next().await.map_err(err)? {
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .ok_or_else(|| Error::Internal("vector column is not a FixedSizeList".into()))?;
        rows += push_rows(column, &mut all)?;
    }
    let order = draw(rows, task.take, task.seed);
    // The shard keeps the dataset's order (reads stay sequential); the seed
    // rows are the first of the random draw.
    let mut chosen = order.clone();
    chosen.sort_unstable();
    let gather = |ids: &[usize]| -> Result<Matrix> {
        let mut data = Vec::with_capacity(ids.len() * dim);
        for &i in ids {
            data.extend_from_slice(&all[i * dim..(i + 1) * dim]);
        }
        let mut m = Matrix::new(dim, data)?;
        if task.normalize {
            kmeans::normalize_rows(&mut m);
        }
        Ok(m)
    };
    let shard = gather(&chosen)?;
    let seeds = gather(&order[..task.seed_rows.min(order.len())])?;
    let (store, path) = scratch_store(location, &task.shard).await?;
    store
        .put(&path, &npy_bytes(&shard)?)
        .await
        .map_err(|e| location.lance_error("write a training shard", e))?;
    Ok(SampleOutput {
        rows: shard.rows(),
        seeds,
    })
}

/// Train this task's sub-quantizers (worker side, blocking).
fn train_pq(task: &PqTrainTask, shards: &[Arc<Matrix>]) -> Result<PqTrainOutput> {
    let dim = task.ivf.dim;
    let total: usize = shards.iter().map(|s| s.rows()).sum();
    // The same seeded subset of the sample in every task.
    let mut picked = draw(total, task.rows, task.seed);
    picked.sort_unstable();
    let mut data = Vec::with_capacity(picked.len() * dim);
    let mut next = picked.iter().peekable();
    let mut base = 0;
    for shard in shards {
        while let Some(&&i) = next.peek() {
            if i >= base + shard.rows() {
                break;
            }
            data.extend_from_slice(shard.row(i - base));
            next.next();
        }
        base += shard.rows();
    }
    let mut vectors = Matrix::new(dim, data)?;
    if task.residual {
        let (labels, _) = kmeans::assign(&vectors, &task.ivf, KMeansDistance::L2)?;
        for (i, &p) in labels.iter().enumerate() {
            let c = task.ivf.row(p as usize);
            for (v, c) in vectors.data[i * dim..(i + 1) * dim].iter_mut().zip(c) {
                *v -= c;
            }
        }
    }
    let sub_dim = dim / task.total_sub_vectors;
    let k = 1usize << task.num_bits;
    let mut codebooks = Vec::with_capacity(task.sub_vectors.len());
    for &m in &task.sub_vectors {
        let mut slice = Vec::with_capacity(vectors.rows() * sub_dim);
        for i in 0..vectors.rows() {
            slice.extend_from_slice(&vectors.row(i)[m * sub_dim..(m + 1) * sub_dim]);
        }
        let slice = Matrix::new(sub_dim, slice)?;
        let (codebook, _) = kmeans::train(
            &slice,
            k.min(slice.rows()),
            KMeansDistance::L2,
            task.stop,
            task.seed ^ (m as u64).wrapping_mul(0x9E37_79B9),
        )?;
        ensure_invalid!(
            codebook.rows() == k,
            "PQ needs at least {k} training rows for {}-bit codes, the sample has {}",
            task.num_bits,
            slice.rows()
        );
        codebooks.push(codebook);
    }
    Ok(PqTrainOutput {
        sub_vectors: task.sub_vectors.clone(),
        codebooks,
    })
}

/// Shares of `total` proportional to `weights` (largest remainder, ties to
/// the earlier entry), so the shares add up to `total` exactly.
fn proportional(total: usize, weights: &[u64]) -> Vec<usize> {
    let sum: u64 = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights
        .iter()
        .map(|&w| total as f64 * w as f64 / sum as f64)
        .collect();
    let mut shares: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut rest = total.saturating_sub(shares.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for i in order {
        if rest == 0 {
            break;
        }
        if shares[i] < weights[i] as usize {
            shares[i] += 1;
            rest -= 1;
        }
    }
    shares
}

/// Train the IVF centroids (and the PQ codebook) of `column` as tasks on
/// `executor`, against the pinned `dataset`.
#[allow(clippy::too_many_arguments)]
pub async fn train_distributed(
    location: &Location,
    dataset: &Dataset,
    column: &str,
    dim: usize,
    fragments: &[(u32, u64)],
    spec: &TrainSpec,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<Trained> {
    let started = Instant::now();
    let version = dataset.version().version;
    let live: u64 = fragments.iter().map(|f| f.1).sum();
    let k = spec.partitions;
    let pq_rows = if spec.sub_vectors > 0 {
        (1usize << spec.num_bits) * spec.sample_rate
    } else {
        0
    };
    let sample_rows = (k * spec.sample_rate).max(pq_rows).min(live as usize);
    ensure_invalid!(
        sample_rows >= k,
        "{k} partitions need at least {k} rows; the dataset has {live}"
    );
    let shards = executor.parallelism().clamp(1, fragments.len().max(1));
    let groups = contiguous_runs(fragments, shards);
    let takes = proportional(
        sample_rows,
        &groups.iter().map(|(_, rows)| *rows).collect::<Vec<_>>(),
    );
    let seed_rows = proportional(
        (SEED_ROWS_PER_CENTROID * k).min(sample_rows),
        &takes.iter().map(|&t| t as u64).collect::<Vec<_>>(),
    );
    let run = format!("_lanceflow/train/{}", uuid::Uuid::new_v4().simple());
    let distance = match spec.metric {
        Metric::Dot => KMeansDistance::Dot,
        Metric::L2 | Metric::Cosine => KMeansDistance::L2,
    };
    let tasks: Vec<SampleTask> = groups
        .iter()
        .zip(takes.iter().zip(&seed_rows))
        .enumerate()
        .filter(|(_, (_, (&take, _)))| take > 0)
        .map(|(i, ((ids, _), (&take, &seeds)))| SampleTask {
            location: location.clone(),
            version,
            column: column.to_string(),
            fragments: ids.clone(),
            take,
            seed: spec.seed.wrapping_add(i as u64),
            normalize: spec.metric == Metric::Cosine,
            shard: format!("{run}/shard-{i}.npy"),
            seed_rows: seeds,
        })
        .collect();
    note(
        progress,
        SampleOp::NAME,
        format!(
            "distributed training: {sample_rows} sample rows in {} shard(s), {k} partitions{}",
            tasks.len(),
            if spec.sub_vectors > 0 {
                format!(", {} PQ sub-vectors", spec.sub_vectors)
            } else {
                String::new()
            }
        ),
    );
    let result = train_stages(location, dim, spec, distance, &tasks, executor, progress).await;
    // The scratch shards go whatever happened (best effort: cleanup removes
    // leftovers of a crashed run too, as unreferenced files).
    forget_shards(location, &run);
    match scratch_store(location, &run).await {
        Ok((store, dir)) => {
            if let Err(e) = store.remove_dir_all(dir).await {
                tracing::warn!(error = %e, "could not remove the training scratch directory {run}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not open the training scratch store"),
    }
    let mut trained = result?;
    trained.shards = tasks.len();
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        iterations = trained.iterations,
        "distributed training done"
    );
    Ok(trained)
}

/// The executor and the sample shards the training stages run over.
struct Sharded<'a> {
    location: &'a Location,
    shards: &'a [String],
    dim: usize,
    executor: &'a dyn Executor,
    progress: &'a dyn Progress,
}

impl Sharded<'_> {
    /// Lloyd iterations of the IVF centroids, one task per shard each;
    /// returns the iterations run and the final objective.
    async fn ivf_kmeans(
        &self,
        centroids: &mut Matrix,
        distance: KMeansDistance,
        stop: StopRule,
    ) -> Result<(usize, f64)> {
        let (k, dim) = (centroids.rows(), self.dim);
        let stage = Instant::now();
        let mut previous = f64::INFINITY;
        let mut iterations = 0;
        let mut objective = f64::NAN;
        let quiet = crate::progress::NoProgress;
        for _ in 0..stop.max_iters {
            let steps: Vec<KMeansStepTask> = self
                .shards
                .iter()
                .map(|shard| KMeansStepTask {
                    location: self.location.clone(),
                    shard: shard.clone(),
                    centroids: centroids.clone(),
                    distance,
                })
                .collect();
            let partials = run_tasks::<KMeansStepOp>(self.executor, &steps, &quiet).await?;
            let mut merged = Partial::zero(k, dim);
            for p in &partials {
                merged.merge(p)?;
            }
            kmeans::update(centroids, &merged, distance);
            iterations += 1;
            objective = merged.loss / merged.rows().max(1) as f64;
            if stop.converged(previous, merged.loss) {
                break;
            }
            previous = merged.loss;
        }
        note(
            self.progress,
            KMeansStepOp::NAME,
            format!("IVF k-means: {iterations} iteration(s), objective {objective:.6}"),
        );
        tracing::info!(
            seconds = stage.elapsed().as_secs_f64(),
            iterations,
            "IVF k-means"
        );
        Ok((iterations, objective))
    }

    /// The PQ codebook: sub-quantizers trained side by side as tasks,
    /// joined in sub-vector order.
    async fn pq_codebooks(
        &self,
        centroids: &Matrix,
        spec: &TrainSpec,
        stop: StopRule,
    ) -> Result<Matrix> {
        let stage = Instant::now();
        let m = spec.sub_vectors;
        let parts = self.executor.parallelism().clamp(1, m);
        let per = m.div_ceil(parts);
        let pq_tasks: Vec<PqTrainTask> = (0..m)
            .collect::<Vec<_>>()
            .chunks(per)
            .map(|subs| PqTrainTask {
                location: self.location.clone(),
                shards: self.shards.to_vec(),
                ivf: centroids.clone(),
                residual: spec.metric != Metric::Dot,
                sub_vectors: subs.to_vec(),
                total_sub_vectors: m,
                num_bits: spec.num_bits,
                rows: (1usize << spec.num_bits) * spec.sample_rate,
                stop,
                seed: spec.seed ^ 0x5051,
            })
            .collect();
        let outputs = run_tasks::<PqTrainOp>(self.executor, &pq_tasks, self.progress).await?;
        let mut books: Vec<Option<Matrix>> = vec![None; m];
        for o in outputs {
            for (s, book) in o.sub_vectors.into_iter().zip(o.codebooks) {
                if let Some(slot) = books.get_mut(s) {
                    *slot = Some(book);
                }
            }
        }
        let mut flat = Vec::with_capacity((1usize << spec.num_bits) * self.dim);
        for (s, book) in books.into_iter().enumerate() {
            let book =
                book.ok_or_else(|| Error::Internal(format!("no codebook for sub-vector {s}")))?;
            flat.extend_from_slice(&book.data);
        }
        tracing::info!(seconds = stage.elapsed().as_secs_f64(), "PQ codebooks");
        Matrix::new(self.dim, flat)
    }
}

#[allow(clippy::too_many_arguments)]
async fn train_stages(
    location: &Location,
    dim: usize,
    spec: &TrainSpec,
    distance: KMeansDistance,
    tasks: &[SampleTask],
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<Trained> {
    let k = spec.partitions;
    let stage = Instant::now();
    let outputs = run_tasks::<SampleOp>(executor, tasks, progress).await?;
    tracing::info!(seconds = stage.elapsed().as_secs_f64(), "sampling");
    let sample_rows: usize = outputs.iter().map(|o| o.rows).sum();
    ensure_invalid!(
        sample_rows >= k,
        "only {sample_rows} finite vectors to train {k} partitions; lower --partitions"
    );
    let mut seeds = Vec::new();
    for o in &outputs {
        seeds.extend_from_slice(&o.seeds.data);
    }
    let seeds = Matrix::new(dim, seeds)?;
    let stage = Instant::now();
    let mut centroids =
        kmeans::kmeans_plus_plus(&seeds, k.min(seeds.rows()), distance, spec.seed, true)?;
    tracing::info!(
        seconds = stage.elapsed().as_secs_f64(),
        rows = seeds.rows(),
        "k-means++ seeding"
    );
    ensure_invalid!(
        centroids.rows() == k,
        "only {} seed rows for {k} partitions; lower --partitions",
        seeds.rows()
    );

    // IVF k-means: one task per shard and iteration, merged in shard order.
    let stop = StopRule {
        max_iters: spec.max_iters,
        ..StopRule::default()
    };
    let shards: Vec<String> = tasks.iter().map(|t| t.shard.clone()).collect();
    let run = Sharded {
        location,
        shards: &shards,
        dim,
        executor,
        progress,
    };
    let (iterations, objective) = run.ivf_kmeans(&mut centroids, distance, stop).await?;
    let codebook = if spec.sub_vectors > 0 {
        Some(run.pq_codebooks(&centroids, spec, stop).await?)
    } else {
        None
    };
    Ok(Trained {
        centroids,
        codebook,
        iterations,
        objective,
        sample_rows,
        shards: shards.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_distinct_seeded_and_complete() {
        let a = draw(1000, 100, 7);
        let b = draw(1000, 100, 7);
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 100);
        assert!(s.iter().all(|&i| i < 1000));
        let mut all = draw(50, 80, 1);
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert_ne!(draw(1000, 100, 8), a);
    }

    #[test]
    fn proportional_shares_add_up() {
        assert_eq!(proportional(10, &[100, 100, 100]), vec![4, 3, 3]);
        assert_eq!(proportional(7, &[100, 0, 300]), vec![2, 0, 5]);
        assert_eq!(proportional(5, &[2, 2]), vec![2, 2]);
        assert_eq!(proportional(0, &[5]), vec![0]);
    }
}
