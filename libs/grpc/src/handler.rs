//! The prelude every handler starts with, the same in every service: who is calling (and a
//! screened message), ids from string fields, paging and idempotency keys scoped by the
//! service, and "found or NOT_FOUND".
//!
//! ```ignore
//! static RPCS: Rpcs = Rpcs::new("minhu.personnel.v1.PersonnelService");
//!
//! let (p, req) = caller(request)?;
//! let id = uuid("solicitation_id", &req.solicitation_id)?;
//! let key = RPCS.idempotency("SubmitOpinion", &p, &req.request_id, &req)?;
//! ```

use std::fmt::Display;

use minhu_store::Idempotency;
use tonic::Request;
use uuid::Uuid;

use crate::{ApiError, FieldViolations, PageRequest, Principal, screen::Screen};

/// Page size when a `List` request asks for none (every contract says so).
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page any `List` serves.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The caller and the request's message, after the shared input screen
/// ([`crate::screen`]): NUL characters, undefined enum numbers and impossible timestamps
/// are INVALID_ARGUMENT on their field before any handler logic runs.
pub fn caller<T: prost::Message>(request: Request<T>) -> Result<(Principal, T), ApiError> {
    let principal = Principal::of(&request)?.clone();
    if let Some(screen) = request.extensions().get::<Screen>() {
        screen.check(request.get_ref())?;
    }
    Ok((principal, request.into_inner()))
}

/// The caller of a client-streaming request, the stream, and the screen its messages must
/// pass (`screen.check(&message)` on each).
pub fn stream_caller<T>(request: Request<T>) -> Result<(Principal, Option<Screen>, T), ApiError> {
    let principal = Principal::of(&request)?.clone();
    let screen = request.extensions().get::<Screen>().cloned();
    Ok((principal, screen, request.into_inner()))
}

/// A required id field, or INVALID_ARGUMENT on it. Parsed once here so that two spellings
/// of one id (upper case, braces) are the same id everywhere after.
pub fn uuid(field: &str, value: &str) -> Result<Uuid, ApiError> {
    optional_uuid(field, value)?.ok_or_else(|| FieldViolations::single(field, "must not be empty"))
}

/// An optional id field: empty is `None`; anything else must be an id.
pub fn optional_uuid(field: &str, value: &str) -> Result<Option<Uuid>, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    // The parser's reason (length, character, group) is the caller's to read.
    Uuid::parse_str(value).map(Some).map_err(|e| FieldViolations::single(field, format!("is not a valid id: {e}")))
}

/// `row`, or NOT_FOUND of `resource` `id`. Only for an `Option` the store returned: a
/// database error is never "missing".
pub fn found<T>(row: Option<T>, resource: &'static str, id: impl Display) -> Result<T, ApiError> {
    row.ok_or_else(|| ApiError::not_found(resource, id))
}

/// One service's RPCs: what scopes their idempotency keys and pages.
#[derive(Debug, Clone, Copy)]
pub struct Rpcs {
    service: &'static str,
    default_page: u32,
    max_page: u32,
}

impl Rpcs {
    /// The RPCs of `service` (its full name, `minhu.dispatch.v1.DispatchService`), with the
    /// contracts' page sizes.
    pub const fn new(service: &'static str) -> Self {
        Self { service, default_page: DEFAULT_PAGE_SIZE, max_page: MAX_PAGE_SIZE }
    }

    /// With other page sizes.
    pub const fn with_pages(self, default_page: u32, max_page: u32) -> Self {
        Self { default_page, max_page, ..self }
    }

    /// The service's full name.
    pub const fn service(&self) -> &'static str {
        self.service
    }

    /// The idempotency key of a mutating request to `method` by `principal` (AIP-155): a
    /// retry with the same `request_id` returns the first result; the same id with another
    /// request is INVALID_ARGUMENT on `request_id`. Keys are the caller's own: another
    /// caller's id can neither be squatted nor probed (the same id from two callers is two
    /// requests).
    pub fn idempotency(
        &self,
        method: &str,
        principal: &Principal,
        request_id: &str,
        request: &impl prost::Message,
    ) -> Result<Idempotency, ApiError> {
        let scope = format!("{}/{method}#{}", self.service, principal.subject);
        Ok(Idempotency::for_rpc(scope, &principal.subject, request_id, request)?)
    }

    /// One `List` request's paging; `query` fingerprints the filters so that a token is
    /// refused with other filters.
    pub fn page<K: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        page_size: i32,
        page_token: &str,
        query: &[&str],
    ) -> Result<PageRequest<K>, ApiError> {
        PageRequest::new(page_size, page_token, self.default_page, self.max_page, query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_spellings_of_one_id_are_one_id() {
        let lower = uuid("call_id", "0191e9d2-7f3c-7a51-9a0b-5e1f3c2d4b6a").unwrap();
        let upper = uuid("call_id", " 0191E9D2-7F3C-7A51-9A0B-5E1F3C2D4B6A ").unwrap();
        assert_eq!(lower, upper);
    }

    #[test]
    fn an_empty_or_malformed_id_names_its_field() {
        for bad in ["", "  ", "not-an-id"] {
            let ApiError::InvalidArgument(v) = uuid("case_id", bad).unwrap_err() else { panic!() };
            assert_eq!(v.violations()[0].field, "case_id");
        }
        assert_eq!(optional_uuid("case_id", "").unwrap(), None);
    }

    #[test]
    fn idempotency_keys_are_scoped_by_service_and_method() {
        let p = Principal::new("u1", [], crate::Organization::new(crate::OrgKind::District, "d"));
        let a = Rpcs::new("minhu.a.v1.A").idempotency("Do", &p, "r1", &()).unwrap();
        let b = Rpcs::new("minhu.b.v1.B").idempotency("Do", &p, "r1", &()).unwrap();
        assert_ne!(format!("{a:?}"), format!("{b:?}"));
        let long = "x".repeat(129);
        assert!(Rpcs::new("minhu.a.v1.A").idempotency("Do", &p, &long, &()).is_err());
    }
}
