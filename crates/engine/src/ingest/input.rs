//! Raw input files: format detection, schema inference and streaming readers.
//!
//! Every reader streams record batches of bounded size, so inputs far larger
//! than memory can be ingested. Errors name the file and, for line-based
//! formats, the line, so a user can open the file at the right place.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{new_null_array, ArrayRef, RecordBatch, RecordBatchOptions, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{bail_invalid, Error, Result};

/// Rows per decoded batch.
pub const BATCH_ROWS: usize = 8192;
/// Records read to infer a schema from JSONL or CSV.
pub const INFER_RECORDS: usize = 10_000;

/// The input formats ingest reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// One JSON object per line (`.jsonl`, `.ndjson`, `.json`).
    Jsonl,
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
    /// Arrow IPC file or stream (`.arrow`, `.feather`, `.ipc`, `.arrows`).
    Arrow,
}

impl InputFormat {
    /// Parse a `--format` value.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Ok(Self::Jsonl),
            "parquet" | "pq" => Ok(Self::Parquet),
            "csv" => Ok(Self::Csv),
            "arrow" | "ipc" | "feather" => Ok(Self::Arrow),
            other => {
                bail_invalid!("unknown input format '{other}'; use jsonl, parquet, csv or arrow")
            }
        }
    }

    /// Guess the format from a file name.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").map(str::to_string).unwrap_or(name);
        let ext = name.rsplit('.').next()?;
        Self::parse(ext).ok().or(match ext {
            "arrows" => Some(Self::Arrow),
            _ => None,
        })
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Arrow => "arrow",
        }
    }
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(format!(
            "input file '{}' does not exist; check the path",
            path.display()
        )),
        _ => Error::InvalidInput(format!("cannot read input file '{}': {e}", path.display())),
    })
}

fn file_error(path: &Path, err: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{}: {err}", path.display()))
}

/// Infer the schema of an input file (from its first records for JSONL/CSV).
pub fn infer_schema(path: &Path, format: InputFormat) -> Result<SchemaRef> {
    let schema = match format {
        InputFormat::Jsonl => infer_jsonl(path)?,
        InputFormat::Csv => {
            let mut file = open_file(path)?;
            let (schema, _) = arrow_csv::reader::Format::default()
                .with_header(true)
                .infer_schema(&mut file, Some(INFER_RECORDS))
                .map_err(|e| file_error(path, format!("not a readable CSV file: {e}")))?;
            schema
        }
        InputFormat::Parquet => {
            let file = open_file(path)?;
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| file_error(path, format!("not a readable Parquet file: {e}")))?;
            builder.schema().as_ref().clone()
        }
        InputFormat::Arrow => open_arrow(path, None)?.schema().as_ref().clone(),
    };
    check_unique_names(path, schema.fields().iter().map(|f| f.name().as_str()))?;
    Ok(Arc::new(storable_schema(schema)))
}

/// Refuse a file whose columns repeat a name: one of them would be dropped.
fn check_unique_names<'a>(path: &Path, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            bail_invalid!(
                "{}: the column '{name}' appears more than once; rename one of them",
                path.display()
            );
        }
    }
    Ok(())
}

/// Columns whose type was not decided by the sample (all null) become
/// strings; metadata is dropped.
fn storable_schema(schema: Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let dt = match f.data_type() {
                DataType::Null => DataType::Utf8,
                other => other.clone(),
            };
            Field::new(f.name(), dt, true)
        })
        .collect();
    Schema::new(fields)
}

