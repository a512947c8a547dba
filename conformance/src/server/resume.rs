//! §16 Resumption: no events before `Resume`, the four outcomes, replay
//! before the reply, delivery after joins and leaves, slow consumers, and
//! exactly-once delivery across dropped connections.

use std::time::Duration;

use confab_sdk::{
    raw::RawReceived,
    v1::{self, client_frame::Command, room_event::Kind, server_frame::Body},
};
use rand::Rng as _;

use super::{
    Case, Conn, Ctx,
    conn::{QUIET, by_id, numbered},
    events::{is_run, kind, seqs, texts},
    show::show_events_brief,
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::{Wire, Wires},
};

const FEATURE: &str = "Resumption";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "resume/nothing-before",
            FEATURE,
            "No room event is pushed to a session before it sends Resume",
            &["RESUME-1", "RESUME-2"],
            Wires::All,
            nothing_before,
        ),
        Case::new(
            "resume/live",
            FEATURE,
            "Resume without positions answers LIVE for each joined room, none for invitations or rooms left",
            &["RESUME-2", "RESUME-5"],
            Wires::All,
            live,
        ),
        Case::new(
            "resume/replayed",
            FEATURE,
            "Resume from a position replays every later event, in order, before the ResumeResult that counts them",
            &["RESUME-2", "RESUME-5"],
            Wires::All,
            replayed,
        ),
        Case::new(
            "resume/reset",
            FEATURE,
            "A position beyond the head or in another epoch is RESET: nothing replayed, live events from head_seq on",
            &["RESUME-2", "RESUME-3"],
            Wires::All,
            reset,
        ),
        Case::new(
            "resume/reset-too-far",
            FEATURE,
            "A position more than max_resume_events behind is RESET; exactly max_resume_events behind is replayed",
            &["RESUME-2"],
            Wires::Once,
            reset_too_far,
        ),
        Case::new(
            "resume/reset-too-big",
            FEATURE,
            "A gap whose events would fill more than half of max_outbound_queue_bytes is RESET, not replayed in part",
            &["RESUME-2", "RESUME-3"],
            Wires::All,
            reset_too_big,
        ),
        Case::new(
            "resume/gone",
            FEATURE,
            "Positions in rooms left, only invited to, never joined or not existing are GONE with epoch and head 0",
            &["RESUME-4", "RESUME-5"],
            Wires::All,
            gone,
        ),
        Case::new(
            "resume/after-drop",
            FEATURE,
            "After a dropped connection, resuming from the last event seen delivers the missed events, then live ones",
            &["RESUME-2", "RESUME-10"],
            Wires::All,
            after_drop,
        ),
        Case::new(
            "resume/exactly-once",
            FEATURE,
            "A follower that keeps dropping and resuming while messages flow sees every event exactly once, in order",
            &["RESUME-2", "RESUME-10"],
            Wires::All,
            exactly_once,
        ),
        Case::new(
            "resume/joined-later",
            FEATURE,
            "Rooms joined after Resume are pushed from the user's own join on; invitations are pushed to the invitee",
            &["RESUME-6"],
            Wires::All,
            joined_later,
        ),
        Case::new(
            "resume/again",
            FEATURE,
            "A second Resume on the same session replaces its delivery: replays again, then each event once",
            &["RESUME-7"],
            Wires::All,
            again,
        ),
        Case::new(
            "resume/leave-logout",
            FEATURE,
            "After LeaveRoom nothing more of that room is pushed; after Logout nothing at all until a new Resume",
            &["RESUME-8", "STATE-3"],
            Wires::All,
            leave_logout,
        ),
        Case::new(
            "resume/slow-consumer",
            FEATURE,
            "A session that stops reading is closed with SLOW_CONSUMER, after contiguous events and never a gap",
            &["RESUME-9", "CLOSE-1"],
            Wires::All,
            slow_consumer,
        ),
    ]
}

// --- helpers ---

fn position(room_id: u64, epoch: u64, seq: u64) -> v1::RoomPosition {
    v1::RoomPosition { room_id, epoch, seq }
}

fn outcome_name(outcome: i32) -> String {
    v1::ResumeOutcome::try_from(outcome).map_or_else(|_| format!("outcome {outcome}"), |o| o.as_str_name().into())
}

fn show_status(status: &v1::RoomResumeStatus) -> String {
    format!(
        "room {} {} epoch {} head_seq {} replayed {}",
        status.room_id,
        outcome_name(status.outcome),
        status.epoch,
        status.head_seq,
        status.replayed
    )
}

fn show_statuses(result: &v1::ResumeResult) -> String {
    if result.rooms.is_empty() {
        return "no statuses".into();
    }
    result.rooms.iter().map(show_status).collect::<Vec<_>>().join("; ")
}

/// The statuses for `room_id` (a correct server gives exactly one).
fn statuses_of(result: &v1::ResumeResult, room_id: u64) -> Vec<&v1::RoomResumeStatus> {
    result.rooms.iter().filter(|s| s.room_id == room_id).collect()
}

