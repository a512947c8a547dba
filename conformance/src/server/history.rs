//! §15 History, and the page limit of §17.

use confab_sdk::v1::{self, client_frame::Command, server_frame::Body};

use super::{
    Case, Conn, Ctx, Reply,
    conn::{QUIET, by_id, is_error, numbered},
    events::seqs,
    show::{show_events_brief, show_reply},
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::Wires,
};

const FEATURE: &str = "History";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "history/paging",
            FEATURE,
            "Pages backward and forward from anchors hold the right contiguous events, has_more, head_seq and epoch",
            &["HIST-2", "HIST-4", "HIST-5"],
            Wires::All,
            paging,
        ),
        Case::new(
            "history/limit",
            FEATURE,
            "A limit of 0 reads a page of max_history_page events; a larger limit is INVALID_ARGUMENT",
            &["HIST-3", "LIMIT-2"],
            Wires::All,
            limit,
        ),
        Case::new(
            "history/unknown-direction",
            FEATURE,
            "An unknown direction number is INVALID_ARGUMENT in binary; in JSON an unknown direction reads as BACKWARD",
            &["HIST-3", "ENC-5"],
            Wires::All,
            unknown_direction,
        ),
        Case::new(
            "history/visibility",
            FEATURE,
            "Public rooms are readable unjoined; private and direct rooms only by members (invitees NOT_A_MEMBER)",
            &["HIST-1"],
            Wires::All,
            visibility,
        ),
        Case::new(
            "history/page-budget",
            FEATURE,
            "A page of big messages is cut to half of max_outbound_queue_bytes, keeping the events nearest the anchor",
            &["HIST-4"],
            Wires::All,
            page_budget,
        ),
        Case::new(
            "history/no-subscribe",
            FEATURE,
            "Reading history neither subscribes to a room nor changes what is pushed",
            &["HIST-6"],
            Wires::All,
            no_subscribe,
        ),
    ]
}

/// `GetHistory` by room id with any direction number; the raw reply.
async fn get_history(conn: &mut Conn, room_id: u64, direction: i32, anchor_seq: u64, limit: u32) -> CaseResult<Reply> {
    let get = v1::GetHistory { room: Some(by_id(room_id)), direction, anchor_seq, limit };
    conn.request(Command::GetHistory(get)).await
}

/// A reply in a few words: a page's seqs, or what came instead.
fn show_page(reply: &Reply) -> String {
    match page(reply) {
        Some(p) => format!("a page of seqs {:?}", seqs(&p.events)),
        None => show_reply(reply),
    }
}

fn page(reply: &Reply) -> Option<&v1::HistoryPage> {
    match reply {
        Ok(Body::History(page)) => Some(page),
        _ => None,
    }
}

const BACKWARD: v1::HistoryDirection = v1::HistoryDirection::Backward;
const FORWARD: v1::HistoryDirection = v1::HistoryDirection::Forward;

fn direction_name(direction: v1::HistoryDirection) -> &'static str {
    direction.as_str_name()
}

/// The seqs `from..=to` (empty when `from > to`).
fn run(from: u64, to: u64) -> Vec<u64> {
    (from..=to).collect()
}

