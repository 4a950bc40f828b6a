//! The fast CPU path of the BERT encoder: packed sequences on raw GEMMs.
//!
//! The same network as [`crate::embedding`]'s candle encoder, computed
//! differently:
//! - **packed, no padding**: a batch is its sequences' tokens back to back
//!   (`[tokens, hidden]`); the dense layers run on all tokens at once and
//!   attention runs per sequence on exactly its own length, so no work is
//!   spent on pad tokens (masked attention gives the same numbers: a masked
//!   key's softmax weight is exactly zero);
//! - **data parallel**: each thread runs whole batches with single-threaded
//!   GEMMs (no synchronisation inside a forward pass);
//! - fused epilogues: bias, GELU and residual adds happen in place, and the
//!   buffers of a forward pass are allocated once.
//!
//! The GEMMs are `matrixmultiply`'s (AVX2/FMA kernels chosen at run time;
//! measured here about twice as fast as the `gemm` crate on these shapes),
//! and `exp`/`erf` are branch-free polynomials the compiler vectorises
//! (libm's `erff` alone cost as much as a third of the dense layers).

use crate::error::{Error, Result};
use crate::linalg::matmul;

/// A dense layer: `y = x · wt + b`, `wt` stored `[in, out]` row-major.
pub(crate) struct Dense {
    pub(crate) wt: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) inp: usize,
    pub(crate) out: usize,
}

/// Layer normalisation parameters.
pub(crate) struct Norm {
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) eps: f32,
}

/// One encoder layer.
pub(crate) struct FastLayer {
    /// Q, K and V in one: `[hidden, 3·hidden]`.
    pub(crate) qkv: Dense,
    pub(crate) attn_out: Dense,
    pub(crate) attn_norm: Norm,
    pub(crate) inter: Dense,
    pub(crate) out: Dense,
    pub(crate) out_norm: Norm,
}

/// The whole encoder, weights as plain `f32` vectors.
pub(crate) struct FastBert {
    /// `[vocab, hidden]`
    pub(crate) word: Vec<f32>,
    /// `[max_positions, hidden]`
    pub(crate) position: Vec<f32>,
    /// Token type 0: `[hidden]`
    pub(crate) token_type: Vec<f32>,
    pub(crate) emb_norm: Norm,
    pub(crate) layers: Vec<FastLayer>,
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
    pub(crate) vocab: usize,
    pub(crate) max_positions: usize,
}

/// `e^x` to about 2e-7 relative error, branch-free: x = n·ln2 + r with
/// |r| ≤ ln2/2, a degree-6 Taylor polynomial for `e^r`, and `2^n` built
/// from its exponent bits.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// `erf(x)` to 1e-6 absolute error in f32 (Abramowitz & Stegun 7.1.26:
/// 1.5e-7 in exact arithmetic).
#[inline(always)]
fn fast_erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * fast_exp(-a * a);
    y.copysign(x)
}

impl Dense {
    /// `y[n×out] = x[n×in] · wt + b` (or `y += ...` when `accumulate`).
    fn forward(&self, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool) -> Result<()> {
        matmul(
            (rows, self.out, self.inp),
            x,
            self.inp,
            &self.wt,
            self.out,
            false,
            y,
            self.out,
            accumulate,
            1.0,
        )?;
        for row in y[..rows * self.out].chunks_exact_mut(self.out) {
            for (v, b) in row.iter_mut().zip(&self.bias) {
                *v += b;
            }
        }
        Ok(())
    }
}