/// Checks that `result` has exactly one status for `room_id`, with
/// `outcome`; returns it.
fn one_status<'a>(
    cx: &Ctx,
    requirement: &str,
    result: &'a v1::ResumeResult,
    room_id: u64,
    outcome: v1::ResumeOutcome,
) -> Option<&'a v1::RoomResumeStatus> {
    let found = statuses_of(result, room_id);
    let held = found.len() == 1 && found[0].outcome == outcome as i32;
    cx.check(
        requirement,
        held,
        format!("one status for room {room_id}, {}; got {}", outcome.as_str_name(), show_statuses(result)),
    );
    found.first().copied()
}

/// The head of a room now, read with `GetHistory`.
async fn head_of(conn: &mut Conn, room_id: u64) -> CaseResult<(u64, u64)> {
    let page = conn.history(room_id, v1::HistoryDirection::Backward, 0, 1).await?;
    Ok((page.epoch, page.head_seq))
}

// --- cases ---

async fn nothing_before(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    ada.join(by_id(room.room_id)).await?;
    let mut ada2 = cx.reconnect(&ada_user, "ada-2").await?;
    bob.send_all(room.room_id, &numbered("early", 2)).await?;
    // The joining user's own session, and a second session, both unresumed.
    for (who, conn) in [("the session that joined", &mut ada), ("another session", &mut ada2)] {
        let early = conn.events_until_quiet(QUIET).await?;
        cx.check(
            "RESUME-1",
            early.is_empty(),
            format!(
                "{who} gets no events before Resume although messages were sent; got {}",
                show_events_brief(&early)
            ),
        );
    }
    let result = ada.go_live().await?;
    one_status(&cx, "RESUME-2", &result, room.room_id, v1::ResumeOutcome::Live);
    let sent = bob.send_message(room.room_id, "now", "now").await?;
    let events = ada.events(1).await?;
    cx.check(
        "RESUME-2",
        seqs(&events) == [sent.seq],
        format!("after Resume, the next message (seq {}) is pushed; got {}", sent.seq, show_events_brief(&events)),
    );
    Ok(())
}

async fn live(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let own = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let joined = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    ada.join(by_id(joined.room_id)).await?;
    let invited = cx.new_room(&mut bob, v1::RoomKind::Private).await?;
    bob.invite(by_id(invited.room_id), &ada_user.name).await?;
    let left = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    ada.join(by_id(left.room_id)).await?;
    ada.leave(by_id(left.room_id)).await?;
    bob.send_all(joined.room_id, &numbered("before", 3)).await?;

    let result = ada.go_live().await?;
    let ids: Vec<u64> = result.rooms.iter().map(|s| s.room_id).collect();
    let mut want = vec![own.room_id, joined.room_id];
    want.sort_unstable();
    let mut got = ids.clone();
    got.sort_unstable();
    cx.check(
        "RESUME-5",
        got == want,
        format!(
            "one status for each of the two joined rooms {want:?}, none for the invitation ({}) or the room left ({}); got {}",
            invited.room_id,
            left.room_id,
            show_statuses(&result)
        ),
    );
    for room in [&own, &joined] {
        let (epoch, head) = head_of(&mut bob, room.room_id).await?;
        if let Some(status) = one_status(&cx, "RESUME-2", &result, room.room_id, v1::ResumeOutcome::Live) {
            cx.check(
                "RESUME-2",
                status.epoch == epoch && status.head_seq == head && status.replayed == 0,
                format!("LIVE with epoch {epoch}, head_seq {head}, replayed 0; got {}", show_status(status)),
            );
        }
    }
    let pushed = ada.events_until_quiet(QUIET).await?;
    cx.check("RESUME-2", pushed.is_empty(), format!("LIVE replays nothing; got {}", show_events_brief(&pushed)));
    let sent = bob.send_message(joined.room_id, "live one", "live").await?;
    let events = ada.events(1).await?;
    cx.check(
        "RESUME-2",
        seqs(&events) == [sent.seq],
        format!("live events with seq > head_seq follow: seq {}; got {}", sent.seq, show_events_brief(&events)),
    );
    Ok(())
}

