//! Dense f32 matrices: the currency of trained artifacts and query batches.
//!
//! * [`Matrix`]: rows × dim, row-major, travels inside task payloads as
//!   base64 of little-endian f32 (compact and exact, unlike decimal JSON);
//! * `.npy` read/write (NumPy's format, so artifacts and query files move
//!   between lanceflow and Python untouched);
//! * JSON query vectors (`[0.1, ...]` or `[[...], [...]]`);
//! * a deterministic generator of clustered unit vectors and an exact
//!   brute-force kNN, the ground truth of the recall harness.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{bail_invalid, ensure_invalid, Error, Result};
use crate::index::metric::Metric;

/// A row-major `rows × dim` matrix of f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Columns per row.
    pub dim: usize,
    /// `rows * dim` values.
    pub data: Vec<f32>,
}

impl Matrix {
    /// A matrix from flat values; `data.len()` must be a multiple of `dim`.
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Self> {
        ensure_invalid!(dim > 0, "a vector dimension must be at least 1");
        ensure_invalid!(
            data.len() % dim == 0,
            "{} values do not make rows of dimension {dim}",
            data.len()
        );
        Ok(Self { dim, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The matrix as an Arrow `FixedSizeList<float32>` (one list per row).
    pub fn to_fixed_size_list(&self) -> Result<arrow_array::FixedSizeListArray> {
        let dim = i32::try_from(self.dim)
            .map_err(|_| Error::InvalidInput(format!("dimension {} is too large", self.dim)))?;
        let field = std::sync::Arc::new(arrow_schema::Field::new(
            "item",
            arrow_schema::DataType::Float32,
            true,
        ));
        let values = std::sync::Arc::new(arrow_array::Float32Array::from(self.data.clone()));
        arrow_array::FixedSizeListArray::try_new(field, dim, values, None)
            .map_err(|e| Error::Internal(format!("vectors to arrow: {e}")))
    }

    /// The rows of an Arrow `FixedSizeList<float32>` array; `what` names it
    /// in errors (e.g. "IVF centroids").
    pub fn from_fixed_size_list(fsl: &arrow_array::FixedSizeListArray, what: &str) -> Result<Self> {
        use arrow_array::Array;
        let dim = usize::try_from(fsl.value_length())
            .map_err(|_| Error::InvalidInput(format!("{what}: negative dimension")))?;
        ensure_invalid!(fsl.null_count() == 0, "{what} hold a null row");
        let values = fsl
            .values()
            .as_any()
            .downcast_ref::<arrow_array::Float32Array>()
            .ok_or_else(|| {
                Error::NotSupported(format!(
                    "{what} are lists of {}; only float32 is supported",
                    fsl.value_type()
                ))
            })?;
        ensure_invalid!(values.null_count() == 0, "{what} hold a null value");
        let values = values.values();
        let used = fsl.len().saturating_mul(dim).min(values.len());
        Self::new(dim, values[..used].to_vec())
    }

    /// A matrix from rows of equal length.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Self> {
        let Some(first) = rows.first() else {
            bail_invalid!("no vectors given");
        };
        let dim = first.len();
        ensure_invalid!(dim > 0, "vectors must have at least one component");
        let mut data = Vec::with_capacity(rows.len() * dim);
        for (i, row) in rows.iter().enumerate() {
            ensure_invalid!(
                row.len() == dim,
                "vector {i} has {} components but vector 0 has {dim}; all must have the same dimension",
                row.len()
            );
            data.extend_from_slice(row);
        }
        Ok(Self { dim, data })
    }
}

#[derive(Serialize, Deserialize)]
struct MatrixWire {
    dim: usize,
    rows: usize,
    f32le_base64: String,
}

impl Serialize for Matrix {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.data.len() * 4);
        for v in &self.data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        MatrixWire {
            dim: self.dim,
            rows: self.rows(),
            f32le_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Matrix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let wire = MatrixWire::deserialize(deserializer)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(wire.f32le_base64)
            .map_err(D::Error::custom)?;
        if wire.dim == 0 || bytes.len() != wire.rows * wire.dim * 4 {
            return Err(D::Error::custom("matrix size does not match its shape"));
        }
        let data = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Matrix {
            dim: wire.dim,
            data,
        })
    }
}