async fn paging(cx: Ctx) -> CaseResult {
    const MESSAGES: usize = 25;
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let id = room.room_id;
    ada.send_all(id, &numbered("page", MESSAGES)).await?;
    let head = room.head_seq + MESSAGES as u64;

    // (direction, anchor, limit) -> (first, last, has_more); first > last: empty.
    let table: [(v1::HistoryDirection, u64, u32, u64, u64, bool); 12] = [
        (BACKWARD, 0, 10, head - 9, head, true),
        (BACKWARD, head - 9, 10, head - 19, head - 10, true),
        (BACKWARD, head - 19, 10, 1, head - 20, false),
        (BACKWARD, 11, 10, 1, 10, false),
        (BACKWARD, 1, 10, 1, 0, false),
        (BACKWARD, head + 1000, 5, head - 4, head, true),
        (FORWARD, 0, 10, 1, 10, true),
        (FORWARD, 10, 10, 11, 20, true),
        (FORWARD, 20, 10, 21, head, false),
        (FORWARD, head - 10, 10, head - 9, head, false),
        (FORWARD, head, 10, 1, 0, false),
        (FORWARD, head + 1000, 10, 1, 0, false),
    ];
    for (direction, anchor, limit, first, last, more) in table {
        let what = format!("{} anchor {anchor} limit {limit}", direction_name(direction));
        let page = ada.history(id, direction, anchor, limit).await?;
        let got = seqs(&page.events);
        let want = run(first, last);
        cx.check("HIST-2", got == want, format!("{what}: seqs {want:?} (head {head}); got {got:?}"));
        cx.check("HIST-4", page.has_more == more, format!("{what}: has_more {more}; got {}", page.has_more));
        cx.check(
            "HIST-4",
            page.head_seq == head && page.epoch == room.epoch && page.room_id == id,
            format!(
                "{what}: room {id}, epoch {}, head_seq {head}; got room {}, epoch {}, head_seq {}",
                room.epoch, page.room_id, page.epoch, page.head_seq
            ),
        );
    }

    // Walking both ways with the anchors HIST-5 gives reads the log once.
    let mut backward: Vec<v1::RoomEvent> = Vec::new();
    let mut anchor = 0;
    for _ in 0..10 {
        let page = ada.history(id, BACKWARD, anchor, 7).await?;
        let Some(first) = page.events.first() else { break };
        anchor = first.seq;
        let more = page.has_more;
        backward.splice(0..0, page.events);
        if !more {
            break;
        }
    }
    let mut forward: Vec<v1::RoomEvent> = Vec::new();
    let mut anchor = 0;
    for _ in 0..10 {
        let page = ada.history(id, FORWARD, anchor, 7).await?;
        let Some(last) = page.events.last() else { break };
        anchor = last.seq;
        let more = page.has_more;
        forward.extend(page.events);
        if !more {
            break;
        }
    }
    let (back_seqs, fore_seqs) = (seqs(&backward), seqs(&forward));
    cx.check(
        "HIST-5",
        back_seqs == run(1, head) && fore_seqs == run(1, head),
        format!(
            "pages of 7 chained by first seq (BACKWARD) and last seq (FORWARD) cover 1..={head} once; got {back_seqs:?} and {fore_seqs:?}"
        ),
    );
    let same = backward == forward;
    cx.check(
        "HIST-2",
        same,
        format!(
            "the same events, field for field, whichever way they are read{}",
            if same { "" } else { ": they differ" }
        ),
    );
    Ok(())
}

async fn limit(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let max = ada.limits().max_history_page;
    if max == 0 || max > 2000 {
        return Err(Stop::Skipped(format!("max_history_page {max}: a room that large is not built here")));
    }
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let id = room.room_id;
    // More events than one page: the two of creation and these.
    ada.send_all(id, &numbered("fill", max as usize + 3)).await?;
    let head = room.head_seq + u64::from(max) + 3;

    for direction in [BACKWARD, FORWARD] {
        let name = direction_name(direction);
        let page = ada.history(id, direction, 0, 0).await?;
        let got = seqs(&page.events);
        let want = if direction == BACKWARD { run(head - u64::from(max) + 1, head) } else { run(1, u64::from(max)) };
        cx.check(
            "HIST-3",
            got == want && page.has_more,
            format!(
                "{name} with limit 0 returns max_history_page ({max}) events, {}..={}, and has_more; got {} events ({:?}..{:?}), has_more {}",
                want.first().unwrap_or(&0),
                want.last().unwrap_or(&0),
                got.len(),
                got.first(),
                got.last(),
                page.has_more
            ),
        );
        let page = ada.history(id, direction, 0, max).await?;
        cx.check(
            "HIST-3",
            seqs(&page.events) == want,
            format!("{name} with limit {max} (the maximum) returns {max} events; got {}", page.events.len()),
        );
        let reply = get_history(&mut ada, id, direction as i32, 0, max + 1).await?;
        cx.check_error("LIMIT-2", &reply, v1::ErrorCode::InvalidArgument);
    }
    let reply = get_history(&mut ada, id, BACKWARD as i32, 0, u32::MAX).await?;
    cx.check_error("HIST-3", &reply, v1::ErrorCode::InvalidArgument);
    Ok(())
}

