//! Server frames made by hand, for what a well-behaved encoder never
//! writes but a client must read: unknown fields and push bodies, unknown
//! event kinds and enum values, fields out of order or repeated, the JSON
//! a receiver must accept besides the canonical form, and frames that do
//! not decode at all. Each maker returns the payload and a description for
//! the frame log.

use bytes::Bytes;
use confab_protocol::{
    Encoding,
    v1::{self, server_frame::Body},
};
use prost::Message as _;
use serde_json::{Map, Value, json};

/// How the server encodes the well-formed frames of a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// The canonical encoding, as confabd writes it.
    #[default]
    Canonical,
    /// Canonical, plus fields the client does not know in every frame and
    /// in the messages it holds (ENC-1, ENC-5).
    UnknownFields,
    /// Binary only: fields in descending order, singular scalars written
    /// twice (the last one counts), the body split in two occurrences that
    /// merge, the request id of pushes written out as 0 (ENC-1, ENC-2).
    NonCanonical,
    /// JSON only: proto field names, 64-bit integers as numbers, enums as
    /// numbers, `null` for absent messages, unknown keys (ENC-5).
    JsonVariants,
}

impl Dialect {
    pub fn describe(self) -> &'static str {
        match self {
            Dialect::Canonical => "canonical",
            Dialect::UnknownFields => "with unknown fields",
            Dialect::NonCanonical => "non-canonical binary",
            Dialect::JsonVariants => "JSON variants",
        }
    }
}

/// `frame` in `encoding` and `dialect`. Fails only for a JSON frame holding
/// an enum value the canonical JSON mapping cannot name.
pub fn encode(frame: &v1::ServerFrame, encoding: Encoding, dialect: Dialect) -> Result<Bytes, String> {
    match (encoding, dialect) {
        (Encoding::Proto, Dialect::Canonical | Dialect::JsonVariants) => Ok(frame.encode_to_vec().into()),
        (Encoding::Proto, Dialect::UnknownFields) => Ok(proto_with_unknown_fields(frame).into()),
        (Encoding::Proto, Dialect::NonCanonical) => Ok(proto_non_canonical(frame).into()),
        (Encoding::Json, dialect) => {
            let mut value = serde_json::to_value(frame).map_err(|e| format!("no JSON for this frame: {e}"))?;
            match dialect {
                Dialect::Canonical | Dialect::NonCanonical => {}
                Dialect::UnknownFields => add_unknown_keys(&mut value),
                Dialect::JsonVariants => value = json_variant(value, None),
            }
            Ok(value.to_string().into())
        }
    }
}

// ---- pushes and replies the client does not know ---------------------------

/// A push whose body is of a kind this version does not define (ENC-8).
pub fn unknown_push(encoding: Encoding) -> (Bytes, String) {
    let payload = match encoding {
        Encoding::Proto => {
            let mut out = Vec::new();
            len_field(&mut out, 150, &string_message(1, "from a later feature level"));
            out
        }
        Encoding::Json => json!({"presenceChanged": {"user": "bob", "state": "AWAY"}}).to_string().into_bytes(),
    };
    (payload.into(), "a push of an unknown kind (field 150 / presenceChanged)".into())
}

/// An empty frame: no request id, no body (ENC-8; QUIC-4 allows length 0).
pub fn empty_frame(encoding: Encoding) -> (Bytes, String) {
    let payload: &[u8] = match encoding {
        Encoding::Proto => b"",
        Encoding::Json => b"{}",
    };
    (Bytes::from_static(payload), "an empty frame".into())
}

/// A reply to `request_id` whose body this version does not define: the
/// client still matches it to its request (ENC-8).
pub fn unknown_reply(encoding: Encoding, request_id: u64) -> (Bytes, String) {
    let payload = match encoding {
        Encoding::Proto => {
            let mut out = Vec::new();
            varint_field(&mut out, 1, request_id);
            len_field(&mut out, 151, &string_message(1, "a reply from a later feature level"));
            out
        }
        Encoding::Json => {
            json!({"requestId": request_id.to_string(), "historyDigest": {"digest": "abc"}}).to_string().into_bytes()
        }
    };
    (payload.into(), format!("a reply to request {request_id} of an unknown kind (field 151 / historyDigest)"))
}

