//! Feature level 2, the state around the log: §21 notification levels and
//! `Notification` pushes, §22 read markers and unread counts, §23 receipts,
//! §24 typing and §25 presence.

use confab_sdk::v1::{self, server_frame::Body};

use super::{
    Case, Conn, Ctx,
    calls::{
        self, brief, done, get_receipts, mark_delivered, mark_read, read_state, room_info, set_level, set_presence,
        set_profile, set_typing,
    },
    conn::{LONG_QUIET, QUIET, by_id},
    events::plausible_time,
    show::show_reply,
};
use crate::{outcome::CaseResult, wire::Wires};

const NOTIFY: &str = "Mentions and notifications";
const READ: &str = "Read markers and unread counts";
const RECEIPTS: &str = "Receipts";
const TYPING: &str = "Typing";
const PRESENCE: &str = "Presence";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "read/markers",
            READ,
            "Joining and sending move the read marker; unread and mention counts follow the messages of others",
            &["READ-1", "READ-3", "READ-4", "ROOM-10"],
            Wires::All,
            read_markers,
        ),
        Case::new(
            "read/mark-read",
            READ,
            "MarkRead moves forward only, answers the ReadState, pushes it to the user's other sessions only",
            &["READ-2", "READ-3", "ERR-3"],
            Wires::All,
            mark_read_case,
        ),
        Case::new(
            "notify/levels",
            NOTIFY,
            "Notifications follow each member's level: mentions by default in rooms, every message under ALL, none under NONE",
            &["NOTIFY-1", "NOTIFY-2", "ROOM-10"],
            Wires::All,
            notify_levels,
        ),
        Case::new(
            "notify/direct-default",
            NOTIFY,
            "In a DIRECT room the default level is ALL; the sender is never notified; rejoining resets the level",
            &["NOTIFY-1", "NOTIFY-2"],
            Wires::All,
            notify_direct,
        ),
        Case::new(
            "receipt/shared",
            RECEIPTS,
            "MarkDelivered and MarkRead move receipts, pushed to the room's followers and listed by GetReceipts",
            &["RCPT-1", "RCPT-2", "RCPT-3", "ERR-3"],
            Wires::All,
            receipts_shared,
        ),
        Case::new(
            "receipt/private",
            RECEIPTS,
            "A user who stops sharing receipts is neither listed nor pushed, and their marker still works",
            &["RCPT-4", "RCPT-2", "PROFILE-2"],
            Wires::All,
            receipts_private,
        ),
        Case::new(
            "typing/pushed",
            TYPING,
            "Typing is pushed to the room's other followers, never to the typist's sessions, and stored nowhere",
            &["TYPING-1", "TYPING-2", "ERR-3"],
            Wires::All,
            typing_pushed,
        ),
        Case::new(
            "presence/aggregate",
            PRESENCE,
            "Presence is ONLINE, AWAY or OFFLINE over a user's sessions and pushed to those who share a room",
            &["PRES-1", "PRES-2", "PRES-3"],
            Wires::All,
            presence_aggregate,
        ),
        Case::new(
            "presence/refused",
            PRESENCE,
            "SetPresence accepts only ONLINE and AWAY and a status text of at most 140 bytes",
            &["PRES-2"],
            Wires::All,
            presence_refused,
        ),
    ]
}

/// A public room of `owner` that `member` joined; its id.
async fn shared_room(cx: &Ctx, owner: &mut Conn, member: &mut Conn) -> CaseResult<u64> {
    let room = cx.new_room(owner, v1::RoomKind::Public).await?;
    member.join(by_id(room.room_id)).await?;
    Ok(room.room_id)
}

/// `(read_seq, unread_count, mention_count)` of a room in `ListRooms` `MINE`.
async fn counts(conn: &mut Conn, room_id: u64) -> CaseResult<Option<(u64, u32, u32)>> {
    Ok(calls::mine(conn, room_id).await?.map(|i| (i.read_seq, i.unread_count, i.mention_count)))
}

// --- §22 ---

