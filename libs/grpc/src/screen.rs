//! The input screen: what no request of any service may carry, checked once for all of them
//! from the contracts' own descriptors before a handler sees the message.
//!
//! | found in a request | answer |
//! |---|---|
//! | a string with U+0000 (Postgres cannot store it; every text column would fail) | INVALID_ARGUMENT on that field |
//! | an enum number the contract does not define (proto3 enums are open: prost keeps it) | INVALID_ARGUMENT on that field |
//! | a `Timestamp` outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z or with nanos outside 0..1e9 | INVALID_ARGUMENT on that field |
//! | a `Duration` outside ±10,000 years or with nanos of the wrong sign | INVALID_ARGUMENT on that field |
//!
//! Field paths name the innermost field, with indices and map keys:
//! `calls[0].staff_requirement.qualification`, `labels[zone]`. `*_UNSPECIFIED` and every
//! domain rule (blank, lengths, ranges) stay with the service's own validation.
//!
//! The server stack ([`GrpcServer`](crate::GrpcServer)) puts the [`Screen`] for the method
//! being called into each request's extensions; [`handler::caller`](crate::handler::caller)
//! applies it.

use std::{collections::HashMap, sync::Arc};

use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, ReflectMessage as _, Value};

use crate::{ApiError, FieldViolations};

/// The earliest and latest seconds a `google.protobuf.Timestamp` may hold (its own spec).
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;
/// ±10,000 years, `google.protobuf.Duration`'s own limit.
const DURATION_SECONDS: i64 = 315_576_000_000;

/// The descriptor sets do not decode.
pub type DescriptorsError = prost_reflect::DescriptorError;

/// The request message types of every method a server serves, by HTTP/2 path.
#[derive(Debug, Default)]
pub struct Screens {
    by_path: HashMap<String, MessageDescriptor>,
}

impl Screens {
    /// Indexes the methods of the services in `encoded` descriptor sets named in `services`.
    pub fn new(encoded: &[&[u8]], services: &[&str]) -> Result<Self, DescriptorsError> {
        let mut pool = DescriptorPool::new();
        for set in encoded {
            pool.decode_file_descriptor_set(*set)?;
        }
        let mut by_path = HashMap::new();
        for service in pool.services().filter(|s| services.contains(&s.full_name())) {
            for method in service.methods() {
                by_path.insert(format!("/{}/{}", service.full_name(), method.name()), method.input());
            }
        }
        Ok(Self { by_path })
    }

    /// The paths (`/package.Service/Method`) of every method indexed.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.by_path.keys().map(String::as_str)
    }

    /// The screen of the method at `path`, if it is one of ours.
    pub fn for_path(&self, path: &str) -> Option<Screen> {
        self.by_path.get(path).map(|descriptor| Screen(Arc::new(descriptor.clone())))
    }
}

/// The request type of the method a request is for; carried in the request's extensions.
#[derive(Debug, Clone)]
pub struct Screen(Arc<MessageDescriptor>);

impl Screen {
    /// The screen for messages of `descriptor` (tests, streaming handlers).
    pub fn of(descriptor: MessageDescriptor) -> Self {
        Self(Arc::new(descriptor))
    }

    /// INVALID_ARGUMENT naming every field of `message` that breaks a rule of the table
    /// above; `Ok` otherwise.
    pub fn check(&self, message: &impl prost::Message) -> Result<(), ApiError> {
        let encoded = message.encode_to_vec();
        let Ok(dynamic) = DynamicMessage::decode((*self.0).clone(), encoded.as_slice()) else {
            // The message decoded once as its generated type; the descriptor is the same
            // contract, so this cannot happen short of a build mismatch.
            return Err(ApiError::internal("request does not decode against its own descriptor"));
        };
        let mut violations = FieldViolations::new();
        walk(&dynamic, "", &mut violations);
        violations.into_result()
    }
}

fn walk(message: &DynamicMessage, prefix: &str, v: &mut FieldViolations) {
    match message.descriptor().full_name() {
        "google.protobuf.Timestamp" => return timestamp(message, prefix, v),
        "google.protobuf.Duration" => return duration(message, prefix, v),
        _ => {}
    }
    for (field, value) in message.fields() {
        let path = if prefix.is_empty() { field.name().to_owned() } else { format!("{prefix}.{}", field.name()) };
        match value {
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    one(&field.kind(), item, &format!("{path}[{i}]"), v);
                }
            }
            Value::Map(entries) => {
                let value_kind = field.kind().as_message().map(|entry| entry.map_entry_value_field().kind());
                for (key, item) in entries {
                    let key_text = match key {
                        MapKey::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    if key_text.contains('\0') {
                        v.add(format!("{path}[]"), "keys must not contain NUL characters (U+0000)");
                        continue;
                    }
                    if let Some(kind) = &value_kind {
                        one(kind, item, &format!("{path}[{key_text}]"), v);
                    }
                }
            }
            single => one(&field.kind(), single, &path, v),
        }
    }
}

fn one(kind: &Kind, value: &Value, path: &str, v: &mut FieldViolations) {
    match (kind, value) {
        (_, Value::String(s)) if s.contains('\0') => v.add(path, "must not contain NUL characters (U+0000)"),
        (Kind::Enum(e), Value::EnumNumber(n)) if e.get_value(*n).is_none() => {
            v.add(path, format!("{n} is not a value of {}", e.full_name()));
        }
        (_, Value::Message(m)) => walk(m, path, v),
        _ => {}
    }
}

fn number(message: &DynamicMessage, field: &str) -> i64 {
    match message.get_field_by_name(field).as_deref() {
        Some(Value::I64(n)) => *n,
        Some(Value::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn timestamp(message: &DynamicMessage, path: &str, v: &mut FieldViolations) {
    let (seconds, nanos) = (number(message, "seconds"), number(message, "nanos"));
    if !TIMESTAMP_SECONDS.contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
        v.add(path, "must be a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z");
    }
}

fn duration(message: &DynamicMessage, path: &str, v: &mut FieldViolations) {
    let (seconds, nanos) = (number(message, "seconds"), number(message, "nanos"));
    let sign_agrees = seconds == 0 || nanos == 0 || (seconds > 0) == (nanos > 0);
    if seconds.unsigned_abs() > DURATION_SECONDS.unsigned_abs() || nanos.unsigned_abs() >= 1_000_000_000 || !sign_agrees
    {
        v.add(path, "must be a duration within ±10,000 years");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health_screen() -> Screens {
        Screens::new(&[tonic_health::pb::FILE_DESCRIPTOR_SET], &["grpc.health.v1.Health"]).unwrap()
    }

    #[test]
    fn a_nul_character_is_named_on_its_field() {
        let screen = health_screen().for_path("/grpc.health.v1.Health/Check").unwrap();
        let request = tonic_health::pb::HealthCheckRequest { service: "a\0b".into() };
        let error = screen.check(&request).unwrap_err();
        let ApiError::InvalidArgument(v) = error else { panic!("{error:?}") };
        assert_eq!(v.violations()[0].field, "service");
        assert!(screen.check(&tonic_health::pb::HealthCheckRequest { service: "ok".into() }).is_ok());
    }

    #[test]
    fn methods_of_services_not_served_have_no_screen() {
        let screens = Screens::new(&[tonic_health::pb::FILE_DESCRIPTOR_SET], &[]).unwrap();
        assert!(screens.for_path("/grpc.health.v1.Health/Check").is_none());
    }
}
