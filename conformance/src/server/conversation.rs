//! Feature level 2, the conversation: §17 text kept verbatim, §18 replies
//! and threads, §19 edits and deletions, §20 reactions, §21 mentions, §29
//! locations, and the level-1 client of HELLO-7.

use confab_sdk::v1::{self, client_frame::Command, room_event::Kind, server_frame::Body};

use super::{
    Case, Conn, Ctx,
    calls::{
        self, as_message, brief, delete, edit, event_at, get_thread, head, message, message_at, page, react, send,
        sent, sent_of, users,
    },
    conn::{QUIET, by_id, hello},
    show::{show_event_brief, show_events_brief, show_reply},
};
use crate::{
    outcome::{CaseResult, Stop},
    wire::Wires,
};

const CONTENT: &str = "Message content and formatting";
const THREADS: &str = "Replies and threads";
const EDITS: &str = "Edits and deletions";
const REACTIONS: &str = "Reactions";
const MENTIONS: &str = "Mentions and notifications";
const LOCATIONS: &str = "Locations";
const LEVELS: &str = "Handshake and negotiation";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "content/verbatim",
            CONTENT,
            "Texts with markup, HTML, spacing and emoji are stored and delivered byte for byte, edits too",
            &["FMT-1", "EDIT-2"],
            Wires::All,
            verbatim,
        ),
        Case::new(
            "reply/quote",
            THREADS,
            "A reply carries the target's sender and a 140-character quote that follows edits and empties on deletion",
            &["REPLY-1", "REPLY-2", "LOG-6", "DEL-4"],
            Wires::All,
            reply_quote,
        ),
        Case::new(
            "thread/summary-and-pages",
            THREADS,
            "Thread messages are room events; the root carries a summary; GetThread pages over the thread only",
            &["THREAD-1", "THREAD-2", "THREAD-3", "THREAD-4", "LOG-6"],
            Wires::All,
            thread_pages,
        ),
        Case::new(
            "thread/refused",
            THREADS,
            "Threads do not nest, need a message as root, and GetThread follows the read rules of GetHistory",
            &["THREAD-1", "THREAD-3", "ERR-3"],
            Wires::All,
            thread_refused,
        ),
        Case::new(
            "edit/applied",
            EDITS,
            "An edit appends MessageEdited, is pushed, and history shows the new text with edited_at_ms",
            &["EDIT-1", "EDIT-2", "EDIT-3", "LOG-6"],
            Wires::All,
            edit_applied,
        ),
        Case::new(
            "edit/refused",
            EDITS,
            "Editing someone else's message, a non-message, or with a bad text is refused and appends nothing",
            &["EDIT-1", "ERR-3"],
            Wires::All,
            edit_refused,
        ),
        Case::new(
            "delete/erased",
            EDITS,
            "A deletion appends MessageDeleted and erases text, mentions, location, reactions and earlier edit texts",
            &["DEL-2", "DEL-3", "LOG-6"],
            Wires::All,
            delete_erased,
        ),
        Case::new(
            "delete/rights",
            EDITS,
            "Authors delete their own messages and owners anyone's; members cannot delete others'; deletion is final",
            &["DEL-1", "DEL-4", "ROOM-11", "ERR-3"],
            Wires::All,
            delete_rights,
        ),
        Case::new(
            "react/sets",
            REACTIONS,
            "Reactions are sets of (emoji, user): adding twice or removing what is absent changes nothing",
            &["REACT-1", "REACT-2", "REACT-3", "LOG-6"],
            Wires::All,
            react_sets,
        ),
        Case::new(
            "react/refused",
            REACTIONS,
            "Non-emoji, two emojis and a 21st distinct emoji are INVALID_ARGUMENT; a non-message MESSAGE_NOT_FOUND",
            &["REACT-1", "ERR-3"],
            Wires::All,
            react_refused,
        ),
        Case::new(
            "mention/parsed",
            MENTIONS,
            "@name mentions joined members only, case-insensitively and once, not in code or inside an address",
            &["MENTION-1", "MENTION-2"],
            Wires::All,
            mention_parsed,
        ),
        Case::new(
            "mention/room",
            MENTIONS,
            "@room needs a moderator in public and private rooms; anyone may in direct rooms; edits follow the same rule",
            &["MENTION-2", "MENTION-3", "ROOM-11", "ERR-3"],
            Wires::All,
            mention_room,
        ),
        Case::new(
            "location/shared",
            LOCATIONS,
            "A location message may have no text; out-of-range coordinates and long labels are INVALID_ARGUMENT",
            &["LOC-1", "SEND-1", "ERR-3"],
            Wires::All,
            location_shared,
        ),
        Case::new(
            "idem/whole-content",
            "Idempotency and retries",
            "A retry must repeat the whole content: another reply target or location is TXN_CONFLICT",
            &["IDEM-1", "IDEM-2", "IDEM-3"],
            Wires::All,
            idem_whole_content,
        ),
        Case::new(
            "handshake/level-1-client",
            LEVELS,
            "A client of feature level 1 gets level 1 and keeps working while level-2 clients edit and react",
            &["HELLO-7", "HELLO-3", "LOG-5"],
            Wires::All,
            level_1_client,
        ),
    ]
}

/// Sends `text` to `room_id` and returns the seq of the message.
async fn post(conn: &mut Conn, room_id: u64, text: &str, txn: &str) -> CaseResult<u64> {
    Ok(conn.send_message(room_id, text, txn).await?.seq)
}

/// A public room of `owner` that `member` joined; its id.
async fn shared_room(cx: &Ctx, owner: &mut Conn, member: &mut Conn) -> CaseResult<u64> {
    let room = cx.new_room(owner, v1::RoomKind::Public).await?;
    member.join(by_id(room.room_id)).await?;
    Ok(room.room_id)
}

// --- §17 ---