async fn replayed(cx: Ctx) -> CaseResult {
    const MISSED: usize = 5;
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let seen = ada.join(by_id(room.room_id)).await?;
    let quiet_room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    bob.send_all(room.room_id, &numbered("missed", MISSED)).await?;
    let head = seen.head_seq + MISSED as u64;

    let mut ada2 = cx.reconnect(&ada_user, "ada-2").await?;
    let positions = vec![
        position(room.room_id, seen.epoch, seen.head_seq),
        position(quiet_room.room_id, quiet_room.epoch, quiet_room.head_seq),
    ];
    let (before, result) = ada2.resume_collect(positions).await?;
    let replay: Vec<v1::RoomEvent> = before.iter().filter(|e| e.seq <= head).cloned().collect();
    cx.check(
        "RESUME-2",
        is_run(&seqs(&replay), seen.head_seq + 1, head) && replay.iter().all(|e| e.room_id == room.room_id),
        format!(
            "events {}..={head} of room {} pushed in order before the ResumeResult; got {}",
            seen.head_seq + 1,
            room.room_id,
            show_events_brief(&before)
        ),
    );
    cx.check(
        "RESUME-2",
        texts(&replay) == (0..MISSED).map(|i| format!("missed {i}")).collect::<Vec<_>>(),
        format!("the replayed events are the missed messages; got {:?}", texts(&replay)),
    );
    if let Some(status) = one_status(&cx, "RESUME-5", &result, room.room_id, v1::ResumeOutcome::Replayed) {
        cx.check(
            "RESUME-2",
            status.replayed == MISSED as u64 && status.head_seq == head && status.epoch == seen.epoch,
            format!("REPLAYED, replayed {MISSED}, head_seq {head}, epoch {}; got {}", seen.epoch, show_status(status)),
        );
    }
    if let Some(status) = one_status(&cx, "RESUME-5", &result, quiet_room.room_id, v1::ResumeOutcome::Replayed) {
        cx.check(
            "RESUME-2",
            status.replayed == 0 && status.head_seq == quiet_room.head_seq,
            format!(
                "a position at the head is REPLAYED with nothing to replay (head_seq {}); got {}",
                quiet_room.head_seq,
                show_status(status)
            ),
        );
    }
    let sent = bob.send_message(room.room_id, "after", "after").await?;
    let live = ada2.events(1).await?;
    cx.check(
        "RESUME-2",
        seqs(&live) == [sent.seq],
        format!("live events follow the replay: seq {} once; got {}", sent.seq, show_events_brief(&live)),
    );
    Ok(())
}

async fn reset(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let ahead = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let other_epoch = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    ada.join(by_id(ahead.room_id)).await?;
    ada.join(by_id(other_epoch.room_id)).await?;
    bob.send_all(ahead.room_id, &numbered("a", 3)).await?;
    bob.send_all(other_epoch.room_id, &numbered("e", 3)).await?;
    let (epoch_a, head_a) = head_of(&mut bob, ahead.room_id).await?;
    let (epoch_e, head_e) = head_of(&mut bob, other_epoch.room_id).await?;

    let mut ada2 = cx.reconnect(&ada_user, "ada-2").await?;
    let positions =
        vec![position(ahead.room_id, epoch_a, head_a + 5), position(other_epoch.room_id, epoch_e + 1, head_e - 2)];
    let (before, result) = ada2.resume_collect(positions).await?;
    for (what, room_id, epoch, head) in [
        ("beyond the head", ahead.room_id, epoch_a, head_a),
        ("in another epoch", other_epoch.room_id, epoch_e, head_e),
    ] {
        if let Some(status) = one_status(&cx, "RESUME-2", &result, room_id, v1::ResumeOutcome::Reset) {
            cx.check(
                "RESUME-2",
                status.epoch == epoch && status.head_seq == head && status.replayed == 0,
                format!(
                    "a position {what}: RESET with epoch {epoch}, head_seq {head}, replayed 0; got {}",
                    show_status(status)
                ),
            );
        }
        let replayed: Vec<&v1::RoomEvent> = before.iter().filter(|e| e.room_id == room_id && e.seq <= head).collect();
        cx.check(
            "RESUME-2",
            replayed.is_empty(),
            format!("nothing of room {room_id} is replayed after RESET; got {}", show_events_brief(&before)),
        );
    }
    // Reload as RESUME-3 says, then live events continue from head_seq.
    let page = ada2.history(ahead.room_id, v1::HistoryDirection::Backward, head_a + 1, 0).await?;
    cx.check(
        "RESUME-3",
        page.events.last().map(|e| e.seq) == Some(head_a) && page.head_seq == head_a,
        format!("GetHistory BACKWARD from head_seq + 1 reloads the room up to {head_a}; got {:?}", seqs(&page.events)),
    );
    let sent = bob.send_message(ahead.room_id, "after reset", "after").await?;
    let live = ada2.events(1).await?;
    cx.check(
        "RESUME-2",
        seqs(&live) == [sent.seq] && sent.seq == head_a + 1,
        format!(
            "after RESET, live events with seq > head_seq follow: seq {}; got {}",
            head_a + 1,
            show_events_brief(&live)
        ),
    );
    Ok(())
}

/// The size of a pushed event frame in this wire's encoding.
fn push_len(event: &v1::RoomEvent, json: bool) -> usize {
    let frame = v1::ServerFrame { request_id: 0, body: Some(Body::Event(event.clone())) };
    if json { serde_json::to_vec(&frame).map_or(0, |j| j.len()) } else { prost::Message::encoded_len(&frame) }
}

