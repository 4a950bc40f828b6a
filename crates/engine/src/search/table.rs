//! Search results as one Arrow record batch: what the Python package hands
//! to pyarrow (through the C data interface, without copies) and what a
//! caller that wants columns instead of hits reads.
//!
//! Hits carry their requested columns as JSON values (distributed search
//! tasks return them through serde); each result type keeps the Arrow
//! schema of those columns, taken from the dataset it searched, so the
//! batch gets the dataset's own types back (int32 stays int32, timestamps
//! stay timestamps). A column whose values the JSON reader cannot turn back
//! into its type (rare: e.g. a binary column) falls back to the types
//! inferred from the values.
//!
//! Layout: one row per hit, best first, queries in order; the leading
//! columns are the scores (`query`, `_rowid`, `_distance` for a vector
//! search; `_rowid`, `_score` for full-text; `_rowid`, `_score`,
//! `vector_rank`, `_distance`, `text_rank`, `text_score` for hybrid), then
//! the requested columns in the order asked for.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::search::hybrid::HybridResults;
use crate::search::query::{SearchResults, DISTANCE, ROW_ID};
use crate::search::text::TextResults;
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, RecordBatch, RecordBatchOptions, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

type Fields = serde_json::Map<String, serde_json::Value>;

/// A vector search's hits: `query` (the query's position in the batch),
/// `_rowid`, `_distance`, then the requested columns.
pub fn vector_table(results: &SearchResults) -> Result<RecordBatch> {
    let hits = results.results.iter().flat_map(|q| {
        q.hits
            .iter()
            .map(move |h| (q.query, h.row_id, h.distance, &h.fields))
    });
    let (mut query, mut row_id, mut distance, mut fields) = (vec![], vec![], vec![], vec![]);
    for (q, id, d, f) in hits {
        query.push(u32::try_from(q).unwrap_or(u32::MAX));
        row_id.push(id);
        distance.push(d);
        fields.push(f);
    }
    let leading: Vec<(Field, ArrayRef)> = vec![
        (
            Field::new("query", DataType::UInt32, false),
            Arc::new(UInt32Array::from(query)),
        ),
        (
            Field::new(ROW_ID, DataType::UInt64, false),
            Arc::new(UInt64Array::from(row_id)),
        ),
        (
            Field::new(DISTANCE, DataType::Float32, false),
            Arc::new(Float32Array::from(distance)),
        ),
    ];
    assemble(leading, results.columns.as_deref(), &fields)
}

/// A full-text search's hits: `_rowid`, `_score` (BM25), then the
/// requested columns.
pub fn text_table(results: &TextResults) -> Result<RecordBatch> {
    let leading: Vec<(Field, ArrayRef)> = vec![
        (
            Field::new(ROW_ID, DataType::UInt64, false),
            Arc::new(UInt64Array::from_iter_values(
                results.hits.iter().map(|h| h.row_id),
            )),
        ),
        (
            Field::new("_score", DataType::Float32, false),
            Arc::new(Float32Array::from_iter_values(
                results.hits.iter().map(|h| h.score),
            )),
        ),
    ];
    let fields: Vec<&Fields> = results.hits.iter().map(|h| &h.fields).collect();
    assemble(leading, results.columns.as_deref(), &fields)
}

/// A hybrid search's hits: `_rowid`, `_score` (fused), each leg's rank and
/// score (null where the leg did not find the row), then the requested
/// columns.
pub fn hybrid_table(results: &HybridResults) -> Result<RecordBatch> {
    let hits = &results.hits;
    let rank = |r: Option<usize>| r.map(|r| u32::try_from(r).unwrap_or(u32::MAX));
    let leading: Vec<(Field, ArrayRef)> = vec![
        (
            Field::new(ROW_ID, DataType::UInt64, false),
            Arc::new(UInt64Array::from_iter_values(hits.iter().map(|h| h.row_id))),
        ),
        (
            Field::new("_score", DataType::Float64, false),
            Arc::new(Float64Array::from_iter_values(hits.iter().map(|h| h.score))),
        ),
        (
            Field::new("vector_rank", DataType::UInt32, true),
            Arc::new(UInt32Array::from_iter(
                hits.iter().map(|h| rank(h.vector_rank)),
            )),
        ),
        (
            Field::new(DISTANCE, DataType::Float32, true),
            Arc::new(Float32Array::from_iter(hits.iter().map(|h| h.distance))),
        ),
        (
            Field::new("text_rank", DataType::UInt32, true),
            Arc::new(UInt32Array::from_iter(
                hits.iter().map(|h| rank(h.text_rank)),
            )),
        ),
        (
            Field::new("text_score", DataType::Float32, true),
            Arc::new(Float32Array::from_iter(hits.iter().map(|h| h.text_score))),
        ),
    ];
    let fields: Vec<&Fields> = hits.iter().map(|h| &h.fields).collect();
    assemble(leading, results.columns.as_deref(), &fields)
}