async fn read_markers(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    cx.check(
        "READ-4",
        room.read_seq == 2 && room.unread_count == 0 && room.role == v1::Role::Owner as i32,
        format!("the creator's RoomInfo: read_seq 2 (their MemberJoined), unread 0, role OWNER; got {room:?}"),
    );
    let first = ada.send_message(room.room_id, "before bob", "rm-0").await?;
    let joined = bob.join(by_id(room.room_id)).await?;
    cx.check(
        "READ-1",
        joined.read_seq == joined.head_seq && joined.unread_count == 0,
        format!(
            "joining sets the marker to the MemberJoined event (#{}), so the backlog is not unread: read_seq {}, unread {}",
            joined.head_seq, joined.read_seq, joined.unread_count
        ),
    );
    let mention = format!("hello @{}", bob_user.name);
    let m1 = ada.send_message(room.room_id, &mention, "rm-1").await?;
    let m2 = ada.send_message(room.room_id, "second", "rm-2").await?;
    let ada_counts = counts(&mut ada, room.room_id).await?;
    cx.check(
        "READ-1",
        ada_counts == Some((m2.seq, 0, 0)),
        format!("sending moved the sender's marker to #{}: (read_seq, unread, mentions) {ada_counts:?}", m2.seq),
    );
    let bob_counts = counts(&mut bob, room.room_id).await?;
    cx.check(
        "READ-3",
        bob_counts == Some((joined.head_seq, 2, 1)),
        format!(
            "bob has 2 unread messages after his join (not #{}), 1 mentioning him: expected {:?}, got {bob_counts:?}",
            first.seq,
            (joined.head_seq, 2, 1)
        ),
    );
    let reply = bob.send_message(room.room_id, "bob answers", "rm-3").await?;
    let bob_counts = counts(&mut bob, room.room_id).await?;
    cx.check(
        "READ-3",
        bob_counts == Some((reply.seq, 0, 0)),
        format!("bob's own message moved his marker past ada's (#{}, #{}): {bob_counts:?}", m1.seq, m2.seq),
    );
    let ada_counts = counts(&mut ada, room.room_id).await?;
    cx.check(
        "READ-4",
        ada_counts == Some((m2.seq, 1, 0)),
        format!("ListRooms MINE shows ada 1 unread message (bob's): {ada_counts:?}"),
    );
    Ok(())
}

async fn mark_read_case(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let mut bob2 = cx.reconnect(&bob_user, "bob-2").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let s1 = ada.send_message(room_id, &format!("one for @{}", bob_user.name), "mr-1").await?;
    let s2 = ada.send_message(room_id, "two", "mr-2").await?;
    let s3 = ada.send_message(room_id, "three", "mr-3").await?;
    bob.go_live().await?;
    bob2.go_live().await?;

    let state = read_state(&mut bob, mark_read(room_id, s1.seq)).await?;
    cx.check(
        "READ-2",
        state.room_id == room_id && state.read_seq == s1.seq && state.unread_count == 2 && state.mention_count == 0,
        format!("MarkRead #{}: ReadState read_seq {}, 2 unread, 0 mentions; got {state:?}", s1.seq, s1.seq),
    );
    let other = bob2.push_within(cx.target().reply_timeout, calls::read_state_push).await?;
    cx.check(
        "READ-2",
        other.as_ref() == Some(&state),
        format!("the user's other session gets the same ReadState pushed: {other:?}"),
    );
    let own = bob.pushes_until_quiet(QUIET, calls::read_state_push).await?;
    cx.check("READ-2", own.is_empty(), format!("the asking session gets the reply, not a push too: {own:?}"));

    let back = read_state(&mut bob, mark_read(room_id, 2)).await?;
    cx.check(
        "READ-2",
        back == state,
        format!("MarkRead below the marker changes nothing and answers the current ReadState: {back:?}"),
    );
    let same = bob2.pushes_until_quiet(QUIET, calls::read_state_push).await?;
    cx.check("READ-2", same.is_empty(), format!("a marker that did not move is not pushed: {same:?}"));

    let reply = bob.request(mark_read(room_id, s3.seq + 1)).await?;
    cx.check_refused("READ-2", "MarkRead beyond the head", &reply, v1::ErrorCode::InvalidArgument);
    let reply = cy.request(mark_read(room_id, s2.seq)).await?;
    cx.check_refused("READ-2", "MarkRead in a public room not joined", &reply, v1::ErrorCode::NotAMember);
    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    let reply = cy.request(mark_read(private.room_id, 1)).await?;
    cx.check_refused("READ-2", "MarkRead in a private room of others", &reply, v1::ErrorCode::RoomNotFound);
    let unchanged = read_state(&mut bob, mark_read(room_id, 0)).await?;
    cx.check("ERR-3", unchanged == state, format!("the refused MarkReads moved nothing: {unchanged:?}"));

    let all = read_state(&mut bob, mark_read(room_id, s3.seq)).await?;
    cx.check(
        "READ-3",
        all.read_seq == s3.seq && all.unread_count == 0 && all.mention_count == 0,
        format!("read up to the head: nothing unread: {all:?}"),
    );
    Ok(())
}