fn infer_jsonl(path: &Path) -> Result<Schema> {
    let file = open_file(path)?;
    let reader = BufReader::new(file);
    let mut sample = Vec::new();
    let mut order: Vec<String> = Vec::new();
    let mut records = 0;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| file_error(path, format!("line {}: {e}", i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        // One strict parse both checks the syntax and yields the key order.
        let KeyOrder(keys) = serde_json::from_str::<KeyOrder>(&line).map_err(|e| {
            file_error(
                path,
                format!(
                    "line {}: malformed JSON ({e}); each line must be one JSON object",
                    i + 1
                ),
            )
        })?;
        for key in keys {
            if !order.contains(&key) {
                order.push(key);
            }
        }
        sample.extend_from_slice(line.as_bytes());
        sample.push(b'\n');
        records += 1;
        if records >= INFER_RECORDS {
            break;
        }
    }
    if records == 0 {
        bail_invalid!("{}: the file holds no records", path.display());
    }
    let (schema, _) = arrow_json::reader::infer_json_schema(std::io::Cursor::new(sample), None)
        .map_err(|e| file_error(path, format!("cannot infer a schema: {e}")))?;
    // arrow sorts inferred fields by name; keep the order the records use.
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.sort_by_key(|f| {
        order
            .iter()
            .position(|k| k == f.name())
            .unwrap_or(usize::MAX)
    });
    Ok(Schema::new(fields))
}

/// The keys of a JSON object, in the order they appear.
struct KeyOrder(Vec<String>);

impl<'de> Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(KeyOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// How to read one input file.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The schema every batch must have, in order.
    pub target: SchemaRef,
    /// Reject fields the target does not know (no `--columns` projection).
    pub strict: bool,
    /// Rows per batch.
    pub batch_rows: usize,
}

/// Open a streaming reader over `path` producing batches of `options.target`.
///
/// `range` limits a JSONL file to some of its lines (see [`split_lines`]).
pub fn open_reader(
    path: &Path,
    format: InputFormat,
    options: &ReadOptions,
    range: Option<LineRange>,
) -> Result<Box<dyn RecordBatchReader + Send>> {
    if range.is_some() && format != InputFormat::Jsonl {
        return Err(Error::Internal(format!(
            "line ranges apply to JSONL only, not {}",
            format.name()
        )));
    }
    let source: Box<dyn RecordBatchReader + Send> = match format {
        InputFormat::Jsonl => Box::new(JsonlReader::open(path, options, range)?),
        InputFormat::Csv => open_csv(path, options)?,
        InputFormat::Parquet => {
            let file = open_file(path)?;
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| file_error(path, format!("not a readable Parquet file: {e}")))?;
            let reader = builder
                .with_batch_size(options.batch_rows)
                .build()
                .map_err(|e| file_error(path, e))?;
            Box::new(reader)
        }
        InputFormat::Arrow => open_arrow(path, None)?,
    };
    Ok(conform(
        source,
        options.target.clone(),
        path,
        options.strict,
    ))
}

/// `source`'s batches as batches of `target`: columns cast to the target's
/// types, nullable columns it lacks filled with nulls, and (`strict`)
/// columns the target does not have refused; `label` names the source in
/// errors.
pub fn conform(
    source: Box<dyn RecordBatchReader + Send>,
    target: SchemaRef,
    label: &Path,
    strict: bool,
) -> Box<dyn RecordBatchReader + Send> {
    Box::new(Conform {
        inner: source,
        target,
        path: label.to_path_buf(),
        strict,
        failed: false,
    })
}

fn open_arrow(
    path: &Path,
    projection: Option<Vec<usize>>,
) -> Result<Box<dyn RecordBatchReader + Send>> {
    let mut file = open_file(path)?;
    let mut magic = [0u8; 6];
    let is_file_format = file.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
    file.seek(SeekFrom::Start(0))
        .map_err(|e| file_error(path, e))?;
    if is_file_format {
        let reader = arrow_ipc::reader::FileReader::try_new(file, projection)
            .map_err(|e| file_error(path, format!("not a readable Arrow IPC file: {e}")))?;
        Ok(Box::new(reader))
    } else {
        let reader = arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), projection)
            .map_err(|e| {
                file_error(
                    path,
                    format!("not a readable Arrow IPC file or stream: {e}"),
                )
            })?;
        Ok(Box::new(reader))
    }
}