impl Norm {
    fn apply(&self, x: &mut [f32], width: usize) {
        for row in x.chunks_exact_mut(width) {
            let n = width as f32;
            let mean = row.iter().sum::<f32>() / n;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

fn gelu(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + fast_erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = fast_exp(*v - max);
    }
    for v in row.iter() {
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Sequences up to this length use [`attend_direct`].
const DIRECT_ATTENTION_MAX: usize = 64;

/// Dot product with eight independent accumulators (vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// One head's attention over one sequence with loops: `q`, `k`, `v` rows of
/// `hd` values at stride `ld`; the context rows go to `out` at stride `ldo`.
#[allow(clippy::too_many_arguments)]
fn attend_direct(
    s: usize,
    hd: usize,
    ld: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    scores: &mut [f32],
    out: &mut [f32],
    ldo: usize,
    scale: f32,
) {
    for i in 0..s {
        let qi = &q[i * ld..i * ld + hd];
        let row = &mut scores[i * s..(i + 1) * s];
        for (j, r) in row.iter_mut().enumerate() {
            *r = dot(qi, &k[j * ld..j * ld + hd]) * scale;
        }
        softmax(row);
        let o = &mut out[i * ldo..i * ldo + hd];
        o.fill(0.0);
        for (j, &p) in row.iter().enumerate() {
            for (d, x) in o.iter_mut().zip(&v[j * ld..j * ld + hd]) {
                *d += p * x;
            }
        }
    }
}

impl FastBert {
    /// Embed one batch of token id sequences (each non-empty, at most
    /// `max_positions` long); returns `batch.len() × hidden` unit vectors.
    pub(crate) fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<f32>> {
        let h = self.hidden;
        let heads = self.heads;
        let hd = h / heads;
        let total: usize = batch.iter().map(|s| s.len()).sum();
        let longest = batch.iter().map(|s| s.len()).max().unwrap_or(0);
        if longest > self.max_positions {
            return Err(Error::Internal(format!(
                "a sequence of {longest} tokens exceeds the model's {} positions",
                self.max_positions
            )));
        }
        let inter = self.layers.first().map(|l| l.inter.out).unwrap_or(4 * h);

        // Embeddings: word + position + token type, normalised.
        let mut x = vec![0f32; total * h];
        let mut row = 0;
        for seq in batch {
            for (pos, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    return Err(Error::Internal(format!(
                        "token id {id} beyond the vocabulary"
                    )));
                }
                let dst = &mut x[row * h..(row + 1) * h];
                let w = &self.word[id * h..(id + 1) * h];
                let p = &self.position[pos * h..(pos + 1) * h];
                for i in 0..h {
                    dst[i] = w[i] + p[i] + self.token_type[i];
                }
                row += 1;
            }
        }
        self.emb_norm.apply(&mut x, h);

        let mut qkv = vec![0f32; total * 3 * h];
        let mut ctx = vec![0f32; total * h];
        let mut attn = vec![0f32; total * h];
        let mut mid = vec![0f32; total * inter];
        let mut scores = vec![0f32; longest * longest];
        let scale = 1.0 / (hd as f32).sqrt();

        for layer in &self.layers {
            layer.qkv.forward(&x, total, &mut qkv, false)?;
            // Attention, one sequence and head at a time, on its own length.
            let mut start = 0;
            for seq in batch {
                let s = seq.len();
                let q_rows = &qkv[start * 3 * h..(start + s) * 3 * h];
                for head in 0..heads {
                    let q = &q_rows[head * hd..];
                    let k = &q_rows[h + head * hd..];
                    let v = &q_rows[2 * h + head * hd..];
                    let sc = &mut scores[..s * s];
                    let out = &mut ctx[start * h + head * hd..];
                    if s <= DIRECT_ATTENTION_MAX {
                        // Short sequences: plain loops beat a GEMM call,
                        // whose packing costs more than the product.
                        attend_direct(s, hd, 3 * h, q, k, v, sc, out, h, scale);
                    } else {
                        matmul((s, s, hd), q, 3 * h, k, 3 * h, true, sc, s, false, scale)?;
                        for r in sc.chunks_exact_mut(s) {
                            softmax(r);
                        }
                        matmul((s, hd, s), sc, s, v, 3 * h, false, out, h, false, 1.0)?;
                    }
                }
                start += s;
            }
            // Output projection + residual, normalised.
            attn.copy_from_slice(&x);
            layer.attn_out.forward(&ctx, total, &mut attn, true)?;
            layer.attn_norm.apply(&mut attn, h);
            // Feed-forward + residual, normalised.
            layer.inter.forward(&attn, total, &mut mid, false)?;
            gelu(&mut mid);
            x.copy_from_slice(&attn);
            layer.out.forward(&mid, total, &mut x, true)?;
            layer.out_norm.apply(&mut x, h);
        }

        // Mean pooling per sequence, then L2 normalisation.
        let mut out = vec![0f32; batch.len() * h];
        let mut start = 0;
        for (i, seq) in batch.iter().enumerate() {
            let s = seq.len();
            let dst = &mut out[i * h..(i + 1) * h];
            for r in start..start + s {
                for (d, v) in dst.iter_mut().zip(&x[r * h..(r + 1) * h]) {
                    *d += v;
                }
            }
            let inv = 1.0 / s.max(1) as f32;
            dst.iter_mut().for_each(|d| *d *= inv);
            let norm = dst.iter().map(|d| d * d).sum::<f32>().sqrt().max(1e-12);
            dst.iter_mut().for_each(|d| *d /= norm);
            start += s;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_erf_are_accurate() {
        let mut x = -30.0f32;
        while x < 30.0 {
            let e = fast_exp(x);
            assert!(
                ((e as f64 - (x as f64).exp()) / (x as f64).exp()).abs() < 5e-7,
                "exp {x}"
            );
            let r = fast_erf(x);
            assert!((r as f64 - libm::erf(x as f64)).abs() < 1e-6, "erf {x}");
            x += 0.0137;
        }
        assert_eq!(fast_exp(-1000.0) < 1e-37, true);
    }
}