/// A room event whose kind this version does not define (LOG-5).
pub fn event_of_unknown_kind(encoding: Encoding, event: &v1::RoomEvent) -> (Bytes, String) {
    let mut event = event.clone();
    event.kind = None;
    let payload = match encoding {
        Encoding::Proto => {
            let mut inner = event.encode_to_vec();
            len_field(&mut inner, 90, &string_message(1, "Tea or coffee?"));
            let mut out = Vec::new();
            len_field(&mut out, 100, &inner);
            out
        }
        Encoding::Json => {
            let mut value = json!({"event": event_json(&event)});
            value["event"]["pollStarted"] = json!({"question": "Tea or coffee?"});
            value.to_string().into_bytes()
        }
    };
    (payload.into(), format!("event seq {} of an unknown kind (field 90 / pollStarted)", event.seq))
}

/// A reply `Error` with an error code this version does not know (ENC-7,
/// ERR-5): number 999 in binary, an unknown name in JSON.
pub fn error_of_unknown_code(
    encoding: Encoding,
    request_id: u64,
    temporary: bool,
    retry_after_ms: u32,
) -> (Bytes, String) {
    let error = v1::Error { code: 999, message: "an error of a later feature level".into(), temporary, retry_after_ms };
    let payload = match encoding {
        Encoding::Proto => v1::ServerFrame { request_id, body: Some(Body::Error(error)) }.encode_to_vec(),
        Encoding::Json => {
            let mut body = json!({"code": "REGION_UNAVAILABLE", "message": error.message});
            if temporary {
                body["temporary"] = json!(true);
            }
            if retry_after_ms > 0 {
                body["retryAfterMs"] = json!(retry_after_ms);
            }
            json!({"requestId": request_id.to_string(), "error": body}).to_string().into_bytes()
        }
    };
    (payload.into(), format!("reply to request {request_id}: an error of an unknown code (999 / REGION_UNAVAILABLE)"))
}

/// A `Close` push with `code`; a code this version does not know goes as
/// an unknown name in JSON, where only the transport carries the number
/// (ENC-7, CLOSE-3).
pub fn close_frame(encoding: Encoding, code: u32, reason: &str) -> (Bytes, String) {
    let known = v1::CloseCode::try_from(code as i32).is_ok();
    let frame = v1::ServerFrame {
        request_id: 0,
        body: Some(Body::Close(v1::Close { code: code as i32, reason: reason.into() })),
    };
    let payload = match (encoding, known) {
        (Encoding::Proto, _) => frame.encode_to_vec(),
        (Encoding::Json, true) => serde_json::to_vec(&frame).unwrap_or_default(),
        (Encoding::Json, false) => {
            json!({"close": {"code": "SERVER_REBALANCING", "reason": reason}}).to_string().into_bytes()
        }
    };
    let name =
        v1::CloseCode::try_from(code as i32).map(|c| c.as_str_name().to_owned()).unwrap_or_else(|_| "unknown".into());
    (payload.into(), format!("Close {code} ({name}) {reason:?}"))
}

/// A history page whose `RoomCreated` event names a room kind this version
/// does not know (ENC-7): 9 in binary, an unknown name in JSON.
pub fn page_with_unknown_room_kind(encoding: Encoding, request_id: u64, page: &v1::HistoryPage) -> (Bytes, String) {
    let payload = match encoding {
        Encoding::Proto => {
            let mut page = page.clone();
            for event in &mut page.events {
                if let Some(v1::room_event::Kind::RoomCreated(created)) = &mut event.kind {
                    created.kind = 9;
                }
            }
            v1::ServerFrame { request_id, body: Some(Body::History(page)) }.encode_to_vec()
        }
        Encoding::Json => {
            let mut events = Vec::new();
            for event in &page.events {
                let mut value = event_json(event);
                if let Some(created) = value.get_mut("roomCreated").and_then(Value::as_object_mut) {
                    created.insert("kind".into(), json!("FEDERATED"));
                }
                events.push(value);
            }
            let mut history = json!({
                "roomId": page.room_id.to_string(),
                "epoch": page.epoch.to_string(),
                "events": events,
                "headSeq": page.head_seq.to_string(),
            });
            if page.has_more {
                history["hasMore"] = json!(true);
            }
            json!({"requestId": request_id.to_string(), "history": history}).to_string().into_bytes()
        }
    };
    (payload.into(), format!("reply to request {request_id}: a history page with a room kind of 9 / FEDERATED"))
}

