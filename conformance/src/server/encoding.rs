//! §3 Encodings: how the server decodes binary and JSON frames (field
//! order, unknown fields, invalid UTF-8, proto3 JSON spellings, one object
//! per message) and that what it sends is in the canonical encoding.

use std::{collections::BTreeMap, time::Duration};

use confab_sdk::{
    Encoding,
    v1::{self, ErrorCode, client_frame::Command, server_frame::Body},
};
use prost::Message as _;

use super::{
    Case, Ctx,
    conn::{by_id, hello, is_error_frame, is_heartbeat, register_command, send_message},
    ctx::PASSWORD,
    hand::{Hand, bytes_field, tag, varint_field},
    show::{show_frame, show_result},
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::Wires,
};

const FEATURE: &str = "Encodings";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "enc/binary-decoding",
            FEATURE,
            "Binary frames are decoded whatever the field order, packing, repetition and unknown fields",
            &["ENC-1"],
            Wires::Proto,
            binary_decoding,
        ),
        Case::new(
            "enc/invalid-utf8",
            FEATURE,
            "A binary frame with invalid UTF-8 in a string field is answered BAD_FRAME and ignored",
            &["ENC-3", "FRAME-6"],
            Wires::Proto,
            invalid_utf8,
        ),
        Case::new(
            "enc/canonical-output",
            FEATURE,
            "The server's frames are in the canonical encoding, byte for byte or JSON value for value",
            &["ENC-2", "ENC-4", "FRAME-1", "FRAME-5"],
            Wires::All,
            canonical_output,
        ),
        Case::new(
            "enc/json-decoding",
            FEATURE,
            "JSON frames are accepted with proto field names, numbers for 64-bit values and enums, nulls and unknown keys",
            &["ENC-5"],
            Wires::WsJson,
            json_decoding,
        ),
        Case::new(
            "enc/json-text",
            FEATURE,
            "A JSON frame is one object with only whitespace around it; anything else is BAD_FRAME",
            &["ENC-6", "FRAME-6"],
            Wires::WsJson,
            json_text,
        ),
    ]
}

