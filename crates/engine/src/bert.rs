//! The fast CPU path of the BERT encoder: packed sequences on raw GEMMs.
//!
//! The same network as [`crate::embedder`]'s candle encoder, computed
//! differently:
//! - **packed, no padding**: a batch is its sequences' tokens back to back
//!   (`[tokens, hidden]`); the dense layers run on all tokens at once and
//!   attention runs per sequence on exactly its own length, so no work is
//!   spent on pad tokens (masked attention gives the same numbers: a masked
//!   key's softmax weight is exactly zero);
//! - **data parallel**: with several batches, each thread runs whole batches
//!   with single-threaded GEMMs (no synchronisation inside a forward pass);
//!   a lone batch uses every thread inside each GEMM instead;
//! - fused epilogues: bias, GELU and residual adds happen in place, and the
//!   buffers of a forward pass are allocated once.
//!
//! The GEMMs are the `gemm` crate's (the kernels candle uses on CPU).

use gemm::Parallelism;

use crate::error::{Error, Result};

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

/// `c[m×n] (+)= scale · a[m×k] · b[k×n]` on row-major views with row strides
/// `lda`, `ldb`, `ldc`; `b_t` reads `b` transposed (`b` given as `[n×k]`).
/// Bounds are checked here, so callers stay in safe code.
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
fn matmul(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    b_t: bool,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    scale: f32,
    par: Parallelism,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    let need = |rows: usize, cols: usize, ld: usize| (rows - 1) * ld + cols;
    let (b_rows, b_cols) = if b_t { (n, k) } else { (k, n) };
    if k == 0
        || a.len() < need(m, k, lda)
        || b.len() < need(b_rows, b_cols, ldb)
        || c.len() < need(m, n, ldc)
        || lda < k
        || ldb < b_cols
        || ldc < n
    {
        return Err(Error::Internal(format!(
            "matmul shapes do not fit: m={m} n={n} k={k} a={} b={} c={}",
            a.len(),
            b.len(),
            c.len()
        )));
    }
    let (rhs_cs, rhs_rs) = if b_t {
        (ldb as isize, 1)
    } else {
        (1, ldb as isize)
    };
    // SAFETY: the checks above keep every element the kernel touches inside
    // the three slices: row r < m, column j < n, inner index p < k, so the
    // largest offsets are (m-1)·lda + k-1 in `a`, (b_rows-1)·ldb + b_cols-1 in
    // `b` and (m-1)·ldc + n-1 in `c`. `c` is borrowed mutably, so it cannot
    // alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            accumulate,
            a.as_ptr(),
            1,
            lda as isize,
            b.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            scale,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

impl Dense {
    /// `y[n×out] = x[n×in] · wt + b` (or `y += ...` when `accumulate`).
    fn forward(
        &self,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
        accumulate: bool,
        par: Parallelism,
    ) -> Result<()> {
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
            par,
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
        *v = 0.5 * *v * (1.0 + libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

impl FastBert {
    /// Embed one batch of token id sequences (each non-empty, at most
    /// `max_positions` long); returns `batch.len() × hidden` unit vectors.
    pub(crate) fn embed_batch(&self, batch: &[&[u32]], par: Parallelism) -> Result<Vec<f32>> {
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
            layer.qkv.forward(&x, total, &mut qkv, false, par)?;
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
                    matmul(
                        (s, s, hd),
                        q,
                        3 * h,
                        k,
                        3 * h,
                        true,
                        sc,
                        s,
                        false,
                        scale,
                        par,
                    )?;
                    for r in sc.chunks_exact_mut(s) {
                        softmax(r);
                    }
                    let out = &mut ctx[start * h + head * hd..];
                    matmul((s, hd, s), sc, s, v, 3 * h, false, out, h, false, 1.0, par)?;
                }
                start += s;
            }
            // Output projection + residual, normalised.
            attn.copy_from_slice(&x);
            layer.attn_out.forward(&ctx, total, &mut attn, true, par)?;
            layer.attn_norm.apply(&mut attn, h);
            // Feed-forward + residual, normalised.
            layer.inter.forward(&attn, total, &mut mid, false, par)?;
            gelu(&mut mid);
            x.copy_from_slice(&attn);
            layer.out.forward(&mid, total, &mut x, true, par)?;
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
