//! Bounds on what a caller may ask of a search or a read, checked before
//! any work starts.
//!
//! Every number a caller controls is bounded here (k, nprobes, the
//! re-ranked candidates k × refine_factor, the query vector's length, the
//! text query's length, the projected columns), and every SQL filter is
//! parsed once with a size budget and an allow-list of functions, so that no
//! request can reach an allocation or a recursion in lance or DataFusion that
//! is proportional to an attacker's number (issue: a `refine_factor` of 2³²
//! aborted the process on a 687 TB allocation; a 60,000-term `OR` chain
//! overflowed the stack; `repeat(text, 100000)` allocated 60 GB).
//!
//! The same checks serve the CLI and the HTTP service; [`Names`] words the
//! messages for each (`--refine-factor` vs `"refine_factor"`).

use std::ops::ControlFlow;

use sqlparser::ast::{visit_expressions, Expr};
use sqlparser::dialect::{Dialect, GenericDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{bail_invalid, Result};

/// Most hits one search may return.
pub const MAX_K: usize = 10_000;
/// Most IVF partitions one search may probe.
pub const MAX_NPROBES: usize = 65_536;
/// Most candidates one search may re-rank exactly (k × refine_factor): the
/// re-ranking reads every candidate's full vector.
pub const MAX_REFINE_CANDIDATES: usize = 100_000;
/// Longest query vector accepted (before it is compared with the column).
pub const MAX_VECTOR_DIM: usize = 65_536;
/// Longest text query, in bytes (the model reads 256 tokens at most).
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Most columns one search may return.
pub const MAX_COLUMNS: usize = 1_024;
/// Longest filter, in bytes.
pub const MAX_FILTER_BYTES: usize = 64 * 1024;
/// Most operators, names and brackets in one filter (literals and commas
/// do not count, so `id IN (1, 2, …)` lists stay cheap). It bounds the depth
/// of the expression tree lance and DataFusion walk recursively: 10,000
/// `OR` terms still run, 60,000 overflow a worker thread's stack.
pub const MAX_FILTER_TERMS: usize = 2_000;
/// Deepest bracket nesting in a filter.
const MAX_FILTER_NESTING: usize = 64;

/// Functions a filter may call: predicates and functions whose output is no
/// larger than their input. Functions that build values of a size the
/// caller picks (`repeat`, `lpad`, `concat`, `array_repeat`, …) are left out.
pub const FILTER_FUNCTIONS: &[&str] = &[
    "abs",
    "array_contains",
    "array_has",
    "array_has_all",
    "array_has_any",
    "array_length",
    "btrim",
    "cardinality",
    "ceil",
    "char_length",
    "character_length",
    "coalesce",
    "contains",
    "current_date",
    "current_timestamp",
    "date_part",
    "date_trunc",
    "ends_with",
    "floor",
    "ifnull",
    "initcap",
    "isnan",
    "iszero",
    "left",
    "length",
    "list_contains",
    "list_has",
    "ln",
    "log10",
    "lower",
    "ltrim",
    "now",
    "nullif",
    "nvl",
    "octet_length",
    "power",
    "regexp_like",
    "reverse",
    "right",
    "round",
    "rtrim",
    "signum",
    "sqrt",
    // Spatial predicates and constructors (lance's `geo` functions; an RTREE
    // index serves the predicates).
    "st_area",
    "st_contains",
    "st_coveredby",
    "st_covers",
    "st_crosses",
    "st_disjoint",
    "st_distance",
    "st_geomfromtext",
    "st_intersects",
    "st_length",
    "st_overlaps",
    "st_point",
    "st_touches",
    "st_within",
    "starts_with",
    "strpos",
    "substr",
    "to_date",
    "to_timestamp",
    "to_timestamp_micros",
    "to_timestamp_millis",
    "to_timestamp_seconds",
    "trunc",
    "upper",
];

/// How messages name a field: as a CLI flag or as a JSON request field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// `--refine-factor`
    Flags,
    /// `"refine_factor"`
    Fields,
}

impl Names {
    fn of(self, field: &str) -> String {
        match self {
            Names::Flags => format!("--{}", field.replace('_', "-")),
            Names::Fields => format!("\"{field}\""),
        }
    }
}

