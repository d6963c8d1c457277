//! gRPC-Web for browsers and gateways that speak only HTTP/1.1, and the CORS policy that
//! lets a page served from another origin call.
//!
//! The server accepts HTTP/1.1 and HTTP/2; `tonic-web` turns a gRPC-Web call (content type
//! `application/grpc-web[-text][+proto]`, either HTTP version) into an ordinary gRPC call
//! before any other layer sees it, so spans, metrics, limits, authentication and errors are
//! the same whatever the wire. Client streaming is not possible over gRPC-Web (browsers
//! cannot stream a request body), unary and server-streaming calls are.
//!
//! CORS answers preflights and adds `Access-Control-*` headers for the origins in
//! `MINHU_CORS_ALLOWED_ORIGINS`; with none configured no cross-origin page may call (a page
//! on the same origin, a mobile backend or a gateway does not need CORS at all). Tokens
//! travel in the `authorization` header, never in cookies, so credentials are not allowed.

use std::{
    pin::Pin,
    str::FromStr,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderName, HeaderValue, Method};
use http_body_util::BodyExt as _;
use tonic::body::Body;
use tower::ServiceExt as _;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The origins a browser page may call from (`MINHU_CORS_ALLOWED_ORIGINS`): exact
/// origins (`https://portal.wuchang.gov.cn`), an origin on any port (`http://localhost:*`)
/// or `*` for any (development only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    any: bool,
    exact: Vec<String>,
    // `scheme://host` of the `scheme://host:*` entries.
    any_port: Vec<String>,
}

impl AllowedOrigins {
    /// No cross-origin caller (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Every origin: for development only.
    pub fn any() -> Self {
        Self { any: true, ..Self::default() }
    }

    /// Whether no cross-origin page may call.
    pub fn is_empty(&self) -> bool {
        !self.any && self.exact.is_empty() && self.any_port.is_empty()
    }

    /// Whether a page from `origin` (the `Origin` header's value) may call.
    pub fn allows(&self, origin: &str) -> bool {
        if self.any || self.exact.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return true;
        }
        self.any_port.iter().any(|base| {
            origin.len() > base.len()
                && origin[..base.len()].eq_ignore_ascii_case(base)
                && origin[base.len()..]
                    .strip_prefix(':')
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
    }

    /// The CORS layer for these origins: gRPC-Web's methods and headers, the gRPC status
    /// headers readable by the page, preflights cached for a day.
    pub fn cors_layer(&self) -> CorsLayer {
        let origins = Arc::new(self.clone());
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin.to_str().is_ok_and(|o| origins.allows(o))
            }))
            .allow_methods([Method::POST])
            .allow_headers(REQUEST_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(Duration::from_secs(24 * 60 * 60))
    }
}

/// Reads an HTTP/1.x request's whole body before the call runs.
///
/// Over HTTP/1.1 a response sent before the request body was read ends the connection
/// (it cannot be reused), and a client still writing its body then sees a broken pipe
/// instead of the answer: every early refusal (no token, load shed) would reach a browser as
/// a network error rather than UNAUTHENTICATED or RESOURCE_EXHAUSTED. gRPC-Web requests are
/// one message (unary and server-streaming calls only), so reading it first costs nothing
/// and is bounded by the message size limit; HTTP/2 requests pass untouched. The inner
/// service is asked for readiness only once the body is in, so a slow client holds no
/// concurrency permit meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct WholeHttp1RequestLayer {
    limit: usize,
}

impl WholeHttp1RequestLayer {
    /// Bodies up to one message of `max_message_bytes` (and its 5-byte frame header).
    pub fn new(max_message_bytes: usize) -> Self {
        Self { limit: max_message_bytes.saturating_add(5) }
    }
}

impl<S> tower::Layer<S> for WholeHttp1RequestLayer {
    type Service = WholeHttp1Request<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WholeHttp1Request { inner, limit: self.limit }
    }
}

/// The service made by [`WholeHttp1RequestLayer`].
#[derive(Debug, Clone)]
pub struct WholeHttp1Request<S> {
    inner: S,
    limit: usize,
}