async fn verbatim(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    ada.go_live().await?;
    let texts = [
        "  <b>not bold</b> <script>alert(1)</script> &amp; **strong** _em_ ~~x~~  ",
        "line one\r\n\tline two\n\n> quote\n- item\n```\ncode @nobody\n```\n",
        "Grüße 👋🏽 🏳️‍🌈 — 你好 [link](javascript:alert(1)) e\u{301}",
    ];
    for (i, text) in texts.iter().enumerate() {
        let result = ada.send_message(room.room_id, text, &format!("vb-{i}")).await?;
        let pushed = ada.event().await?;
        cx.check(
            "FMT-1",
            as_message(&pushed).is_some_and(|m| m.text == *text),
            format!("the pushed message holds the text byte for byte ({text:?}): {}", show_event_brief(&pushed)),
        );
        let stored = message_at(&mut ada, room.room_id, result.seq).await?;
        cx.check(
            "FMT-1",
            stored.as_ref().is_some_and(|m| m.text == *text),
            format!("history holds the text byte for byte ({text:?}): {:?}", stored.map(|m| m.text)),
        );
    }
    let first = head(&mut ada, room.room_id).await? - 2;
    let edited = "  <i>edited</i>\t**still** verbatim 🙂  ";
    sent(&mut ada, edit(room.room_id, first, edited)).await?;
    let pushed = ada.event().await?;
    let held = matches!(&pushed.kind, Some(Kind::MessageEdited(e)) if e.text == edited);
    cx.check(
        "EDIT-2",
        held,
        format!("the MessageEdited event holds the new text verbatim: {}", show_event_brief(&pushed)),
    );
    let stored = message_at(&mut ada, room.room_id, first).await?;
    cx.check(
        "FMT-1",
        stored.as_ref().is_some_and(|m| m.text == edited),
        format!("history holds the edited text byte for byte: {:?}", stored.map(|m| m.text)),
    );
    Ok(())
}

// --- §18 ---

async fn reply_quote(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    // 150 characters, many of them of several bytes: the quote counts characters.
    let long: String = "Zürich 👋 ".repeat(20);
    let long_seq = post(&mut ada, room_id, &long, "rq-long").await?;
    let short_seq = post(&mut ada, room_id, "short one", "rq-short").await?;
    bob.go_live().await?;

    let reply = v1::SendMessage { reply_to_seq: long_seq, ..message(room_id, "answering the long one", "rq-1") };
    let result = sent(&mut bob, send(reply)).await?;
    let pushed = bob.event().await?;
    let expected: String = long.chars().take(140).chain(['…']).collect();
    let quoted = as_message(&pushed).and_then(|m| m.reply_to.clone());
    cx.check(
        "REPLY-2",
        quoted.as_ref().is_some_and(|r| {
            r.seq == long_seq
                && r.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)
                && r.quote == expected
                && !r.deleted
        }),
        format!(
            "the pushed reply names #{long_seq} by {} and quotes its first 140 characters with … ({} characters); got {quoted:?}",
            ada_user.name,
            expected.chars().count()
        ),
    );
    let reply = v1::SendMessage { reply_to_seq: short_seq, ..message(room_id, "and the short one", "rq-2") };
    let short_reply = sent(&mut bob, send(reply)).await?;
    let stored = message_at(&mut bob, room_id, short_reply.seq).await?;
    let quote = stored.as_ref().and_then(|m| m.reply_to.as_ref()).map(|r| r.quote.clone());
    cx.check(
        "REPLY-2",
        quote.as_deref() == Some("short one"),
        format!("a short text is quoted whole, without …: {quote:?}"),
    );

    // The quote follows the target's current text.
    sent(&mut ada, edit(room_id, short_seq, "short one, edited")).await?;
    let stored = message_at(&mut bob, room_id, short_reply.seq).await?;
    let quote = stored.as_ref().and_then(|m| m.reply_to.as_ref()).map(|r| r.quote.clone());
    cx.check(
        "LOG-6",
        quote.as_deref() == Some("short one, edited"),
        format!("read after the target's edit, the reply quotes its new text: {quote:?}"),
    );
    sent(&mut ada, delete(room_id, long_seq)).await?;
    let stored = message_at(&mut bob, room_id, result.seq).await?;
    let reply_to = stored.as_ref().and_then(|m| m.reply_to.clone());
    cx.check(
        "REPLY-2",
        reply_to.as_ref().is_some_and(|r| r.seq == long_seq && r.quote.is_empty() && r.deleted),
        format!(
            "read after the target's deletion: reply_to #{long_seq} with an empty quote and deleted; got {reply_to:?}"
        ),
    );

    let before = head(&mut bob, room_id).await?;
    for (what, seq, code) in [
        ("a seq beyond the head", before + 5, v1::ErrorCode::MessageNotFound),
        ("the RoomCreated event", 1, v1::ErrorCode::MessageNotFound),
    ] {
        let reply = bob.request(send(v1::SendMessage { reply_to_seq: seq, ..message(room_id, "x", "rq-bad") })).await?;
        cx.check_refused("REPLY-1", format!("a reply to {what}"), &reply, code);
    }
    let reply =
        bob.request(send(v1::SendMessage { reply_to_seq: long_seq, ..message(room_id, "x", "rq-del") })).await?;
    cx.check_refused("DEL-4", "a reply to a deleted message", &reply, v1::ErrorCode::MessageNotFound);
    let after = head(&mut bob, room_id).await?;
    cx.check("REPLY-1", after == before, format!("the refused replies appended nothing: head {before} then {after}"));
    Ok(())
}