/// Write a matrix as a NumPy `.npy` file (`<f4`, C order, shape rows × dim).
pub fn write_npy(path: &Path, matrix: &Matrix) -> Result<()> {
    let bytes = npy_bytes(matrix)?;
    let mut file = std::fs::File::create(path)
        .map_err(|e| Error::InvalidInput(format!("cannot create '{}': {e}", path.display())))?;
    file.write_all(&bytes)
        .map_err(|e| Error::Storage(format!("cannot write '{}': {e}", path.display())))?;
    Ok(())
}

/// A matrix as the bytes of a `.npy` file.
pub fn npy_bytes(matrix: &Matrix) -> Result<Vec<u8>> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        matrix.rows(),
        matrix.dim
    );
    // Magic (6) + version (2) + header length (2) + header, padded to 64 bytes
    // and ended with a newline, as the format asks.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + matrix.data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    let len =
        u16::try_from(header.len()).map_err(|_| Error::Internal("npy header too long".into()))?;
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in &matrix.data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(bytes)
}

/// Read a NumPy `.npy` file of float32 or float64 values, 1-D (one vector) or
/// 2-D (one vector per row), little-endian, C order.
pub fn read_npy(path: &Path) -> Result<Matrix> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::InvalidInput(format!("cannot read '{}': {e}", path.display())))?;
    parse_npy(&bytes).map_err(|e| {
        Error::InvalidInput(format!(
            "'{}' is not a usable .npy file: {e}",
            path.display()
        ))
    })
}

/// Parse the bytes of a `.npy` file (see [`read_npy`]).
pub fn parse_npy(bytes: &[u8]) -> std::result::Result<Matrix, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("missing the NUMPY magic bytes".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported format version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated header")?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))?;
        let rest = header[at + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?;
        Some(rest.trim_start())
    };
    let descr = field("descr").ok_or("no 'descr' in header")?;
    let width = if descr.starts_with("'<f4'") || descr.starts_with("'=f4'") {
        4
    } else if descr.starts_with("'<f8'") || descr.starts_with("'=f8'") {
        8
    } else {
        return Err(format!(
            "dtype {} is not supported; save float32 or float64 (little-endian)",
            descr.split(',').next().unwrap_or(descr)
        ));
    };
    if field("fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
        );
    }
    let shape_text = field("shape").ok_or("no 'shape' in header")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("malformed shape")?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape entry '{s}'"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let (rows, dim) = match shape.as_slice() {
        [d] => (1, *d),
        [r, d] => (*r, *d),
        _ => return Err(format!("shape {shape:?} is not 1-D or 2-D")),
    };
    if dim == 0 {
        return Err("vectors of dimension 0".into());
    }
    let body = &bytes[start + header_len..];
    if body.len() != rows * dim * width {
        return Err(format!(
            "expected {} bytes of data for shape {shape:?}, found {}",
            rows * dim * width,
            body.len()
        ));
    }
    let data = if width == 4 {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()
    };
    Ok(Matrix { dim, data })
}