// --- §21 notifications ---

async fn notify_levels(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    let joined = bob.join(by_id(room_id)).await?;
    cx.check(
        "ROOM-10",
        joined.notification_level == v1::NotificationLevel::NotifyDefault as i32
            && joined.role == v1::Role::Member as i32,
        format!("a joiner's RoomInfo: level NOTIFY_DEFAULT, role MEMBER; got {joined:?}"),
    );
    ada.go_live().await?;
    bob.go_live().await?;

    ada.send_message(room_id, "plain words", "nl-1").await?;
    let got = bob.pushes_until_quiet(LONG_QUIET, calls::notification).await?;
    cx.check(
        "NOTIFY-2",
        got.is_empty(),
        format!("by default a room notifies mentions only; a plain message gave {got:?}"),
    );
    let text = format!("@{} {}", bob_user.name, "x".repeat(120));
    let mentioned = ada.send_message(room_id, &text, "nl-2").await?;
    let got = bob.push("Notification", calls::notification).await?;
    let excerpt: String = text.chars().take(100).collect();
    cx.check(
        "NOTIFY-2",
        got.room_id == room_id
            && got.seq == mentioned.seq
            && got.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)
            && got.reason == v1::NotificationReason::ReasonMention as i32
            && got.excerpt == excerpt
            && got.room_name == room.name,
        format!(
            "a mention: Notification for #{} by ada, REASON_MENTION, the first 100 characters, room name {:?}; got {got:?}",
            mentioned.seq, room.name
        ),
    );
    let to_sender = ada.pushes_until_quiet(QUIET, calls::notification).await?;
    cx.check("NOTIFY-2", to_sender.is_empty(), format!("the sender is not notified: {to_sender:?}"));
    ada.send_message(room_id, "@room all of you", "nl-3").await?;
    let got = bob.push("Notification", calls::notification).await?;
    cx.check(
        "NOTIFY-2",
        got.reason == v1::NotificationReason::ReasonRoomMention as i32,
        format!("@room by the owner: REASON_ROOM_MENTION; got {got:?}"),
    );

    let info = room_info(&mut bob, set_level(room_id, v1::NotificationLevel::NotifyAll as i32)).await?;
    cx.check(
        "NOTIFY-1",
        info.notification_level == v1::NotificationLevel::NotifyAll as i32 && info.room_id == room_id,
        format!("SetNotificationLevel ALL answers RoomInfo with the level: {:?}", info.notification_level()),
    );
    let plain = ada.send_message(room_id, "plain again", "nl-4").await?;
    let got = bob.push("Notification", calls::notification).await?;
    cx.check(
        "NOTIFY-2",
        got.seq == plain.seq && got.reason == v1::NotificationReason::ReasonMessage as i32,
        format!("under ALL a plain message notifies, REASON_MESSAGE: {got:?}"),
    );
    let edited = calls::sent(&mut ada, calls::edit(room_id, plain.seq, &format!("@{} edited", bob_user.name))).await?;
    let got = bob.pushes_until_quiet(LONG_QUIET, calls::notification).await?;
    cx.check("NOTIFY-2", got.is_empty(), format!("an edit (#{}) notifies no one: {got:?}", edited.seq));

    room_info(&mut bob, set_level(room_id, v1::NotificationLevel::NotifyNone as i32)).await?;
    ada.send_message(room_id, &format!("@{} are you there", bob_user.name), "nl-5").await?;
    let got = bob.pushes_until_quiet(LONG_QUIET, calls::notification).await?;
    cx.check("NOTIFY-2", got.is_empty(), format!("under NONE even a mention notifies nothing: {got:?}"));
    let listed = calls::mine(&mut bob, room_id).await?;
    cx.check(
        "NOTIFY-1",
        listed.as_ref().is_some_and(|i| i.notification_level == v1::NotificationLevel::NotifyNone as i32),
        format!("the level holds: ListRooms shows {:?}", listed.map(|i| i.notification_level())),
    );

    let reply = cy.request(set_level(room_id, v1::NotificationLevel::NotifyAll as i32)).await?;
    cx.check_refused("NOTIFY-1", "SetNotificationLevel in a room not joined", &reply, v1::ErrorCode::NotAMember);
    if !cx.wire().is_json() {
        // In JSON an unknown enum number reads as the zero value (ENC-5).
        let reply = bob.request(set_level(room_id, 99)).await?;
        cx.check_refused("NOTIFY-1", "level 99", &reply, v1::ErrorCode::InvalidArgument);
    }
    Ok(())
}