async fn thread_pages(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let root = post(&mut ada, room_id, "the root", "th-root").await?;
    let lonely = post(&mut ada, room_id, "no thread here", "th-lonely").await?;
    let in_thread =
        |text: &str, txn: &str| send(v1::SendMessage { thread_root_seq: root, ..message(room_id, text, txn) });
    let first = sent(&mut bob, in_thread("first in thread", "th-1")).await?;
    post(&mut ada, room_id, "main timeline", "th-main").await?;
    let second = sent(&mut ada, in_thread("second in thread", "th-2")).await?;
    let third = sent(
        &mut bob,
        send(v1::SendMessage { thread_root_seq: root, reply_to_seq: first.seq, ..message(room_id, "third", "th-3") }),
    )
    .await?;
    let thread_seqs = vec![first.seq, second.seq, third.seq];

    let log = ada.room_log(room_id).await?;
    let in_log: Vec<u64> =
        log.iter().filter(|e| as_message(e).is_some_and(|m| m.thread_root_seq == root)).map(|e| e.seq).collect();
    cx.check(
        "THREAD-1",
        in_log == thread_seqs,
        format!("the thread messages are ordinary room events with thread_root_seq {root}: {in_log:?}, expected {thread_seqs:?}"),
    );

    let root_message = message_at(&mut ada, room_id, root).await?;
    let summary = root_message.as_ref().and_then(|m| m.thread.clone());
    let held = summary.as_ref().is_some_and(|t| {
        t.reply_count == 3
            && t.last_reply_seq == third.seq
            && t.last_reply_at_ms == third.server_time_ms
            && users(&t.participants) == [(bob_user.name.clone(), bob_user.id), (ada_user.name.clone(), ada_user.id)]
    });
    cx.check(
        "THREAD-2",
        held,
        format!(
            "the root's thread: 3 replies, the last #{} at {}, participants bob then ada; got {summary:?}",
            third.seq, third.server_time_ms
        ),
    );
    let lonely_message = message_at(&mut ada, room_id, lonely).await?;
    cx.check(
        "THREAD-2",
        lonely_message.as_ref().is_some_and(|m| m.thread.is_none()),
        format!("a message without thread messages has no thread summary: {:?}", lonely_message.map(|m| m.thread)),
    );

    let room_head = head(&mut ada, room_id).await?;
    let page1 = page(&mut bob, get_thread(room_id, root, v1::HistoryDirection::Forward, 0, 2)).await?;
    let got: Vec<u64> = page1.events.iter().map(|e| e.seq).collect();
    cx.check(
        "THREAD-4",
        got == thread_seqs[..2] && page1.has_more && page1.head_seq == room_head,
        format!(
            "FORWARD from 0, limit 2: {:?} with has_more and head_seq {room_head}; got {got:?}, has_more {}, head_seq {}",
            &thread_seqs[..2],
            page1.has_more,
            page1.head_seq
        ),
    );
    let root_shown = page1.thread_root.as_ref();
    cx.check(
        "THREAD-4",
        root_shown.is_some_and(|e| {
            e.seq == root && as_message(e).is_some_and(|m| m.text == "the root" && m.thread.is_some())
        }),
        format!("thread_root is the root in its current state: {}", root_shown.map_or("none".into(), show_event_brief)),
    );
    let page2 =
        page(&mut bob, get_thread(room_id, root, v1::HistoryDirection::Forward, got.last().copied().unwrap_or(0), 2))
            .await?;
    let got2: Vec<u64> = page2.events.iter().map(|e| e.seq).collect();
    cx.check(
        "THREAD-4",
        got2 == thread_seqs[2..] && !page2.has_more,
        format!("the next FORWARD page: [{}] without has_more; got {got2:?}, has_more {}", third.seq, page2.has_more),
    );
    let back = page(&mut bob, get_thread(room_id, root, v1::HistoryDirection::Backward, 0, 0)).await?;
    let got3: Vec<u64> = back.events.iter().map(|e| e.seq).collect();
    cx.check(
        "THREAD-4",
        got3 == thread_seqs && !back.has_more,
        format!("BACKWARD from the newest: every thread message, ascending; got {got3:?}, has_more {}", back.has_more),
    );
    let back2 = page(&mut bob, get_thread(room_id, root, v1::HistoryDirection::Backward, third.seq, 1)).await?;
    let got4: Vec<u64> = back2.events.iter().map(|e| e.seq).collect();
    cx.check(
        "THREAD-4",
        got4 == [second.seq] && back2.has_more,
        format!(
            "BACKWARD before #{}, limit 1: [{}] with has_more; got {got4:?}, has_more {}",
            third.seq, second.seq, back2.has_more
        ),
    );
    let empty = page(&mut bob, get_thread(room_id, lonely, v1::HistoryDirection::Backward, 0, 0)).await?;
    cx.check(
        "THREAD-4",
        empty.events.is_empty() && !empty.has_more,
        format!("the thread of a message without one is an empty page: {}", show_events_brief(&empty.events)),
    );

    // A deleted root keeps its thread.
    sent(&mut ada, delete(room_id, root)).await?;
    let after = bob.request(get_thread(room_id, root, v1::HistoryDirection::Backward, 0, 0)).await?;
    let kept = match &after {
        Ok(Body::History(h)) => h.events.iter().map(|e| e.seq).collect::<Vec<_>>() == thread_seqs,
        _ => false,
    };
    cx.check("THREAD-3", kept, format!("GetThread of a deleted root still pages its thread: {}", brief(&after)));
    Ok(())
}

