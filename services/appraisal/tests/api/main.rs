//! Appraisal over real gRPC against a real Postgres, fed by a real dispatch (and a seeded
//! roster) driven through its public API and its escalation hooks: one test binary.

// Helpers are `pub` for the sibling modules of this one test crate.
#![allow(unreachable_pub)]
mod admin;
mod feed;
mod helpers;
mod month;
mod proxy;
mod referrals;