/// Parse query vectors given as JSON: one vector `[..]` or a list `[[..], ..]`.
pub fn parse_json_vectors(text: &str) -> Result<Matrix> {
    let value: serde_json::Value = serde_json::from_str(text.trim()).map_err(|e| {
        Error::InvalidInput(format!(
            "query vectors are not valid JSON ({e}); give [0.1, 0.2, ...] or [[...], [...]]"
        ))
    })?;
    let as_vector = |v: &serde_json::Value, i: usize| -> Result<Vec<f32>> {
        let items = v.as_array().ok_or_else(|| {
            Error::InvalidInput(format!("query vector {i} is not a list of numbers"))
        })?;
        items
            .iter()
            .map(|x| {
                x.as_f64().map(|f| f as f32).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "query vector {i} holds {x}, which is not a number"
                    ))
                })
            })
            .collect()
    };
    let Some(items) = value.as_array() else {
        bail_invalid!("query vectors must be a JSON list: [0.1, ...] or [[...], ...]");
    };
    if items.first().is_some_and(serde_json::Value::is_array) {
        let rows = items
            .iter()
            .enumerate()
            .map(|(i, v)| as_vector(v, i))
            .collect::<Result<Vec<_>>>()?;
        Matrix::from_rows(&rows)
    } else {
        Matrix::from_rows(&[as_vector(&value, 0)?])
    }
}

/// Load query vectors from an argument: inline JSON, a `.npy` file or a JSON file.
pub fn load_queries(arg: &str) -> Result<Matrix> {
    let trimmed = arg.trim_start();
    if trimmed.starts_with('[') {
        return parse_json_vectors(trimmed);
    }
    let path = Path::new(arg);
    ensure_invalid!(
        path.exists(),
        "query vectors '{arg}' is neither inline JSON nor an existing file (.npy or .json)"
    );
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        return read_npy(path);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::InvalidInput(format!("cannot read '{arg}': {e}")))?;
    parse_json_vectors(&text)
}

/// A small deterministic PRNG (SplitMix64): the same seed gives the same data
/// on every platform, which the recall harness and benchmarks rely on.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Parameters of the clustered-vector generator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClusteredSpec {
    /// Vectors to generate.
    pub rows: usize,
    /// Dimension.
    pub dim: usize,
    /// Number of cluster centres.
    pub clusters: usize,
    /// Intrinsic dimension: points live near a random `latent`-dimensional
    /// subspace, as real embeddings do (isotropic noise in hundreds of
    /// dimensions would make every neighbour equally far, and kNN meaningless).
    pub latent: usize,
    /// Spread of points around their centre, in latent units (centres are
    /// standard normal).
    pub spread: f32,
    /// Seed.
    pub seed: u64,
}

impl ClusteredSpec {
    /// `rows` × `dim` vectors in `clusters` clusters of a 16-d latent space.
    pub fn new(rows: usize, dim: usize, clusters: usize, seed: u64) -> Self {
        Self {
            rows,
            dim,
            clusters,
            latent: 16.min(dim),
            spread: 0.35,
            seed,
        }
    }
}

/// Clustered unit vectors and the cluster each belongs to. A Gaussian mixture
/// in a `latent`-dimensional space (centres ~ N(0, I), points = centre +
/// `spread`·N(0, I)) is mapped to `dim` dimensions by a fixed random linear
/// map, a little isotropic noise is added, and the result is normalised.
/// Deterministic in the spec.
pub fn clustered_vectors(spec: &ClusteredSpec) -> Result<(Matrix, Vec<u32>)> {
    ensure_invalid!(spec.dim > 0, "--dim must be at least 1");
    ensure_invalid!(spec.clusters > 0, "--clusters must be at least 1");
    let latent = spec.latent.clamp(1, spec.dim);
    let mut rng = Rng::new(spec.seed);
    let scale = 1.0 / (latent as f32).sqrt();
    let projection: Vec<f32> = (0..latent * spec.dim)
        .map(|_| rng.normal() as f32 * scale)
        .collect();
    let centres: Vec<f32> = (0..spec.clusters * latent)
        .map(|_| rng.normal() as f32)
        .collect();
    let noise = 0.05 / (spec.dim as f32).sqrt();
    let mut data = vec![0f32; spec.rows * spec.dim];
    let mut labels = Vec::with_capacity(spec.rows);
    let mut z = vec![0f32; latent];
    for row in data.chunks_mut(spec.dim) {
        let c = rng.below(spec.clusters);
        labels.push(c as u32);
        for (j, zj) in z.iter_mut().enumerate() {
            *zj = centres[c * latent + j] + spec.spread * rng.normal() as f32;
        }
        row.iter_mut()
            .for_each(|x| *x = noise * rng.normal() as f32);
        for (j, zj) in z.iter().enumerate() {
            let p = &projection[j * spec.dim..(j + 1) * spec.dim];
            for (x, pj) in row.iter_mut().zip(p) {
                *x += zj * pj;
            }
        }
        normalize(row);
    }
    Ok((
        Matrix {
            dim: spec.dim,
            data,
        },
        labels,
    ))
}

