//! Lloyd's k-means, cut the way a distributed trainer needs it.
//!
//! The driver holds the centroids. Each iteration, every worker assigns its
//! shard of the training sample to the nearest centroid and returns, per
//! centroid, the sum of its members and their count ([`Partial`]); the
//! driver merges the partials **in shard order** (so the result depends on
//! the data and the plan, never on timing or on which worker ran what) and
//! moves each centroid to its members' mean ([`update`]). Distances come from
//! one GEMM per block of rows (‖x‖² + ‖c‖² − 2·x·c), the way BLAS-backed
//! trainers compute them.
//!
//! Distances follow lance's conventions so the artifacts behave like its own:
//! squared L2 (cosine: the caller normalises the vectors first, centroids
//! stay plain means), and 1 − x·c for dot with centroids kept at unit length.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{ensure_invalid, Error, Result};
use crate::vectors::{Matrix, Rng};

/// Rows per GEMM block when assigning.
const BLOCK: usize = 1024;

/// How k-means measures distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KMeansDistance {
    /// Squared Euclidean distance.
    L2,
    /// 1 − x·c (centroids renormalised to unit length).
    Dot,
}

/// The nearest centroid of every row of `data` and the distance to it.
pub fn assign(
    data: &Matrix,
    centroids: &Matrix,
    distance: KMeansDistance,
) -> Result<(Vec<u32>, Vec<f32>)> {
    let (n, k, d) = (data.rows(), centroids.rows(), data.dim);
    ensure_invalid!(
        centroids.dim == d,
        "centroids have dimension {}, the vectors {d}",
        centroids.dim
    );
    ensure_invalid!(k > 0, "k-means needs at least one centroid");
    if distance == KMeansDistance::L2 && d <= SMALL_DIM {
        return Ok(assign_small_l2(data, centroids));
    }
    let c_norms: Vec<f32> = (0..k).map(|j| norm2(centroids.row(j))).collect();
    let mut labels = Vec::with_capacity(n);
    let mut distances = Vec::with_capacity(n);
    let mut scores = vec![0f32; BLOCK.min(n.max(1)) * k];
    for start in (0..n).step_by(BLOCK) {
        let rows = (n - start).min(BLOCK);
        let block = &data.data[start * d..(start + rows) * d];
        crate::bert::matmul(
            (rows, k, d),
            block,
            d,
            &centroids.data,
            d,
            true,
            &mut scores[..rows * k],
            k,
            false,
            1.0,
        )?;
        for r in 0..rows {
            let s = &scores[r * k..(r + 1) * k];
            let (best, value) = match distance {
                KMeansDistance::L2 => {
                    let mut best = (0usize, f32::INFINITY);
                    for (j, (&dot, &cn)) in s.iter().zip(&c_norms).enumerate() {
                        let v = cn - 2.0 * dot;
                        if v < best.1 {
                            best = (j, v);
                        }
                    }
                    let x = &block[r * d..(r + 1) * d];
                    (best.0, (norm2(x) + best.1).max(0.0))
                }
                KMeansDistance::Dot => {
                    let mut best = (0usize, f32::NEG_INFINITY);
                    for (j, &dot) in s.iter().enumerate() {
                        if dot > best.1 {
                            best = (j, dot);
                        }
                    }
                    (best.0, 1.0 - best.1)
                }
            };
            labels.push(best as u32);
            distances.push(value);
        }
    }
    Ok((labels, distances))
}

/// Dimensions up to this (PQ sub-vectors) use the direct kernel.
const SMALL_DIM: usize = 16;

/// Squared L2 as ‖c‖² − 2·x·c (plus ‖x‖²) straight from centroids laid out
/// dimension-major: one fused multiply-add per centroid and dimension, which
/// the compiler vectorises across centroids. For the 8-d sub-vectors of PQ
/// this beats a GEMM, whose inner dimension would be 8.
fn assign_small_l2(data: &Matrix, centroids: &Matrix) -> (Vec<u32>, Vec<f32>) {
    let (n, k, d) = (data.rows(), centroids.rows(), data.dim);
    // −2·c, dimension-major, and ‖c‖² as the starting value of each score.
    let mut by_dim = vec![0f32; d * k];
    let mut c_norms = vec![0f32; k];
    for c in 0..k {
        c_norms[c] = norm2(centroids.row(c));
        for (j, &v) in centroids.row(c).iter().enumerate() {
            by_dim[j * k + c] = -2.0 * v;
        }
    }
    let mut acc = vec![0f32; k];
    let mut labels = Vec::with_capacity(n);
    let mut distances = Vec::with_capacity(n);
    for i in 0..n {
        let x = data.row(i);
        acc.copy_from_slice(&c_norms);
        for (j, &xj) in x.iter().enumerate() {
            for (a, &c) in acc.iter_mut().zip(&by_dim[j * k..(j + 1) * k]) {
                *a = xj.mul_add(c, *a);
            }
        }
        let (best, value) = argmin(&acc);
        labels.push(best as u32);
        distances.push((value + norm2(x)).max(0.0));
    }
    (labels, distances)
}