async fn thread_refused(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let root = post(&mut ada, room_id, "root", "tr-root").await?;
    let reply =
        sent(&mut bob, send(v1::SendMessage { thread_root_seq: root, ..message(room_id, "in it", "tr-1") })).await?;
    let before = head(&mut ada, room_id).await?;

    let nested =
        bob.request(send(v1::SendMessage { thread_root_seq: reply.seq, ..message(room_id, "x", "tr-2") })).await?;
    cx.check_refused("THREAD-1", "a thread message on a thread message", &nested, v1::ErrorCode::InvalidArgument);
    let unknown =
        bob.request(send(v1::SendMessage { thread_root_seq: before + 9, ..message(room_id, "x", "tr-3") })).await?;
    cx.check_refused("THREAD-1", "a thread root beyond the head", &unknown, v1::ErrorCode::MessageNotFound);
    let not_message =
        bob.request(send(v1::SendMessage { thread_root_seq: 2, ..message(room_id, "x", "tr-4") })).await?;
    cx.check_refused(
        "THREAD-1",
        "a thread root that is a MemberJoined event",
        &not_message,
        v1::ErrorCode::MessageNotFound,
    );
    let after = head(&mut ada, room_id).await?;
    cx.check(
        "ERR-3",
        after == before,
        format!("the refused thread messages appended nothing: head {before} then {after}"),
    );

    let reply = bob.request(get_thread(room_id, 1, v1::HistoryDirection::Backward, 0, 0)).await?;
    cx.check_refused("THREAD-3", "GetThread rooted at RoomCreated", &reply, v1::ErrorCode::MessageNotFound);
    let reply = bob.request(get_thread(room_id, after + 10, v1::HistoryDirection::Backward, 0, 0)).await?;
    cx.check_refused("THREAD-3", "GetThread rooted beyond the head", &reply, v1::ErrorCode::MessageNotFound);
    let too_many = bob.limits().max_history_page + 1;
    let reply = bob.request(get_thread(room_id, root, v1::HistoryDirection::Backward, 0, too_many)).await?;
    cx.check_refused("THREAD-3", format!("GetThread with limit {too_many}"), &reply, v1::ErrorCode::InvalidArgument);

    // Read rules: a public room is readable by anyone; a private one by members.
    let reply = cy.request(get_thread(room_id, root, v1::HistoryDirection::Backward, 0, 0)).await?;
    cx.check(
        "THREAD-3",
        matches!(&reply, Ok(Body::History(h)) if h.events.len() == 1),
        format!("a user who has not joined a PUBLIC room reads its thread: {}", brief(&reply)),
    );
    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    let private_root = post(&mut ada, private.room_id, "secret root", "tr-p").await?;
    let reply = cy.request(get_thread(private.room_id, private_root, v1::HistoryDirection::Backward, 0, 0)).await?;
    cx.check_refused("THREAD-3", "GetThread in a private room of others", &reply, v1::ErrorCode::RoomNotFound);
    ada.invite(by_id(private.room_id), &bob_user.name).await?;
    let reply = bob.request(get_thread(private.room_id, private_root, v1::HistoryDirection::Backward, 0, 0)).await?;
    cx.check_refused("THREAD-3", "GetThread by an invitee", &reply, v1::ErrorCode::NotAMember);
    Ok(())
}

// --- §19 ---

async fn edit_applied(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let target = post(&mut ada, room_id, "first version", "ed-1").await?;
    bob.go_live().await?;
    let room_head = head(&mut ada, room_id).await?;

    let new_text = format!("second version for @{}", bob_user.name);
    let result = sent(&mut ada, edit(room_id, target, &new_text)).await?;
    cx.check(
        "EDIT-2",
        result.seq == room_head + 1 && !result.duplicate && result.room_id == room_id,
        format!("SendResult at the next position, #{}, duplicate false: {result:?}", room_head + 1),
    );
    let pushed = bob.event().await?;
    let held = pushed.seq == result.seq
        && pushed.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)
        && matches!(&pushed.kind, Some(Kind::MessageEdited(e))
            if e.target_seq == target && e.text == new_text && users(&e.mentions) == [(bob_user.name.clone(), bob_user.id)]);
    cx.check(
        "EDIT-2",
        held,
        format!(
            "a member gets MessageEdited #{} by the author, target #{target}, the new text and its mention of bob: {}",
            result.seq,
            show_event_brief(&pushed)
        ),
    );
    let stored = message_at(&mut bob, room_id, target).await?;
    let held = stored.as_ref().is_some_and(|m| {
        m.text == new_text
            && m.edited_at_ms == result.server_time_ms
            && users(&m.mentions) == [(bob_user.name.clone(), bob_user.id)]
    });
    cx.check(
        "EDIT-3",
        held,
        format!(
            "history shows the new text, its mentions and edited_at_ms {}; got {:?}",
            result.server_time_ms,
            stored.as_ref().map(|m| (&m.text, m.edited_at_ms, users(&m.mentions)))
        ),
    );
    let stored_client_txn = stored.as_ref().map(|m| m.client_txn_id.clone());
    cx.check(
        "LOG-6",
        stored_client_txn.as_deref() == Some("ed-1"),
        format!("the edited message keeps its client_txn_id: {stored_client_txn:?}"),
    );
    let info = calls::mine(&mut bob, room_id).await?;
    cx.check(
        "EDIT-3",
        info.as_ref().is_some_and(|i| i.mention_count == 1),
        format!("the edit mentions bob: his mention_count is 1; got {:?}", info.map(|i| i.mention_count)),
    );
    let notified = bob.push_within(QUIET, calls::notification).await?;
    cx.check("EDIT-3", notified.is_none(), format!("an edit sends no Notification; got {notified:?}"));

    let again = sent(&mut ada, edit(room_id, target, &new_text)).await?;
    cx.check(
        "EDIT-2",
        again.seq == result.seq + 1 && !again.duplicate,
        format!("editing to the same text appends another event (#{}): {again:?}", result.seq + 1),
    );
    Ok(())
}

async fn edit_refused(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let target = post(&mut ada, room_id, "mine", "er-1").await?;
    let before = head(&mut ada, room_id).await?;
    let max = ada.limits().max_message_bytes as usize;

    let reply = bob.request(edit(room_id, target, "not yours")).await?;
    cx.check_refused("EDIT-1", "editing another user's message", &reply, v1::ErrorCode::Forbidden);
    let reply = ada.request(edit(room_id, 2, "a join")).await?;
    cx.check_refused("EDIT-1", "editing a MemberJoined event", &reply, v1::ErrorCode::MessageNotFound);
    let reply = ada.request(edit(room_id, before + 3, "nothing there")).await?;
    cx.check_refused("EDIT-1", "editing beyond the head", &reply, v1::ErrorCode::MessageNotFound);
    let reply = ada.request(edit(room_id, target, "")).await?;
    cx.check_refused("EDIT-1", "an empty text", &reply, v1::ErrorCode::InvalidArgument);
    let reply = ada.request(edit(room_id, target, " \n\t ")).await?;
    cx.check_refused("EDIT-1", "a blank text", &reply, v1::ErrorCode::InvalidArgument);
    if max + 200 <= ada.limits().max_frame_bytes as usize {
        let reply = ada.request(edit(room_id, target, &"x".repeat(max + 1))).await?;
        cx.check_refused("EDIT-1", format!("a text of {} bytes", max + 1), &reply, v1::ErrorCode::MessageTooLong);
    }
    let reply = cy.request(edit(room_id, target, "not a member")).await?;
    cx.check_refused("EDIT-1", "editing in a public room not joined", &reply, v1::ErrorCode::NotAMember);
    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    let secret = post(&mut ada, private.room_id, "secret", "er-2").await?;
    let reply = cy.request(edit(private.room_id, secret, "hidden")).await?;
    cx.check_refused("EDIT-1", "editing in a private room of others", &reply, v1::ErrorCode::RoomNotFound);

    let after = head(&mut ada, room_id).await?;
    let stored = message_at(&mut ada, room_id, target).await?;
    cx.check(
        "ERR-3",
        after == before && stored.as_ref().is_some_and(|m| m.text == "mine" && m.edited_at_ms == 0),
        format!(
            "the refused edits appended nothing (head {before} then {after}) and the text is unchanged: {:?}",
            stored.map(|m| (m.text, m.edited_at_ms))
        ),
    );
    Ok(())
}

