//! Property-generated requests: for every method of every service the suite serves, random
//! messages built from the contracts' descriptors — strings of every kind (empty, blank,
//! long, CJK, control characters, ids that exist and ids that do not), numbers at their
//! extremes, enum values defined and not, nested messages, repeated fields — sent as the
//! district, a street and a department. No answer may be INTERNAL or UNKNOWN (a caller's
//! mistake is never ours) and the servers must keep answering (no panic).
//!
//! `MINHU_GENERATED_REQUESTS` sets how many per service (default 2,000 in the test command — about a minute here; 10,000 and more with the variable); the seed is fixed
//! and printed, `MINHU_GENERATED_SEED` replays another.

use std::{collections::BTreeMap, time::Duration};

use minhu_grpc::Principal;
use minhu_testkit::tokens;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value,
};
use tonic::{Code, codegen::http::uri::PathAndQuery, transport::Channel};

use minhu_e2e::Suite;

/// A small, fast, reproducible generator (xorshift64*): no dependency, same sequence for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Strings a portal, an app or an attacker might send.
fn string(rng: &mut Rng) -> String {
    const KNOWN: [&str; 12] = [
        "zhongnanlu",
        "shuiguohu",
        "gongan",
        "chengguan",
        "guihua",
        "zhongnanlu-gongan",
        "haiyun",
        "district",
        "STREET_LEADER",
        "image/jpeg",
        "https://example.org/a.jpg",
        "2026-02-14",
    ];
    match rng.below(10) {
        0 => String::new(),
        1 => "   ".into(),
        2 => KNOWN[rng.below(KNOWN.len() as u64) as usize].into(),
        3 => uuid::Uuid::new_v4().to_string(),
        4 => "水泵房被占用，墙体被打通".repeat(1 + rng.below(400) as usize),
        5 => (0..rng.below(40)).map(|_| char::from_u32(0x4e00 + rng.below(0x5000) as u32).unwrap_or('口')).collect(),
        6 => "\u{202e}\u{feff}\t\r\n\u{7}'\"; DROP TABLE cases; --".into(),
        7 => "x".repeat(rng.below(70_000) as usize),
        8 => format!("{}", rng.next() as i64),
        _ => (0..rng.below(24)).map(|_| char::from(b'a' + rng.below(26) as u8)).collect(),
    }
}

fn scalar(kind: &Kind, rng: &mut Rng) -> Option<Value> {
    let extreme = |rng: &mut Rng| match rng.below(6) {
        0 => 0,
        1 => -1,
        2 => i64::MAX,
        3 => i64::MIN,
        4 => rng.below(100) as i64,
        _ => rng.next() as i64,
    };
    Some(match kind {
        Kind::String => Value::String(string(rng)),
        Kind::Bytes => Value::Bytes((0..rng.below(64)).map(|_| rng.next() as u8).collect::<Vec<u8>>().into()),
        Kind::Bool => Value::Bool(rng.chance(50)),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(extreme(rng) as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(extreme(rng)),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(extreme(rng) as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(extreme(rng) as u64),
        Kind::Float => Value::F32([0.0, -1.0, f32::NAN, f32::INFINITY, 30.53, 1e30][rng.below(6) as usize]),
        Kind::Double => {
            Value::F64([0.0, -1.0, f64::NAN, f64::NEG_INFINITY, 30.5335, 114.3378, 999.0][rng.below(7) as usize])
        }
        Kind::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.number()).collect();
            Value::EnumNumber(if rng.chance(90) { values[rng.below(values.len() as u64) as usize] } else { 77 })
        }
        Kind::Message(_) => return None,
    })
}

fn message(descriptor: &MessageDescriptor, rng: &mut Rng, depth: usize) -> DynamicMessage {
    let mut m = DynamicMessage::new(descriptor.clone());
    if descriptor.full_name() == "google.protobuf.Timestamp" {
        let seconds = match rng.below(4) {
            0 => 1_780_000_000 + rng.below(10_000_000) as i64,
            1 => 0,
            2 => 253_402_300_799,
            _ => 1_700_000_000,
        };
        m.set_field_by_name("seconds", Value::I64(seconds));
        return m;
    }
    for field in descriptor.fields() {
        if !rng.chance(if depth == 0 { 70 } else { 50 }) {
            continue;
        }
        if let Some(value) = field_value(&field, rng, depth) {
            m.set_field(&field, value);
        }
    }
    m
}