/// Exact k nearest rows of `data` for each query, by (distance, row): the
/// ground truth recall is measured against.
pub fn brute_force_knn(data: &Matrix, queries: &Matrix, k: usize, metric: Metric) -> Vec<Vec<u64>> {
    queries
        .data
        .chunks(queries.dim)
        .map(|q| {
            let mut scored: Vec<(f32, u64)> = data
                .data
                .chunks(data.dim)
                .enumerate()
                .map(|(i, row)| (metric.distance(q, row), i as u64))
                .collect();
            top_k(&mut scored, k);
            scored.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

/// Keep the `k` smallest `(distance, id)` pairs, sorted: a partial selection,
/// then a sort of the survivors only.
pub fn top_k(items: &mut Vec<(f32, u64)>, k: usize) {
    let cmp = |a: &(f32, u64), b: &(f32, u64)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if items.len() > k && k > 0 {
        items.select_nth_unstable_by(k - 1, cmp);
        items.truncate(k);
    } else if k == 0 {
        items.clear();
    }
    items.sort_by(cmp);
}

/// Mean fraction of the true top-k found in each result list.
pub fn recall_at_k(truth: &[Vec<u64>], found: &[Vec<u64>]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let total: f64 = truth
        .iter()
        .zip(found)
        .map(|(t, f)| {
            if t.is_empty() {
                return 1.0;
            }
            let hits = f.iter().filter(|id| t.contains(id)).count();
            hits as f64 / t.len() as f64
        })
        .sum();
    total / truth.len() as f64
}

/// The Arrow schema of generated vector data: `id`, `cluster`, `category`, `vector`.
pub fn generated_schema(dim: usize) -> Result<arrow_schema::SchemaRef> {
    use arrow_schema::{DataType, Field, Schema};
    let dim = i32::try_from(dim)
        .map_err(|_| Error::InvalidInput(format!("dimension {dim} is too large")))?;
    Ok(std::sync::Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("cluster", DataType::UInt32, false),
        Field::new("category", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(
                std::sync::Arc::new(Field::new("item", DataType::Float32, true)),
                dim,
            ),
            false,
        ),
    ])))
}

/// Generated vectors as record batches of `batch_rows` rows (see [`generated_schema`]).
/// `category` is one of ten labels (`c0`..`c9`) for filter demos.
pub fn generated_batches(
    data: &Matrix,
    labels: &[u32],
    batch_rows: usize,
) -> Result<Vec<arrow_array::RecordBatch>> {
    use arrow_array::{ArrayRef, StringArray, UInt32Array, UInt64Array};
    let schema = generated_schema(data.dim)?;
    let mut out = Vec::new();
    let rows = data.rows();
    let mut start = 0;
    while start < rows {
        let end = (start + batch_rows.max(1)).min(rows);
        let slice = Matrix {
            dim: data.dim,
            data: data.data[start * data.dim..end * data.dim].to_vec(),
        };
        let ids: ArrayRef = std::sync::Arc::new(UInt64Array::from_iter_values(
            (start..end).map(|i| i as u64),
        ));
        let cluster: ArrayRef = std::sync::Arc::new(UInt32Array::from(labels[start..end].to_vec()));
        let category: ArrayRef = std::sync::Arc::new(StringArray::from_iter_values(
            labels[start..end].iter().map(|c| format!("c{}", c % 10)),
        ));
        let vector: ArrayRef = std::sync::Arc::new(slice.to_fixed_size_list()?);
        let fields = schema.fields();
        // The generated vectors have no nulls; the schema says so.
        let vector = arrow_cast::cast(&vector, fields[3].data_type())
            .map_err(|e| Error::Internal(format!("vector column: {e}")))?;
        out.push(
            arrow_array::RecordBatch::try_new(schema.clone(), vec![ids, cluster, category, vector])
                .map_err(|e| Error::Internal(format!("generated batch: {e}")))?,
        );
        start = end;
    }
    Ok(out)
}