async fn notify_direct(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let direct = ada.open_direct(&bob_user.name).await?;
    bob.go_live().await?;
    ada.go_live().await?;
    let result = ada.send_message(direct.room_id, "just us", "nd-1").await?;
    let got = bob.push("Notification", calls::notification).await?;
    cx.check(
        "NOTIFY-2",
        got.seq == result.seq
            && got.reason == v1::NotificationReason::ReasonMessage as i32
            && got.room_name.is_empty()
            && got.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id),
        format!("in a DIRECT room every message notifies (REASON_MESSAGE, no room name): {got:?}"),
    );
    let to_sender = ada.pushes_until_quiet(QUIET, calls::notification).await?;
    cx.check("NOTIFY-2", to_sender.is_empty(), format!("the sender is not notified: {to_sender:?}"));

    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    bob.join(by_id(room.room_id)).await?;
    room_info(&mut bob, set_level(room.room_id, v1::NotificationLevel::NotifyAll as i32)).await?;
    bob.leave(by_id(room.room_id)).await?;
    let rejoined = bob.join(by_id(room.room_id)).await?;
    cx.check(
        "NOTIFY-1",
        rejoined.notification_level == v1::NotificationLevel::NotifyDefault as i32,
        format!("leaving and joining again starts from NOTIFY_DEFAULT: {:?}", rejoined.notification_level()),
    );
    Ok(())
}

// --- §23 ---