fn field_value(field: &FieldDescriptor, rng: &mut Rng, depth: usize) -> Option<Value> {
    let one = |rng: &mut Rng| match field.kind() {
        Kind::Message(m) if depth < 4 => Some(Value::Message(message(&m, rng, depth + 1))),
        Kind::Message(_) => None,
        kind => scalar(&kind, rng),
    };
    if field.is_map() {
        return None;
    }
    if field.is_list() {
        let n = [0, 1, 2, 3, 50][rng.below(5) as usize];
        return Some(Value::List((0..n).filter_map(|_| one(rng)).collect()));
    }
    one(rng)
}

async fn send(
    channel: Channel,
    method: &MethodDescriptor,
    message: DynamicMessage,
    caller: &Principal,
) -> (Code, String) {
    let path: PathAndQuery = format!("/{}/{}", method.parent_service().full_name(), method.name()).parse().unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    if grpc.ready().await.is_err() {
        return (Code::Unavailable, "not ready".into());
    }
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {}", tokens::token(caller)).parse().unwrap());
    request.set_timeout(Duration::from_secs(10));
    let codec = tonic_prost::ProstCodec::<DynamicMessage, ()>::default();
    let result = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => grpc.unary(request, path, codec).await.map(|_| ()),
        (false, true) => match grpc.server_streaming(request, path, codec).await {
            // A live stream that was accepted: its first message (or a quiet moment) is enough.
            Ok(response) => {
                match tokio::time::timeout(Duration::from_millis(200), response.into_inner().message()).await {
                    Ok(first) => first.map(|_| ()),
                    Err(_) => Ok(()),
                }
            }
            Err(status) => Err(status),
        },
        (true, _) => {
            let (metadata, extensions, message) = request.into_parts();
            let stream = tonic::Request::from_parts(metadata, extensions, tokio_stream::once(message));
            grpc.client_streaming(stream, path, codec).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

#[tokio::test]
async fn generated_requests_to_every_method_never_answer_internal() {
    let per_service: usize =
        std::env::var("MINHU_GENERATED_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let seed: u64 = std::env::var("MINHU_GENERATED_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x6d69_6e68_7521);
    minhu_testkit::init_logging();
    let in_flight: usize = std::env::var("MINHU_GENERATED_IN_FLIGHT").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    eprintln!("generated requests: {per_service} per service, {in_flight} in flight, seed {seed}");
    let suite = Suite::start().await;
    let pool = DescriptorPool::decode(minhu_proto::FILE_DESCRIPTOR_SET).unwrap();
    let callers =
        [tokens::district_admin(), tokens::street_dispatcher("zhongnanlu"), tokens::department_dispatcher("gongan")];
    let mut rng = Rng(seed);
    let mut wrong = Vec::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for (name, channel) in suite.services() {
        let service = pool.get_service_by_name(name).expect("served services are in the contracts");
        let methods: Vec<MethodDescriptor> = service.methods().collect();
        // Sent eight at a time: the servers see concurrency, the test stays within minutes.
        let mut sent = 0;
        while sent < per_service {
            let batch: Vec<_> = (0..in_flight.min(per_service - sent))
                .map(|_| {
                    let method = methods[rng.below(methods.len() as u64) as usize].clone();
                    let caller = callers[rng.below(callers.len() as u64) as usize].clone();
                    let request = message(&method.input(), &mut rng, 0);
                    let channel = channel.clone();
                    tokio::spawn(async move {
                        let shown = format!("{request:?}");
                        let request_len = prost::Message::encoded_len(&request);
                        let (code, said) = send(channel, &method, request, &caller).await;
                        (
                            method.full_name().to_owned(),
                            caller.subject,
                            format!("{said:?} ({} bytes) {shown}", request_len),
                            code,
                        )
                    })
                })
                .collect();
            sent += batch.len();
            for task in batch {
                let (method, caller, request, code) = task.await.expect("a request task");
                *codes.entry(format!("{code:?}")).or_default() += 1;
                if matches!(code, Code::Internal | Code::Unknown) {
                    wrong.push(format!("{method} as {caller}: {code:?} for {request:.400}"));
                }
            }
        }
    }
    eprintln!("generated requests answered: {codes:?}");
    wrong.sort();
    wrong.dedup_by(|a, b| a.split(" for ").next() == b.split(" for ").next());
    assert!(wrong.is_empty(), "{} methods answered INTERNAL/UNKNOWN:\n{}", wrong.len(), wrong.join("\n"));
    suite.stop().await;
}