fn open_csv(path: &Path, options: &ReadOptions) -> Result<Box<dyn RecordBatchReader + Send>> {
    // Decode in the file's header order, with the target's types.
    let mut file = open_file(path)?;
    let mut header = String::new();
    BufReader::new(&mut file)
        .read_line(&mut header)
        .map_err(|e| file_error(path, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| file_error(path, e))?;
    let names = parse_csv_header(path, &header)?;
    let mut fields = Vec::with_capacity(names.len());
    for name in &names {
        match options.target.field_with_name(name) {
            Ok(f) => fields.push(f.clone()),
            Err(_) if !options.strict => fields.push(Field::new(name, DataType::Utf8, true)),
            Err(_) => bail_invalid!(
                "{}: column '{name}' is not in the dataset (its columns: {}); remove it or pick \
                 columns with --columns",
                path.display(),
                column_list(&options.target)
            ),
        }
    }
    let reader = arrow_csv::ReaderBuilder::new(Arc::new(Schema::new(fields)))
        .with_header(true)
        .with_batch_size(options.batch_rows)
        .build(file)
        .map_err(|e| file_error(path, e))?;
    Ok(Box::new(reader))
}

fn parse_csv_header(path: &Path, header: &str) -> Result<Vec<String>> {
    let names: Vec<String> = split_csv_line(header.trim_end_matches(['\r', '\n']));
    if names.iter().all(|n| n.trim().is_empty()) {
        bail_invalid!("{}: the CSV file has no header row", path.display());
    }
    check_unique_names(path, names.iter().map(String::as_str))?;
    Ok(names)
}

/// Split one CSV line into fields (quotes with doubled-quote escapes).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            other => cur.push(other),
        }
    }
    out.push(cur);
    out
}

pub(crate) fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reorders, casts and null-fills batches into the target schema.
struct Conform {
    inner: Box<dyn RecordBatchReader + Send>,
    target: SchemaRef,
    path: PathBuf,
    strict: bool,
    failed: bool,
}

impl Conform {
    fn conform(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, ArrowError> {
        let schema = batch.schema();
        if self.strict {
            if let Some(extra) = schema
                .fields()
                .iter()
                .find(|f| self.target.field_with_name(f.name()).is_err())
            {
                return Err(ArrowError::SchemaError(format!(
                    "column '{}' is not in the dataset (its columns: {}); remove it or pick columns with --columns",
                    extra.name(),
                    column_list(&self.target)
                )));
            }
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.target.fields().len());
        for field in self.target.fields() {
            let column = match schema.index_of(field.name()) {
                Ok(i) => {
                    let col = batch.column(i);
                    if col.data_type() == field.data_type() {
                        col.clone()
                    } else {
                        let opts = arrow_cast::CastOptions {
                            safe: false,
                            ..Default::default()
                        };
                        arrow_cast::cast_with_options(col, field.data_type(), &opts).map_err(
                            |e| {
                                ArrowError::CastError(format!(
                                    "column '{}' has type {} but the dataset stores {}: {e}",
                                    field.name(),
                                    col.data_type(),
                                    field.data_type()
                                ))
                            },
                        )?
                    }
                }
                Err(_) if field.is_nullable() => {
                    new_null_array(field.data_type(), batch.num_rows())
                }
                Err(_) => {
                    return Err(ArrowError::SchemaError(format!(
                        "required column '{}' is missing",
                        field.name()
                    )))
                }
            };
            columns.push(column);
        }
        RecordBatch::try_new_with_options(
            self.target.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
    }
}

impl Iterator for Conform {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match self.inner.next()? {
            Ok(batch) => self.conform(batch),
            Err(e) => Err(e),
        };
        Some(item.map_err(|e| {
            self.failed = true;
            let text = match &e {
                ArrowError::ExternalError(inner) => inner.to_string(),
                other => other.to_string(),
            };
            ArrowError::InvalidArgumentError(format!("{}: {text}", self.path.display()))
        }))
    }
}

impl RecordBatchReader for Conform {
    fn schema(&self) -> SchemaRef {
        self.target.clone()
    }
}

/// The first error a reader produced, kept for the caller: storage layers
/// wrap reader errors in their own, and the user needs the original.
#[derive(Debug, Clone, Default)]
pub struct FirstError(Arc<std::sync::Mutex<Option<String>>>);

impl FirstError {
    /// Take the recorded message, if any.
    pub fn take(&self) -> Option<String> {
        match self.0.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }

    fn record(&self, message: String) {
        let mut guard = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.is_none() {
            *guard = Some(message);
        }
    }
}

/// Wrap a reader so its first error is also kept in the returned slot.
pub fn remember_errors(
    reader: Box<dyn RecordBatchReader + Send>,
) -> (Box<dyn RecordBatchReader + Send>, FirstError) {
    let slot = FirstError::default();
    let wrapped = Remember {
        inner: reader,
        slot: slot.clone(),
    };
    (Box::new(wrapped), slot)
}

struct Remember {
    inner: Box<dyn RecordBatchReader + Send>,
    slot: FirstError,
}

impl Iterator for Remember {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        if let Err(e) = &item {
            let text = match e {
                ArrowError::InvalidArgumentError(m) => m.clone(),
                other => other.to_string(),
            };
            self.slot.record(text);
        }
        Some(item)
    }
}

impl RecordBatchReader for Remember {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// A slice of a line-delimited file: whole lines from `start` (a byte offset
/// at a line start) up to `end`, the first being line `first_line` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRange {
    /// Byte offset of the first line.
    pub start: u64,
    /// Byte offset just past the last line.
    pub end: u64,
    /// Line number of the first line (1-based), for error messages.
    pub first_line: u64,
}

/// Cut a JSONL file into ranges of `lines_per_range` lines each (the last may
/// be shorter), so one large file can be ingested by several tasks. One fast
/// pass over the file counts newlines; nothing is parsed.
pub fn split_lines(path: &Path, lines_per_range: u64) -> Result<Vec<LineRange>> {
    let lines_per_range = lines_per_range.max(1);
    let mut file = BufReader::with_capacity(1 << 20, open_file(path)?);
    let mut ranges = Vec::new();
    let mut range_start = 0u64;
    let mut range_first_line = 1u64;
    let mut lines_in_range = 0u64;
    let mut offset = 0u64;
    loop {
        let buf = file.fill_buf().map_err(|e| file_error(path, e))?;
        if buf.is_empty() {
            break;
        }
        let len = buf.len();
        let mut pos = 0usize;
        while let Some(i) = memchr::memchr(b'\n', &buf[pos..]) {
            pos += i + 1;
            lines_in_range += 1;
            if lines_in_range == lines_per_range {
                let end = offset + pos as u64;
                ranges.push(LineRange {
                    start: range_start,
                    end,
                    first_line: range_first_line,
                });
                range_start = end;
                range_first_line += lines_in_range;
                lines_in_range = 0;
            }
        }
        offset += len as u64;
        file.consume(len);
    }
    if offset > range_start {
        ranges.push(LineRange {
            start: range_start,
            end: offset,
            first_line: range_first_line,
        });
    }
    Ok(ranges)
}

/// Estimate a line-delimited file's line count from its first MiB.
pub fn estimate_lines(path: &Path) -> Result<u64> {
    let size = std::fs::metadata(path)
        .map_err(|e| file_error(path, e))?
        .len();
    let mut head = vec![0u8; (1usize << 20).min(size as usize)];
    open_file(path)?
        .read_exact(&mut head)
        .map_err(|e| file_error(path, e))?;
    let lines = memchr::memchr_iter(b'\n', &head).count().max(1) as u64;
    Ok(lines.saturating_mul(size) / head.len().max(1) as u64)
}

/// Streams JSONL through arrow's decoder a block of lines at a time. Every
/// line is syntax-checked first (arrow's tape decoder tolerates some
/// malformed JSON, e.g. `{"a":1,,}`), and a failing block is re-decoded
/// line by line so the error names the line.
struct JsonlReader {
    input: std::io::Take<BufReader<File>>,
    decode_schema: SchemaRef,
    strict: bool,
    batch_rows: usize,
    next_line: u64,
    block: Vec<u8>,
    done: bool,
}

impl JsonlReader {
    fn open(path: &Path, options: &ReadOptions, range: Option<LineRange>) -> Result<Self> {
        let mut file = open_file(path)?;
        let (start, limit, first_line) = match range {
            Some(r) => (r.start, r.end.saturating_sub(r.start), r.first_line),
            None => (0, u64::MAX, 1),
        };
        file.seek(SeekFrom::Start(start))
            .map_err(|e| file_error(path, e))?;
        Ok(Self {
            input: BufReader::with_capacity(1 << 20, file).take(limit),
            decode_schema: options.target.clone(),
            strict: options.strict,
            batch_rows: options.batch_rows.max(1),
            next_line: first_line,
            block: Vec::with_capacity(1 << 20),
            done: false,
        })
    }