async fn receipts_shared(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let s1 = ada.send_message(room_id, "one", "rc-1").await?;
    let s2 = ada.send_message(room_id, "two", "rc-2").await?;
    ada.go_live().await?;
    bob.go_live().await?;

    done(&mut bob, mark_delivered(room_id, s2.seq), "MarkDelivered").await?;
    let pushed = ada.push("Receipt", calls::receipt).await?;
    cx.check(
        "RCPT-3",
        pushed.room_id == room_id
            && pushed.user.as_ref().is_some_and(|u| u.user_id == bob_user.id)
            && pushed.delivered_seq == s2.seq
            && plausible_time(pushed.updated_at_ms),
        format!("a follower gets bob's Receipt, delivered #{}: {pushed:?}", s2.seq),
    );
    let own = bob.push_within(cx.target().reply_timeout, calls::receipt).await?;
    cx.check("RCPT-3", own.is_some(), format!("the user's own sessions follow the room and get it too: {own:?}"));

    let reply = bob.request(mark_delivered(room_id, s2.seq + 5)).await?;
    cx.check_refused("RCPT-1", "MarkDelivered beyond the head", &reply, v1::ErrorCode::InvalidArgument);
    let reply = cy.request(mark_delivered(room_id, s1.seq)).await?;
    cx.check_refused("RCPT-1", "MarkDelivered in a room not joined", &reply, v1::ErrorCode::NotAMember);
    done(&mut bob, mark_delivered(room_id, s1.seq), "MarkDelivered").await?;
    let moved = ada.pushes_until_quiet(LONG_QUIET, calls::receipt).await?;
    cx.check(
        "RCPT-1",
        moved.is_empty(),
        format!("a delivered position does not move back (nothing pushed): {moved:?}"),
    );

    read_state(&mut bob, mark_read(room_id, s1.seq)).await?;
    let pushed = ada.push("Receipt", calls::receipt).await?;
    cx.check(
        "RCPT-3",
        pushed.read_seq == s1.seq && pushed.delivered_seq == s2.seq,
        format!("MarkRead #{} pushes a Receipt read #{}, delivered still #{}: {pushed:?}", s1.seq, s1.seq, s2.seq),
    );
    let s3 = ada.send_message(room_id, "three", "rc-3").await?;
    read_state(&mut bob, mark_read(room_id, s3.seq)).await?;
    let pushed = ada.push("Receipt", calls::receipt).await?;
    cx.check(
        "RCPT-1",
        pushed.read_seq == s3.seq && pushed.delivered_seq == s3.seq,
        format!("what is read was delivered: MarkRead #{} raises delivered too: {pushed:?}", s3.seq),
    );
    let from_send = bob.pushes_until_quiet(QUIET, calls::receipt).await?;
    let ada_receipts: Vec<_> =
        from_send.iter().filter(|r| r.user.as_ref().is_some_and(|u| u.user_id == ada_user.id)).collect();
    cx.check("RCPT-3", ada_receipts.is_empty(), format!("a send pushes no Receipt of its sender: {ada_receipts:?}"));

    let reply = cy.request(get_receipts(room_id)).await?;
    let list = match &reply {
        Ok(Body::Receipts(list)) => list.receipts.clone(),
        _ => Vec::new(),
    };
    let of = |id: u64| list.iter().find(|r| r.user.as_ref().is_some_and(|u| u.user_id == id)).cloned();
    cx.check(
        "RCPT-2",
        matches!(&reply, Ok(Body::Receipts(l)) if l.room_id == room_id)
            && of(bob_user.id).is_some_and(|r| r.read_seq == s3.seq && r.delivered_seq == s3.seq)
            && of(ada_user.id).is_some_and(|r| r.read_seq == s3.seq)
            && list.len() == 2,
        format!(
            "GetReceipts of a PUBLIC room, by a user who has not joined it: ada and bob, both read up to #{}; got {}",
            s3.seq,
            show_reply(&reply)
        ),
    );
    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    let reply = cy.request(get_receipts(private.room_id)).await?;
    cx.check_refused("RCPT-2", "GetReceipts of a private room of others", &reply, v1::ErrorCode::RoomNotFound);
    Ok(())
}

async fn receipts_private(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let s1 = ada.send_message(room_id, "one", "rp-1").await?;
    let own = calls::profile(&mut bob, calls::get_profile(&bob_user.name)).await?;
    cx.check("RCPT-4", own.share_receipts, format!("receipts are shared by default: own profile {own:?}"));
    let changed =
        calls::profile(&mut bob, set_profile(v1::SetProfile { share_receipts: Some(false), ..Default::default() }))
            .await?;
    cx.check("PROFILE-2", !changed.share_receipts, format!("SetProfile answers the new profile: {changed:?}"));
    ada.go_live().await?;
    let state = read_state(&mut bob, mark_read(room_id, s1.seq)).await?;
    cx.check("RCPT-4", state.read_seq == s1.seq, format!("the opted-out user's marker still moves: {state:?}"));
    done(&mut bob, mark_delivered(room_id, s1.seq), "MarkDelivered").await?;
    let pushed = ada.pushes_until_quiet(LONG_QUIET, calls::receipt).await?;
    cx.check("RCPT-4", pushed.is_empty(), format!("no Receipt of the opted-out user is pushed: {pushed:?}"));
    let reply = ada.request(get_receipts(room_id)).await?;
    let listed = match &reply {
        Ok(Body::Receipts(list)) => {
            list.receipts.iter().any(|r| r.user.as_ref().is_some_and(|u| u.user_id == bob_user.id))
        }
        _ => true,
    };
    cx.check("RCPT-2", !listed, format!("GetReceipts leaves the opted-out user out: {}", show_reply(&reply)));
    Ok(())
}

