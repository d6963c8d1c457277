//! The end-to-end tests' harness is the workspace's one test spawner, [`minhu_harness`]:
//! the suite in the test process, seeded, each service on `127.0.0.1:0` with its own
//! database, talking over real gRPC.

pub use minhu_harness::*;
