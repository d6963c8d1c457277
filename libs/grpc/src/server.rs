//! [`GrpcServer`]: a service's handlers inside the stack every Minhu server shares.
//!
//! The server speaks HTTP/2 and HTTP/1.1 (browsers, gateways that only speak HTTP/1.1):
//! plain gRPC needs HTTP/2, gRPC-Web works over either ([`web`](crate::web)).
//!
//! Request path, outermost first (each layer says why it is where it is):
//!
//! 1. CORS — first, so a browser's preflight is answered at once and never counts as a
//!    call (no span, no metric, no authentication: a preflight carries no token);
//! 2. gRPC-Web translation — before everything that reads gRPC, so spans, metrics, limits
//!    and errors are those of an ordinary gRPC call whatever the wire;
//! 3. trace span (tower-http) — so every later refusal is inside a span that continues the
//!    caller's W3C trace;
//! 4. the call's outcome ([`observe`](crate::observe)): the status code on the span and the
//!    RPC metrics — inside the span, outside every refusal, so a shed or timed-out call is
//!    counted with its code;
//! 5. an HTTP/1.1 request's body read whole ([`WholeHttp1RequestLayer`]) — before any layer
//!    that may refuse, so a refusal reaches an HTTP/1.1 client as its status, not as a
//!    broken connection;
//! 6. admission ([`admission`](crate::admission)) — two budgets, shed rather than queued
//!    (RESOURCE_EXHAUSTED naming the budget): the global concurrency limit, which protects
//!    the database pool, and a small one for long-running uploads, whose bodies are paced
//!    (idle timeout, minimum rate); health and reflection take no permit, so probes are
//!    answered however busy the server is;
//! 8. message size limit — refuses oversized messages before they are buffered;
//! 9. request timeout (DEADLINE_EXCEEDED), except for the methods a service declares
//!    long-running (client-streaming uploads), then tonic's per-connection limit;
//! 10. the input screen's descriptor for the method called, put in the request's extensions
//!     for [`handler::caller`](crate::handler::caller) (innermost: only requests that will
//!     run get one);
//! 11. routes: the services added, `grpc.health.v1` and gRPC reflection — which lists
//!     exactly the services this server serves, not every contract it was built with.
//!
//! Health reports NOT_SERVING until [`GrpcServer::serve`] starts and again as soon as the
//! shutdown signal arrives, so load balancers stop sending work before the drain.

use std::{convert::Infallible, future::Future, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tonic::{
    body::Body,
    server::NamedService,
    service::{RoutesBuilder, interceptor::InterceptedService},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

use crate::{
    Authenticator,
    admission::AdmissionLayer,
    limit::MessageSizeLimitLayer,
    observe::ObserveLayer,
    screen::{DescriptorsError, Screens},
    timeout::TimeoutLayer,
    web::{AllowedOrigins, WholeHttp1RequestLayer},
};

/// The knobs of the shared stack.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A request still running after this is cancelled.
    pub request_timeout: Duration,
    /// Requests in flight across all connections; beyond it requests are shed.
    pub concurrency_limit: usize,
    /// Requests in flight on one connection.
    pub concurrency_limit_per_connection: usize,
    /// Long-running calls (uploads) in flight across all connections: their own budget,
    /// never taken from `concurrency_limit`.
    pub long_running_limit: usize,
    /// How slowly an upload may arrive before it is ended.
    pub upload_pace: crate::admission::UploadPace,
    /// Largest gRPC message accepted or sent.
    pub max_message_bytes: usize,
    /// How long in-flight calls (and live streams) may run after the shutdown signal.
    pub shutdown_grace: Duration,
    /// The browser origins that may call over gRPC-Web; none by default.
    pub cors_allowed_origins: AllowedOrigins,
    /// TLS (and mutual TLS) for this server; plaintext when `None` ([`crate::tls`]).
    pub tls: Option<crate::tls::ServerTls>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 1024,
            concurrency_limit_per_connection: 256,
            long_running_limit: 16,
            upload_pace: Default::default(),
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            cors_allowed_origins: AllowedOrigins::none(),
            tls: None,
        }
    }
}