    fn decoder(&self, rows: usize) -> std::result::Result<arrow_json::reader::Decoder, ArrowError> {
        arrow_json::ReaderBuilder::new(self.decode_schema.clone())
            .with_batch_size(rows.max(1))
            .with_strict_mode(self.strict)
            .build_decoder()
    }

    fn decode(
        &self,
        bytes: &[u8],
        rows: usize,
    ) -> std::result::Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = self.decoder(rows)?;
        let mut rest = bytes;
        while !rest.is_empty() {
            let consumed = decoder.decode(rest)?;
            if consumed == 0 {
                break;
            }
            rest = &rest[consumed..];
        }
        decoder.flush()
    }

    /// Find the first line of a failed block that fails on its own.
    fn locate(&self, lines: &[(u64, std::ops::Range<usize>)], fallback: ArrowError) -> ArrowError {
        for (no, span) in lines {
            let line = &self.block[span.clone()];
            if let Err(e) = self.decode(line, 1) {
                return ArrowError::InvalidArgumentError(format!("line {no}: {e}"));
            }
        }
        fallback
    }
}

/// Whether `line` is exactly one JSON object (syntax only; values are not kept).
fn check_json_object(line: &[u8]) -> std::result::Result<(), String> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err("not a JSON object; each line must be one JSON object".into());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(line)
        .map(|_| ())
        .map_err(|e| format!("malformed JSON ({e}); each line must be one JSON object"))
}

impl Iterator for JsonlReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.block.clear();
        let mut lines: Vec<(u64, std::ops::Range<usize>)> = Vec::with_capacity(self.batch_rows);
        while lines.len() < self.batch_rows {
            let begin = self.block.len();
            match self.input.read_until(b'\n', &mut self.block) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(_) => {
                    let no = self.next_line;
                    self.next_line += 1;
                    let span = begin..self.block.len();
                    let line = &self.block[span.clone()];
                    if line.iter().all(|b| b.is_ascii_whitespace()) {
                        continue;
                    }
                    if let Err(message) = check_json_object(line) {
                        self.done = true;
                        return Some(Err(ArrowError::InvalidArgumentError(format!(
                            "line {no}: {message}"
                        ))));
                    }
                    lines.push((no, span));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(ArrowError::InvalidArgumentError(format!(
                        "line {}: cannot read ({e})",
                        self.next_line
                    ))));
                }
            }
        }
        if lines.is_empty() {
            return None;
        }
        match self.decode(&self.block, lines.len()) {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(self.locate(&lines, e)))
            }
        }
    }
}

impl RecordBatchReader for JsonlReader {
    fn schema(&self) -> SchemaRef {
        self.decode_schema.clone()
    }
}