/// The leading score columns, then the requested columns decoded from the
/// hits' values with `schema` (or with the types the values suggest).
fn assemble(
    leading: Vec<(Field, ArrayRef)>,
    schema: Option<&Schema>,
    rows: &[&Fields],
) -> Result<RecordBatch> {
    let rows_count = leading.first().map_or(rows.len(), |(_, a)| a.len());
    let (mut fields, mut columns): (Vec<Field>, Vec<ArrayRef>) = leading.into_iter().unzip();
    let decoded = match schema {
        Some(schema) => decode(Arc::new(schema.clone()), rows).or_else(|_| inferred(rows))?,
        None => inferred(rows)?,
    };
    if let Some(batch) = decoded {
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            if fields.iter().any(|f| f.name() == field.name()) {
                continue;
            }
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows_count)),
    )
    .map_err(|e| Error::Internal(format!("search results as Arrow: {e}")))
}

/// The rows' values as columns of `schema`; `None` when it has no columns.
fn decode(schema: SchemaRef, rows: &[&Fields]) -> Result<Option<RecordBatch>> {
    if schema.fields().is_empty() {
        return Ok(None);
    }
    let err =
        |e: arrow_schema::ArrowError| Error::Internal(format!("search results as Arrow: {e}"));
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()
        .map_err(err)?;
    decoder.serialize(rows).map_err(err)?;
    match decoder.flush().map_err(err)? {
        Some(batch) => Ok(Some(batch)),
        None => Ok(Some(RecordBatch::new_empty(schema))),
    }
}

/// The rows' values with the types they suggest (the fallback, and the
/// schema of results that carry none).
fn inferred(rows: &[&Fields]) -> Result<Option<RecordBatch>> {
    let values = rows
        .iter()
        .map(|r| Ok::<_, arrow_schema::ArrowError>(serde_json::Value::Object((*r).clone())));
    let schema = arrow_json::reader::infer_json_schema_from_iterator(values)
        .map_err(|e| Error::Internal(format!("search results as Arrow: {e}")))?;
    decode(Arc::new(schema), rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::metric::Metric;
    use crate::search::query::{Hit, QueryHits};
    use arrow_array::{Array, Int32Array, StringArray};
    use serde_json::json;

    fn fields(id: i64, title: &str) -> Fields {
        json!({"id": id, "title": title})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    fn results(schema: Option<SchemaRef>) -> SearchResults {
        let hit = |row_id, distance, f| Hit {
            row_id,
            distance,
            fields: f,
        };
        SearchResults {
            results: vec![
                QueryHits {
                    query: 0,
                    hits: vec![hit(7, 0.5, fields(1, "a")), hit(3, 0.75, fields(2, "b"))],
                },
                QueryHits {
                    query: 1,
                    hits: vec![hit(9, 0.25, fields(3, "c"))],
                },
            ],
            version: 1,
            index: None,
            metric: Metric::L2,
            tasks: 0,
            seconds: 0.0,
            columns: schema,
        }
    }

    #[test]
    fn a_vector_search_becomes_columns_with_the_datasets_types() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("title", DataType::Utf8, true),
            Field::new("id", DataType::Int32, true),
        ]));
        let batch = vector_table(&results(Some(schema))).unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["query", "_rowid", "_distance", "title", "id"]);
        assert_eq!(batch.num_rows(), 3);
        let id = batch
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        assert_eq!(id.values(), &[1, 2, 3]);
        let title = batch
            .column_by_name("title")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(title.value(2), "c");
        let query = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .unwrap();
        assert_eq!(query.values(), &[0, 0, 1]);
    }

    #[test]
    fn without_a_schema_the_types_come_from_the_values() {
        let batch = vector_table(&results(None)).unwrap();
        assert_eq!(batch.num_rows(), 3);
        let id = batch.column_by_name("id").unwrap();
        assert_eq!(id.data_type(), &DataType::Int64);
        assert_eq!(id.len(), 3);
    }

    #[test]
    fn no_hits_and_no_columns_still_make_a_table() {
        let mut empty = results(Some(Arc::new(Schema::empty())));
        empty.results.clear();
        let batch = vector_table(&empty).unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.num_columns(), 3);
    }
}
