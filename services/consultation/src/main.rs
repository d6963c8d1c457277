//! Consultation as its own process: the shell's `main` (telemetry, config, build, serve until
//! SIGTERM or ctrl-c, drain, flush).

use std::process::ExitCode;

fn main() -> ExitCode {
    minhu_grpc::run_main::<minhu_consultation::Application>("minhu-consultation")
}
