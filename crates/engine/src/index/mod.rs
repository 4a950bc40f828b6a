//! Index builds, each plan → segment tasks → one commit: vector indexes
//! ([`vector`], trained once and built per fragment group), scalar and
//! full-text indexes ([`scalar`]), and their incremental maintenance
//! ([`optimize`]). [`segments`] holds how every build's segments travel and
//! land; [`metric`] the one distance metric.

pub mod metric;
pub mod optimize;
pub mod scalar;
pub mod segments;
pub mod vector;
