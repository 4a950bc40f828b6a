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
    let (n, k, d) = shapes(data, centroids)?;
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
        crate::linalg::matmul(
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

/// Rows, centroids and dimension, once the two agree.
fn shapes(data: &Matrix, centroids: &Matrix) -> Result<(usize, usize, usize)> {
    let (n, k, d) = (data.rows(), centroids.rows(), data.dim);
    ensure_invalid!(
        centroids.dim == d,
        "centroids have dimension {}, the vectors {d}",
        centroids.dim
    );
    ensure_invalid!(k > 0, "k-means needs at least one centroid");
    Ok((n, k, d))
}

/// Dimensions up to this (PQ sub-vectors) use the direct kernel.
const SMALL_DIM: usize = 16;

/// Squared L2 as ‖c‖² − 2·x·c (plus ‖x‖²) straight from centroids laid out
/// dimension-major: one fused multiply-add per centroid and dimension, which
/// the compiler vectorises across centroids. For the 8-d sub-vectors of PQ
/// this beats a GEMM, whose inner dimension would be 8.
fn assign_small_l2(data: &Matrix, centroids: &Matrix) -> (Vec<u32>, Vec<f32>) {
    let kernel = SmallKernel::new(centroids);
    let mut labels = Vec::with_capacity(data.rows());
    let mut distances = Vec::with_capacity(data.rows());
    for x in data.data.chunks_exact(data.dim) {
        let (best, value, _) = kernel.nearest_two(x);
        labels.push(best as u32);
        distances.push((value + norm2(x)).max(0.0));
    }
    (labels, distances)
}

/// ‖x‖², in lanes (a strictly ordered sum would not vectorise).
fn norm2(x: &[f32]) -> f32 {
    dot(x, x)
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
        Self::step(data, centroids, distance, &mut None)
    }

    /// [`Partial::of_shard`] for one iteration of many over the same `data`:
    /// `bounds` (empty on the first call) carries Hamerly's bounds from the
    /// previous iteration, so rows whose centroid cannot have changed skip
    /// the search over all centroids. The result is the one a search of
    /// every row would give: a row is only skipped when its centroid is
    /// nearer than any other by more than the rounding of that search, and
    /// the objective is always summed from exact distances in row order.
    pub fn step(
        data: &Matrix,
        centroids: &Matrix,
        distance: KMeansDistance,
        bounds: &mut Option<Bounds>,
    ) -> Result<Self> {
        let (n, k, d) = shapes(data, centroids)?;
        let c_norms: Vec<f32> = (0..k).map(|j| norm2(centroids.row(j))).collect();
        let max_norm = c_norms.iter().fold(0f32, |a, &b| a.max(b));
        let prior = bounds
            .take()
            .filter(|b| b.labels.len() == n && b.centroids.rows() == k && b.centroids.dim == d);
        let norms = match &prior {
            Some(b) => b.norms.clone(),
            None => data.data.chunks_exact(d).map(norm2).collect(),
        };
        // Slack of the expanded-form distances of the full search (squared).
        let slack = |i: usize| ROUNDING * (norms[i] + max_norm);
        let mut dist2 = vec![0f32; n];
        let (mut labels, mut lower, todo) = match prior {
            Some(Bounds {
                centroids: old,
                labels,
                mut lower,
                ..
            }) => {
                // How far each centroid moved bounds how much any distance changed.
                let moved: Vec<f32> = (0..k)
                    .map(|j| sq_dist(old.row(j), centroids.row(j)).sqrt() * (1.0 + 1e-6))
                    .collect();
                let (far, far_moved, next_moved) = top2(&moved, f32::NEG_INFINITY, |a, b| a > b);
                let half_gap = half_gaps(centroids);
                let mut todo = Vec::new();
                for i in 0..n {
                    let a = labels[i] as usize;
                    let x = data.row(i);
                    let da2 = sq_dist(x, centroids.row(a));
                    dist2[i] = da2;
                    lower[i] -= if a == far { next_moved } else { far_moved };
                    let m = lower[i].max(half_gap[a]).max(0.0);
                    if da2 + 4.0 * slack(i) > m * m {
                        todo.push(i);
                    }
                }
                (labels, lower, todo)
            }
            None => (vec![0u32; n], vec![0f32; n], (0..n).collect()),
        };
        let nearest = nearest_two(data, &todo, centroids, &c_norms)?;
        for (&i, &(best, second)) in todo.iter().zip(&nearest) {
            labels[i] = best;
            dist2[i] = sq_dist(data.row(i), centroids.row(best as usize));
            lower[i] = (second + norms[i] - 2.0 * slack(i)).max(0.0).sqrt();
        }
        let mut partial = Self::zero(k, d);
        for (i, &label) in labels.iter().enumerate() {
            let c = label as usize;
            partial.counts[c] += 1;
            let sum = &mut partial.sums.0[c * d..(c + 1) * d];
            for (s, &x) in sum.iter_mut().zip(data.row(i)) {
                *s += f64::from(x);
            }
            partial.loss += f64::from(match distance {
                KMeansDistance::L2 => dist2[i],
                KMeansDistance::Dot => 1.0 - dot(data.row(i), centroids.row(c)),
            });
        }
        *bounds = Some(Bounds {
            centroids: centroids.clone(),
            norms,
            labels,
            lower,
            searched: todo.len(),
        });
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

/// Relative rounding of the expanded-form squared distances of a full
/// search (f32 GEMM over a few hundred dimensions, with a wide margin).
const ROUNDING: f32 = 1e-5;

/// Hamerly's bounds of one shard between k-means iterations: each row's
/// centroid and a lower bound of its distance to every other centroid,
/// valid for the centroids kept here. Between iterations the bound shrinks
/// by how far the centroids moved; a row whose own centroid is nearer than
/// the bound (or than half the gap to that centroid's nearest neighbour)
/// keeps its centroid without a search. Late iterations, when few centroids
/// move, search only a small share of the rows.
#[derive(Debug, Clone)]
pub struct Bounds {
    centroids: Matrix,
    /// ‖x‖² of every row (computed on the first step).
    norms: Vec<f32>,
    labels: Vec<u32>,
    lower: Vec<f32>,
    searched: usize,
}

impl Bounds {
    /// Rows the last step searched over all centroids.
    pub fn searched(&self) -> usize {
        self.searched
    }
}

/// Half the distance from each centroid to its nearest other centroid: a
/// row nearer than that to its centroid cannot be nearer to another one.
fn half_gaps(centroids: &Matrix) -> Vec<f32> {
    let k = centroids.rows();
    let mut nearest = vec![f32::INFINITY; k];
    for a in 0..k {
        for b in a + 1..k {
            let v = sq_dist(centroids.row(a), centroids.row(b));
            nearest[a] = nearest[a].min(v);
            nearest[b] = nearest[b].min(v);
        }
    }
    nearest
        .into_iter()
        .map(|v| 0.5 * v.sqrt() * (1.0 - 1e-6))
        .collect()
}

/// Index of the best value under `better`, that value, and the runner-up
/// (`worst` when there is none). Ties keep the first index.
fn top2(values: &[f32], worst: f32, better: impl Fn(f32, f32) -> bool) -> (usize, f32, f32) {
    let (mut index, mut first, mut second) = (0usize, worst, worst);
    for (j, &v) in values.iter().enumerate() {
        if better(v, first) {
            second = first;
            first = v;
            index = j;
        } else if better(v, second) {
            second = v;
        }
    }
    (index, first, second)
}

/// For each of `rows` of `data`: its nearest centroid and the second
/// nearest one's score ‖c‖² − 2·x·c (add ‖x‖² for the squared distance).
fn nearest_two(
    data: &Matrix,
    rows: &[usize],
    centroids: &Matrix,
    c_norms: &[f32],
) -> Result<Vec<(u32, f32)>> {
    let (k, d) = (centroids.rows(), data.dim);
    let mut out = Vec::with_capacity(rows.len());
    if d <= SMALL_DIM {
        let kernel = SmallKernel::new(centroids);
        for &i in rows {
            let x = data.row(i);
            let (best, _, second) = kernel.nearest_two(x);
            out.push((best as u32, second));
        }
        return Ok(out);
    }
    let block_rows = BLOCK.min(rows.len().max(1));
    let mut block = Vec::with_capacity(block_rows * d);
    let mut scores = vec![0f32; block_rows * k];
    for chunk in rows.chunks(BLOCK) {
        block.clear();
        for &i in chunk {
            block.extend_from_slice(data.row(i));
        }
        let r = chunk.len();
        crate::linalg::matmul(
            (r, k, d),
            &block,
            d,
            &centroids.data,
            d,
            true,
            &mut scores[..r * k],
            k,
            false,
            1.0,
        )?;
        for s in scores[..r * k].chunks_exact_mut(k) {
            for (v, &cn) in s.iter_mut().zip(c_norms) {
                *v = cn - 2.0 * *v;
            }
            let (best, _, second) = top2(s, f32::INFINITY, |a, b| a < b);
            out.push((best as u32, second));
        }
    }
    Ok(out)
}

/// Centroids laid out for the direct kernel of narrow vectors: blocks of
/// eight centroids, −2·c dimension-major within a block (one vector
/// register per dimension), ‖c‖² padded with +∞ to whole blocks.
struct SmallKernel {
    dim: usize,
    blocked: Vec<f32>,
    norms: Vec<f32>,
    /// AVX2 and FMA are there (checked once): the explicit kernel runs.
    avx2: bool,
}

const LANES: usize = 8;

impl SmallKernel {
    fn new(centroids: &Matrix) -> Self {
        let (k, d) = (centroids.rows(), centroids.dim);
        let blocks = k.div_ceil(LANES);
        let mut blocked = vec![0f32; blocks * d * LANES];
        let mut norms = vec![f32::INFINITY; blocks * LANES];
        for c in 0..k {
            let row = centroids.row(c);
            norms[c] = norm2(row);
            for (j, &v) in row.iter().enumerate() {
                blocked[((c / LANES) * d + j) * LANES + c % LANES] = -2.0 * v;
            }
        }
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Self {
            dim: d,
            blocked,
            norms,
            avx2,
        }
    }

    /// The nearest centroid to `x`, its score and the runner-up's, as
    /// ‖c‖² − 2·x·c (add ‖x‖² for the squared distance). Each block's
    /// scores stay in one register over all dimensions; eight lanes keep
    /// their own best two, merged at the end (ties keep the lower index).
    /// Both kernels compute the same operations in the same order.
    fn nearest_two(&self, x: &[f32]) -> (usize, f32, f32) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 && x.len() == self.dim {
            #[allow(unsafe_code)]
            // SAFETY: AVX2 and FMA were detected at run time, and the
            // kernel reads `x[..dim]`, `norms[..]` and `blocked[..]` within
            // the lengths `new` gave them (see `nearest_two_avx2`).
            return unsafe {
                match self.dim {
                    8 => self.nearest_two_avx2::<8>(x),
                    4 => self.nearest_two_avx2::<4>(x),
                    16 => self.nearest_two_avx2::<16>(x),
                    _ => self.nearest_two_avx2::<0>(x),
                }
            };
        }
        self.nearest_two_portable(x)
    }

    /// [`SmallKernel::nearest_two`] with AVX2 intrinsics: the portable loop
    /// is vectorised only at opt-level 3 without debug assertions. `D` is
    /// the dimension when known at compile time (0: `self.dim`), so that
    /// the broadcasts of `x` stay in registers across blocks.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nearest_two_avx2<const D: usize>(&self, x: &[f32]) -> (usize, f32, f32) {
        use std::arch::x86_64::*;
        let d = if D == 0 { self.dim } else { D };
        let x = &x[..d];
        let blocks = self.norms.len() / LANES;
        // SAFETY (all loads): block b < blocks reads norms[b·8 .. b·8+8] and
        // blocked[(b·d + j)·8 .. +8] for j < d; `new` sized `norms` to
        // blocks·8 and `blocked` to blocks·d·8, and `x` has `d` elements.
        // `wrapping_add`, not `add`: the latter's debug-build precondition
        // check is a call, and every call spills the vector registers.
        let (norms, blocked) = (self.norms.as_ptr(), self.blocked.as_ptr());
        let mut first = _mm256_set1_ps(f32::INFINITY);
        let mut second = first;
        let mut index = _mm256_setzero_si256();
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for b in 0..blocks {
            let mut acc = _mm256_loadu_ps(norms.wrapping_add(b * LANES));
            let block = blocked.wrapping_add(b * d * LANES);
            for (j, &xj) in x.iter().enumerate() {
                let c = _mm256_loadu_ps(block.wrapping_add(j * LANES));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(xj), c, acc);
            }
            let better = _mm256_cmp_ps::<_CMP_LT_OQ>(acc, first);
            // min_ps(a, b) is `a < b ? a : b`, as in the portable kernel.
            let runner = _mm256_min_ps(acc, second);
            second = _mm256_blendv_ps(runner, first, better);
            let ids = _mm256_add_epi32(_mm256_set1_epi32((b * LANES) as i32), lanes);
            index = _mm256_blendv_epi8(index, ids, _mm256_castps_si256(better));
            first = _mm256_blendv_ps(first, acc, better);
        }
        // Across lanes, as `merge_lanes`: the lowest score, the lowest index
        // among lanes holding it, and the lowest of everything else.
        let best = hmin_ps(first);
        let holds = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_EQ_OQ>(first, _mm256_set1_ps(best)));
        let best_index = hmin_epu32(_mm256_blendv_epi8(_mm256_set1_epi32(-1), index, holds));
        let is_best = _mm256_cmpeq_epi32(index, _mm256_set1_epi32(best_index as i32));
        let others = _mm256_blendv_ps(
            first,
            _mm256_set1_ps(f32::INFINITY),
            _mm256_castsi256_ps(is_best),
        );
        let runner = hmin_ps(_mm256_min_ps(others, second));
        (best_index as usize, best, runner)
    }

    fn nearest_two_portable(&self, x: &[f32]) -> (usize, f32, f32) {
        let d = self.dim;
        let mut first = [f32::INFINITY; LANES];
        let mut second = [f32::INFINITY; LANES];
        let mut index = [0u32; LANES];
        for b in 0..self.norms.len() / LANES {
            let mut acc = [0f32; LANES];
            acc.copy_from_slice(&self.norms[b * LANES..(b + 1) * LANES]);
            let block = &self.blocked[b * d * LANES..(b + 1) * d * LANES];
            for j in 0..d {
                let xj = x[j];
                let c = &block[j * LANES..(j + 1) * LANES];
                for l in 0..LANES {
                    acc[l] = xj.mul_add(c[l], acc[l]);
                }
            }
            for l in 0..LANES {
                let v = acc[l];
                let better = v < first[l];
                let runner = if v < second[l] { v } else { second[l] };
                second[l] = if better { first[l] } else { runner };
                index[l] = if better {
                    (b * LANES + l) as u32
                } else {
                    index[l]
                };
                first[l] = if better { v } else { first[l] };
            }
        }
        merge_lanes(&first, &second, &index)
    }
}

