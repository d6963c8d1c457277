//! Appraisal's rules, free of I/O: what counts as responded and completed, rates and the
//! composite in basis points, the league table's ranks, periods and weights, referrals,
//! and who may see what.

pub mod period;
pub mod policy;
pub mod referral;
pub mod score;

pub use score::{Counts, Rates, Weights};