// --- §24 ---

async fn typing_pushed(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let mut bob2 = cx.reconnect(&bob_user, "bob-2").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    for conn in [&mut ada, &mut bob, &mut bob2, &mut cy] {
        conn.go_live().await?;
    }
    let before = calls::head(&mut ada, room_id).await?;
    done(&mut bob, set_typing(room_id, true), "SetTyping").await?;
    let got = ada.push("Typing", calls::typing).await?;
    cx.check(
        "TYPING-2",
        got.room_id == room_id
            && got.user.as_ref().is_some_and(|u| u.user_id == bob_user.id)
            && got.typing
            && got.expires_in_ms > 0,
        format!("a member gets Typing of bob, true, with expires_in_ms: {got:?}"),
    );
    for (who, conn) in [("the typist's session", &mut bob), ("the typist's other session", &mut bob2)] {
        let got = conn.pushes_until_quiet(QUIET, calls::typing).await?;
        cx.check("TYPING-2", got.is_empty(), format!("{who} gets no Typing: {got:?}"));
    }
    let got = cy.pushes_until_quiet(QUIET, calls::typing).await?;
    cx.check("TYPING-2", got.is_empty(), format!("a user outside the room gets no Typing: {got:?}"));
    done(&mut bob, set_typing(room_id, false), "SetTyping").await?;
    let got = ada.push("Typing", calls::typing).await?;
    cx.check("TYPING-2", !got.typing, format!("stopping is pushed with typing false: {got:?}"));
    bob.send_message(room_id, "done typing", "ty-1").await?;
    let got = ada.pushes_until_quiet(LONG_QUIET, calls::typing).await?;
    cx.check("TYPING-2", got.is_empty(), format!("a message pushes no Typing: {got:?}"));
    let after = calls::head(&mut ada, room_id).await?;
    cx.check(
        "TYPING-1",
        after == before + 1,
        format!("typing appends nothing: head {before}, then {after} after one message"),
    );

    let reply = cy.request(set_typing(room_id, true)).await?;
    cx.check_refused("TYPING-1", "SetTyping in a room not joined", &reply, v1::ErrorCode::NotAMember);
    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    let reply = cy.request(set_typing(private.room_id, true)).await?;
    cx.check_refused("TYPING-1", "SetTyping in a private room of others", &reply, v1::ErrorCode::RoomNotFound);
    let stray = ada.pushes_until_quiet(QUIET, calls::typing).await?;
    cx.check("ERR-3", stray.is_empty(), format!("the refused SetTyping pushed nothing: {stray:?}"));
    Ok(())
}

// --- §25 ---

/// The next `Presence` push about `user_id` on `conn`, within the reply
/// timeout (earlier ones about the same user are skipped).
async fn presence_of(conn: &mut Conn, user_id: u64, state: v1::PresenceState) -> CaseResult<Option<v1::Presence>> {
    let wait = std::time::Duration::from_secs(5);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let got = conn
            .push_within(left, |b| calls::presence(b).filter(|p| p.user.as_ref().is_some_and(|u| u.user_id == user_id)))
            .await?;
        match got {
            Some(p) if p.state == state as i32 => return Ok(Some(p)),
            Some(_) => {}
            None => return Ok(None),
        }
    }
}