// ---- frames that do not decode ---------------------------------------------

/// A payload that is no frame at all.
pub fn undecodable(encoding: Encoding) -> (Bytes, String) {
    match encoding {
        // Field 1 announces 127 bytes; one follows.
        Encoding::Proto => (Bytes::from_static(&[0x0a, 0x7f, 0x01]), "a truncated protobuf frame".into()),
        Encoding::Json => (Bytes::from_static(b"{\"event\": {\"roomId\": "), "truncated JSON".into()),
    }
}

/// `event` made undecodable: in binary, its text is not UTF-8 (ENC-3); in
/// JSON (which cannot carry invalid UTF-8 in a text message), its message
/// is a string where an object belongs.
pub fn undecodable_event(encoding: Encoding, event: &v1::RoomEvent) -> (Bytes, String) {
    const MARK: &str = "\u{1}\u{1}\u{1}\u{1}";
    let mut marked = event.clone();
    marked.kind = Some(v1::room_event::Kind::Message(v1::Message {
        text: MARK.into(),
        client_txn_id: String::new(),
        ..Default::default()
    }));
    match encoding {
        Encoding::Proto => {
            let mut payload = v1::ServerFrame { request_id: 0, body: Some(Body::Event(marked)) }.encode_to_vec();
            if let Some(at) = payload.windows(4).position(|w| w == MARK.as_bytes()) {
                payload[at..at + 4].copy_from_slice(b"caf\xff");
            }
            (payload.into(), format!("event seq {} whose text is not UTF-8", event.seq))
        }
        Encoding::Json => {
            let mut value = event_json(&marked);
            value["message"] = json!("not an object");
            let payload = json!({"event": value}).to_string();
            (payload.into(), format!("event seq {} whose message is a string", event.seq))
        }
    }
}

// ---- binary dialects --------------------------------------------------------

/// One protobuf field, undecoded.
#[derive(Clone, Debug, PartialEq)]
enum Field {
    Varint(u32, u64),
    Fixed64(u32, u64),
    Len(u32, Vec<u8>),
    Fixed32(u32, u32),
}