impl<S> tower::Service<http::Request<Body>> for WholeHttp1Request<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is awaited in `call`, after the body is read.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let limit = self.limit;
        Box::pin(async move {
            let request = if request.version() < http::Version::HTTP_2 {
                let (parts, body) = request.into_parts();
                match http_body_util::Limited::new(body, limit).collect().await {
                    Ok(collected) => {
                        http::Request::from_parts(parts, Body::new(http_body_util::Full::new(collected.to_bytes())))
                    }
                    Err(error) => {
                        let status = if error.is::<http_body_util::LengthLimitError>() {
                            tonic::Status::resource_exhausted(format!("the request is larger than {limit} bytes"))
                        } else {
                            tonic::Status::cancelled(format!("reading the request: {error}"))
                        };
                        return Ok(status.into_http());
                    }
                }
            } else {
                request
            };
            inner.oneshot(request).await
        })
    }
}

/// What gRPC-Web clients (grpc-web, Connect, Improbable) send, plus our token and the W3C
/// trace context.
const REQUEST_HEADERS: [&str; 9] = [
    "content-type",
    "authorization",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-accept-encoding",
    "traceparent",
    "tracestate",
    "connect-protocol-version",
];

/// The status a page must be able to read: gRPC-Web sends it as headers when the response
/// has no body (trailers-only) and the rich error details with it.
const EXPOSED_HEADERS: [&str; 4] = ["grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-encoding"];

/// Why `MINHU_CORS_ALLOWED_ORIGINS` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not an origin (`https://host[:port]`, `http://host:*` or `*`): {why}")]
pub struct OriginError {
    entry: String,
    why: &'static str,
}

impl FromStr for AllowedOrigins {
    type Err = OriginError;

    /// Comma-separated entries; blanks between commas are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = Self::default();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let fail = |why| OriginError { entry: entry.to_owned(), why };
            if entry == "*" {
                out.any = true;
                continue;
            }
            let (scheme, rest) = entry.split_once("://").ok_or_else(|| fail("no scheme"))?;
            if scheme != "http" && scheme != "https" {
                return Err(fail("the scheme must be http or https"));
            }
            // An origin has no path, query or user: browsers send exactly scheme://host[:port].
            if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
                return Err(fail("an origin is scheme://host[:port] with nothing after it"));
            }
            match rest.rsplit_once(':') {
                Some((host, "*")) if !host.is_empty() => out.any_port.push(format!("{scheme}://{host}")),
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => out.exact.push(entry.into()),
                Some((_, _)) if !rest.ends_with(']') => return Err(fail("the port must be a number or *")),
                _ => out.exact.push(entry.into()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins_and_any_port_entries_allow_only_what_they_name() {
        let origins: AllowedOrigins = "https://portal.wuchang.gov.cn, http://localhost:*".parse().unwrap();
        assert!(origins.allows("https://portal.wuchang.gov.cn"));
        assert!(origins.allows("http://localhost:5173"));
        assert!(!origins.allows("http://localhost"), "any port still means some port");
        assert!(!origins.allows("http://localhost.evil.example:80"));
        assert!(!origins.allows("https://portal.wuchang.gov.cn.evil.example"));
        assert!(!origins.allows("http://portal.wuchang.gov.cn"), "the scheme is part of the origin");
    }

    #[test]
    fn nothing_configured_allows_no_cross_origin_page_and_a_star_allows_all() {
        assert!(AllowedOrigins::none().is_empty());
        assert!(!AllowedOrigins::none().allows("http://localhost:3000"));
        assert!("".parse::<AllowedOrigins>().unwrap().is_empty());
        assert!("*".parse::<AllowedOrigins>().unwrap().allows("https://anything.example"));
    }

    #[test]
    fn an_entry_with_a_path_or_without_a_scheme_is_refused() {
        assert!("https://portal.example/app".parse::<AllowedOrigins>().is_err());
        assert!("portal.example".parse::<AllowedOrigins>().is_err());
        assert!("ftp://portal.example".parse::<AllowedOrigins>().is_err());
        assert!("http://localhost:port".parse::<AllowedOrigins>().is_err());
    }
}