/// Why a server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The descriptor sets for reflection did not decode.
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The descriptor sets for the input screen did not decode.
    #[error("indexing the request descriptors: {0}")]
    Descriptors(#[from] DescriptorsError),
    /// The transport failed.
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A gRPC server under construction: add services, then [`serve`](Self::serve) it.
pub struct GrpcServer {
    config: ServerConfig,
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
    long_running: std::collections::HashSet<String>,
    health: HealthReporter,
    retention: Option<(sqlx::PgPool, Duration)>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer").field("config", &self.config).field("services", &self.names).finish()
    }
}

impl GrpcServer {
    /// A server with health and reflection and no services yet.
    pub fn new(config: ServerConfig) -> Self {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        Self {
            config,
            routes,
            names: Vec::new(),
            descriptor_sets: vec![tonic_health::pb::FILE_DESCRIPTOR_SET],
            long_running: Default::default(),
            health,
            retention: None,
        }
    }

    /// The stack's settings, e.g. for a service's `max_*_message_size`.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Serves `service` (a generated `…Server`, possibly with an interceptor).
    pub fn add_service<S, B>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible, Response = http::Response<B>>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Serves `service` behind `authenticator`: every call needs a valid token (health and
    /// reflection never do).
    pub fn add_authenticated<S, B>(self, service: S, authenticator: Authenticator) -> Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible, Response = http::Response<B>>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.add_service(InterceptedService::new(service, authenticator))
    }

    /// Exempts a method (`/package.Service/Method`) from the request timeout: calls that
    /// receive a client stream (uploads) last as long as the caller's network needs.
    pub fn long_running(mut self, path: impl Into<String>) -> Self {
        self.long_running.insert(path.into());
        self
    }

    /// Purges `pool`'s request_id first results older than `max_age` while serving (every
    /// ten minutes, stopping with the drain): retention enforced, not only possible.
    pub fn retain_idempotency(mut self, pool: sqlx::PgPool, max_age: Duration) -> Self {
        self.retention = Some((pool, max_age));
        self
    }

