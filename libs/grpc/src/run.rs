//! `main` for every service binary, in the order STYLE.md fixes: telemetry → configuration
//! (validated before anything binds) → build (pool, migrations, listener) → serve until
//! SIGTERM or ctrl-c → drain → flush traces.
//!
//! Exit codes: 0 after a clean drain, 64 (`EX_USAGE`) when the configuration is wrong (the
//! message names the variable), 1 when starting or serving failed.

use std::{fmt::Display, future::Future, process::ExitCode};

use crate::{ConfigError, server::ServeError, shutdown_signal};

/// A service as its binary runs it.
pub trait App: Sized + Send {
    /// Its typed configuration.
    type Config: Send;
    /// Why it could not start.
    type StartError: Display;

    /// The configuration from the environment.
    fn config_from_env() -> Result<Self::Config, ConfigError>;
    /// Connects, migrates and binds.
    fn build(config: Self::Config) -> impl Future<Output = Result<Self, Self::StartError>> + Send;
    /// Serves until `shutdown`, then drains and stops its background work.
    fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), ServeError>> + Send;
}

/// Implements [`App`] for a service's `Application` from its inherent `Config::from_env`,
/// `Application::build` and `Application::run_until`, which tests and the suite call
/// directly: `minhu_grpc::app!(Application, Config, StartError);`.
#[macro_export]
macro_rules! app {
    ($app:ty, $config:ty, $error:ty) => {
        impl $crate::App for $app {
            type Config = $config;
            type StartError = $error;

            fn config_from_env() -> Result<$config, $crate::ConfigError> {
                <$config>::from_env()
            }

            async fn build(config: $config) -> Result<Self, $error> {
                <$app>::build(config).await
            }

            async fn run_until(
                self,
                shutdown: impl ::std::future::Future<Output = ()> + Send + 'static,
            ) -> Result<(), $crate::server::ServeError> {
                <$app>::run_until(self, shutdown).await
            }
        }
    };
}

/// The configuration was refused (`EX_USAGE`).
pub const EXIT_CONFIG: u8 = 64;

/// Runs `A` as the process `name` (e.g. `minhu-dispatch`), on a multi-threaded runtime.
pub fn run_main<A: App>(name: &'static str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(name, &format!("starting the runtime: {e}"), ExitCode::FAILURE),
    };
    runtime.block_on(serve::<A>(name))
}

async fn serve<A: App>(name: &'static str) -> ExitCode {
    // The OTLP exporter's channel must be built inside the runtime.
    let telemetry = match minhu_telemetry::TelemetryConfig::from_env(name).map(|c| minhu_telemetry::init(&c)) {
        Ok(Ok(telemetry)) => telemetry,
        Ok(Err(e)) => return fail(name, &format!("starting telemetry: {e}"), ExitCode::FAILURE),
        Err(e) => return fail(name, &format!("configuration: {e}"), ExitCode::from(EXIT_CONFIG)),
    };
    let code = match A::config_from_env() {
        Err(e) => fail(name, &format!("configuration: {e}"), ExitCode::from(EXIT_CONFIG)),
        Ok(config) => match A::build(config).await {
            Err(e) => fail(name, &format!("starting: {e}"), ExitCode::FAILURE),
            Ok(app) => match app.run_until(shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(name, &e.to_string(), ExitCode::FAILURE),
            },
        },
    };
    // Flushing spans blocks on the exporter: keep it off the runtime's workers.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

fn fail(name: &str, message: &str, code: ExitCode) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("{name}: {message}");
    code
}
