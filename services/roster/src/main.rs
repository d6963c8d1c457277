//! The roster as its own process: telemetry, config, build, serve until SIGTERM or ctrl-c.
//! `minhu-roster seed` loads the Wuchang seed district instead (idempotent) and exits.

use std::process::ExitCode;

use minhu_roster::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = match minhu_telemetry::TelemetryConfig::from_env("minhu-roster").map(|c| minhu_telemetry::init(&c))
    {
        Ok(Ok(telemetry)) => telemetry,
        Ok(Err(e)) => return fail(&format!("starting telemetry: {e}")),
        Err(e) => return fail(&e),
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(&format!("configuration: {e}")),
    };
    let seed_only = std::env::args().nth(1).as_deref() == Some("seed");
    let code = match Application::build(config).await {
        Ok(app) if seed_only => match minhu_roster::seed::load(app.pool()).await {
            Ok(report) => {
                println!("seed: {} inserted, {} already present", report.inserted, report.existing);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("loading the seed: {e}")),
        },
        Ok(app) => match app.run_until(minhu_grpc::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        },
        Err(e) => fail(&format!("starting: {e}")),
    };
    // Flushing spans blocks on the exporter: keep it off the runtime's workers.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

fn fail(message: &str) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("minhu-roster: {message}");
    ExitCode::FAILURE
}