impl Field {
    fn number(&self) -> u32 {
        match self {
            Field::Varint(n, _) | Field::Fixed64(n, _) | Field::Len(n, _) | Field::Fixed32(n, _) => *n,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Field::Varint(n, v) => varint_field(out, *n, *v),
            Field::Fixed64(n, v) => {
                key(out, *n, 1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Len(n, bytes) => len_field(out, *n, bytes),
            Field::Fixed32(n, v) => {
                key(out, *n, 5);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Fields of a message encoding, in order; `None` when it is not one.
fn fields(mut bytes: &[u8]) -> Option<Vec<Field>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        let number = u32::try_from(key >> 3).ok()?;
        out.push(match key & 7 {
            0 => Field::Varint(number, read_varint(&mut bytes)?),
            1 => {
                let (value, rest) = bytes.split_first_chunk::<8>()?;
                bytes = rest;
                Field::Fixed64(number, u64::from_le_bytes(*value))
            }
            2 => {
                let len = usize::try_from(read_varint(&mut bytes)?).ok()?;
                if len > bytes.len() {
                    return None;
                }
                let (value, rest) = bytes.split_at(len);
                bytes = rest;
                Field::Len(number, value.to_vec())
            }
            5 => {
                let (value, rest) = bytes.split_first_chunk::<4>()?;
                bytes = rest;
                Field::Fixed32(number, u32::from_le_bytes(*value))
            }
            _ => return None,
        });
    }
    Some(out)
}

/// The fields of each body that hold messages (one level down), by body
/// field number of `ServerFrame`.
fn nested_messages(body: u32) -> &'static [u32] {
    match body {
        10 => &[8],                      // Welcome.limits
        20 => &[1],                      // AuthResult.user
        41 => &[3],                      // HistoryPage.events
        42 => &[1],                      // ResumeResult.rooms
        100 => &[5, 10, 11, 12, 13, 14], // RoomEvent.sender and kinds
        _ => &[],
    }
}

/// Unknown fields of every wire type, numbered from `base`.
fn unknown_fields(base: u32) -> Vec<Field> {
    vec![
        Field::Varint(base, 7),
        Field::Len(base + 1, b"from a later feature level".to_vec()),
        Field::Fixed32(base + 2, 0xdead_beef),
        Field::Fixed64(base + 3, 42),
    ]
}

fn proto_with_unknown_fields(frame: &v1::ServerFrame) -> Vec<u8> {
    let canonical = frame.encode_to_vec();
    let Some(top) = fields(&canonical) else { return canonical };
    let mut out = Vec::new();
    for field in top {
        match field {
            Field::Len(number, body) if number != 1 => {
                let nested = nested_messages(number);
                let mut inner = Vec::new();
                for field in fields(&body).unwrap_or_default() {
                    match field {
                        Field::Len(n, message) if nested.contains(&n) => {
                            let mut message = message;
                            for extra in unknown_fields(70) {
                                extra.write(&mut message);
                            }
                            len_field(&mut inner, n, &message);
                        }
                        other => other.write(&mut inner),
                    }
                }
                for extra in unknown_fields(60) {
                    extra.write(&mut inner);
                }
                len_field(&mut out, number, &inner);
            }
            other => other.write(&mut out),
        }
    }
    for extra in unknown_fields(2000) {
        extra.write(&mut out);
    }
    out
}

fn proto_non_canonical(frame: &v1::ServerFrame) -> Vec<u8> {
    let canonical = frame.encode_to_vec();
    let Some(top) = fields(&canonical) else { return canonical };
    let body = top.iter().find_map(|f| match f {
        Field::Len(n, bytes) if *n != 1 => Some((*n, bytes.clone())),
        _ => None,
    });
    let mut out = Vec::new();
    // A wrong request id first: the last occurrence counts.
    varint_field(&mut out, 1, frame.request_id + 1000);
    let (part_a, part_b) = match &body {
        Some((number, bytes)) => {
            let mut inner = fields(bytes).unwrap_or_default();
            // Descending field numbers; a repeated field keeps its order.
            inner.sort_by_key(|f| std::cmp::Reverse(f.number()));
            let mut first = Vec::new();
            for field in &inner {
                let singular = inner.iter().filter(|f| f.number() == field.number()).count() == 1;
                if let (Field::Varint(n, v), true) = (field, singular) {
                    Field::Varint(*n, v ^ 1).write(&mut first);
                }
            }
            let half = inner.len() / 2;
            for field in &inner[..half] {
                field.write(&mut first);
            }
            let mut second = Vec::new();
            for field in &inner[half..] {
                field.write(&mut second);
            }
            (Some((*number, first)), Some((*number, second)))
        }
        None => (None, None),
    };
    if let Some((number, bytes)) = &part_a {
        len_field(&mut out, *number, bytes);
    }
    Field::Fixed64(1999, 7).write(&mut out);
    // The real request id, written out even when it is 0 (a push).
    varint_field(&mut out, 1, frame.request_id);
    if let Some((number, bytes)) = &part_b {
        len_field(&mut out, *number, bytes);
    }
    out
}

fn key(out: &mut Vec<u8>, number: u32, wire_type: u64) {
    write_varint(out, (u64::from(number) << 3) | wire_type);
}

fn varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    key(out, number, 0);
    write_varint(out, value);
}

fn len_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    key(out, number, 2);
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn string_message(number: u32, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    len_field(&mut out, number, text.as_bytes());
    out
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

// ---- JSON dialects ------------------------------------------------------------

/// The canonical JSON of an event (kinds this version names only).
fn event_json(event: &v1::RoomEvent) -> Value {
    serde_json::to_value(event).unwrap_or(Value::Null)
}

/// Unknown keys in every object of a frame.
fn add_unknown_keys(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                add_unknown_keys(child);
            }
            object.insert("fromLaterLevel".into(), json!({"hint": ["ignore", 1, null]}));
            object.insert("futureCounter".into(), json!(7));
        }
        Value::Array(items) => items.iter_mut().for_each(add_unknown_keys),
        _ => {}
    }
}

