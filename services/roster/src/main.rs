//! The roster as its own process: telemetry, configuration, build, serve until SIGTERM or
//! ctrl-c, drain, flush (see [`minhu_grpc::run`]). `minhu-roster seed` loads the Wuchang seed
//! district instead (idempotent) and exits.

use std::process::ExitCode;

use minhu_roster::{Application, Config};

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() != Some("seed") {
        return minhu_grpc::run_main::<Application>("minhu-roster");
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let config = match Config::from_env() {
            Ok(config) => config,
            Err(e) => return fail(&format!("configuration: {e}"), ExitCode::from(minhu_grpc::run::EXIT_CONFIG)),
        };
        let app = match Application::build(config).await {
            Ok(app) => app,
            Err(e) => return fail(&format!("starting: {e}"), ExitCode::FAILURE),
        };
        match minhu_roster::seed::load(app.pool()).await {
            Ok(report) => {
                println!("seed: {} inserted, {} already present", report.inserted, report.existing);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("loading the seed: {e}"), ExitCode::FAILURE),
        }
    })
}

fn fail(message: &str, code: ExitCode) -> ExitCode {
    eprintln!("minhu-roster: {message}");
    code
}
