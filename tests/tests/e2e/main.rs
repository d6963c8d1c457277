//! The Minhu services together, over real gRPC, in one test process: one binary, a module
//! per area. (The trace test is its own binary: it installs the process-wide subscriber.)

mod appraisal;
mod consultation;
mod generated;
mod interop;
mod journey;
mod node;
mod portal;
mod python;
mod screen;
mod tokens;
mod web;
