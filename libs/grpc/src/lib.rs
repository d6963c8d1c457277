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
//! - [`limit`]: the per-message size limit that answers RESOURCE_EXHAUSTED;
//! - [`timeout`]: request deadlines that spare long-running uploads.

pub mod auth;
pub mod config;
pub mod error;
pub mod limit;
pub mod mask;
pub mod page;
pub mod server;
pub mod timeout;

pub use auth::{AuthConfig, Authenticator, Claims, OrgKind, Organization, Principal, Role, TokenIssuer};
pub use config::ConfigError;
pub use error::{ApiError, FieldViolations};
pub use mask::UpdatePaths;
pub use page::{PageRequest, PageToken, page_size};
pub use server::{GrpcServer, ServerConfig, shutdown_signal};