/// The lowest of eight floats.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
fn hmin_ps(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm256_min_ps(v, _mm256_permute2f128_ps::<1>(v, v));
    let m = _mm256_min_ps(m, _mm256_shuffle_ps::<0b01_00_11_10>(m, m));
    let m = _mm256_min_ps(m, _mm256_shuffle_ps::<0b10_11_00_01>(m, m));
    _mm256_cvtss_f32(m)
}

/// The lowest of eight unsigned 32-bit integers.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
fn hmin_epu32(v: std::arch::x86_64::__m256i) -> u32 {
    use std::arch::x86_64::*;
    let m = _mm256_min_epu32(v, _mm256_permute2x128_si256::<1>(v, v));
    let m = _mm256_min_epu32(m, _mm256_shuffle_epi32::<0b01_00_11_10>(m));
    let m = _mm256_min_epu32(m, _mm256_shuffle_epi32::<0b10_11_00_01>(m));
    _mm256_cvtsi256_si32(m) as u32
}

/// The best of eight lanes' (best, runner-up, index of best): the lowest
/// score (the lower index on ties) and the lowest of all the rest.
#[inline]
fn merge_lanes(
    first: &[f32; LANES],
    second: &[f32; LANES],
    index: &[u32; LANES],
) -> (usize, f32, f32) {
    let mut best = 0;
    for l in 1..LANES {
        if first[l] < first[best] || (first[l] == first[best] && index[l] < index[best]) {
            best = l;
        }
    }
    let mut runner = f32::INFINITY;
    for l in 0..LANES {
        if l != best && first[l] < runner {
            runner = first[l];
        }
        if second[l] < runner {
            runner = second[l];
        }
    }
    (index[best] as usize, first[best], runner)
}