/// k, nprobes and refine_factor within their bounds.
pub fn check_vector_knobs(
    k: usize,
    nprobes: Option<usize>,
    refine_factor: Option<u32>,
    names: Names,
) -> Result<()> {
    check_k(k, names)?;
    if let Some(n) = nprobes {
        if n == 0 || n > MAX_NPROBES {
            bail_invalid!(
                "{} must be between 1 and {MAX_NPROBES} (got {n})",
                names.of("nprobes")
            );
        }
    }
    if let Some(f) = refine_factor {
        let most = (MAX_REFINE_CANDIDATES / k).max(1);
        if f == 0 || f as usize > most {
            bail_invalid!(
                "{} must be between 1 and {most} for k = {k} (got {f}): at most \
                 {MAX_REFINE_CANDIDATES} candidates (k × refine factor) are re-ranked",
                names.of("refine_factor")
            );
        }
    }
    Ok(())
}

/// What every search request carries, within bounds: k, nprobes and
/// refine_factor (vector searches), the projected columns and the filter.
pub fn check_search(
    k: usize,
    nprobes: Option<usize>,
    refine_factor: Option<u32>,
    columns: Option<&[String]>,
    filter: Option<&str>,
    names: Names,
) -> Result<()> {
    check_vector_knobs(k, nprobes, refine_factor, names)?;
    check_column_count(columns, names)?;
    filter.map_or(Ok(()), check_filter)
}

/// Adaptive probing bounds: each between 1 and [`MAX_NPROBES`], and the
/// minimum (or `nprobes`) not above the maximum (or `nprobes`).
pub fn check_probe_bounds(
    nprobes: Option<usize>,
    minimum: Option<usize>,
    maximum: Option<usize>,
    names: Names,
) -> Result<()> {
    for (field, value) in [("minimum_nprobes", minimum), ("maximum_nprobes", maximum)] {
        if let Some(n) = value {
            if n == 0 || n > MAX_NPROBES {
                bail_invalid!(
                    "{} must be between 1 and {MAX_NPROBES} (got {n})",
                    names.of(field)
                );
            }
        }
    }
    if let (Some(low), Some(high)) = (minimum.or(nprobes), maximum.or(nprobes)) {
        if low > high {
            bail_invalid!(
                "the probe bounds are crossed: at least {low} partitions ({} or {}) but at \
                 most {high} ({} or {}); give a minimum no larger than the maximum",
                names.of("minimum_nprobes"),
                names.of("nprobes"),
                names.of("maximum_nprobes"),
                names.of("nprobes")
            );
        }
    }
    Ok(())
}

/// A distance range of finite bounds, the lower one below the upper one.
pub fn check_distance_range(lower: Option<f32>, upper: Option<f32>, names: Names) -> Result<()> {
    for (field, value) in [("distance_lower", lower), ("distance_upper", upper)] {
        if value.is_some_and(|v| !v.is_finite()) {
            bail_invalid!("{} must be a finite number", names.of(field));
        }
    }
    if let (Some(low), Some(high)) = (lower, upper) {
        if low >= high {
            bail_invalid!(
                "the distance range is empty: {} ({low}) must be below {} ({high}), which is \
                 exclusive",
                names.of("distance_lower"),
                names.of("distance_upper")
            );
        }
    }
    Ok(())
}

/// k between 1 and [`MAX_K`].
pub fn check_k(k: usize, names: Names) -> Result<()> {
    if k == 0 || k > MAX_K {
        bail_invalid!("{} must be between 1 and {MAX_K} (got {k})", names.of("k"));
    }
    Ok(())
}

/// At most [`MAX_COLUMNS`] columns requested.
pub fn check_column_count(columns: Option<&[String]>, names: Names) -> Result<()> {
    if let Some(c) = columns {
        if c.len() > MAX_COLUMNS {
            bail_invalid!(
                "{} names {} columns; at most {MAX_COLUMNS}",
                names.of("columns"),
                c.len()
            );
        }
    }
    Ok(())
}