async fn binary_decoding(cx: Ctx) -> CaseResult {
    // Out of order, unpacked, unknown fields of every wire type, and a
    // request id given twice.
    let mut conn = cx.connect("client").await?;
    let hello_body = [
        bytes_field(4, b"confab-conformance"),
        varint_field(15, 7),
        [tag(16, 5), vec![1, 2, 3, 4]].concat(),
        [tag(17, 1), vec![1, 2, 3, 4, 5, 6, 7, 8]].concat(),
        bytes_field(18, &varint_field(1, 1)),
        varint_field(2, 1),
        varint_field(1, 1),
        bytes_field(3, b"resume"),
    ]
    .concat();
    let frame = [
        varint_field(1, 29_999),
        bytes_field(10, &hello_body),
        varint_field(2047, 5),
        bytes_field(3000, b"unknown"),
        varint_field(1, 30_001),
    ]
    .concat();
    conn.send_payload(frame).await?;
    let answer = conn.next_answer().await?;
    let held = answer.request_id == 30_001
        && matches!(&answer.body, Some(Body::Welcome(w)) if w.version == 1 && w.capabilities == ["resume"]);
    cx.check(
        "ENC-1",
        held,
        format!(
            "a Hello with fields out of order, versions unpacked, unknown fields of each wire type and \
                 request id 29999 then 30001: expected Welcome (version 1, capabilities [resume]) for 30001, got {}",
            show_frame(&answer)
        ),
    );
    conn.welcome = match answer.body {
        Some(Body::Welcome(welcome)) => Some(welcome),
        _ => return Ok(()),
    };

    let name = cx.name("binary");
    conn.register(&name, PASSWORD).await?;
    let room_name = cx.name("binaryroom");
    let room = conn.create_room(&room_name, v1::RoomKind::Public).await?;
    let refs = [
        ("a name of no room, then the room's id", [bytes_field(2, b"no-such-room"), varint_field(1, room.room_id)]),
        ("an unknown id, then the room's name", [varint_field(1, u64::MAX - 7), bytes_field(2, room_name.as_bytes())]),
    ];
    for (n, (what, room_ref)) in refs.into_iter().enumerate() {
        let request_id = 30_010 + n as u64;
        let get = bytes_field(1, &room_ref.concat());
        conn.send_payload([varint_field(1, request_id), bytes_field(41, &get)].concat()).await?;
        let reply = conn.reply(request_id).await?;
        cx.check(
            "ENC-1",
            matches!(&reply.body, Some(Body::History(page)) if page.room_id == room.room_id),
            format!(
                "GetHistory with a RoomRef holding {what} (the last oneof member wins): expected \
                     the room's HistoryPage, got {}",
                show_frame(&reply)
            ),
        );
    }
    // get_history twice: the two messages are merged.
    let first = bytes_field(1, &varint_field(1, room.room_id));
    let second = varint_field(4, 1);
    let request_id = 30_020;
    let frame = [varint_field(1, request_id), bytes_field(41, &first), bytes_field(41, &second)].concat();
    conn.send_payload(frame).await?;
    let reply = conn.reply(request_id).await?;
    cx.check(
        "ENC-1",
        matches!(&reply.body, Some(Body::History(page)) if page.room_id == room.room_id && page.events.len() == 1),
        format!(
            "get_history given twice, first with the room, then with limit 1 (merged): expected a page \
                 of one event, got {}",
            show_frame(&reply)
        ),
    );
    conn.close().await;

    // hello twice: merged, repeated versions packed then unpacked.
    let mut conn = cx.connect("client").await?;
    let part_a = [bytes_field(1, &[9, 1]), bytes_field(4, b"part a")].concat();
    let part_b = [varint_field(1, 5), bytes_field(3, b"resume"), varint_field(2, 1)].concat();
    let frame = [varint_field(1, 30_030), bytes_field(10, &part_a), bytes_field(10, &part_b)].concat();
    conn.send_payload(frame).await?;
    let answer = conn.next_answer().await?;
    let held = answer.request_id == 30_030
        && matches!(&answer.body, Some(Body::Welcome(w)) if w.version == 1 && w.capabilities == ["resume"]);
    cx.check(
        "ENC-1",
        held,
        format!(
            "hello given twice (versions [9, 1] packed; then versions 5 unpacked and capabilities \
                 [resume]), merged: expected Welcome with version 1 and capabilities [resume], got {}",
            show_frame(&answer)
        ),
    );
    conn.close().await;
    Ok(())
}

async fn invalid_utf8(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let hello_body = [bytes_field(1, &[1]), varint_field(2, 1), bytes_field(4, b"conformance \xff\xfe")].concat();
    conn.send_payload([varint_field(1, 31_001), bytes_field(10, &hello_body)].concat()).await?;
    let answer = conn.next_answer().await?;
    cx.check_push_error("ENC-3", &answer, ErrorCode::BadFrame, "a Hello whose client_name is not UTF-8");
    let welcome = conn.hello().await;
    cx.check(
        "FRAME-6",
        welcome.is_ok(),
        format!("the bad Hello was ignored, so a good one is answered: {}", show_result(&welcome, "it was")),
    );
    welcome?;
    let register = [bytes_field(1, b"user\xc3("), bytes_field(2, PASSWORD.as_bytes())].concat();
    conn.send_payload([varint_field(1, 31_002), bytes_field(20, &register)].concat()).await?;
    let answer = conn.next_answer().await?;
    let what = "a Register whose username is not UTF-8 (undecodable, not INVALID_ARGUMENT)";
    cx.check_push_error("ENC-3", &answer, ErrorCode::BadFrame, what);
    cx.check_alive("FRAME-6", &mut conn, "after the BAD_FRAME").await?;
    conn.close().await;
    Ok(())
}