async fn unknown_direction(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let id = room.room_id;
    ada.send_all(id, &numbered("dir", 4)).await?;
    let backward = ada.history(id, BACKWARD, 0, 3).await?;

    if !cx.wire().is_json() {
        for number in [2, 7, -1] {
            let reply = get_history(&mut ada, id, number, 0, 3).await?;
            cx.check(
                "HIST-3",
                is_error(&reply, v1::ErrorCode::InvalidArgument),
                format!("direction {number} in binary is INVALID_ARGUMENT; got {}", show_reply(&reply)),
            );
        }
        return Ok(());
    }
    // JSON: written by hand, since a JSON encoder writes only known names.
    for (n, direction) in ["7", "\"SIDEWAYS\""].into_iter().enumerate() {
        let request_id = 1_000_001 + n as u64;
        let text = format!(
            r#"{{"requestId":"{request_id}","getHistory":{{"room":{{"id":"{id}"}},"direction":{direction},"limit":3}}}}"#
        );
        ada.send_ws_text(text).await?;
        let reply = ada.reply_of(request_id).await?;
        let held = page(&reply).is_some_and(|p| p.events == backward.events);
        cx.check(
            "ENC-5",
            held,
            format!(
                "\"direction\":{direction} reads as BACKWARD, the newest 3 events {:?}; got {}",
                seqs(&backward.events),
                show_page(&reply)
            ),
        );
    }
    Ok(())
}

async fn visibility(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let (mut dee, dee_user) = cx.user("dee").await?;
    let public = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    ada.invite(by_id(private.room_id), &bob_user.name).await?;
    let direct = ada.open_direct(&dee_user.name).await?;
    for (n, room) in [&public, &private, &direct].into_iter().enumerate() {
        ada.send_message(room.room_id, "secret or not", &format!("vis-{n}")).await?;
    }

    let reply = get_history(&mut cy, public.room_id, BACKWARD as i32, 0, 0).await?;
    let readable = page(&reply).is_some_and(|p| p.events.len() as u64 == public.head_seq + 1);
    cx.check(
        "HIST-1",
        readable,
        format!(
            "a user who never joined reads a PUBLIC room's {} events; got {}",
            public.head_seq + 1,
            show_page(&reply)
        ),
    );
    let reply = get_history(&mut bob, private.room_id, BACKWARD as i32, 0, 0).await?;
    cx.check_error("HIST-1", &reply, v1::ErrorCode::NotAMember);
    let reply = get_history(&mut cy, private.room_id, BACKWARD as i32, 0, 0).await?;
    cx.check_error("HIST-1", &reply, v1::ErrorCode::RoomNotFound);
    let reply = get_history(&mut cy, direct.room_id, BACKWARD as i32, 0, 0).await?;
    cx.check_error("HIST-1", &reply, v1::ErrorCode::RoomNotFound);
    let reply = get_history(&mut cy, u64::MAX - 11, BACKWARD as i32, 0, 0).await?;
    cx.check_error("HIST-1", &reply, v1::ErrorCode::RoomNotFound);

    let reply = get_history(&mut dee, direct.room_id, BACKWARD as i32, 0, 0).await?;
    cx.check("HIST-1", page(&reply).is_some(), format!("the peer reads the DIRECT room: {}", show_page(&reply)));
    bob.join(by_id(private.room_id)).await?;
    let reply = get_history(&mut bob, private.room_id, BACKWARD as i32, 0, 0).await?;
    cx.check(
        "HIST-1",
        page(&reply).is_some(),
        format!("once joined, the invitee reads the PRIVATE room: {}", show_page(&reply)),
    );
    bob.leave(by_id(private.room_id)).await?;
    let reply = get_history(&mut bob, private.room_id, BACKWARD as i32, 0, 0).await?;
    cx.check_error("HIST-1", &reply, v1::ErrorCode::RoomNotFound);
    Ok(())
}