async fn reset_too_far(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let limits = ada.limits();
    let max = u64::from(limits.max_resume_events);
    if max == 0 || max > 20_000 {
        return Err(Stop::Skipped(format!("max_resume_events {max}: too many messages to send here")));
    }
    let room = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let seen = ada.join(by_id(room.room_id)).await?;
    // max + 1 messages after the position `seen`: one too many to replay.
    let flood: Vec<(String, String)> = (0..=max).map(|i| (format!("f{i}"), format!("f-{i}"))).collect();
    for chunk in flood.chunks(500) {
        bob.send_all(room.room_id, chunk).await?;
    }
    let head = seen.head_seq + max + 1;

    let mut ada2 = cx.reconnect(&ada_user, "ada-far").await?;
    let (before, result) = ada2.resume_collect(vec![position(room.room_id, seen.epoch, seen.head_seq)]).await?;
    if let Some(status) = one_status(&cx, "RESUME-2", &result, room.room_id, v1::ResumeOutcome::Reset) {
        cx.check(
            "RESUME-2",
            status.head_seq == head && status.replayed == 0,
            format!("{} events behind: RESET, head_seq {head}, nothing replayed; got {}", max + 1, show_status(status)),
        );
    }
    let replayed: Vec<&v1::RoomEvent> = before.iter().filter(|e| e.seq <= head).collect();
    cx.check(
        "RESUME-2",
        replayed.is_empty(),
        format!("nothing is replayed; got {} events before the ResumeResult", replayed.len()),
    );

    // Exactly max behind: replayed in full, unless those events would fill
    // more than half of the queue (then RESET is right too).
    let page = ada2.history(room.room_id, v1::HistoryDirection::Backward, 0, 0).await?;
    let json = cx.wire().is_json();
    let largest = page.events.iter().map(|e| push_len(e, json)).max().unwrap_or(0) as u64;
    let smallest = page.events.iter().map(|e| push_len(e, json)).min().unwrap_or(0) as u64;
    let budget = limits.max_outbound_queue_bytes / 2;
    let mut ada3 = cx.reconnect(&ada_user, "ada-max").await?;
    let (before, result) = ada3.resume_collect(vec![position(room.room_id, seen.epoch, seen.head_seq + 1)]).await?;
    let status = statuses_of(&result, room.room_id);
    let replayed: Vec<u64> = before.iter().filter(|e| e.seq <= head).map(|e| e.seq).collect();
    if max * largest <= budget {
        let held = status.len() == 1
            && status[0].outcome == v1::ResumeOutcome::Replayed as i32
            && status[0].replayed == max
            && is_run(&replayed, seen.head_seq + 2, head);
        cx.check(
            "RESUME-2",
            held,
            format!(
                "exactly max_resume_events ({max}) behind, events of at most {largest} bytes: REPLAYED with all {max}; got {} and {} events replayed",
                show_statuses(&result),
                replayed.len()
            ),
        );
    } else if max * smallest > budget {
        let held = status.len() == 1 && status[0].outcome == v1::ResumeOutcome::Reset as i32 && replayed.is_empty();
        cx.check(
            "RESUME-2",
            held,
            format!(
                "{max} events of at least {smallest} bytes fill more than half of max_outbound_queue_bytes: RESET; got {}",
                show_statuses(&result)
            ),
        );
    } else {
        cx.log().note("max_resume_events events are near half of the queue in this encoding; boundary not judged");
    }
    Ok(())
}

async fn reset_too_big(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let limits = ada.limits();
    let budget = limits.max_outbound_queue_bytes / 2;
    let size = (limits.max_message_bytes as usize).min((limits.max_frame_bytes as usize).saturating_sub(512));
    let count = budget / size.max(1) as u64 + 2;
    if size == 0 || count > u64::from(limits.max_resume_events) || count > 1000 {
        cx.note(format!(
            "max_resume_events messages of {size} bytes fit in half of max_outbound_queue_bytes ({budget}); not tried"
        ));
        return Ok(());
    }
    let room = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let seen = ada.join(by_id(room.room_id)).await?;
    let text = "z".repeat(size);
    let sends: Vec<(String, String)> = (0..count).map(|i| (text.clone(), format!("big-{i}"))).collect();
    bob.send_all(room.room_id, &sends).await?;
    let head = seen.head_seq + count;

    let mut ada2 = cx.reconnect(&ada_user, "ada-2").await?;
    let (before, result) = ada2.resume_collect(vec![position(room.room_id, seen.epoch, seen.head_seq)]).await?;
    if let Some(status) = one_status(&cx, "RESUME-2", &result, room.room_id, v1::ResumeOutcome::Reset) {
        cx.check(
            "RESUME-2",
            status.head_seq == head && status.replayed == 0,
            format!(
                "{count} missed messages of {size} bytes (over {budget} bytes): RESET at head_seq {head}; got {}",
                show_status(status)
            ),
        );
    }
    let replayed: Vec<u64> = before.iter().filter(|e| e.seq <= head).map(|e| e.seq).collect();
    cx.check(
        "RESUME-3",
        replayed.is_empty(),
        format!("no part of the gap is replayed; got seqs {replayed:?} before the ResumeResult"),
    );
    let sent = bob.send_message(room.room_id, "small", "small").await?;
    let live = ada2.events(1).await?;
    cx.check(
        "RESUME-2",
        seqs(&live) == [sent.seq],
        format!("live events follow the RESET: seq {}; got {}", sent.seq, show_events_brief(&live)),
    );
    Ok(())
}