async fn canonical_output(cx: Ctx) -> CaseResult {
    let encoding = cx.wire().encoding;
    let mut hand = Hand::open(&cx, "client", cx.wire()).await?;
    let welcome = hand.request(Command::Hello(hello())).await?;
    if !matches!(welcome.body, Some(Body::Welcome(_))) {
        return Err(Stop::Failed(format!("expected Welcome, got {}", show_frame(&welcome))));
    }
    let from = hand.received.len();
    let garbage: &[u8] = if encoding == Encoding::Json { b"not json" } else { &[0xff, 0xff, 0xff] };
    hand.send_payload(garbage).await?;
    hand.wait_for(from, "the BAD_FRAME push", |f| f.request_id == 0 && !is_heartbeat(f)).await?;
    hand.request(register_command(&cx.name("canon"), PASSWORD, "conformance")).await?;
    let create = v1::CreateRoom { name: cx.name("canonroom"), kind: v1::RoomKind::Public as i32, ..Default::default() };
    let room = hand.request(Command::CreateRoom(create)).await?;
    let Some(Body::Room(room)) = room.body else {
        return Err(Stop::Failed(format!("expected RoomInfo, got {}", show_frame(&room))));
    };
    hand.request(Command::Resume(v1::Resume::default())).await?;
    let from = hand.received.len();
    hand.request(send_message(room.room_id, "canonical ✓", "canonical-1")).await?;
    hand.wait_for(from, "the message's event", |f| matches!(f.body, Some(Body::Event(_)))).await?;
    let get = v1::GetHistory {
        room: Some(by_id(room.room_id)),
        direction: v1::HistoryDirection::Backward as i32,
        anchor_seq: 0,
        limit: 0,
    };
    hand.request(Command::GetHistory(get)).await?;

    let frames = &hand.received;
    let undecodable: Vec<String> =
        frames.iter().filter(|f| f.decoded.is_none()).map(|f| crate::evidence::show(&f.payload)).collect();
    cx.check(
        "FRAME-1",
        undecodable.is_empty(),
        format!("each of the {} frames received holds one ServerFrame; undecodable: {undecodable:?}", frames.len()),
    );
    let bad_pushes: Vec<String> = frames
        .iter()
        .filter_map(|f| f.decoded.as_ref())
        .filter(|f| {
            f.request_id == 0
                && !matches!(
                    f.body,
                    Some(
                        Body::Event(_)
                            | Body::Ping(_)
                            | Body::Close(_)
                            | Body::Error(_)
                            | Body::ReadState(_)
                            | Body::Receipt(_)
                            | Body::Typing(_)
                            | Body::Presence(_)
                            | Body::Notification(_)
                    )
                )
        })
        .map(show_frame)
        .collect();
    cx.check(
        "FRAME-5",
        bad_pushes.is_empty(),
        format!("every push (request id 0) is one FRAME-5 names; others: {bad_pushes:?}"),
    );
    match encoding {
        Encoding::Proto => {
            let differing: Vec<String> = frames
                .iter()
                .filter_map(|f| {
                    let decoded = f.decoded.as_ref()?;
                    let canonical = decoded.encode_to_vec();
                    (canonical != f.payload)
                        .then(|| format!("sent {} for canonical {}", hex::encode(&f.payload), hex::encode(&canonical)))
                })
                .collect();
            cx.should(
                "ENC-2",
                differing.is_empty(),
                format!(
                    "each of the {} frames is the canonical encoding of what it decodes to; not: {differing:?}",
                    frames.len()
                ),
            );
        }
        Encoding::Json => {
            let mut problems = Vec::new();
            for f in frames {
                let text = String::from_utf8_lossy(&f.payload);
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                    problems.push(format!("not JSON: {text}"));
                    continue;
                };
                let Some(object) = value.as_object() else {
                    problems.push(format!("not a JSON object: {text}"));
                    continue;
                };
                if !f.text {
                    problems.push(format!("came as a binary message: {text}"));
                }
                let Some(decoded) = &f.decoded else { continue };
                let canonical = serde_json::to_value(decoded)?;
                if canonical != value {
                    problems.push(format!("sent {text} for canonical {canonical}"));
                }
                let request_id = object.get("requestId");
                if decoded.request_id == 0 {
                    if request_id.is_some() {
                        problems.push(format!("a push with a requestId key (FRAME-5): {text}"));
                    }
                } else if !request_id.is_some_and(serde_json::Value::is_string) {
                    problems.push(format!("requestId is not a JSON string: {text}"));
                }
            }
            cx.check(
                "ENC-4",
                problems.is_empty(),
                format!(
                    "each of the {} text messages is the canonical proto3 JSON of its frame (lowerCamelCase keys, \
                     64-bit values as strings, enum names, defaults omitted, no requestId in pushes); not: \
                     {problems:?}",
                    frames.len()
                ),
            );
        }
    }
    hand.close().await;
    Ok(())
}