/// Write generated vectors to a Parquet file.
pub fn write_generated_parquet(path: &Path, data: &Matrix, labels: &[u32]) -> Result<()> {
    let schema = generated_schema(data.dim)?;
    let file = std::fs::File::create(path)
        .map_err(|e| Error::InvalidInput(format!("cannot create '{}': {e}", path.display())))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)
        .map_err(|e| Error::Internal(format!("parquet writer: {e}")))?;
    for batch in generated_batches(data, labels, 8192)? {
        writer
            .write(&batch)
            .map_err(|e| Error::Storage(format!("write '{}': {e}", path.display())))?;
    }
    writer
        .close()
        .map_err(|e| Error::Storage(format!("finish '{}': {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_numpy_header_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        let m = Matrix::new(3, vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
        write_npy(&path, &m).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0, "header must be 64-byte aligned");
        assert_eq!(read_npy(&path).unwrap(), m);
    }

    #[test]
    fn npy_rejects_other_dtypes_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        write_npy(&path, &Matrix::new(2, vec![1.0, 2.0]).unwrap()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_npy(&path)
            .unwrap_err()
            .to_string()
            .contains("expected 8 bytes"));
        let text = String::from_utf8_lossy(&bytes).replace("<f4", "<i4");
        std::fs::write(&path, text.as_bytes()).unwrap();
        assert!(read_npy(&path).is_err());
    }

    #[test]
    fn matrix_travels_exactly_through_json() {
        let m = Matrix::new(2, vec![0.1, -3.25e-7, f32::MAX, 1.0 / 3.0]).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back: Matrix = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn json_queries_one_or_many_and_ragged_rejected() {
        assert_eq!(parse_json_vectors("[1, 2.5]").unwrap().rows(), 1);
        let m = parse_json_vectors("[[1,2],[3,4],[5,6]]").unwrap();
        assert_eq!((m.rows(), m.dim), (3, 2));
        let err = parse_json_vectors("[[1,2],[3]]").unwrap_err().to_string();
        assert!(err.contains("same dimension"), "{err}");
        assert!(parse_json_vectors("[\"a\"]").is_err());
        assert!(parse_json_vectors("{}").is_err());
    }

    #[test]
    fn generator_is_deterministic_and_unit_norm() {
        let spec = ClusteredSpec::new(50, 8, 4, 7);
        let (a, la) = clustered_vectors(&spec).unwrap();
        let (b, lb) = clustered_vectors(&spec).unwrap();
        assert_eq!(a, b);
        assert_eq!(la, lb);
        for row in a.data.chunks(8) {
            let n: f32 = row.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
        let (c, _) = clustered_vectors(&ClusteredSpec::new(50, 8, 4, 8)).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn brute_force_finds_itself_first_and_top_k_is_ordered() {
        let (data, _) = clustered_vectors(&ClusteredSpec::new(200, 16, 5, 1)).unwrap();
        let queries = Matrix::new(16, data.row(17).to_vec()).unwrap();
        for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
            let ids = &brute_force_knn(&data, &queries, 5, metric)[0];
            assert_eq!(ids[0], 17, "{metric:?}");
            assert_eq!(ids.len(), 5);
        }
        let mut items = vec![(3.0, 1), (1.0, 9), (1.0, 2), (0.5, 4)];
        top_k(&mut items, 3);
        assert_eq!(items, vec![(0.5, 4), (1.0, 2), (1.0, 9)]);
        assert_eq!(recall_at_k(&[vec![1, 2]], &[vec![2, 5]]), 0.5);
    }
}
