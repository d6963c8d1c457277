//! The roster over real gRPC against a real Postgres: one test binary, one module per area.

mod helpers;
mod leadership;
mod lookups;
mod organisations;
mod people;
mod process;
mod structure;