async fn gone(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let kept = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let left = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let seen = ada.join(by_id(left.room_id)).await?;
    ada.leave(by_id(left.room_id)).await?;
    let invited = cx.new_room(&mut bob, v1::RoomKind::Private).await?;
    bob.invite(by_id(invited.room_id), &ada_user.name).await?;
    let never = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let missing = u64::MAX - 3;

    let positions = vec![
        position(kept.room_id, kept.epoch, kept.head_seq),
        position(left.room_id, seen.epoch, seen.head_seq),
        position(invited.room_id, invited.epoch, invited.head_seq),
        position(never.room_id, never.epoch, never.head_seq),
        position(missing, 1, 1),
    ];
    let (before, result) = ada.resume_collect(positions).await?;
    for (what, room_id) in [
        ("a room left", left.room_id),
        ("a room only invited to", invited.room_id),
        ("a public room never joined", never.room_id),
        ("a room that does not exist", missing),
    ] {
        if let Some(status) = one_status(&cx, "RESUME-4", &result, room_id, v1::ResumeOutcome::Gone) {
            cx.check(
                "RESUME-4",
                status.epoch == 0 && status.head_seq == 0,
                format!("{what}: GONE with epoch 0 and head_seq 0; got {}", show_status(status)),
            );
        }
    }
    one_status(&cx, "RESUME-5", &result, kept.room_id, v1::ResumeOutcome::Replayed);
    cx.check(
        "RESUME-5",
        result.rooms.len() == 5,
        format!("five statuses: the joined room and the four GONE positions; got {}", show_statuses(&result)),
    );
    cx.check("RESUME-4", before.is_empty(), format!("nothing is replayed; got {}", show_events_brief(&before)));
    Ok(())
}

async fn after_drop(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    ada.join(by_id(room.room_id)).await?;
    ada.go_live().await?;
    bob.send_all(room.room_id, &numbered("seen", 3)).await?;
    let seen = ada.events(3).await?;
    let last = seen.last().cloned().ok_or_else(|| Stop::Failed("the follower received nothing".into()))?;
    ada.close().await;

    bob.send_all(room.room_id, &numbered("missed", 5)).await?;
    let mut back = cx.reconnect(&ada_user, "ada-back").await?;
    let (before, result) = back.resume_collect(vec![position(room.room_id, last.epoch, last.seq)]).await?;
    if let Some(status) = one_status(&cx, "RESUME-2", &result, room.room_id, v1::ResumeOutcome::Replayed) {
        cx.check(
            "RESUME-2",
            status.replayed == 5 && status.head_seq == last.seq + 5,
            format!("five events replayed up to head_seq {}; got {}", last.seq + 5, show_status(status)),
        );
    }
    bob.send_all(room.room_id, &numbered("live", 3)).await?;
    let mut after = before;
    let more = back.events(8usize.saturating_sub(after.len())).await?;
    after.extend(more);
    let got = seqs(&after);
    cx.check(
        "RESUME-10",
        is_run(&got, last.seq + 1, last.seq + 8),
        format!(
            "resuming after seq {}: the five missed events, then three live ones, seqs {}..={} once each; got {got:?}",
            last.seq,
            last.seq + 1,
            last.seq + 8
        ),
    );
    let want: Vec<String> =
        numbered("missed", 5).into_iter().chain(numbered("live", 3)).map(|(text, _)| text).collect();
    cx.check("RESUME-10", texts(&after) == want, format!("in order: {want:?}; got {:?}", texts(&after)));
    Ok(())
}

