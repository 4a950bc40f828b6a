//! Dense linear algebra shared by the embedding encoder and k-means: one
//! bounds-checked GEMM over `matrixmultiply`'s kernels (AVX2/FMA chosen at
//! run time).

use crate::error::{Error, Result};

/// `c[m×n] = scale · a[m×k] · b[k×n] (+ c)` on row-major views with row
/// strides `lda`, `ldb`, `ldc`; `b_t` reads `b` transposed (`b` given as
/// `[n×k]`). Bounds are checked here, so callers stay in safe code.
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
pub(crate) fn matmul(
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
    let (rsb, csb) = if b_t {
        (1, ldb as isize)
    } else {
        (ldb as isize, 1)
    };
    // SAFETY: the checks above keep every element the kernel touches inside
    // the three slices: row r < m, column j < n, inner index p < k, so the
    // largest offsets are (m-1)·lda + k-1 in `a`, (b_rows-1)·ldb + b_cols-1 in
    // `b` and (m-1)·ldc + n-1 in `c`. `c` is borrowed mutably, so it cannot
    // alias `a` or `b`. With beta = 0, `c` is written, never read.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            scale,
            a.as_ptr(),
            lda as isize,
            1,
            b.as_ptr(),
            rsb,
            csb,
            if accumulate { 1.0 } else { 0.0 },
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
    Ok(())
}