crate::error::from_str_by_parse!(InputFormat);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        let mut f = File::create(&p).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        p
    }

    fn read_all(path: &Path, format: InputFormat, strict: bool) -> Result<Vec<RecordBatch>> {
        let target = infer_schema(path, format)?;
        let opts = ReadOptions {
            target,
            strict,
            batch_rows: 2,
        };
        let reader = open_reader(path, format, &opts, None)?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::InvalidInput(e.to_string()))
    }

    #[test]
    fn formats_from_names() {
        assert_eq!(
            InputFormat::from_path(Path::new("a/b.jsonl")),
            Some(InputFormat::Jsonl)
        );
        assert_eq!(
            InputFormat::from_path(Path::new("b.PARQUET")),
            Some(InputFormat::Parquet)
        );
        assert_eq!(
            InputFormat::from_path(Path::new("b.arrows")),
            Some(InputFormat::Arrow)
        );
        assert_eq!(InputFormat::from_path(Path::new("b.txt")), None);
        assert!(InputFormat::parse("xml").is_err());
    }

    #[test]
    fn jsonl_streams_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.jsonl",
            "{\"a\":1,\"b\":\"x\"}\n\n{\"a\":2,\"b\":null}\n{\"a\":3}\n",
        );
        let batches = read_all(&p, InputFormat::Jsonl, true).unwrap();
        assert_eq!(
            batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            vec![2, 1]
        );
    }

    #[test]
    fn malformed_jsonl_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "bad.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\":\n");
        let err = read_all(&p, InputFormat::Jsonl, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.jsonl") && err.contains("line 3"), "{err}");

        // A syntax error after the inference sample is found while decoding.
        let mut text = String::new();
        for i in 0..5 {
            text.push_str(&format!("{{\"a\":{i}}}\n"));
        }
        text.push_str("{\"a\": 7,,}\n");
        let p = write(dir.path(), "late.jsonl", &text);
        let target = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let opts = ReadOptions {
            target,
            strict: true,
            batch_rows: 4,
        };
        let err = open_reader(&p, InputFormat::Jsonl, &opts, None)
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("late.jsonl") && err.contains("line 6") && err.contains("malformed JSON"),
            "{err}"
        );
    }

    #[test]
    fn jsonl_type_mismatch_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "t.jsonl",
            "{\"a\":1}\n{\"a\":2}\n{\"a\":\"three\"}\n",
        );
        let target = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let opts = ReadOptions {
            target,
            strict: true,
            batch_rows: 10,
        };
        let err = open_reader(&p, InputFormat::Jsonl, &opts, None)
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn unknown_fields_rejected_when_strict() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "u.jsonl", "{\"a\":1}\n{\"a\":2,\"zzz\":true}\n");
        let target = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let strict = ReadOptions {
            target: target.clone(),
            strict: true,
            batch_rows: 10,
        };
        let err = open_reader(&p, InputFormat::Jsonl, &strict, None)
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("zzz"), "{err}");
        let lenient = ReadOptions {
            target,
            strict: false,
            batch_rows: 10,
        };
        let rows: usize = open_reader(&p, InputFormat::Jsonl, &lenient, None)
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(rows, 2);
    }

    #[test]
    fn csv_reads_in_target_order_with_casts() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.csv", "b,a\nx,1\n\"y,z\",2\n");
        let target = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Float32, true),
        ]));
        let opts = ReadOptions {
            target: target.clone(),
            strict: true,
            batch_rows: 10,
        };
        let batches: Vec<_> = open_reader(&p, InputFormat::Csv, &opts, None)
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(batches[0].schema(), target);
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].column(2).null_count(), 2);

        // A repeated column is refused on create (inference) and on append.
        let twice = write(dir.path(), "twice.csv", "a,a\n1,2\n");
        let err = infer_schema(&twice, InputFormat::Csv)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'a' appears more than once"), "{err}");
        let err = open_reader(&twice, InputFormat::Csv, &opts, None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("'a' appears more than once"), "{err}");

        let bad = write(dir.path(), "bad.csv", "a,q\n1,2\n");
        let err = open_reader(&bad, InputFormat::Csv, &opts, None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("'q'") && err.contains("bad.csv"), "{err}");
    }

    #[test]
    fn split_lines_cuts_at_line_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..10 {
            text.push_str(&format!("{{\"a\":{i}}}\n"));
        }
        text.push_str("{\"a\":10}"); // no trailing newline
        let p = write(dir.path(), "s.jsonl", &text);
        let ranges = split_lines(&p, 4).unwrap();
        assert_eq!(
            ranges.iter().map(|r| r.first_line).collect::<Vec<_>>(),
            vec![1, 5, 9]
        );
        assert_eq!(ranges.last().unwrap().end, text.len() as u64);
        let target = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let opts = ReadOptions {
            target,
            strict: true,
            batch_rows: 3,
        };
        let mut seen = Vec::new();
        for r in ranges {
            for b in open_reader(&p, InputFormat::Jsonl, &opts, Some(r)).unwrap() {
                let b = b.unwrap();
                let col = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .unwrap();
                seen.extend(col.values().iter().copied());
            }
        }
        assert_eq!(seen, (0..11).collect::<Vec<i64>>());
        let est = estimate_lines(&p).unwrap();
        assert!((10..=11).contains(&est), "{est}");
    }

    #[test]
    fn inferred_columns_keep_record_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "o.jsonl",
            "{\"zeta\":1,\"alpha\":\"x\"}\n{\"mid\":true}\n",
        );
        let schema = infer_schema(&p, InputFormat::Jsonl).unwrap();
        assert_eq!(column_list(&schema), "zeta, alpha, mid");
    }

    #[test]
    fn missing_file_is_not_found() {
        let err = infer_schema(Path::new("/nonexistent/x.jsonl"), InputFormat::Jsonl).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
    }
}
