//! Consultation over real gRPC against a real Postgres and a real roster (seeded with the
//! Wuchang district): one test binary, one module per area.

// Helpers are `pub` for the sibling modules of this one test crate.
#![allow(unreachable_pub)]
mod deadlines;
mod decisions;
mod helpers;
mod plans;
mod process;
mod rules;
mod trail;
