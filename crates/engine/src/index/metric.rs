//! The one distance metric type: of a vector index, a search, k-means
//! training and the brute-force ground truth.

use lance_linalg::distance::DistanceType;
use serde::{Deserialize, Serialize};

use crate::error::{bail_invalid, Error, Result};

/// Distance metric of a vector index or search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Squared Euclidean distance.
    L2,
    /// `1 - cosine similarity`.
    Cosine,
    /// `1 - dot product`.
    Dot,
}

impl Metric {
    /// Parse `l2|cosine|dot` (also `euclidean`).
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Ok(Self::L2),
            "cosine" => Ok(Self::Cosine),
            "dot" => Ok(Self::Dot),
            other => bail_invalid!("unknown metric '{other}'; use l2, cosine or dot"),
        }
    }

    /// The lance crate's distance type.
    pub fn to_lance(self) -> DistanceType {
        match self {
            Self::L2 => DistanceType::L2,
            Self::Cosine => DistanceType::Cosine,
            Self::Dot => DistanceType::Dot,
        }
    }

    /// From the lance crate's distance type (hamming has no counterpart).
    pub fn from_lance(d: DistanceType) -> Result<Self> {
        match d {
            DistanceType::L2 => Ok(Self::L2),
            DistanceType::Cosine => Ok(Self::Cosine),
            DistanceType::Dot => Ok(Self::Dot),
            DistanceType::Hamming => Err(Error::NotSupported(
                "hamming-distance indexes are not supported by lanceflow".into(),
            )),
        }
    }

    /// The name, as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::L2 => "l2",
            Self::Cosine => "cosine",
            Self::Dot => "dot",
        }
    }
}

crate::error::from_str_by_parse!(Metric);

impl Metric {
    /// The exact distance between two vectors, with lance's definitions:
    /// squared L2, `1 - cos` (1 when either vector is zero), `1 - dot`.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
            Metric::Dot => 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
            Metric::Cosine => {
                let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
                let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
                if na == 0.0 || nb == 0.0 {
                    1.0
                } else {
                    1.0 - dot / (na * nb)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_distances_follow_lance() {
        for m in [Metric::L2, Metric::Cosine, Metric::Dot] {
            assert_eq!(m.as_str().parse::<Metric>().unwrap(), m);
            assert_eq!(Metric::from_lance(m.to_lance()).unwrap(), m);
        }
        assert!("manhattan".parse::<Metric>().is_err());
        let (a, b) = ([1.0, 0.0], [0.0, 2.0]);
        assert_eq!(Metric::L2.distance(&a, &b), 5.0);
        assert_eq!(Metric::Dot.distance(&a, &b), 1.0);
        assert_eq!(Metric::Cosine.distance(&a, &b), 1.0);
        assert_eq!(Metric::Cosine.distance(&a, &[0.0, 0.0]), 1.0);
    }
}
