//! Columns of a dataset: lookups with errors that list what is there, and
//! what makes a column a vector column.

use arrow_schema::DataType;
use lance::dataset::Dataset;

use crate::error::{Error, Result};

/// A column of the dataset, or a not-found error listing the columns it has.
pub(crate) fn require_column<'a>(
    dataset: &'a Dataset,
    column: &str,
) -> Result<&'a lance::datatypes::Field> {
    dataset.schema().field(column).ok_or_else(|| {
        let names: Vec<String> = dataset
            .schema()
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect();
        Error::NotFound(format!(
            "column '{column}' does not exist; the dataset has: {}",
            names.join(", ")
        ))
    })
}

/// The dimension of a vector column, or a clear error naming the column's type.
pub fn vector_dimension(dataset: &Dataset, column: &str) -> Result<usize> {
    let field = require_column(dataset, column)?;
    let data_type = field.data_type();
    match &data_type {
        DataType::FixedSizeList(inner, dim)
            if matches!(inner.data_type(), DataType::Float32 | DataType::Float16) && *dim > 0 =>
        {
            Ok(*dim as usize)
        }
        other => Err(Error::InvalidInput(format!(
            "column '{column}' is {other}, not a vector column: vector indexes and searches need \
             FixedSizeList<float32> or FixedSizeList<float16>"
        ))),
    }
}

/// The only vector column, when the caller named none.
pub fn default_vector_column(dataset: &Dataset) -> Result<String> {
    let candidates: Vec<String> = dataset
        .schema()
        .fields
        .iter()
        .filter(|f| {
            matches!(f.data_type(), DataType::FixedSizeList(inner, _)
                if matches!(inner.data_type(), DataType::Float32 | DataType::Float16))
        })
        .map(|f| f.name.clone())
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::InvalidInput(
            "the dataset has no vector column (FixedSizeList<float32|float16>); embed one first \
             or name it with --column"
                .into(),
        )),
        many => Err(Error::InvalidInput(format!(
            "the dataset has several vector columns ({}); pick one with --column",
            many.join(", ")
        ))),
    }
}