async fn delete_erased(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let text = format!("secret plans, @{}", bob_user.name);
    let target = post(&mut ada, room_id, &text, "de-1").await?;
    let edit_result = sent(&mut ada, edit(room_id, target, &format!("{text} (edited)"))).await?;
    sent(&mut bob, react(room_id, target, "👍", false)).await?;
    let located = sent(
        &mut ada,
        send(v1::SendMessage {
            location: Some(v1::Location { latitude: 47.3769, longitude: 8.5417, label: "Zürich".into() }),
            ..message(room_id, "here", "de-2")
        }),
    )
    .await?;
    bob.go_live().await?;
    let before = calls::mine(&mut bob, room_id).await?.map_or(0, |i| i.mention_count);

    let result = sent(&mut ada, delete(room_id, target)).await?;
    let pushed = bob.event().await?;
    let held = pushed.seq == result.seq
        && pushed.sender.as_ref().is_some_and(|u| u.user_id == ada_user.id)
        && matches!(&pushed.kind, Some(Kind::MessageDeleted(d)) if d.target_seq == target);
    cx.check(
        "DEL-2",
        held,
        format!(
            "a member gets MessageDeleted #{} of #{target} sent by the deleter: {}",
            result.seq,
            show_event_brief(&pushed)
        ),
    );

    let stored = message_at(&mut bob, room_id, target).await?;
    let erased = stored.as_ref().is_some_and(|m| {
        m.text.is_empty()
            && m.mentions.is_empty()
            && m.reactions.is_empty()
            && m.client_txn_id == "de-1"
            && m.deleted.as_ref().is_some_and(|d| {
                d.by.as_ref().is_some_and(|u| u.user_id == ada_user.id) && d.at_ms == result.server_time_ms
            })
    });
    cx.check(
        "DEL-3",
        erased,
        format!(
            "history shows a tombstone: no text, mentions or reactions, the client_txn_id kept, deleted by ada at {}; got {stored:?}",
            result.server_time_ms
        ),
    );
    let edited_event = event_at(&mut bob, room_id, edit_result.seq).await?;
    let held = matches!(edited_event.as_ref().and_then(|e| e.kind.as_ref()),
        Some(Kind::MessageEdited(e)) if e.text.is_empty() && e.mentions.is_empty() && e.target_seq == target);
    cx.check(
        "DEL-3",
        held,
        format!(
            "the earlier MessageEdited event reads with its text and mentions erased: {}",
            edited_event.as_ref().map_or("not found".into(), show_event_brief)
        ),
    );
    let after = calls::mine(&mut bob, room_id).await?.map_or(0, |i| i.mention_count);
    cx.check(
        "DEL-3",
        before >= 1 && after == before - 1,
        format!("the deleted message no longer counts for bob's mention_count: {before} then {after}"),
    );

    sent(&mut ada, delete(room_id, located.seq)).await?;
    let stored = message_at(&mut bob, room_id, located.seq).await?;
    cx.check(
        "DEL-3",
        stored.as_ref().is_some_and(|m| m.location.is_none() && m.text.is_empty() && m.deleted.is_some()),
        format!("a deleted location message keeps no location: {stored:?}"),
    );
    let log = bob.room_log(room_id).await?;
    cx.check(
        "LOG-6",
        log.iter().any(|e| e.seq == target && as_message(e).is_some()),
        "the deleted message keeps its position in the log, as a message",
    );
    Ok(())
}

async fn delete_rights(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    cy.join(by_id(room_id)).await?;
    let adas = post(&mut ada, room_id, "by the owner", "dr-1").await?;
    let bobs = post(&mut bob, room_id, "by a member", "dr-2").await?;
    let bobs2 = post(&mut bob, room_id, "by a member, again", "dr-3").await?;
    let before = head(&mut ada, room_id).await?;

    let reply = bob.request(delete(room_id, adas)).await?;
    cx.check_refused("DEL-1", "a member deleting the owner's message", &reply, v1::ErrorCode::Forbidden);
    let reply = cy.request(delete(room_id, bobs)).await?;
    cx.check_refused("ROOM-11", "a member deleting another member's message", &reply, v1::ErrorCode::Forbidden);
    let reply = bob.request(delete(room_id, 2)).await?;
    cx.check_refused("DEL-1", "deleting a MemberJoined event", &reply, v1::ErrorCode::MessageNotFound);
    let reply = bob.request(delete(room_id, before + 4)).await?;
    cx.check_refused("DEL-1", "deleting beyond the head", &reply, v1::ErrorCode::MessageNotFound);
    let after = head(&mut ada, room_id).await?;
    cx.check("ERR-3", after == before, format!("the refused deletions appended nothing: head {before} then {after}"));

    let reply = bob.request(delete(room_id, bobs)).await?;
    cx.check("DEL-1", calls::is_sent(&reply), format!("the author deletes their own message: {}", brief(&reply)));
    let reply = ada.request(delete(room_id, bobs2)).await?;
    cx.check("ROOM-11", calls::is_sent(&reply), format!("the OWNER deletes a member's message: {}", brief(&reply)));

    for (what, command) in [
        ("deleting it again", delete(room_id, bobs)),
        ("editing it", edit(room_id, bobs, "back")),
        ("reacting to it", react(room_id, bobs, "👍", false)),
        ("replying to it", send(v1::SendMessage { reply_to_seq: bobs, ..message(room_id, "re", "dr-4") })),
        ("a thread message on it", send(v1::SendMessage { thread_root_seq: bobs, ..message(room_id, "th", "dr-5") })),
    ] {
        let reply = bob.request(command).await?;
        cx.check_refused("DEL-4", format!("after a deletion, {what}"), &reply, v1::ErrorCode::MessageNotFound);
    }
    Ok(())
}

