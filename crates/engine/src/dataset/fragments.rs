//! Fragments of a pinned dataset: their rows, and how operations group them
//! into tasks (contiguous runs for index segments, balanced groups for
//! search tasks).

use lance::dataset::Dataset;

use crate::error::{Error, Result};
use crate::storage::Location;

/// A task's label: `fragments 0-3,7 (1200 rows)`.
pub fn fragments_label(ids: &[u32], rows: u64) -> String {
    format!("fragments {} ({rows} rows)", fragment_ranges(ids))
}

/// Compact text for a list of fragment ids: `0-3,7`.
pub fn fragment_ranges(ids: &[u32]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Cut fragments (id, rows), in id order, into at most `groups` contiguous
/// runs of about equal rows: the index segment layout.
///
/// Runs, not a scatter: compaction only merges adjacent fragments that the
/// same index segments cover, so a segment over fragments 0, 2, 4... would
/// leave nothing compactable. Each cut falls at the fragment boundary
/// nearest the ideal one, so runs differ by at most about one fragment.
pub fn contiguous_runs(fragments: &[(u32, u64)], groups: usize) -> Vec<(Vec<u32>, u64)> {
    let mut order: Vec<(u32, u64)> = fragments.to_vec();
    order.sort_by_key(|f| f.0);
    let groups = groups.clamp(1, order.len().max(1)) as u64;
    let total: u64 = order.iter().map(|f| f.1).sum();
    let mut out: Vec<(Vec<u32>, u64)> = Vec::new();
    let mut current: (Vec<u32>, u64) = (Vec::new(), 0);
    let mut done = 0u64;
    for (id, rows) in order {
        let closed = out.len() as u64;
        if !current.0.is_empty() && closed + 1 < groups {
            // Cut here when stopping lands nearer the ideal boundary than
            // taking this fragment too (in rows × groups, to stay integral).
            let target = (closed + 1) * total;
            let stop = (done + current.1) * groups;
            let take = (done + current.1 + rows) * groups;
            if take.abs_diff(target) > stop.abs_diff(target) {
                done += current.1;
                out.push(std::mem::take(&mut current));
            }
        }
        current.0.push(id);
        current.1 += rows;
    }
    if !current.0.is_empty() {
        out.push(current);
    }
    out
}

/// Group fragments (id, rows) into `groups` groups balanced by rows: largest
/// first onto the lightest group (search tasks; not contiguous). Groups come
/// back sorted by first fragment.
pub fn balance_fragments(fragments: &[(u32, u64)], groups: usize) -> Vec<(Vec<u32>, u64)> {
    let groups = groups.clamp(1, fragments.len().max(1));
    let mut order: Vec<(u32, u64)> = fragments.to_vec();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<(Vec<u32>, u64)> = vec![(Vec::new(), 0); groups];
    for (id, rows) in order {
        if let Some(lightest) = out
            .iter_mut()
            .min_by(|a, b| a.1.cmp(&b.1).then(a.0.len().cmp(&b.0.len())))
        {
            lightest.0.push(id);
            lightest.1 += rows;
        }
    }
    out.retain(|g| !g.0.is_empty());
    for g in &mut out {
        g.0.sort_unstable();
    }
    out.sort_by_key(|g| g.0.first().copied());
    out
}

/// Rows of each fragment of the pinned dataset.
pub(crate) async fn fragment_rows(
    location: &Location,
    dataset: &Dataset,
) -> Result<Vec<(u32, u64)>> {
    let mut out = Vec::new();
    for fragment in dataset.get_fragments() {
        let id = u32::try_from(fragment.id())
            .map_err(|_| Error::Internal(format!("fragment id {} too large", fragment.id())))?;
        let rows = match fragment.metadata().num_rows() {
            Some(r) => r as u64,
            None => fragment
                .count_rows(None)
                .await
                .map_err(|e| location.lance_error("count fragment rows", e))?
                as u64,
        };
        out.push((id, rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balancing_puts_largest_first_on_lightest() {
        let frags = [(0, 100), (1, 10), (2, 60), (3, 50), (4, 40)];
        let groups = balance_fragments(&frags, 2);
        let loads: Vec<u64> = groups.iter().map(|g| g.1).collect();
        assert_eq!(loads.iter().sum::<u64>(), 260);
        assert!(loads.iter().all(|l| (120..=140).contains(l)), "{loads:?}");
        let mut all: Vec<u32> = groups.iter().flat_map(|g| g.0.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
        assert_eq!(balance_fragments(&frags, 99).len(), 5);
        assert_eq!(balance_fragments(&frags, 0).len(), 1);
    }

    #[test]
    fn segments_are_contiguous_runs_of_about_equal_rows() {
        let even: Vec<(u32, u64)> = (0..10).map(|i| (i, 10)).collect();
        let runs = contiguous_runs(&even, 3);
        let ids: Vec<Vec<u32>> = runs.iter().map(|r| r.0.clone()).collect();
        assert_eq!(ids, vec![vec![0, 1, 2], vec![3, 4, 5, 6], vec![7, 8, 9]]);
        let uneven = [(4, 10), (0, 100), (1, 10), (2, 60), (3, 50)];
        let runs = contiguous_runs(&uneven, 2);
        assert_eq!(runs, vec![(vec![0, 1], 110), (vec![2, 3, 4], 120)]);
        assert_eq!(contiguous_runs(&uneven, 99).len(), 5);
        assert_eq!(contiguous_runs(&uneven, 0).len(), 1);
        assert!(contiguous_runs(&[], 3).is_empty());
    }

    #[test]
    fn fragment_ranges_are_compact() {
        assert_eq!(fragment_ranges(&[5, 0, 1, 2, 7, 8]), "0-2,5,7-8");
    }
}
