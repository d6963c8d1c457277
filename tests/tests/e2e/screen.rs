//! Bad input, generated from the contracts: every request message of every method of every
//! service the suite serves, and in it every string, enum and timestamp field (nested ones
//! too), gets a NUL character, an enum number the contract does not define, or a time past
//! 9999-12-31. Each must be INVALID_ARGUMENT naming exactly that field, with `ErrorInfo` —
//! never INTERNAL, never a panic, never another field.

use std::collections::BTreeMap;

use minhu_testkit::tokens;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value,
};
use tonic::{Code, codegen::http::uri::PathAndQuery, transport::Channel};
use tonic_types::StatusExt as _;

use minhu_e2e::Suite;

/// How deep into nested messages fields are reached.
const MAX_DEPTH: usize = 4;

/// One poisoned request: the field's path and the message carrying the bad value there.
struct Case {
    path: String,
    what: &'static str,
    message: DynamicMessage,
}

/// Every poisoned request for `descriptor`, each with exactly one bad field.
fn cases(descriptor: &MessageDescriptor) -> Vec<Case> {
    let mut out = Vec::new();
    collect(descriptor, "", 0, &mut |path, what, build| {
        out.push(Case { path, what, message: build(DynamicMessage::new(descriptor.clone())) });
    });
    out
}

type Build = Box<dyn Fn(DynamicMessage) -> DynamicMessage>;

fn collect(
    descriptor: &MessageDescriptor,
    prefix: &str,
    depth: usize,
    emit: &mut dyn FnMut(String, &'static str, Build),
) {
    if depth > MAX_DEPTH {
        return;
    }
    for field in descriptor.fields() {
        if field.is_map() {
            continue;
        }
        let name = if field.is_list() { format!("{}[0]", field.name()) } else { field.name().to_owned() };
        let path = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
        let bad: Vec<(&'static str, Value)> = match field.kind() {
            Kind::String => vec![("a NUL character", Value::String("bad\0value".into()))],
            Kind::Enum(_) => vec![("an undefined enum number", Value::EnumNumber(9_999))],
            Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
                let mut t = DynamicMessage::new(m.clone());
                t.set_field_by_name("seconds", Value::I64(253_402_300_800));
                vec![("a time after 9999-12-31", Value::Message(t))]
            }
            Kind::Message(m) => {
                let f = field.clone();
                let inner = m.clone();
                collect(&m, &path, depth + 1, &mut |p, what, build: Build| {
                    let (f, inner) = (f.clone(), inner.clone());
                    emit(
                        p,
                        what,
                        Box::new(move |mut parent| {
                            let child = build(DynamicMessage::new(inner.clone()));
                            set(&mut parent, &f, Value::Message(child));
                            parent
                        }),
                    );
                });
                vec![]
            }
            _ => vec![],
        };
        for (what, value) in bad {
            let f = field.clone();
            emit(
                path.clone(),
                what,
                Box::new(move |mut message| {
                    set(&mut message, &f, value.clone());
                    message
                }),
            );
        }
    }
}

fn set(message: &mut DynamicMessage, field: &FieldDescriptor, value: Value) {
    let value = if field.is_list() { Value::List(vec![value]) } else { value };
    message.set_field(field, value);
}

/// Sends `message` to `method` as the district admin and returns the status it failed with
/// (or `None` when it succeeded).
async fn send(channel: Channel, method: &MethodDescriptor, message: DynamicMessage) -> Option<tonic::Status> {
    let path: PathAndQuery = format!("/{}/{}", method.parent_service().full_name(), method.name()).parse().unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    let mut request = tonic::Request::new(message);
    let token = tokens::token(&tokens::district_admin());
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    // The reply is read as an empty message: only the status matters here.
    let codec = tonic_prost::ProstCodec::<DynamicMessage, ()>::default();
    let result = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => grpc.unary(request, path, codec).await.map(|_| ()),
        (false, true) => match grpc.server_streaming(request, path, codec).await {
            Ok(response) => response.into_inner().message().await.map(|_| ()),
            Err(status) => Err(status),
        },
        (true, _) => {
            let (metadata, extensions, message) = request.into_parts();
            let stream = tonic::Request::from_parts(metadata, extensions, tokio_stream::once(message));
            grpc.client_streaming(stream, path, codec).await.map(|_| ())
        }
    };
    result.err()
}

#[tokio::test]
async fn no_string_enum_or_timestamp_field_of_any_request_reaches_a_handler_unscreened() {
    let suite = Suite::start().await;
    let pool = DescriptorPool::decode(minhu_proto::FILE_DESCRIPTOR_SET).expect("the contracts decode");
    let ports: BTreeMap<&str, Channel> = suite.services().into_iter().collect();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for service in pool.services().filter(|s| s.full_name().starts_with("minhu.")) {
        let Some(channel) = ports.get(service.full_name()) else {
            wrong.push(format!("{} is in the contracts but the suite does not serve it", service.full_name()));
            continue;
        };
        for method in service.methods() {
            for case in cases(&method.input()) {
                checked += 1;
                let rpc = format!("{}/{} {} ({})", service.name(), method.name(), case.path, case.what);
                let Some(status) = send(channel.clone(), &method, case.message).await else {
                    wrong.push(format!("{rpc}: accepted"));
                    continue;
                };
                let fields: Vec<String> = status
                    .get_details_bad_request()
                    .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                    .unwrap_or_default();
                let has_info = status.get_details_error_info().is_some();
                if status.code() != Code::InvalidArgument || fields != [case.path.clone()] || !has_info {
                    wrong.push(format!(
                        "{rpc}: {:?} {:?} {fields:?} error_info={has_info}",
                        status.code(),
                        status.message()
                    ));
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} poisoned requests were generated");
    assert!(
        wrong.is_empty(),
        "{} of {checked} poisoned requests were not refused on their field:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    suite.stop().await;
}
