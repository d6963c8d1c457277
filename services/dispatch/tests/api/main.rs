//! Dispatch over real gRPC against a real Postgres and a real roster (seeded with the
//! Wuchang district): one test binary, one module per area.

// Helpers are `pub` for the sibling modules of this one test crate.
#![allow(unreachable_pub)]
mod attachments;
mod calendar;
mod callbacks;
mod calls;
mod catalogue;
mod clusters;
mod corrections;
mod deadlines;
mod escalations;
mod exposure;
mod figures;
mod helpers;
mod lifecycle;
mod rectifications;
mod rules;
mod uploads;
mod watch;
mod write_path;