// --- §20 ---

/// The reactions of a message as `(emoji, [user ids])`.
fn reaction_sets(message: &v1::Message) -> Vec<(String, Vec<u64>)> {
    message.reactions.iter().map(|r| (r.emoji.clone(), r.users.iter().map(|u| u.user_id).collect())).collect()
}

async fn react_sets(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let target = post(&mut ada, room_id, "react to me", "rs-1").await?;
    ada.go_live().await?;
    let room_head = head(&mut ada, room_id).await?;

    let added = sent(&mut bob, react(room_id, target, "👍", false)).await?;
    cx.check(
        "REACT-2",
        added.seq == room_head + 1 && !added.duplicate,
        format!("a new reaction is appended at #{}: {added:?}", room_head + 1),
    );
    let pushed = ada.event().await?;
    let held = pushed.sender.as_ref().is_some_and(|u| u.user_id == bob_user.id)
        && matches!(&pushed.kind, Some(Kind::ReactionAdded(r)) if r.target_seq == target && r.emoji == "👍");
    cx.check(
        "REACT-2",
        held,
        format!("the author gets ReactionAdded 👍 to #{target} by bob: {}", show_event_brief(&pushed)),
    );

    let twice = bob.request(react(room_id, target, "👍", false)).await?;
    cx.check(
        "REACT-2",
        sent_of(&twice).is_some_and(|s| s.seq == 0 && s.duplicate),
        format!("adding the same reaction again: SendResult seq 0, duplicate; got {}", show_reply(&twice)),
    );
    let absent = ada.request(react(room_id, target, "🎉", true)).await?;
    cx.check(
        "REACT-2",
        sent_of(&absent).is_some_and(|s| s.seq == 0 && s.duplicate),
        format!("removing a reaction never made: SendResult seq 0, duplicate; got {}", show_reply(&absent)),
    );
    let stray = ada.events_until_quiet(QUIET).await?;
    cx.check("REACT-2", stray.is_empty(), format!("nothing was appended for them: {}", show_events_brief(&stray)));

    for (who, emoji) in [("ada", "👍"), ("bob", "🏳️‍🌈"), ("ada", "👍🏽")] {
        let conn = if who == "ada" { &mut ada } else { &mut bob };
        let reply = conn.request(react(room_id, target, emoji, false)).await?;
        cx.check("REACT-1", calls::is_sent(&reply), format!("{emoji} is one emoji: {}", brief(&reply)));
    }
    let stored = message_at(&mut bob, room_id, target).await?.unwrap_or_default();
    let expected = vec![
        ("👍".to_owned(), vec![bob_user.id, ada_user.id]),
        ("🏳️‍🌈".to_owned(), vec![bob_user.id]),
        ("👍🏽".to_owned(), vec![ada_user.id]),
    ];
    cx.check(
        "REACT-3",
        reaction_sets(&stored) == expected && stored.reactions.iter().all(|r| r.count as usize == r.users.len()),
        format!(
            "reactions by first addition, users in order, counts: expected {expected:?}, got {:?}",
            stored.reactions
        ),
    );

    let removed = sent(&mut bob, react(room_id, target, "👍", true)).await?;
    cx.check(
        "REACT-2",
        removed.seq > 0 && !removed.duplicate,
        format!("removing a reaction appends an event: {removed:?}"),
    );
    let event = event_at(&mut ada, room_id, removed.seq).await?;
    cx.check(
        "REACT-2",
        matches!(event.as_ref().and_then(|e| e.kind.as_ref()),
            Some(Kind::ReactionRemoved(r)) if r.target_seq == target && r.emoji == "👍"),
        format!(
            "it is ReactionRemoved 👍 of #{target}: {}",
            event.as_ref().map_or("not found".into(), show_event_brief)
        ),
    );
    sent(&mut ada, react(room_id, target, "👍", true)).await?;
    let stored = message_at(&mut bob, room_id, target).await?.unwrap_or_default();
    let expected = vec![("🏳️‍🌈".to_owned(), vec![bob_user.id]), ("👍🏽".to_owned(), vec![ada_user.id])];
    cx.check(
        "REACT-3",
        reaction_sets(&stored) == expected,
        format!("👍 disappears once its last user removed it: expected {expected:?}, got {:?}", reaction_sets(&stored)),
    );
    sent(&mut ada, react(room_id, target, "👍", false)).await?;
    let stored = message_at(&mut bob, room_id, target).await?.unwrap_or_default();
    let order: Vec<String> = stored.reactions.iter().map(|r| r.emoji.clone()).collect();
    cx.check(
        "LOG-6",
        order == ["🏳️‍🌈", "👍🏽", "👍"],
        format!("👍 added again comes last, after the emojis still present: {order:?}"),
    );
    Ok(())
}

/// 21 distinct single emojis.
const EMOJIS: [&str; 21] = [
    "😀", "😂", "😍", "😎", "🤔", "😴", "🤯", "🥳", "😇", "🙃", "🤖", "👻", "🐱", "🐶", "🦊", "🐼", "🌵", "🍕", "⚽",
    "🚀", "🎸",
];