async fn exactly_once(cx: Ctx) -> CaseResult {
    const MESSAGES: usize = 60;
    const ROUNDS: usize = 5;
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let start = ada.join(by_id(room.room_id)).await?;
    ada.close().await;
    let final_head = start.head_seq + MESSAGES as u64;

    let sender = async {
        for (text, txn) in numbered("flow", MESSAGES) {
            bob.send_message(room.room_id, &text, &txn).await?;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        CaseResult::Ok(())
    };
    let follower = async {
        let mut seen: Vec<v1::RoomEvent> = Vec::new();
        let mut statuses = Vec::new();
        let mut last = (start.epoch, start.head_seq);
        for round in 0..=ROUNDS {
            let mut conn = cx.reconnect(&ada_user, &format!("ada-{round}")).await?;
            let (before, result) = conn.resume_collect(vec![position(room.room_id, last.0, last.1)]).await?;
            statuses.extend(result.rooms.iter().map(show_status));
            let mut got = before;
            // Read a few events, then drop; the last round reads to the end.
            let take = if round == ROUNDS { usize::MAX } else { rand::rng().random_range(3..12) };
            while got.len() < take && got.last().map_or(last.1, |e| e.seq) < final_head {
                match conn.event_within(Duration::from_secs(5)).await? {
                    Some(event) => got.push(event),
                    None => break,
                }
            }
            if let Some(event) = got.last() {
                last = (event.epoch, event.seq);
            }
            seen.extend(got);
            conn.close().await;
        }
        CaseResult::Ok((seen, statuses))
    };
    let (sent, followed) = tokio::join!(sender, follower);
    sent?;
    let (seen, statuses) = followed?;
    cx.log().note(&format!("statuses: {}", statuses.join("; ")));
    let got = seqs(&seen);
    cx.check(
        "RESUME-10",
        is_run(&got, start.head_seq + 1, final_head),
        format!(
            "across {ROUNDS} drops and resumes, every event {}..={final_head} once, in order; got {got:?}",
            start.head_seq + 1
        ),
    );
    cx.check(
        "RESUME-2",
        statuses.iter().all(|s| s.contains("REPLAYED")),
        format!("every resume from a recent position is REPLAYED; got {}", statuses.join("; ")),
    );
    Ok(())
}

async fn joined_later(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    ada.go_live().await?;
    bob.go_live().await?;

    // A room ada creates: from its RoomCreated on.
    let own = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let events = ada.events(2).await?;
    let kinds: Vec<(u64, &str)> = events.iter().map(|e| (e.seq, kind(e).name())).collect();
    cx.check(
        "RESUME-6",
        events.iter().all(|e| e.room_id == own.room_id)
            && kinds == [(1, "RoomCreated"), (2, "MemberJoined")]
            && events.iter().all(|e| e.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)),
        format!("the creator gets RoomCreated (1) and its MemberJoined (2); got {}", show_events_brief(&events)),
    );

    // A room with history ada joins: from her MemberJoined on.
    let public = cx.new_room(&mut cy, v1::RoomKind::Public).await?;
    cy.send_all(public.room_id, &numbered("old", 3)).await?;
    let joined = ada.join(by_id(public.room_id)).await?;
    cy.send_message(public.room_id, "new", "new").await?;
    let events = ada.events(2).await?;
    let first_ok = events.first().is_some_and(|e| {
        e.room_id == public.room_id
            && e.seq == joined.head_seq
            && matches!(e.kind, Some(Kind::MemberJoined(_)))
            && e.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)
    });
    cx.check(
        "RESUME-6",
        first_ok && seqs(&events) == [joined.head_seq, joined.head_seq + 1],
        format!(
            "joining a room with history pushes her MemberJoined (seq {}) then the new message, nothing older; got {}",
            joined.head_seq,
            show_events_brief(&events)
        ),
    );

    // A direct room a peer opens: the peer's events from the user's join on.
    let direct = bob.open_direct(&ada_user.name).await?;
    let to_ada = ada.events(1).await?;
    let ada_join = to_ada.first().is_some_and(|e| {
        e.room_id == direct.room_id
            && matches!(e.kind, Some(Kind::MemberJoined(_)))
            && e.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)
    });
    cx.check(
        "RESUME-6",
        ada_join && to_ada.len() == 1,
        format!("the peer of a new direct room gets only its own MemberJoined; got {}", show_events_brief(&to_ada)),
    );
    let to_bob = bob.events(3).await?;
    let kinds: Vec<&str> = to_bob.iter().map(|e| kind(e).name()).collect();
    cx.check(
        "RESUME-6",
        kinds == ["RoomCreated", "MemberJoined", "MemberJoined"] && is_run(&seqs(&to_bob), 1, 3),
        format!(
            "the opener of a direct room gets RoomCreated, its MemberJoined, the peer's MemberJoined; got {}",
            show_events_brief(&to_bob)
        ),
    );

    // An invitation is pushed to the invitee, the room's messages are not.
    let private = cx.new_room(&mut cy, v1::RoomKind::Private).await?;
    cy.invite(by_id(private.room_id), &ada_user.name).await?;
    cy.send_message(private.room_id, "before ada joins", "pre").await?;
    let invited = ada.events_until_quiet(QUIET).await?;
    let invitation_ok = invited.len() == 1
        && invited.iter().all(|e| {
            e.room_id == private.room_id
                && matches!(&e.kind, Some(Kind::MemberInvited(i)) if i.invitee.as_ref().is_some_and(|u| u.user_id == ada_user.id))
        });
    cx.check(
        "RESUME-6",
        invitation_ok,
        format!(
            "the invitee gets the MemberInvited naming her and nothing else of the room; got {}",
            show_events_brief(&invited)
        ),
    );
    let entered = ada.join(by_id(private.room_id)).await?;
    let events = ada.events(1).await?;
    cx.check(
        "RESUME-6",
        seqs(&events) == [entered.head_seq] && events.iter().all(|e| matches!(e.kind, Some(Kind::MemberJoined(_)))),
        format!(
            "after joining, her MemberJoined (seq {}) comes next; got {}",
            entered.head_seq,
            show_events_brief(&events)
        ),
    );
    Ok(())
}