    /// Makes the services of an encoded `FileDescriptorSet` discoverable by reflection.
    pub fn register_descriptors(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded);
        self
    }

    /// A handle to report health from outside (e.g. NOT_SERVING while a dependency is down).
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves on `listener` until `shutdown` completes, then drains for at most the grace
    /// period.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let Self { config, mut routes, names, descriptor_sets, long_running, health, retention } = self;
        let stop = tokio_util::sync::CancellationToken::new();
        if let Some((pool, max_age)) = retention {
            let stopped = stop.child_token();
            tokio::spawn(minhu_store::idempotency::keep_for(pool, max_age, RETENTION_EVERY, async move {
                stopped.cancelled().await
            }));
        }
        // The purge stops when serving does, however serving ends.
        let _stop_purge = stop.drop_guard();

        let mut v1 = tonic_reflection::server::Builder::configure();
        let mut v1alpha = tonic_reflection::server::Builder::configure();
        for set in &descriptor_sets {
            v1 = v1.register_encoded_file_descriptor_set(set);
            v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
        }
        // Only what this port answers: a client listing services must not find contracts
        // that another process (or nobody) serves.
        for name in names.iter().copied().chain(REFLECTED_ALWAYS) {
            v1 = v1.with_service_name(name);
            v1alpha = v1alpha.with_service_name(name);
        }
        let screens = std::sync::Arc::new(Screens::new(&descriptor_sets, &names)?);
        // The paths the metrics may name: ours, health's (from its descriptors) and
        // reflection's (whose descriptors tonic-reflection keeps to itself).
        let served: Vec<String> = screens
            .paths()
            .chain(Screens::new(&descriptor_sets, &REFLECTED_ALWAYS[..1])?.paths())
            .map(str::to_owned)
            .chain(REFLECTION_PATHS.map(str::to_owned))
            .collect();
        routes.add_service(v1.build_v1()?);
        // grpcurl and older tools still ask v1alpha.
        routes.add_service(v1alpha.build_v1alpha()?);

        let stack = ServiceBuilder::new()
            .layer(config.cors_allowed_origins.cors_layer())
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(
                TraceLayer::new_for_grpc()
                    .make_span_with(minhu_telemetry::server_span)
                    // A caller's NOT_FOUND or INVALID_ARGUMENT is not an incident; our own
                    // failures are logged with their cause where they are mapped (ApiError).
                    .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG)),
            )
            // Built now, after telemetry is installed: instruments bind the meter provider
            // of the moment they are made.
            .layer(ObserveLayer::new(minhu_telemetry::metrics::RpcServerMetrics::new(), served))
            .layer(WholeHttp1RequestLayer::new(config.max_message_bytes))
            .layer(AdmissionLayer::new(
                config.concurrency_limit,
                config.long_running_limit,
                long_running.clone(),
                config.upload_pace,
            ))
            .layer(MessageSizeLimitLayer::new(config.max_message_bytes))
            .layer(TimeoutLayer::new(config.request_timeout, long_running))
            .map_request(move |mut request: http::Request<Body>| {
                if let Some(screen) = screens.for_path(request.uri().path()) {
                    request.extensions_mut().insert(screen);
                }
                request
            })
            .into_inner();

        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &config.tls {
            builder = builder.tls_config(tls.config())?;
        }
        let router = builder
            // gRPC-Web from browsers and HTTP/1.1-only gateways; HTTP/2 as before.
            .accept_http1(true)
            .concurrency_limit_per_connection(config.concurrency_limit_per_connection)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(stack)
            .add_routes(routes.routes());

        let local = listener.local_addr().ok();
        for name in &names {
            health.set_service_status(*name, ServingStatus::Serving).await;
        }
        health.set_service_status("", ServingStatus::Serving).await;
        tracing::info!(addr = ?local, services = ?names, "serving gRPC");

        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        let reporter = health.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested: not serving, draining");
            reporter.set_service_status("", ServingStatus::NotServing).await;
            for name in &names {
                reporter.set_service_status(*name, ServingStatus::NotServing).await;
            }
            let _ = draining_tx.send(());
        };
        // TCP_NODELAY on every accepted socket: a unary reply is written as headers, data
        // and trailers, and with Nagle on, the last small write waits for the client's
        // delayed ACK (a 40 ms floor per call at one request in flight).
        // `Server::builder().tcp_nodelay` applies only to servers that bind themselves.
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = router.serve_with_incoming_shutdown(incoming, signal);
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => result?,
            _ = draining_rx => {
                // Live streams (WatchCase, the feed) never end by themselves: give calls the
                // grace period, then stop regardless.
                match tokio::time::timeout(config.shutdown_grace, &mut server).await {
                    Ok(result) => result?,
                    Err(_) => tracing::warn!(grace = ?config.shutdown_grace, "drain grace elapsed; closing remaining calls"),
                }
            }
        }
        tracing::info!(addr = ?local, "stopped");
        Ok(())
    }
}

/// How often first results past their retention are purged.
const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// What reflection lists beside the services added: health and reflection itself.
const REFLECTED_ALWAYS: [&str; 3] =
    ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

/// Reflection's one method, in both versions.
const REFLECTION_PATHS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Completes on SIGTERM or ctrl-c (SIGINT): what orchestrators and terminals send.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received ctrl-c"),
        _ = terminate => tracing::info!("received SIGTERM"),
    }
}

/// Binds a listener; `127.0.0.1:0` picks a free port (tests).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