async fn react_refused(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut cy, _) = cx.user("cy").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    let target = post(&mut ada, room_id, "react to me", "rr-1").await?;
    let before = head(&mut ada, room_id).await?;
    for (what, emoji) in [
        ("a word", "ok"),
        ("two emojis", "👍👍"),
        ("an empty string", ""),
        ("an emoji and text", "👍 yes"),
        ("a letter", "a"),
    ] {
        let reply = ada.request(react(room_id, target, emoji, false)).await?;
        cx.check_refused("REACT-1", format!("{what} ({emoji:?})"), &reply, v1::ErrorCode::InvalidArgument);
    }
    let reply = ada.request(react(room_id, 1, "👍", false)).await?;
    cx.check_refused("REACT-1", "a reaction to RoomCreated", &reply, v1::ErrorCode::MessageNotFound);
    let reply = cy.request(react(room_id, target, "👍", false)).await?;
    cx.check_refused("REACT-1", "a reaction in a public room not joined", &reply, v1::ErrorCode::NotAMember);
    let after = head(&mut ada, room_id).await?;
    cx.check("ERR-3", after == before, format!("the refused reactions appended nothing: head {before} then {after}"));

    for emoji in &EMOJIS[..20] {
        let reply = ada.request(react(room_id, target, emoji, false)).await?;
        if !calls::is_sent(&reply) {
            return Err(Stop::Failed(format!("reaction {emoji} (of 20 distinct ones): {}", brief(&reply))));
        }
    }
    let reply = ada.request(react(room_id, target, EMOJIS[20], false)).await?;
    cx.check_refused("REACT-1", "a 21st distinct emoji", &reply, v1::ErrorCode::InvalidArgument);
    Ok(())
}

// --- §21 ---

async fn mention_parsed(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (mut cy, cy_user) = cx.user("cy").await?;
    let (_dan, dan_user) = cx.user("dan").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    cy.join(by_id(room_id)).await?;
    ada.go_live().await?;
    let (bob_name, cy_name, dan_name) = (&bob_user.name, &cy_user.name, &dan_user.name);
    let bob_pair = (bob_name.clone(), bob_user.id);
    let cy_pair = (cy_name.clone(), cy_user.id);

    let cases: Vec<(String, Vec<(String, u64)>, &str)> = vec![
        (
            format!(
                "hi @{} and {bob_name}@example.com, `@{cy_name}` @{dan_name} @nobody0x @{bob_name} again",
                bob_name.to_uppercase()
            ),
            vec![bob_pair.clone()],
            "upper case, once; not in an address, in code, a non-member or an unknown name",
        ),
        (format!("@{cy_name} then @{bob_name}"), vec![cy_pair.clone(), bob_pair.clone()], "in order of appearance"),
        (format!("thanks @{cy_name}."), vec![cy_pair.clone()], "a trailing dot ends the name"),
        (format!("```\n@{bob_name}\n```\n(@{cy_name})"), vec![cy_pair.clone()], "not in a code block; after ("),
    ];
    for (i, (text, expected, what)) in cases.iter().enumerate() {
        let result = ada.send_message(room_id, text, &format!("mp-{i}")).await?;
        let pushed = ada.event().await?;
        let got = as_message(&pushed).map(|m| users(&m.mentions));
        cx.check(
            "MENTION-1",
            got.as_ref() == Some(expected),
            format!("{what}: {text:?} mentions {expected:?}; the pushed message lists {got:?}"),
        );
        let stored = message_at(&mut ada, room_id, result.seq).await?;
        let got = stored.as_ref().map(|m| (users(&m.mentions), m.text.clone(), m.mentions_room));
        cx.check(
            "MENTION-2",
            got.as_ref().is_some_and(|(m, t, r)| m == expected && t == text && !r),
            format!("history lists the same mentions as Users, keeps the text, and no @room: {got:?}"),
        );
    }
    Ok(())
}

async fn mention_room(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let room_id = shared_room(&cx, &mut ada, &mut bob).await?;
    let before = head(&mut ada, room_id).await?;
    let reply = bob.request(send(message(room_id, "hey @room look", "mr-1"))).await?;
    cx.check_refused("MENTION-3", "@room by a MEMBER of a PUBLIC room", &reply, v1::ErrorCode::Forbidden);
    let after = head(&mut ada, room_id).await?;
    cx.check("ERR-3", after == before, format!("the refused message appended nothing: head {before} then {after}"));

    let owner = sent(&mut ada, send(message(room_id, "@room meeting at 5", "mr-2"))).await?;
    let stored = message_at(&mut bob, room_id, owner.seq).await?;
    cx.check(
        "ROOM-11",
        stored.as_ref().is_some_and(|m| m.mentions_room),
        format!("the OWNER may mention @room: mentions_room {:?}", stored.map(|m| m.mentions_room)),
    );
    let self_mention = sent(&mut ada, send(message(room_id, &format!("note to @{}", ada_user.name), "mr-3"))).await?;
    let stored = message_at(&mut ada, room_id, self_mention.seq).await?;
    cx.check(
        "MENTION-2",
        stored.as_ref().is_some_and(|m| users(&m.mentions) == [(ada_user.name.clone(), ada_user.id)]),
        format!("a sender may mention themselves: {:?}", stored.map(|m| users(&m.mentions))),
    );

    let plain = post(&mut bob, room_id, "plain words", "mr-4").await?;
    let reply = bob.request(edit(room_id, plain, "now @room")).await?;
    cx.check_refused("MENTION-3", "an edit adding @room by a MEMBER", &reply, v1::ErrorCode::Forbidden);

    let direct = ada.open_direct(&bob_user.name).await?;
    let reply = bob.request(send(message(direct.room_id, "@room in private", "mr-5"))).await?;
    let seq = sent_of(&reply).map(|s| s.seq);
    cx.check("MENTION-3", seq.is_some(), format!("anyone may mention @room in a DIRECT room: {}", brief(&reply)));
    if let Some(seq) = seq {
        let stored = message_at(&mut ada, direct.room_id, seq).await?;
        cx.check(
            "MENTION-2",
            stored.as_ref().is_some_and(|m| m.mentions_room),
            format!("mentions_room is set: {:?}", stored.map(|m| m.mentions_room)),
        );
    }
    Ok(())
}

// --- §29 ---