async fn presence_aggregate(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    shared_room(&cx, &mut ada, &mut bob).await?;
    ada.go_live().await?;
    cy.go_live().await?;
    bob.go_live().await?;
    let online = presence_of(&mut ada, bob_user.id, v1::PresenceState::Online).await?;
    cx.check("PRES-3", online.is_some(), format!("bob's first Resume makes him ONLINE for ada: {online:?}"));

    done(&mut bob, set_presence(v1::PresenceState::Away, Some("lunch 🍜"), false), "SetPresence").await?;
    let away = presence_of(&mut ada, bob_user.id, v1::PresenceState::Away).await?;
    cx.check(
        "PRES-3",
        away.as_ref().is_some_and(|p| p.status_text == "lunch 🍜" && p.last_seen_ms == 0),
        format!("a user sharing a room gets bob AWAY with his status text: {away:?}"),
    );
    let own = presence_of(&mut bob, bob_user.id, v1::PresenceState::Away).await?;
    cx.check("PRES-3", own.is_some(), format!("bob's own sessions get it too: {own:?}"));
    let outsider = cy.pushes_until_quiet(QUIET, calls::presence).await?;
    let about_bob: Vec<_> =
        outsider.iter().filter(|p| p.user.as_ref().is_some_and(|u| u.user_id == bob_user.id)).collect();
    cx.check("PRES-3", about_bob.is_empty(), format!("a user who shares no room with bob gets nothing: {about_bob:?}"));

    let mut bob2 = cx.reconnect(&bob_user, "bob-2").await?;
    bob2.go_live().await?;
    let profile = calls::profile(&mut cy, calls::get_profile(&bob_user.name)).await?;
    cx.check(
        "PRES-2",
        profile.presence == v1::PresenceState::Away as i32 && profile.status_text == "lunch 🍜",
        format!(
            "a chosen AWAY holds on a new device too: GetProfile says {:?} {:?}",
            profile.presence(),
            profile.status_text
        ),
    );
    done(&mut bob, set_presence(v1::PresenceState::Online, None, false), "SetPresence").await?;
    let back = presence_of(&mut ada, bob_user.id, v1::PresenceState::Online).await?;
    cx.check(
        "PRES-1",
        back.as_ref().is_some_and(|p| p.status_text == "lunch 🍜"),
        format!("back ONLINE, the status text kept: {back:?}"),
    );

    done(&mut bob, set_presence(v1::PresenceState::Away, None, true), "SetPresence").await?;
    let profile = calls::profile(&mut cy, calls::get_profile(&bob_user.name)).await?;
    cx.check(
        "PRES-1",
        profile.presence == v1::PresenceState::Online as i32,
        format!("one of two sessions away: still ONLINE; got {:?}", profile.presence()),
    );
    done(&mut bob2, set_presence(v1::PresenceState::Away, None, true), "SetPresence").await?;
    let away = presence_of(&mut ada, bob_user.id, v1::PresenceState::Away).await?;
    cx.check("PRES-1", away.is_some(), format!("every session away: AWAY is pushed: {away:?}"));

    let before = super::events::now_ms();
    bob.close().await;
    bob2.close().await;
    let offline = presence_of(&mut ada, bob_user.id, v1::PresenceState::Offline).await?;
    cx.check(
        "PRES-1",
        offline.as_ref().is_some_and(|p| p.last_seen_ms + 2_000 >= before && plausible_time(p.last_seen_ms)),
        format!("when bob's last session ends, OFFLINE with last_seen_ms near {before}: {offline:?}"),
    );
    let profile = calls::profile(&mut cy, calls::get_profile(&bob_user.name)).await?;
    cx.check(
        "PRES-1",
        profile.presence == v1::PresenceState::Offline as i32 && profile.last_seen_ms > 0,
        format!("GetProfile says OFFLINE with last_seen_ms: {:?} {}", profile.presence(), profile.last_seen_ms),
    );
    Ok(())
}

async fn presence_refused(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    for (what, state) in
        [("OFFLINE", v1::PresenceState::Offline), ("PRESENCE_UNSPECIFIED", v1::PresenceState::PresenceUnspecified)]
    {
        let reply = ada.request(set_presence(state, None, false)).await?;
        cx.check_refused("PRES-2", format!("SetPresence {what}"), &reply, v1::ErrorCode::InvalidArgument);
    }
    let reply = ada.request(set_presence(v1::PresenceState::Online, Some(&"x".repeat(141)), false)).await?;
    cx.check_refused("PRES-2", "a status text of 141 bytes", &reply, v1::ErrorCode::InvalidArgument);
    let reply = ada.request(set_presence(v1::PresenceState::Online, Some(&"é".repeat(70)), false)).await?;
    cx.check("PRES-2", matches!(reply, Ok(Body::Done(_))), format!("a status text of 140 bytes: {}", brief(&reply)));
    Ok(())
}