/// 64-bit fields, by proto name.
const WIDE: &[&str] = &[
    "request_id",
    "room_id",
    "epoch",
    "seq",
    "server_time_ms",
    "user_id",
    "head_seq",
    "session_id",
    "access_expires_at_ms",
    "refresh_expires_at_ms",
    "max_outbound_queue_bytes",
    "replayed",
];

/// The frame as another valid writer might put it (ENC-5): proto names,
/// 64-bit integers as numbers, enum values as numbers, `null` for an
/// event's absent sender, an unknown key at the top.
fn json_variant(value: Value, parent: Option<&str>) -> Value {
    match value {
        Value::Object(object) => {
            let mut out = Map::new();
            let is_event = parent == Some("event") || parent == Some("events");
            for (key, child) in object {
                let name = snake_case(&key);
                let child = match (name.as_str(), child) {
                    (wide, Value::String(digits)) if WIDE.contains(&wide) => {
                        digits.parse::<u64>().map(Value::from).unwrap_or(Value::String(digits))
                    }
                    (field, Value::String(enum_name)) => match enum_number(parent, field, &enum_name) {
                        Some(number) => Value::from(number),
                        None => Value::String(enum_name),
                    },
                    (_, child) => json_variant(child, Some(&name)),
                };
                out.insert(name, child);
            }
            if is_event && !out.contains_key("sender") {
                out.insert("sender".into(), Value::Null);
            }
            if parent.is_none() {
                out.insert("future_top_level".into(), json!({"ignored": true}));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| json_variant(v, parent)).collect()),
        other => other,
    }
}