async fn location_shared(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    let place = v1::Location { latitude: -33.8568, longitude: 151.2153, label: "Sydney Opera House 🎭".into() };
    let result =
        sent(&mut ada, send(v1::SendMessage { location: Some(place.clone()), ..message(room_id, "", "lo-1") })).await?;
    let stored = message_at(&mut ada, room_id, result.seq).await?;
    cx.check(
        "LOC-1",
        stored.as_ref().is_some_and(|m| m.location.as_ref() == Some(&place) && m.text.is_empty()),
        format!("a location message with no text carries the location as sent: {stored:?}"),
    );
    let edge = v1::Location { latitude: 90.0, longitude: -180.0, label: "é".repeat(128) };
    let reply = ada.request(send(v1::SendMessage { location: Some(edge), ..message(room_id, " ", "lo-2") })).await?;
    cx.check(
        "SEND-1",
        calls::is_sent(&reply),
        format!("the pole at -180° with a 256-byte label and blank text is accepted: {}", brief(&reply)),
    );
    let before = head(&mut ada, room_id).await?;
    let bad: [(&str, v1::Location); 4] = [
        ("latitude 90.5", v1::Location { latitude: 90.5, longitude: 0.0, label: String::new() }),
        ("latitude -91", v1::Location { latitude: -91.0, longitude: 0.0, label: String::new() }),
        ("longitude 180.01", v1::Location { latitude: 0.0, longitude: 180.01, label: String::new() }),
        ("a 257-byte label", v1::Location { latitude: 1.0, longitude: 1.0, label: "x".repeat(257) }),
    ];
    for (i, (what, location)) in bad.into_iter().enumerate() {
        let reply = ada
            .request(send(v1::SendMessage { location: Some(location), ..message(room_id, "bad", &format!("lo-b{i}")) }))
            .await?;
        cx.check_refused("LOC-1", what, &reply, v1::ErrorCode::InvalidArgument);
    }
    let reply = if cx.wire().is_json() {
        // serde_json writes NaN as null; the JSON mapping spells it "NaN".
        let text = format!(
            r#"{{"requestId":"60001","sendMessage":{{"room":{{"id":"{room_id}"}},"text":"bad","clientTxnId":"lo-nan","location":{{"latitude":"NaN"}}}}}}"#
        );
        ada.send_payload(text).await?;
        ada.reply_of(60_001).await?
    } else {
        let nan = v1::Location { latitude: f64::NAN, longitude: 0.0, label: String::new() };
        ada.request(send(v1::SendMessage { location: Some(nan), ..message(room_id, "bad", "lo-nan") })).await?
    };
    cx.check_refused("LOC-1", "latitude NaN", &reply, v1::ErrorCode::InvalidArgument);
    let reply = ada.request(send(message(room_id, "", "lo-3"))).await?;
    cx.check_refused("SEND-1", "no text, no attachment, no location", &reply, v1::ErrorCode::InvalidArgument);
    let after = head(&mut ada, room_id).await?;
    cx.check("ERR-3", after == before, format!("the refused messages appended nothing: head {before} then {after}"));
    Ok(())
}

// --- §14 at level 2 ---

async fn idem_whole_content(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    let first = post(&mut ada, room_id, "first", "iw-0").await?;
    let second = post(&mut ada, room_id, "second", "iw-00").await?;
    let place = v1::Location { latitude: 1.5, longitude: 2.5, label: String::new() };
    let original =
        v1::SendMessage { reply_to_seq: first, location: Some(place.clone()), ..message(room_id, "re", "iw-1") };
    let result = sent(&mut ada, send(original.clone())).await?;
    let again = sent(&mut ada, send(original.clone())).await?;
    cx.check(
        "IDEM-2",
        again.duplicate && again.seq == result.seq,
        format!("the same content again is the original SendResult marked duplicate: {again:?}"),
    );
    let other_reply = v1::SendMessage { reply_to_seq: second, ..original.clone() };
    let reply = ada.request(send(other_reply)).await?;
    cx.check_refused(
        "IDEM-3",
        "the same transaction id replying to another message",
        &reply,
        v1::ErrorCode::TxnConflict,
    );
    let other_place = v1::SendMessage {
        location: Some(v1::Location { latitude: 1.5, longitude: 2.6, label: String::new() }),
        ..original.clone()
    };
    let reply = ada.request(send(other_place)).await?;
    cx.check_refused("IDEM-3", "the same transaction id at another location", &reply, v1::ErrorCode::TxnConflict);
    let in_thread = v1::SendMessage { thread_root_seq: first, ..original };
    let reply = ada.request(send(in_thread)).await?;
    cx.check_refused("IDEM-1", "the same transaction id, now in a thread", &reply, v1::ErrorCode::TxnConflict);
    Ok(())
}

// --- HELLO-7 ---

async fn level_1_client(cx: Ctx) -> CaseResult {
    let (mut ada, _) = cx.user("ada").await?;
    let mut old = cx.connect("old").await?;
    let welcome = old
        .call(Command::Hello(v1::Hello { feature_level: 1, ..hello() }), "Welcome", |b| match b {
            Body::Welcome(w) => Some(w),
            _ => None,
        })
        .await?;
    cx.check(
        "HELLO-3",
        welcome.feature_level == 1,
        format!("a client of level 1 gets level 1: {}", welcome.feature_level),
    );
    let name = cx.name("old");
    old.register(&name, super::ctx::PASSWORD).await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    let joined = old.join(by_id(room_id)).await?;
    old.go_live().await?;
    let target = post(&mut ada, room_id, "for everyone", "l1-1").await?;
    sent(&mut ada, edit(room_id, target, "for everyone, edited")).await?;
    sent(&mut ada, react(room_id, target, "👍", false)).await?;
    let own = post(&mut old, room_id, "an old client still talks", "l1-2").await?;
    let events = old.events(4).await?;
    let got: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (joined.head_seq + 1..=own).collect();
    cx.check(
        "HELLO-7",
        got == expected,
        format!(
            "the level-1 session gets every event, the level-2 kinds included, in order: expected seqs {expected:?}, got {}",
            show_events_brief(&events)
        ),
    );
    cx.check(
        "LOG-5",
        got.last() == Some(&own),
        "after events of kinds a level-1 client skips, its own message comes at the next position",
    );
    let stored = message_at(&mut old, room_id, target).await?;
    cx.check(
        "HELLO-7",
        stored.as_ref().is_some_and(|m| m.text == "for everyone, edited"),
        format!("its history shows the message in its current state: {:?}", stored.map(|m| m.text)),
    );
    Ok(())
}
