//! Read masks (字段掩码) on the watch streams: a phone names the fields it shows
//! ("case.state", "changed_call.state") and every message is trimmed to them.
//!
//! Paths are checked against the contract's own descriptors (the descriptor set served
//! for reflection), and trimming works on the encoded message: fields not named are
//! dropped from the wire bytes, recursing into the named sub-messages. So the mask
//! follows the contract as it grows, without a table of fields to keep in step.

use std::{collections::BTreeMap, sync::LazyLock};

use minhu_grpc::ApiError;
use prost::{
    Message,
    encoding::{decode_varint, encode_varint},
};
use prost_types::{DescriptorProto, FileDescriptorSet, field_descriptor_proto::Type};

static DESCRIPTORS: LazyLock<FileDescriptorSet> = LazyLock::new(|| {
    FileDescriptorSet::decode(minhu_proto::FILE_DESCRIPTOR_SET).expect("the build encodes a valid descriptor set")
});

/// A message's descriptor by full name (`minhu.dispatch.v1.WatchCaseResponse`).
fn message(full_name: &str) -> Option<&'static DescriptorProto> {
    let name = full_name.trim_start_matches('.');
    DESCRIPTORS.file.iter().find_map(|f| {
        let rest = name.strip_prefix(f.package())?.strip_prefix('.')?;
        // Nested messages are not used in the watch responses' paths.
        f.message_type.iter().find(|m| m.name() == rest)
    })
}

/// Field numbers to keep, each with what to keep of it (empty: all of it).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Mask(BTreeMap<u32, Mask>);

impl Mask {
    /// The mask for `paths` on message `full_name`; `None` for no paths (everything).
    /// INVALID_ARGUMENT on `field` for a path naming no field.
    pub(super) fn compile(
        full_name: &str,
        field: &str,
        mask: Option<&prost_types::FieldMask>,
    ) -> Result<Option<Self>, ApiError> {
        let Some(mask) = mask.filter(|m| !m.paths.is_empty()) else { return Ok(None) };
        let root = message(full_name).expect("the watch responses are in the descriptor set");
        let mut out = Mask::default();
        for path in &mask.paths {
            let mut numbers = Vec::new();
            let mut desc = Some(root);
            for segment in path.split('.') {
                let found = desc.and_then(|d| d.field.iter().find(|f| f.name() == segment));
                let Some(f) = found else {
                    return Err(ApiError::field(
                        field,
                        format!(
                            "path `{path}` names no field of {}",
                            full_name.rsplit('.').next().unwrap_or(full_name)
                        ),
                    ));
                };
                desc = (f.r#type() == Type::Message).then(|| message(f.type_name())).flatten();
                numbers.push(f.number() as u32);
            }
            out.keep(&numbers);
        }
        Ok(Some(out))
    }

    /// Adds a path of field numbers; its last field is kept whole, and a field kept whole
    /// already stays whole.
    fn keep(&mut self, numbers: &[u32]) {
        let mut node = self;
        for n in numbers {
            if node.0.get(n).is_some_and(|m| m.0.is_empty()) {
                return;
            }
            node = node.0.entry(*n).or_default();
        }
        node.0.clear();
    }

    /// `m` with only the masked fields.
    pub(super) fn apply<M: Message + Default>(&self, m: &M) -> M {
        let bytes = m.encode_to_vec();
        M::decode(self.trim(&bytes).as_slice()).unwrap_or_default()
    }

    /// The encoded message without the fields outside the mask.
    fn trim(&self, mut buf: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(buf.len());
        while !buf.is_empty() {
            let start = buf;
            let Ok(key) = decode_varint(&mut buf) else { break };
            let (number, wire) = ((key >> 3) as u32, key & 7);
            let header = &start[..start.len() - buf.len()];
            let value: &[u8] = match wire {
                0 => {
                    let before = buf;
                    if decode_varint(&mut buf).is_err() {
                        break;
                    }
                    &before[..before.len() - buf.len()]
                }
                1 | 5 => {
                    let n = if wire == 1 { 8 } else { 4 };
                    if buf.len() < n {
                        break;
                    }
                    let (v, rest) = buf.split_at(n);
                    buf = rest;
                    v
                }
                2 => {
                    let Ok(len) = decode_varint(&mut buf) else { break };
                    let len = len as usize;
                    if buf.len() < len {
                        break;
                    }
                    let (v, rest) = buf.split_at(len);
                    buf = rest;
                    // Only the contents: the length is written below.
                    let Some(sub) = self.0.get(&number) else { continue };
                    out.extend_from_slice(header);
                    if sub.0.is_empty() {
                        encode_varint(len as u64, &mut out);
                        out.extend_from_slice(v);
                    } else {
                        let trimmed = sub.trim(v);
                        encode_varint(trimmed.len() as u64, &mut out);
                        out.extend_from_slice(&trimmed);
                    }
                    continue;
                }
                // Groups are not in the contract.
                _ => break,
            };
            if self.0.contains_key(&number) {
                out.extend_from_slice(header);
                out.extend_from_slice(value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use minhu_proto::dispatch::v1 as pb;

    use super::*;

    fn mask(paths: &[&str]) -> Result<Option<Mask>, ApiError> {
        let m = prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() };
        Mask::compile("minhu.dispatch.v1.WatchCaseResponse", "read_mask", Some(&m))
    }

    #[test]
    fn a_mask_keeps_the_named_fields_only() {
        let full = pb::WatchCaseResponse {
            case: Some(pb::Case { id: "c".into(), title: "水泵房被占".into(), state: 3, ..Default::default() }),
            event: Some(pb::Event { sequence: 7, event_type: 2, case_id: "c".into(), ..Default::default() }),
            calls: vec![pb::Call { id: "k".into(), ..Default::default() }],
            ..Default::default()
        };
        let trimmed = mask(&["case.state", "event.sequence"]).unwrap().unwrap().apply(&full);
        assert_eq!(
            trimmed,
            pb::WatchCaseResponse {
                case: Some(pb::Case { state: 3, ..Default::default() }),
                event: Some(pb::Event { sequence: 7, ..Default::default() }),
                ..Default::default()
            }
        );
        let whole = mask(&["case", "case.title"]).unwrap().unwrap().apply(&full);
        assert_eq!(whole.case, full.case);
        assert!(whole.calls.is_empty() && whole.event.is_none());
    }

    #[test]
    fn unknown_paths_are_refused_by_name() {
        assert!(mask(&[]).unwrap().is_none());
        for bad in ["case.nope", "nope", "case.state.deeper", ""] {
            let e = mask(&["case.title", bad]).unwrap_err();
            assert!(e.to_string().contains("read_mask"), "{bad}: {e}");
        }
    }
}