/// The size of `event` as this wire encodes it.
fn encoded_len(event: &v1::RoomEvent, json: bool) -> usize {
    if json { serde_json::to_vec(event).map_or(0, |j| j.len()) } else { prost::Message::encoded_len(event) }
}

async fn page_budget(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let limits = ada.limits();
    let budget = limits.max_outbound_queue_bytes / 2;
    // The biggest text that fits in a frame, with room for the envelope.
    let size = (limits.max_message_bytes as usize).min((limits.max_frame_bytes as usize).saturating_sub(512));
    let needed = budget / size as u64 + 3;
    let max_page = u64::from(limits.max_history_page);
    if size == 0 || needed > max_page || needed > 1000 {
        cx.note(format!(
            "a page of max_history_page ({max_page}) messages of {size} bytes cannot exceed half of max_outbound_queue_bytes ({budget}); not tried"
        ));
        return Ok(());
    }
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let id = room.room_id;
    let text = "x".repeat(size);
    let sends: Vec<(String, String)> = (0..needed).map(|i| (text.clone(), format!("big-{i}"))).collect();
    ada.send_all(id, &sends).await?;
    let head = room.head_seq + needed;
    let json = cx.wire().is_json();

    for (direction, anchor) in [(BACKWARD, 0), (FORWARD, room.head_seq)] {
        let name = direction_name(direction);
        let page = ada.history(id, direction, anchor, 0).await?;
        let got = seqs(&page.events);
        let bytes: usize = page.events.iter().map(|e| encoded_len(e, json)).sum();
        let n = got.len() as u64;
        // The events nearest the anchor, contiguous.
        let want = if direction == BACKWARD { run(head + 1 - n, head) } else { run(anchor + 1, anchor + n) };
        cx.check(
            "HIST-4",
            n >= 1 && (n == 1 || bytes as u64 <= budget) && n < needed,
            format!(
                "{name} limit 0 over {needed} messages of {size} bytes: at least one event, fewer than all, at most {budget} bytes (half of max_outbound_queue_bytes) unless one; got {n} events of {bytes} bytes"
            ),
        );
        cx.check(
            "HIST-4",
            got == want,
            format!("{name}: the events nearest anchor {anchor}, ascending: {want:?}; got {got:?}"),
        );
        cx.check("HIST-4", page.has_more, format!("{name}: has_more, since the page was cut short"));
    }
    Ok(())
}

async fn no_subscribe(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let unjoined = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let shared = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    bob.join(by_id(shared.room_id)).await?;
    cy.join(by_id(shared.room_id)).await?;
    bob.go_live().await?;

    // Bob reads a room he is not in, and twice the one he follows; Cy, who
    // has not resumed, reads the room she is in.
    bob.history(unjoined.room_id, BACKWARD, 0, 0).await?;
    bob.history(shared.room_id, BACKWARD, 0, 0).await?;
    bob.history(shared.room_id, FORWARD, 0, 0).await?;
    cy.history(shared.room_id, BACKWARD, 0, 0).await?;
    ada.send_message(unjoined.room_id, "not for bob", "ns-1").await?;
    let sent = ada.send_message(shared.room_id, "for bob once", "ns-2").await?;

    let events = bob.events_until_quiet(QUIET).await?;
    cx.check(
        "HIST-6",
        seqs(&events) == [sent.seq] && events.iter().all(|e| e.room_id == shared.room_id),
        format!(
            "the follower gets the one new message of the room it follows (seq {}) and nothing of the room it only read; got {}",
            sent.seq,
            show_events_brief(&events)
        ),
    );
    let events = cy.events_until_quiet(QUIET).await?;
    cx.check(
        "HIST-6",
        events.is_empty(),
        format!("a session that only read history (no Resume) gets no events; got {}", show_events_brief(&events)),
    );
    Ok(())
}