async fn again(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let seen = ada.join(by_id(room.room_id)).await?;
    ada.go_live().await?;
    bob.send_all(room.room_id, &numbered("first", 3)).await?;
    let first = ada.events(3).await?;
    cx.check(
        "RESUME-7",
        is_run(&seqs(&first), seen.head_seq + 1, seen.head_seq + 3),
        format!("three live events first; got {}", show_events_brief(&first)),
    );

    // Resume again from before them: they are replayed on the same session.
    let (before, result) = ada.resume_collect(vec![position(room.room_id, seen.epoch, seen.head_seq)]).await?;
    let replayed = seqs(&before);
    cx.check(
        "RESUME-7",
        is_run(&replayed, seen.head_seq + 1, seen.head_seq + 3),
        format!("a second Resume from seq {} replays the three again; got {replayed:?}", seen.head_seq),
    );
    let status = statuses_of(&result, room.room_id);
    cx.check(
        "RESUME-7",
        status.len() == 1 && status[0].outcome == v1::ResumeOutcome::Replayed as i32 && status[0].replayed == 3,
        format!("REPLAYED 3; got {}", show_statuses(&result)),
    );
    let sent = bob.send_message(room.room_id, "once", "once-1").await?;
    let live = ada.events(1).await?;
    cx.check(
        "RESUME-7",
        seqs(&live) == [sent.seq],
        format!("the next message is pushed once, not once per Resume; got {}", show_events_brief(&live)),
    );

    // And once more, live.
    let result = ada.go_live().await?;
    let status = statuses_of(&result, room.room_id);
    cx.check(
        "RESUME-7",
        status.len() == 1 && status[0].outcome == v1::ResumeOutcome::Live as i32 && status[0].head_seq == sent.seq,
        format!("a third Resume without positions is LIVE at head_seq {}; got {}", sent.seq, show_statuses(&result)),
    );
    let sent = bob.send_message(room.room_id, "once more", "once-2").await?;
    let live = ada.events(1).await?;
    cx.check(
        "RESUME-7",
        seqs(&live) == [sent.seq],
        format!("and the next message is again pushed once; got {}", show_events_brief(&live)),
    );
    Ok(())
}

async fn leave_logout(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let dropped = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let stays = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    ada.join(by_id(dropped.room_id)).await?;
    ada.join(by_id(stays.room_id)).await?;
    ada.go_live().await?;

    ada.leave(by_id(dropped.room_id)).await?;
    bob.send_message(dropped.room_id, "after she left", "gone-1").await?;
    let kept = bob.send_message(stays.room_id, "still here", "stay-1").await?;
    let events = ada.events(2).await?;
    let left_ok = events.first().is_some_and(|e| {
        e.room_id == dropped.room_id
            && matches!(e.kind, Some(Kind::MemberLeft(_)))
            && e.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)
    });
    let rest: Vec<&v1::RoomEvent> = events.iter().skip(1).collect();
    cx.check(
        "RESUME-8",
        left_ok && rest.len() == 1 && rest[0].room_id == stays.room_id && rest[0].seq == kept.seq,
        format!(
            "her MemberLeft is the last event of the room left; the other room goes on (seq {}); got {}",
            kept.seq,
            show_events_brief(&events)
        ),
    );

    ada.logout().await?;
    bob.send_message(stays.room_id, "after logout", "stay-2").await?;
    let events = ada.events_until_quiet(QUIET).await?;
    cx.check(
        "RESUME-8",
        events.is_empty(),
        format!("nothing is pushed after Logout; got {}", show_events_brief(&events)),
    );

    ada.login(&ada_user.name, &ada_user.password).await?;
    let sent = bob.send_message(stays.room_id, "after login", "stay-3").await?;
    let events = ada.events_until_quiet(QUIET).await?;
    cx.check(
        "STATE-3",
        events.is_empty(),
        format!("after logging in again, nothing is pushed until Resume; got {}", show_events_brief(&events)),
    );
    let result = ada.go_live().await?;
    cx.check(
        "RESUME-8",
        result.rooms.iter().all(|s| s.room_id != dropped.room_id),
        format!("the room left is not resumed; got {}", show_statuses(&result)),
    );
    let next = bob.send_message(stays.room_id, "resumed", "stay-4").await?;
    let events = ada.events(1).await?;
    cx.check(
        "STATE-3",
        seqs(&events) == [next.seq] && next.seq == sent.seq + 1,
        format!("after Resume, events flow again: seq {}; got {}", next.seq, show_events_brief(&events)),
    );
    Ok(())
}

/// What an unread connection held when finally read: its events, and how
/// it ended (or that it stayed open).
#[derive(Default)]
struct Drained {
    events: Vec<v1::RoomEvent>,
    close: Option<v1::Close>,
    /// `Some` once the transport closed, with its code if any.
    closed: Option<Option<i32>>,
    reason: String,
    /// Frames after the `Close` frame (CLOSE-1: it is the last).
    after_close: usize,
}

/// Reads everything until the transport closes (or is reset) or nothing
/// comes for `quiet`.
async fn drain(conn: &mut Conn, quiet: Duration) -> Drained {
    let mut drained = Drained::default();
    while let Some(received) = conn.recv_or_reset(quiet).await {
        match received {
            RawReceived::Frame(frame) => match frame.body {
                Some(Body::Close(close)) => drained.close = Some(close),
                _ if drained.close.is_some() => drained.after_close += 1,
                Some(Body::Event(event)) => drained.events.push(event),
                _ => {}
            },
            RawReceived::Undecodable { .. } => {}
            RawReceived::Closed { code, reason } => {
                drained.closed = Some(code);
                drained.reason = reason;
                break;
            }
        }
    }
    drained
}