/// A query vector of 1 to [`MAX_VECTOR_DIM`] finite numbers.
pub fn check_query_vector(vector: &[f32], names: Names) -> Result<()> {
    let name = names.of("vector");
    if vector.is_empty() {
        bail_invalid!("{name} is empty; give the query vector's numbers");
    }
    if vector.len() > MAX_VECTOR_DIM {
        bail_invalid!(
            "{name} has {} numbers; at most {MAX_VECTOR_DIM}",
            vector.len()
        );
    }
    if vector.iter().any(|x| !x.is_finite()) {
        bail_invalid!("{name} holds a value that is not a finite number");
    }
    Ok(())
}

/// A text query of at most [`MAX_QUERY_BYTES`].
pub fn check_query_length(query: &str, names: Names) -> Result<()> {
    if query.len() > MAX_QUERY_BYTES {
        bail_invalid!(
            "{} is {} bytes long; at most {MAX_QUERY_BYTES}",
            names.of("query"),
            query.len()
        );
    }
    Ok(())
}

/// Lance's filter dialect: generic SQL with backtick-quoted identifiers, so
/// a filter is read here exactly as lance will read it.
#[derive(Debug, Default)]
struct FilterDialect(GenericDialect);

impl Dialect for FilterDialect {
    fn dialect(&self) -> std::any::TypeId {
        self.0.dialect()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.0.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.0.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`'
    }

    fn supports_bitwise_shift_operators(&self) -> bool {
        self.0.supports_bitwise_shift_operators()
    }
}

/// Check a SQL filter before lance sees it: one expression with nothing
/// after it, within the size budget, calling only [`FILTER_FUNCTIONS`], no
/// subqueries, no string concatenation. Column names and types are lance's
/// to check.
pub fn check_filter(filter: &str) -> Result<()> {
    if filter.trim().is_empty() {
        bail_invalid!("the filter is empty; give a SQL predicate such as \"year > 2020\"");
    }
    if filter.len() > MAX_FILTER_BYTES {
        bail_invalid!(
            "the filter is {} bytes long; at most {MAX_FILTER_BYTES}",
            filter.len()
        );
    }
    let dialect = FilterDialect::default();
    let tokens = Tokenizer::new(&dialect, filter)
        .tokenize()
        .map_err(|e| crate::Error::InvalidInput(format!("the filter is not valid SQL: {e}")))?;
    let mut terms = 0usize;
    let mut kept = Vec::with_capacity(tokens.len());
    for token in tokens {
        match &token {
            Token::Whitespace(_) => {}
            Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::Comma => {}
            Token::StringConcat => bail_invalid!(
                "the filter concatenates strings (||), which filters may not do; compare \
                 columns with literals instead"
            ),
            Token::SemiColon => bail_invalid!(
                "the filter holds a ';': a filter is one SQL predicate, not statements"
            ),
            _ => terms += 1,
        }
        // lance reads `==` as `=` (pyarrow-style filters): so does this check.
        if matches!(token, Token::Eq) && matches!(kept.last(), Some(Token::Eq)) {
            continue;
        }
        kept.push(token);
    }
    if terms > MAX_FILTER_TERMS {
        bail_invalid!(
            "the filter has {terms} operators and names; at most {MAX_FILTER_TERMS}. Use \
             `column IN (...)` for long lists of values"
        );
    }
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(MAX_FILTER_NESTING)
        .with_tokens(kept);
    let expr = parser
        .parse_expr()
        .map_err(|e| crate::Error::InvalidInput(format!("the filter is not valid SQL: {e}")))?;
    let rest = parser.peek_token();
    if !matches!(rest.token, Token::EOF) {
        bail_invalid!(
            "the filter has text after its expression, starting at `{}`; a filter is one SQL \
             predicate",
            rest.token
        );
    }
    check_expression(&expr)
}

/// Functions on the allow-list, no subqueries.
fn check_expression(expr: &Expr) -> Result<()> {
    let refused = visit_expressions(expr, |e| match e {
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            if FILTER_FUNCTIONS.contains(&name.as_str()) {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(format!(
                    "the filter calls `{name}`, which filters may not call; allowed functions: \
                     {}",
                    FILTER_FUNCTIONS.join(", ")
                ))
            }
        }
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            ControlFlow::Break("the filter holds a subquery; filters may not".to_string())
        }
        _ => ControlFlow::Continue(()),
    });
    match refused {
        ControlFlow::Break(message) => Err(crate::Error::InvalidInput(message)),
        ControlFlow::Continue(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(filter: &str) -> String {
        match check_filter(filter) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("{filter:?} was accepted"),
        }
    }

    #[test]
    fn ordinary_filters_pass() {
        for filter in [
            "pos = 'n'",
            "year > 2020 AND (lang = 'en' OR lang == 'de')",
            "lower(title) LIKE '%rust%' AND NOT deleted",
            "id IN (1, 2, 3) AND score BETWEEN 0.5 AND 1",
            "`order` IS NOT NULL AND CAST(n AS BIGINT) % 2 = 0",
            "array_has(tags, 'x') OR length(text) < 100",
            "ts > to_timestamp('2024-01-01T00:00:00')",
        ] {
            check_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        }
        let long_list = format!(
            "id IN ({})",
            (0..5_000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        check_filter(&long_list).unwrap();
    }

    #[test]
    fn dangerous_filters_are_refused_with_the_reason() {
        assert!(refused("pos = 'n'; DELETE FROM t").contains("';'"));
        assert!(refused("pos = 'n' extra").contains("after its expression"));
        assert!(refused("length(repeat(text, 100000)) > 0").contains("`repeat`"));
        assert!(refused("text || text = 'x'").contains("||"));
        assert!(refused("id IN (SELECT id FROM t)").contains("subquery"));
        assert!(refused("").contains("empty"));
        assert!(refused("a = ").contains("not valid SQL"));
        let chain = vec!["pos='x'"; 60_000].join(" OR ");
        let e = refused(&chain);
        assert!(e.contains("bytes long") || e.contains("operators"), "{e}");
        let chain = vec!["a"; 3_000].join(" OR ");
        assert!(refused(&chain).contains("operators"));
        let nested = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(refused(&nested).contains("not valid SQL"));
    }

    #[test]
    fn knobs_are_bounded() {
        check_vector_knobs(10, Some(20), Some(10), Names::Fields).unwrap();
        check_vector_knobs(MAX_K, None, Some(10), Names::Fields).unwrap();
        let e = check_vector_knobs(10_000, Some(1), Some(u32::MAX), Names::Fields).unwrap_err();
        assert!(e
            .to_string()
            .contains("\"refine_factor\" must be between 1 and 10"));
        let e = check_vector_knobs(0, None, None, Names::Flags).unwrap_err();
        assert!(e.to_string().contains("--k must be between 1"), "{e}");
        let e = check_vector_knobs(5, Some(0), None, Names::Flags).unwrap_err();
        assert!(e.to_string().contains("--nprobes"), "{e}");
        assert!(check_vector_knobs(5, Some(MAX_NPROBES + 1), None, Names::Flags).is_err());
        assert!(check_vector_knobs(MAX_K + 1, None, None, Names::Flags).is_err());
    }

    #[test]
    fn probe_bounds_and_distance_ranges_are_bounded() {
        check_probe_bounds(Some(4), None, Some(8), Names::Flags).unwrap();
        check_probe_bounds(None, Some(2), Some(2), Names::Flags).unwrap();
        let e = check_probe_bounds(Some(10), None, Some(8), Names::Flags).unwrap_err();
        assert!(e.to_string().contains("--maximum-nprobes"), "{e}");
        assert!(check_probe_bounds(None, Some(0), None, Names::Fields).is_err());
        assert!(check_probe_bounds(None, None, Some(MAX_NPROBES + 1), Names::Fields).is_err());
        check_distance_range(Some(0.0), Some(0.5), Names::Flags).unwrap();
        check_distance_range(None, Some(-1.0), Names::Flags).unwrap();
        let e = check_distance_range(Some(1.0), Some(1.0), Names::Flags).unwrap_err();
        assert!(e.to_string().contains("--distance-upper"), "{e}");
        assert!(check_distance_range(Some(f32::NAN), None, Names::Flags).is_err());
        assert!(check_distance_range(None, Some(f32::INFINITY), Names::Flags).is_err());
        assert!(check_query_vector(&vec![0.5; MAX_VECTOR_DIM + 1], Names::Fields).is_err());
        assert!(check_query_vector(&[f32::NAN], Names::Fields).is_err());
        assert!(check_query_length(&"x".repeat(MAX_QUERY_BYTES + 1), Names::Fields).is_err());
    }
}