/// Index and value of the smallest entry (the first one on ties), in eight
/// independent lanes the compiler can keep in one vector register.
fn argmin(values: &[f32]) -> (usize, f32) {
    const LANES: usize = 8;
    let mut best_v = [f32::INFINITY; LANES];
    let mut best_i = [0usize; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        for l in 0..LANES {
            let better = chunk[l] < best_v[l];
            best_v[l] = if better { chunk[l] } else { best_v[l] };
            best_i[l] = if better { c * LANES + l } else { best_i[l] };
        }
    }
    let mut best = (0usize, f32::INFINITY);
    for l in 0..LANES {
        if best_v[l] < best.1 || (best_v[l] == best.1 && best_i[l] < best.0) {
            best = (best_i[l], best_v[l]);
        }
    }
    let base = values.len() - tail.len();
    for (t, &v) in tail.iter().enumerate() {
        if v < best.1 {
            best = (base + t, v);
        }
    }
    best
}

fn norm2(x: &[f32]) -> f32 {
    x.iter().map(|v| v * v).sum()
}

/// f64 values on the wire as base64 of little-endian bytes (exact, compact).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct F64s(pub Vec<f64>);

impl Serialize for F64s {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|v| v.to_le_bytes()).collect();
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for F64s {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)?;
        if bytes.len() % 8 != 0 {
            return Err(serde::de::Error::custom(
                "f64 data is not a multiple of 8 bytes",
            ));
        }
        Ok(F64s(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ))
    }
}

/// One shard's contribution to an iteration: per-centroid sums and counts,
/// and the shard's total distance (the k-means objective's share).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// Vector dimension.
    pub dim: usize,
    /// `k × dim` sums of the members of each centroid.
    pub sums: F64s,
    /// Members per centroid.
    pub counts: Vec<u64>,
    /// Sum of the distances of every row to its centroid.
    pub loss: f64,
}

impl Partial {
    /// An empty partial for `k` centroids of dimension `dim`.
    pub fn zero(k: usize, dim: usize) -> Self {
        Self {
            dim,
            sums: F64s(vec![0.0; k * dim]),
            counts: vec![0; k],
            loss: 0.0,
        }
    }

    /// Assign `data` to `centroids` and add it up.
    pub fn of_shard(data: &Matrix, centroids: &Matrix, distance: KMeansDistance) -> Result<Self> {
        let (labels, distances) = assign(data, centroids, distance)?;
        let d = data.dim;
        let mut partial = Self::zero(centroids.rows(), d);
        for (i, &label) in labels.iter().enumerate() {
            let c = label as usize;
            partial.counts[c] += 1;
            let sum = &mut partial.sums.0[c * d..(c + 1) * d];
            for (s, &x) in sum.iter_mut().zip(data.row(i)) {
                *s += f64::from(x);
            }
        }
        partial.loss = distances.iter().map(|&v| f64::from(v)).sum();
        Ok(partial)
    }