async fn slow_consumer(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    // The flood comes over QUIC where offered (the quickest to send).
    let sender_wire = if cx.target().wires.contains(&Wire::QUIC) { Wire::QUIC } else { cx.wire() };
    let (mut bob, _) = cx.user_on(sender_wire, "bob").await?;
    let limits = ada.limits();
    let queue = limits.max_outbound_queue_bytes;
    let size = (limits.max_message_bytes as usize).min((limits.max_frame_bytes as usize).saturating_sub(512)).max(1);
    // Enough to fill the queue four times over, plus what the transport
    // itself buffers on the way (kernel socket buffers, QUIC flow-control
    // windows: a few MiB on a loopback).
    let total = 4 * queue + (8 << 20);
    let count = (total / size as u64).clamp(1, 4000) as usize;
    let room = cx.new_room(&mut bob, v1::RoomKind::Public).await?;
    let seen = ada.join(by_id(room.room_id)).await?;
    ada.go_live().await?;
    cx.log().note(&format!(
        "ada stops reading; bob sends {count} messages of {size} bytes (max_outbound_queue_bytes {queue})"
    ));

    let text = "s".repeat(size);
    let sends: Vec<(String, String)> = (0..count).map(|i| (text.clone(), format!("slow-{i}"))).collect();
    let ping_every = ada.ping_interval() / 2;
    let mut pinged = tokio::time::Instant::now();
    for chunk in sends.chunks(32) {
        bob.send_all(room.room_id, chunk).await?;
        // Not reading is not being idle: ada keeps pinging (LIVE-1); once
        // the server has closed her session these sends may fail.
        if pinged.elapsed() >= ping_every {
            let _ = ada.command(Command::Ping(v1::Ping {})).await;
            pinged = tokio::time::Instant::now();
        }
    }

    let drained = drain(&mut ada, Duration::from_secs(3)).await;
    let got = seqs(&drained.events);
    let contiguous = is_run(&got, seen.head_seq + 1, seen.head_seq + got.len() as u64);
    let Some(code) = drained.closed else {
        if contiguous && got.len() == count {
            cx.note(format!(
                "the unread session took all {count} messages ({} bytes) without falling behind; SLOW_CONSUMER not provoked",
                count * size
            ));
        } else {
            cx.check(
                "RESUME-9",
                false,
                format!(
                    "the session stayed open but received {} of {count} events, seqs {}: events were dropped",
                    got.len(),
                    compact(&got)
                ),
            );
        }
        return Ok(());
    };
    let close_code = drained.close.as_ref().map(|c| c.code);
    cx.check(
        "RESUME-9",
        close_code == Some(v1::CloseCode::SlowConsumer as i32) && code == Some(v1::CloseCode::SlowConsumer as i32),
        format!(
            "after {count} messages of {size} bytes unread, the session is closed with SLOW_CONSUMER (4002) in the Close frame and the transport; got Close frame {close_code:?}, transport code {code:?} {:?}",
            drained.reason
        ),
    );
    cx.check(
        "CLOSE-1",
        drained.close.is_some() && drained.after_close == 0,
        format!("a Close frame comes last, before the transport closes; {} frames after it", drained.after_close),
    );
    cx.check(
        "RESUME-9",
        contiguous,
        format!(
            "the events before the close are contiguous from seq {} with no gap: got {} events, seqs {}",
            seen.head_seq + 1,
            got.len(),
            compact(&got)
        ),
    );

    // The client reconnects and resumes from what it saw.
    let last = drained.events.last().map_or(seen.head_seq, |e| e.seq);
    let mut back = cx.reconnect(&ada_user, "ada-back").await?;
    let (before, result) = back.resume_collect(vec![position(room.room_id, seen.epoch, last)]).await?;
    let status = statuses_of(&result, room.room_id);
    let replay = seqs(&before);
    let head = seen.head_seq + count as u64;
    let held = match status.as_slice() {
        [s] if s.outcome == v1::ResumeOutcome::Replayed as i32 => is_run(&replay, last + 1, head),
        [s] if s.outcome == v1::ResumeOutcome::Reset as i32 => replay.is_empty() && s.head_seq == head,
        _ => false,
    };
    cx.check(
        "RESUME-9",
        held,
        format!(
            "resuming from seq {last} after the close: REPLAYED with {}..={head}, or RESET at head_seq {head}; got {} and replayed seqs {}",
            last + 1,
            show_statuses(&result),
            compact(&replay)
        ),
    );
    Ok(())
}

/// Seqs in a few words: `3..=40 (38)`, or the list when not a run.
fn compact(seqs: &[u64]) -> String {
    match (seqs.first(), seqs.last()) {
        (Some(first), Some(last)) if is_run(seqs, *first, *last) => format!("{first}..={last} ({})", seqs.len()),
        (None, _) | (_, None) => "none".into(),
        _ => format!("{seqs:?}"),
    }
}