/// x·y in eight independent lanes (a fixed summation order).
fn dot(x: &[f32], y: &[f32]) -> f32 {
    lane_sum(x, y, |a, b, acc| a.mul_add(b, acc))
}

/// ‖x − y‖² directly (no cancellation), in eight independent lanes.
fn sq_dist(x: &[f32], y: &[f32]) -> f32 {
    lane_sum(x, y, |a, b, acc| {
        let v = a - b;
        v.mul_add(v, acc)
    })
}

/// Σ step over pairs of `x` and `y`, accumulated in eight lanes (the
/// compiler keeps them in one vector register) and then added up in order.
#[inline(always)]
fn lane_sum(x: &[f32], y: &[f32], step: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let n = x.len().min(y.len());
    let whole = n / LANES * LANES;
    let mut acc = [0f32; LANES];
    for start in (0..whole).step_by(LANES) {
        let (a, b) = (&x[start..start + LANES], &y[start..start + LANES]);
        for l in 0..LANES {
            acc[l] = step(a[l], b[l], acc[l]);
        }
    }
    let mut total = acc.iter().sum::<f32>();
    for i in whole..n {
        total = step(x[i], y[i], total);
    }
    total
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
    if t <= FEW_POINTS || d <= SMALL_DIM {
        // A GEMM would repack all of `data` for a handful of columns.
        let mut out = Vec::with_capacity(n * t);
        for i in 0..n {
            let x = data.row(i);
            for j in 0..t {
                out.push(match distance {
                    KMeansDistance::L2 => sq_dist(x, points.row(j)),
                    KMeansDistance::Dot => 1.0 - dot(x, points.row(j)),
                });
            }
        }
        return Ok(out);
    }
    let mut out = vec![0f32; n * t];
    crate::linalg::matmul(
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

/// Up to this many points, [`distance_matrix`] computes directly.
const FEW_POINTS: usize = 32;

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
    let mut bounds = None;
    let (mut iterations, mut searched) = (0, 0);
    for _ in 0..stop.max_iters {
        let partial = Partial::step(sample, &centroids, distance, &mut bounds)?;
        iterations += 1;
        searched += bounds.as_ref().map_or(0, Bounds::searched);
        update(&mut centroids, &partial, distance);
        if stop.converged(previous, partial.loss) {
            break;
        }
        previous = partial.loss;
    }
    let loss = Partial::step(sample, &centroids, distance, &mut bounds)?.loss;
    tracing::debug!(iterations, searched, rows = sample.rows(), k, "k-means");
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
        // Ties keep the lower index, across lanes and blocks; a centroid
        // count that is not a multiple of the block still finds the last.
        for (points, x, expected) in [
            (vec![3.0, 1.0, 2.0, 1.0], 0.0, (1, 1.0)),
            (
                (0..21).map(|i| ((i * 7) % 11) as f32).collect(),
                0.0,
                (0, 0.0),
            ),
            (
                (0..19).map(|i| if i == 17 { -1.0 } else { 5.0 }).collect(),
                -1.0,
                (17, 36.0),
            ),
            (vec![4.0; 13], 4.0, (0, 0.0)),
        ] {
            let c = Matrix::new(1, points).unwrap();
            let (best, _, second) = SmallKernel::new(&c).nearest_two(&[x]);
            assert_eq!(best, expected.0, "{c:?}");
            assert_eq!(second + x * x, expected.1, "{c:?}");
        }
    }

    #[test]
    fn both_small_kernels_agree_exactly() {
        // Every specialised width and the general one; centroid counts that
        // fill no block, part of one, and many; duplicated centroids (ties).
        for d in [4, 8, 12, 16] {
            let (data, _) = clustered_vectors(&ClusteredSpec::new(3000, d, 20, 8)).unwrap();
            for k in [1, 7, 8, 100, 256] {
                let mut points = data.data[d * 500..d * (500 + k)].to_vec();
                points.extend_from_slice(&data.data[d * 500..d * 503]);
                let centroids = Matrix::new(d, points).unwrap();
                let kernel = SmallKernel::new(&centroids);
                for x in data.data.chunks_exact(d) {
                    let fast = kernel.nearest_two(x);
                    assert_eq!(fast, kernel.nearest_two_portable(x), "d {d}, k {k}");
                }
            }
        }
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
    fn bounded_steps_equal_full_searches() {
        // Wide vectors (GEMM search) and PQ-width ones (direct kernel), both
        // distances: every iteration with Hamerly's bounds must give exactly
        // what a search of every row gives, while searching fewer rows.
        for (dim, k, distance) in [
            (48, 40, KMeansDistance::L2),
            (8, 64, KMeansDistance::L2),
            (48, 40, KMeansDistance::Dot),
        ] {
            let (data, _) = clustered_vectors(&ClusteredSpec::new(4000, dim, 30, 11)).unwrap();
            let mut centroids = kmeans_plus_plus(&data, k, distance, 5, false).unwrap();
            let mut bounds = None;
            let mut searched = Vec::new();
            for _ in 0..12 {
                let bounded = Partial::step(&data, &centroids, distance, &mut bounds).unwrap();
                let full = Partial::of_shard(&data, &centroids, distance).unwrap();
                assert_eq!(bounded, full, "dim {dim}, {distance:?}");
                searched.push(bounds.as_ref().unwrap().searched());
                update(&mut centroids, &bounded, distance);
            }
            assert_eq!(searched[0], 4000);
            assert!(
                searched[11] < 4000 / 2,
                "dim {dim}, {distance:?}: rows searched per iteration {searched:?}"
            );
        }
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