    /// Add another shard's partial (call in shard order).
    pub fn merge(&mut self, other: &Partial) -> Result<()> {
        if other.dim != self.dim || other.counts.len() != self.counts.len() {
            return Err(Error::Internal(format!(
                "k-means partials disagree: {}×{} and {}×{}",
                self.counts.len(),
                self.dim,
                other.counts.len(),
                other.dim
            )));
        }
        for (a, b) in self.sums.0.iter_mut().zip(&other.sums.0) {
            *a += b;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.loss += other.loss;
        Ok(())
    }

    /// Rows counted.
    pub fn rows(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Move every centroid to its members' mean. An empty centroid takes half of
/// the largest cluster: it restarts next to that cluster's mean, nudged by
/// ±1/1024 per dimension (the other copy nudged the other way), so the next
/// assignment splits the cluster. Returns the number of empty centroids.
pub fn update(centroids: &mut Matrix, merged: &Partial, distance: KMeansDistance) -> usize {
    let (k, d) = (centroids.rows(), centroids.dim);
    let mut counts = merged.counts.clone();
    for c in 0..k {
        if counts[c] > 0 {
            let n = counts[c] as f64;
            let sum = &merged.sums.0[c * d..(c + 1) * d];
            for (v, s) in centroids.data[c * d..(c + 1) * d].iter_mut().zip(sum) {
                *v = (s / n) as f32;
            }
        }
    }
    let mut empty = 0;
    for c in 0..k {
        if counts[c] > 0 {
            continue;
        }
        empty += 1;
        // The largest cluster (lowest index on ties) lends half its rows.
        let Some(big) = (0..k).max_by(|&a, &b| counts[a].cmp(&counts[b]).then(b.cmp(&a))) else {
            continue;
        };
        if counts[big] < 2 {
            continue;
        }
        let source: Vec<f32> = centroids.row(big).to_vec();
        for j in 0..d {
            let nudge = if j % 2 == 0 {
                1.0 / 1024.0
            } else {
                -1.0 / 1024.0
            };
            centroids.data[c * d + j] = source[j] * (1.0 + nudge);
            centroids.data[big * d + j] = source[j] * (1.0 - nudge);
        }
        let half = counts[big] / 2;
        counts[c] = half;
        counts[big] -= half;
    }
    if distance == KMeansDistance::Dot {
        normalize_rows(centroids);
    }
    empty
}

/// Scale every row to unit length (zero rows stay zero).
pub fn normalize_rows(m: &mut Matrix) {
    let d = m.dim;
    for row in m.data.chunks_exact_mut(d) {
        let n = norm2(row).sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
}

/// Distances from every row of `data` to every row of `points` (`n × t`,
/// row-major): squared L2, or 1 − dot.
fn distance_matrix(data: &Matrix, points: &Matrix, distance: KMeansDistance) -> Result<Vec<f32>> {
    let (n, t, d) = (data.rows(), points.rows(), data.dim);
    let mut out = vec![0f32; n * t];
    crate::bert::matmul(
        (n, t, d),
        &data.data,
        d,
        &points.data,
        d,
        true,
        &mut out,
        t,
        false,
        1.0,
    )?;
    if distance == KMeansDistance::L2 {
        let p_norms: Vec<f32> = (0..t).map(|j| norm2(points.row(j))).collect();
        for i in 0..n {
            let x_norm = norm2(data.row(i));
            for (v, pn) in out[i * t..(i + 1) * t].iter_mut().zip(&p_norms) {
                *v = (x_norm + pn - 2.0 * *v).max(0.0);
            }
        }
    } else {
        out.iter_mut().for_each(|v| *v = 1.0 - *v);
    }
    Ok(out)
}

/// k-means++ seeding on `sample` (seeded): each next centroid is drawn with
/// probability proportional to its distance to the nearest centroid so far;
/// `greedy` draws 2 + ln k candidates and keeps the one that lowers the total
/// distance most (better seeds, 2 + ln k times the work).
pub fn kmeans_plus_plus(
    sample: &Matrix,
    k: usize,
    distance: KMeansDistance,
    seed: u64,
    greedy: bool,
) -> Result<Matrix> {
    let n = sample.rows();
    ensure_invalid!(
        k > 0 && k <= n,
        "k-means needs between 1 and {n} centroids for {n} training rows (got {k})"
    );
    let d = sample.dim;
    let trials = if greedy {
        2 + (k as f64).ln().floor() as usize
    } else {
        1
    };
    let mut rng = Rng::new(seed);
    let mut chosen = Vec::with_capacity(k * d);
    chosen.extend_from_slice(sample.row(rng.below(n)));
    let first = Matrix::new(d, chosen.clone())?;
    let mut nearest = distance_matrix(sample, &first, distance)?;
    for _ in 1..k {
        let total: f64 = nearest.iter().map(|&v| f64::from(v)).sum();
        let mut candidates = Vec::with_capacity(trials);
        for _ in 0..trials {
            let pick = if total > 0.0 {
                let target = rng.uniform() * total;
                let mut acc = 0.0;
                let mut pick = n - 1;
                for (i, &v) in nearest.iter().enumerate() {
                    acc += f64::from(v);
                    if acc > target {
                        pick = i;
                        break;
                    }
                }
                pick
            } else {
                rng.below(n)
            };
            candidates.push(pick);
        }
        let mut points = Vec::with_capacity(trials * d);
        for &c in &candidates {
            points.extend_from_slice(sample.row(c));
        }
        let points = Matrix::new(d, points)?;
        let dist = distance_matrix(sample, &points, distance)?;
        let t = candidates.len();
        let mut best = (0usize, f64::INFINITY);
        for j in 0..t {
            if t == 1 {
                break;
            }
            let potential: f64 = (0..n)
                .map(|i| f64::from(nearest[i].min(dist[i * t + j])))
                .sum();
            if potential < best.1 {
                best = (j, potential);
            }
        }
        for (i, v) in nearest.iter_mut().enumerate() {
            *v = v.min(dist[i * t + best.0]);
        }
        chosen.extend_from_slice(sample.row(candidates[best.0]));
    }
    let mut centroids = Matrix::new(d, chosen)?;
    if distance == KMeansDistance::Dot {
        normalize_rows(&mut centroids);
    }
    Ok(centroids)
}

/// When to stop iterating.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StopRule {
    /// At most this many update steps.
    pub max_iters: usize,
    /// Stop when the objective improves by less than this fraction.
    pub tolerance: f64,
}

impl Default for StopRule {
    fn default() -> Self {
        // lance's own defaults: 50 iterations, relative change 1e-4.
        Self {
            max_iters: 50,
            tolerance: 1e-4,
        }
    }
}

impl StopRule {
    /// Whether the change from `previous` to `loss` is small enough to stop.
    pub fn converged(&self, previous: f64, loss: f64) -> bool {
        (previous - loss).abs() < self.tolerance * loss.abs()
    }
}

/// Rows per centroid that k-means++ seeds from in [`train`].
const SEED_POOL_PER_CENTROID: usize = 16;

/// Train `k` centroids on `sample` in this process (k-means++ seeding on an
/// evenly spaced subset of 16 rows per centroid, Lloyd iterations on all).
/// Returns the centroids and the mean distance of a row to its centroid.
pub fn train(
    sample: &Matrix,
    k: usize,
    distance: KMeansDistance,
    stop: StopRule,
    seed: u64,
) -> Result<(Matrix, f64)> {
    let pool = (SEED_POOL_PER_CENTROID * k).max(k);
    let mut centroids = if sample.rows() > pool {
        let step = sample.rows() as f64 / pool as f64;
        let mut rows = Vec::with_capacity(pool * sample.dim);
        for i in 0..pool {
            rows.extend_from_slice(sample.row((i as f64 * step) as usize));
        }
        kmeans_plus_plus(&Matrix::new(sample.dim, rows)?, k, distance, seed, false)?
    } else {
        kmeans_plus_plus(sample, k, distance, seed, false)?
    };
    let mut previous = f64::INFINITY;
    for _ in 0..stop.max_iters {
        let partial = Partial::of_shard(sample, &centroids, distance)?;
        update(&mut centroids, &partial, distance);
        if stop.converged(previous, partial.loss) {
            break;
        }
        previous = partial.loss;
    }
    let loss = Partial::of_shard(sample, &centroids, distance)?.loss;
    Ok((centroids, loss / sample.rows().max(1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::{clustered_vectors, ClusteredSpec};

    fn brute_assign(data: &Matrix, centroids: &Matrix) -> Vec<u32> {
        (0..data.rows())
            .map(|i| {
                let x = data.row(i);
                (0..centroids.rows())
                    .map(|j| {
                        let c = centroids.row(j);
                        let d: f32 = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
                        (d, j as u32)
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|p| p.1)
                    .unwrap_or(0)
            })
            .collect()
    }

    #[test]
    fn gemm_assignment_equals_brute_force() {
        let (data, _) = clustered_vectors(&ClusteredSpec::new(3000, 24, 12, 5)).unwrap();
        let centroids = Matrix::new(24, data.data[..24 * 40].to_vec()).unwrap();
        let (labels, dist) = assign(&data, &centroids, KMeansDistance::L2).unwrap();
        let truth = brute_assign(&data, &centroids);
        let agree = labels.iter().zip(&truth).filter(|(a, b)| a == b).count();
        // Ties within float rounding may pick the other of two equidistant centroids.
        assert!(agree >= 2995, "{agree} of 3000");
        for (i, &l) in labels.iter().enumerate() {
            let c = centroids.row(l as usize);
            let exact: f32 = data
                .row(i)
                .iter()
                .zip(c)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            assert!((exact - dist[i]).abs() < 1e-4, "{exact} vs {}", dist[i]);
        }
    }

    #[test]
    fn small_dimension_kernel_equals_brute_force() {
        let (data, _) = clustered_vectors(&ClusteredSpec::new(2000, 8, 12, 4)).unwrap();
        let centroids = Matrix::new(8, data.data[..8 * 256].to_vec()).unwrap();
        let (labels, _) = assign(&data, &centroids, KMeansDistance::L2).unwrap();
        let truth = brute_assign(&data, &centroids);
        let agree = labels.iter().zip(&truth).filter(|(a, b)| a == b).count();
        // The expanded form rounds differently: near-ties may go either way.
        assert!(agree >= 1990, "{agree} of 2000");
        assert_eq!(argmin(&[3.0, 1.0, 2.0, 1.0]), (1, 1.0));
        let long: Vec<f32> = (0..21).map(|i| ((i * 7) % 11) as f32).collect();
        assert_eq!(argmin(&long), (0, 0.0));
        let mut later = vec![5.0f32; 19];
        later[17] = -1.0;
        assert_eq!(argmin(&later), (17, -1.0));
    }

    #[test]
    fn sharded_partials_merge_to_the_whole() {
        let (data, _) = clustered_vectors(&ClusteredSpec::new(2000, 16, 8, 9)).unwrap();
        let centroids = kmeans_plus_plus(&data, 8, KMeansDistance::L2, 1, true).unwrap();
        let whole = Partial::of_shard(&data, &centroids, KMeansDistance::L2).unwrap();
        let mut merged = Partial::zero(8, 16);
        for chunk in data.data.chunks(16 * 300) {
            let shard = Matrix::new(16, chunk.to_vec()).unwrap();
            let p = Partial::of_shard(&shard, &centroids, KMeansDistance::L2).unwrap();
            let wire: Partial = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            merged.merge(&wire).unwrap();
        }
        assert_eq!(merged.counts, whole.counts);
        assert_eq!(merged.rows(), 2000);
        for (a, b) in merged.sums.0.iter().zip(&whole.sums.0) {
            assert!((a - b).abs() < 1e-6 * b.abs().max(1.0));
        }
        assert!((merged.loss - whole.loss).abs() < 1e-6 * whole.loss);
    }

    #[test]
    fn training_finds_planted_clusters_and_is_reproducible() {
        // Far-apart blobs: k-means++ + Lloyd must put one centroid in each.
        let mut rng = Rng::new(3);
        let mut data = Vec::new();
        for i in 0..3000 {
            let c = (i % 6) as f32 * 10.0;
            for _ in 0..4 {
                data.push(c + rng.normal() as f32 * 0.1);
            }
        }
        let data = Matrix::new(4, data).unwrap();
        let (a, loss) = train(&data, 6, KMeansDistance::L2, StopRule::default(), 7).unwrap();
        let (b, _) = train(&data, 6, KMeansDistance::L2, StopRule::default(), 7).unwrap();
        assert_eq!(a, b, "same seed, same centroids");
        assert!(loss < 4.0 * 0.01 * 1.5, "mean squared distance {loss}");
        let mut centres: Vec<i32> = (0..6)
            .map(|j| (a.row(j)[0] / 10.0).round() as i32)
            .collect();
        centres.sort_unstable();
        assert_eq!(centres, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn empty_centroids_split_the_largest_cluster() {
        let data = Matrix::new(2, vec![0.0, 0.0, 0.1, 0.0, 5.0, 5.0, 5.1, 5.0]).unwrap();
        // The second centroid is far from everything: it gets no members.
        let mut centroids = Matrix::new(2, vec![2.5, 2.5, 100.0, 100.0]).unwrap();
        let p = Partial::of_shard(&data, &centroids, KMeansDistance::L2).unwrap();
        assert_eq!(p.counts, vec![4, 0]);
        assert_eq!(update(&mut centroids, &p, KMeansDistance::L2), 1);
        assert!(centroids.row(1)[0] < 10.0, "{centroids:?}");
        let p = Partial::of_shard(&data, &centroids, KMeansDistance::L2).unwrap();
        assert!(p.counts.iter().all(|&c| c > 0), "{p:?}");
    }

    #[test]
    fn dot_centroids_stay_unit_length() {
        let (data, _) = clustered_vectors(&ClusteredSpec::new(500, 8, 4, 2)).unwrap();
        let (c, _) = train(&data, 4, KMeansDistance::Dot, StopRule::default(), 1).unwrap();
        for j in 0..4 {
            assert!((norm2(c.row(j)) - 1.0).abs() < 1e-4);
        }
    }
}
