//! Appraisal as its own process: telemetry, configuration, build, serve until SIGTERM or
//! ctrl-c, drain, flush (see [`minhu_grpc::run`]).

fn main() -> std::process::ExitCode {
    minhu_grpc::run_main::<minhu_appraisal::Application>("minhu-appraisal")
}