async fn json_decoding(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let text = concat!(
        r#"{"request_id":"32001","hello":{"versions":[1],"client_name":"conformance","#,
        r#""futureOption":{"a":[1,null]}},"unknownTopLevel":true}"#
    );
    conn.send_payload(text.to_owned()).await?;
    let reply = conn.reply(32_001).await?;
    let held = matches!(&reply.body, Some(Body::Welcome(w)) if w.version == 1 && w.feature_level == 1);
    cx.check(
        "ENC-5",
        held,
        format!(
            "Hello with the key request_id, unknown keys at both levels and featureLevel absent: expected Welcome \
             (feature level 1: an absent level is 0, which counts as 1), got {}",
            show_frame(&reply)
        ),
    );
    if let Some(Body::Welcome(welcome)) = reply.body {
        conn.welcome = Some(welcome);
    }
    let name = cx.name("json");
    conn.register(&name, PASSWORD).await?;

    let room_name = cx.name("jsonroom");
    let text = format!(r#"{{"requestId":32002,"createRoom":{{"name":"{room_name}","kind":1}}}}"#);
    conn.send_payload(text).await?;
    let reply = conn.reply(32_002).await?;
    let room = match &reply.body {
        Some(Body::Room(room)) if room.kind == v1::RoomKind::Public as i32 => Some(room.clone()),
        _ => None,
    };
    cx.check(
        "ENC-5",
        room.is_some(),
        format!("CreateRoom with requestId as a JSON number and kind 1 (PUBLIC): got {}", show_frame(&reply)),
    );
    let Some(room) = room else { return Ok(()) };

    let text = format!(
        r#"{{"requestId":32003,"sendMessage":{{"room":{{"id":{}}},"text":"one","client_txn_id":"json-1"}}}}"#,
        room.room_id
    );
    conn.send_payload(text).await?;
    let reply = conn.reply(32_003).await?;
    cx.check(
        "ENC-5",
        matches!(&reply.body, Some(Body::Sent(sent)) if sent.room_id == room.room_id),
        format!("SendMessage with the room id as a JSON number and the key client_txn_id: got {}", show_frame(&reply)),
    );
    conn.send_message(room.room_id, "two", "json-2").await?;

    // The same page asked for in different spellings.
    let room_id = room.room_id;
    let spellings = [
        ("FORWARD by name", 32_010, r#""direction":"FORWARD","anchorSeq":"1""#),
        ("FORWARD as the number 1", 32_011, r#""direction":1,"anchor_seq":1"#),
        ("BACKWARD by name", 32_012, r#""direction":"BACKWARD""#),
        ("the unknown name SIDEWAYS", 32_013, r#""direction":"SIDEWAYS""#),
        ("no direction", 32_014, r#""anchorSeq":"0""#),
    ];
    let mut pages = BTreeMap::new();
    for (what, request_id, fields) in &spellings {
        let text = format!(r#"{{"requestId":"{request_id}","getHistory":{{"room":{{"id":"{room_id}"}},{fields}}}}}"#);
        conn.send_payload(text).await?;
        let reply = conn.reply(*request_id).await?;
        let seqs = match &reply.body {
            Some(Body::History(page)) => Some(page.events.iter().map(|e| e.seq).collect::<Vec<_>>()),
            _ => None,
        };
        cx.log().note(&format!("GetHistory with {what}: {}", show_frame(&reply)));
        pages.insert(*what, (seqs, show_frame(&reply)));
    }
    let seqs = |what: &str| pages.get(what).and_then(|(s, _)| s.clone());
    let shown = |what: &str| pages.get(what).map(|(_, s)| s.clone()).unwrap_or_default();
    cx.check(
        "ENC-5",
        seqs("FORWARD by name").is_some() && seqs("FORWARD as the number 1") == seqs("FORWARD by name"),
        format!(
            "direction 1 and anchor_seq 1 as numbers read like \"FORWARD\" and \"1\": {} vs {}",
            shown("FORWARD as the number 1"),
            shown("FORWARD by name")
        ),
    );
    cx.check(
        "ENC-5",
        seqs("BACKWARD by name").is_some() && seqs("the unknown name SIDEWAYS") == seqs("BACKWARD by name"),
        format!(
            "the unknown direction name SIDEWAYS reads as the zero value BACKWARD: {} vs {}",
            shown("the unknown name SIDEWAYS"),
            shown("BACKWARD by name")
        ),
    );
    cx.check(
        "ENC-5",
        seqs("BACKWARD by name").is_some() && seqs("no direction") == seqs("BACKWARD by name"),
        format!("an absent direction reads as BACKWARD: {} vs {}", shown("no direction"), shown("BACKWARD by name")),
    );

    conn.send_payload(r#"{"requestId":"32020","joinRoom":{"room":null}}"#.to_owned()).await?;
    let reply = conn.reply(32_020).await?;
    cx.check(
        "ENC-5",
        is_error_frame(&reply, ErrorCode::InvalidArgument),
        format!(
            "JoinRoom with \"room\":null (the default, no room): expected INVALID_ARGUMENT for the missing room, \
             got {}",
            show_frame(&reply)
        ),
    );
    Ok(())
}

async fn json_text(cx: Ctx) -> CaseResult {
    let mut conn = cx.connect("client").await?;
    let frame = v1::ClientFrame { request_id: 33_001, command: Some(Command::Hello(hello())) };
    let text = serde_json::to_string(&frame)?;
    conn.send_payload(format!(" \n\t{text}\r\n ")).await?;
    let reply = conn.reply(33_001).await?;
    cx.check(
        "ENC-6",
        matches!(reply.body, Some(Body::Welcome(_))),
        format!("a Hello object with whitespace around it: expected Welcome, got {}", show_frame(&reply)),
    );
    let samples = [
        ("two objects in one message", r#"{"requestId":"33002","ping":{}} {"requestId":"33003","ping":{}}"#),
        ("an array holding the object", r#"[{"requestId":"33004","ping":{}}]"#),
        ("a JSON string", r#""ping""#),
        ("an object followed by other text", r#"{"requestId":"33005","ping":{}} and more"#),
    ];
    for (what, text) in samples {
        conn.send_payload(text.to_owned()).await?;
        let answer = conn.next_answer().await?;
        cx.check_push_error("ENC-6", &answer, ErrorCode::BadFrame, what);
    }
    let after = conn.anything_within(Duration::from_millis(400)).await?;
    cx.check(
        "FRAME-6",
        after.is_empty(),
        format!("the undecodable messages were ignored (no Pong for any of them); then came {after:?}"),
    );
    cx.check_alive("FRAME-6", &mut conn, "after the BAD_FRAME pushes").await?;
    Ok(())
}
