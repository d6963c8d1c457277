//! Personnel as its own process: telemetry, configuration, build, serve until SIGTERM or
//! ctrl-c, drain, flush (see [`minhu_grpc::run`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    minhu_grpc::run_main::<minhu_personnel::Application>(minhu_personnel::SERVICE_NAME)
}
