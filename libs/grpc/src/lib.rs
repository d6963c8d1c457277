//! What every Minhu gRPC server shares:
//!
//! - [`config`]: the settings every service reads from the environment alike;
//! - [`auth`]: JWTs in, a typed [`Principal`] out, and the checks handlers make on it;
//! - [`error`]: [`ApiError`], the one table from "what went wrong" to `tonic::Status` with
//!   `google.rpc` details a client can read;
//! - [`page`]: page sizes and opaque page tokens for every `List` method;
//! - [`mask`]: field masks on `Update` methods;
//! - [`server`]: [`GrpcServer`], the middleware stack, health, reflection and graceful
//!   shutdown around a service's handlers;
//! - [`admission`]: the concurrency budgets (global, long-running) and upload pacing;
//! - [`limit`]: the per-message size limit that answers RESOURCE_EXHAUSTED;
//! - [`timeout`]: request deadlines that spare long-running uploads;
//! - [`screen`]: the input screen every request passes (NUL, undefined enum numbers,
//!   impossible timestamps), from the contracts' descriptors;
//! - [`handler`]: the prelude every handler starts with (caller, ids, paging,
//!   idempotency keys, NOT_FOUND);
//! - [`run`]: `main` for every service binary ([`App`], [`run_main`]);
//! - [`web`]: gRPC-Web and CORS for browsers and HTTP/1.1 gateways;
//! - [`observe`]: each call's status code on its span and in the RPC metrics;
//! - [`client`]: outgoing calls as client spans carrying their own trace context.

pub mod admission;
pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod handler;
pub mod limit;
pub mod mask;
pub mod observe;
pub mod page;
pub mod run;
pub mod screen;
pub mod server;
pub mod timeout;
pub mod tls;
pub mod web;

pub use auth::{
    AuthConfig, Authenticator, Claims, OrgKind, Organization, Principal, Role, ServiceIdentity, TokenIssuer,
};
pub use config::{ConfigError, Secret};
pub use error::{ApiError, FieldViolations, Refusal};
pub use handler::{Rpcs, caller, found, optional_uuid, stream_caller, uuid};
pub use mask::UpdatePaths;
pub use page::{PageRequest, PageToken, page_size};
pub use run::{App, run_main};
pub use server::{GrpcServer, ServerConfig, shutdown_signal};
/// The one cancellation signal of a process: every background task (deadline engine, feed
/// consumer, purges) takes a child of the token `run_until` cancels after the drain.
pub use tokio_util::sync::CancellationToken;
pub use web::AllowedOrigins;
