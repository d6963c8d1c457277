//! Personnel as its own process: telemetry, config, build, serve until SIGTERM or ctrl-c.

use std::process::ExitCode;

use minhu_personnel::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry =
        match minhu_telemetry::TelemetryConfig::from_env("minhu-personnel").map(|c| minhu_telemetry::init(&c)) {
            Ok(Ok(telemetry)) => telemetry,
            Ok(Err(e)) => return fail(&format!("starting telemetry: {e}")),
            Err(e) => return fail(&e),
        };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(&format!("configuration: {e}")),
    };
    let code = match Application::build(config).await {
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
    eprintln!("minhu-personnel: {message}");
    ExitCode::FAILURE
}
