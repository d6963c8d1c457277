//! Personnel over real gRPC against a real Postgres and a real roster (seeded with the
//! Wuchang district): one test binary, one module per area.

// Helpers are `pub` for the sibling modules of this one test crate.
#![allow(unreachable_pub)]
mod compliance;
mod helpers;
mod interviews;
mod leave;
mod secondees;
mod solicitations;