/// The number of an enum value named in JSON, by where it stands.
fn enum_number(parent: Option<&str>, field: &str, name: &str) -> Option<i32> {
    match (parent, field) {
        (_, "outcome") => v1::ResumeOutcome::from_str_name(name).map(|v| v as i32),
        (_, "kind") => v1::RoomKind::from_str_name(name).map(|v| v as i32),
        (_, "membership") => v1::Membership::from_str_name(name).map(|v| v as i32),
        (Some("error"), "code") => v1::ErrorCode::from_str_name(name).map(|v| v as i32),
        (Some("close"), "code") => v1::CloseCode::from_str_name(name).map(|v| v as i32),
        _ => None,
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use confab_protocol::codec;

    use super::*;

    fn event() -> v1::RoomEvent {
        v1::RoomEvent {
            room_id: 9_007_199_254_740_993,
            epoch: 1,
            seq: 5,
            server_time_ms: 1_767_225_603_000,
            sender: Some(v1::User { user_id: 43, name: "bob".into(), guest: false, ..Default::default() }),
            kind: Some(v1::room_event::Kind::Message(v1::Message {
                text: "hi".into(),
                client_txn_id: "t".into(),
                ..Default::default()
            })),
        }
    }

    fn frames() -> Vec<v1::ServerFrame> {
        let welcome = v1::Welcome {
            version: 1,
            capabilities: vec!["resume".into(), "x".into()],
            limits: Some(v1::Limits { max_frame_bytes: 9, ..Default::default() }),
            session_id: 3,
            ..Default::default()
        };
        let page = v1::HistoryPage {
            room_id: 1,
            epoch: 1,
            events: vec![event(), event()],
            has_more: true,
            head_seq: 9,
            ..Default::default()
        };
        let status = v1::RoomResumeStatus { room_id: 1, epoch: 1, head_seq: 4, outcome: 2, replayed: 0 };
        vec![
            v1::ServerFrame { request_id: 1, body: Some(Body::Welcome(welcome)) },
            v1::ServerFrame { request_id: 0, body: Some(Body::Event(event())) },
            v1::ServerFrame { request_id: 7, body: Some(Body::History(page)) },
            v1::ServerFrame { request_id: 8, body: Some(Body::Resumed(v1::ResumeResult { rooms: vec![status] })) },
            v1::ServerFrame { request_id: 9, body: Some(Body::Pong(v1::Pong {})) },
            v1::ServerFrame { request_id: 0, body: Some(Body::Event(v1::RoomEvent { seq: 2, ..Default::default() })) },
        ]
    }

    #[test]
    fn every_dialect_decodes_to_the_same_frame() {
        for frame in frames() {
            for (encoding, dialect) in [
                (Encoding::Proto, Dialect::UnknownFields),
                (Encoding::Proto, Dialect::NonCanonical),
                (Encoding::Json, Dialect::UnknownFields),
                (Encoding::Json, Dialect::JsonVariants),
            ] {
                let payload = encode(&frame, encoding, dialect).unwrap();
                assert_ne!(payload, codec::encode(&frame, encoding), "{dialect:?} changes nothing");
                let back: v1::ServerFrame = codec::decode(&payload, encoding)
                    .unwrap_or_else(|e| panic!("{dialect:?} {encoding:?}: {e}: {}", String::from_utf8_lossy(&payload)));
                assert_eq!(back, frame, "{dialect:?} {encoding:?}");
            }
        }
    }

    #[test]
    fn json_variants_use_proto_names_numbers_and_null() {
        let payload = encode(&frames()[1], Encoding::Json, Dialect::JsonVariants).unwrap();
        let text = String::from_utf8(payload.to_vec()).unwrap();
        assert!(text.contains("\"room_id\":9007199254740993"), "{text}");
        let empty = encode(&frames()[5], Encoding::Json, Dialect::JsonVariants).unwrap();
        assert!(String::from_utf8_lossy(&empty).contains("\"sender\":null"));
        let resumed = encode(&frames()[3], Encoding::Json, Dialect::JsonVariants).unwrap();
        assert!(String::from_utf8_lossy(&resumed).contains("\"outcome\":2"), "{resumed:?}");
    }

    #[test]
    fn unknown_things_decode_to_nothing_known() {
        for encoding in [Encoding::Proto, Encoding::Json] {
            let push: v1::ServerFrame = codec::decode(&unknown_push(encoding).0, encoding).unwrap();
            assert_eq!(push, v1::ServerFrame::default());
            let empty: v1::ServerFrame = codec::decode(&empty_frame(encoding).0, encoding).unwrap();
            assert_eq!(empty, v1::ServerFrame::default());
            let reply: v1::ServerFrame = codec::decode(&unknown_reply(encoding, 4).0, encoding).unwrap();
            assert_eq!(reply, v1::ServerFrame { request_id: 4, body: None });
            let kindless: v1::ServerFrame =
                codec::decode(&event_of_unknown_kind(encoding, &event()).0, encoding).unwrap();
            assert!(matches!(kindless.body, Some(Body::Event(e)) if e.kind.is_none() && e.seq == 5));
            let error: v1::ServerFrame =
                codec::decode(&error_of_unknown_code(encoding, 3, true, 5).0, encoding).unwrap();
            assert!(matches!(error.body, Some(Body::Error(e)) if e.temporary && e.retry_after_ms == 5));
            let close: v1::ServerFrame = codec::decode(&close_frame(encoding, 4321, "r").0, encoding).unwrap();
            assert!(matches!(close.body, Some(Body::Close(_))));
            let page = v1::HistoryPage {
                events: vec![v1::RoomEvent {
                    seq: 1,
                    kind: Some(v1::room_event::Kind::RoomCreated(v1::RoomCreated { name: "x".into(), kind: 1 })),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let history: v1::ServerFrame =
                codec::decode(&page_with_unknown_room_kind(encoding, 3, &page).0, encoding).unwrap();
            assert!(matches!(history.body, Some(Body::History(p)) if p.events.len() == 1));
        }
    }

    #[test]
    fn undecodable_things_do_not_decode() {
        for encoding in [Encoding::Proto, Encoding::Json] {
            assert!(codec::decode::<v1::ServerFrame>(&undecodable(encoding).0, encoding).is_err());
            assert!(codec::decode::<v1::ServerFrame>(&undecodable_event(encoding, &event()).0, encoding).is_err());
        }
    }
}
