//! Conversation features through the real daemon: replies and their quotes,
//! threads, edits, deletions (the text erased from the store), reactions,
//! mentions, locations and attachments, who may do what, and that all of it
//! survives a restart and replays in its current state on Resume.

mod support;

use confab_sdk::{
    Client, RoomId, SendOptions, Seq,
    v1::{self, ErrorCode, HistoryDirection, client_frame::Command, room_event::Kind, server_frame::Body},
};
use support::{TestDaemon, Wire, code, next_room_event, within};

/// Every event of a room (at most 100), oldest first.
async fn history(client: &Client, room: &str) -> Vec<v1::RoomEvent> {
    client.history(room, HistoryDirection::Backward, Seq(0), 100).await.unwrap().events
}

/// The event at `seq` as history shows it now.
async fn event_at(client: &Client, room: &str, seq: u64) -> v1::RoomEvent {
    history(client, room).await.into_iter().find(|e| e.seq == seq).unwrap_or_else(|| panic!("no event {seq}"))
}

fn message(event: &v1::RoomEvent) -> &v1::Message {
    match &event.kind {
        Some(Kind::Message(message)) => message,
        other => panic!("not a message: {other:?}"),
    }
}

async fn message_at(client: &Client, room: &str, seq: u64) -> v1::Message {
    message(&event_at(client, room, seq).await).clone()
}

fn names(users: &[v1::User]) -> Vec<&str> {
    users.iter().map(|u| u.name.as_str()).collect()
}

/// The next room event whose kind `pick` accepts.
async fn next_matching<T>(client: &Client, mut pick: impl FnMut(&v1::RoomEvent) -> Option<T>) -> T {
    loop {
        let event = next_room_event(client).await;
        if let Some(found) = pick(&event) {
            return found;
        }
    }
}

/// alice (owner) creates public room `room`; the others join it.
async fn room_with(td: &TestDaemon, room: &str, people: &[(&str, Wire)]) -> Vec<Client> {
    let mut clients = Vec::new();
    for (i, (name, wire)) in people.iter().enumerate() {
        let client = td.user(*wire, name).await;
        if i == 0 {
            client.create_room(room, v1::RoomKind::Public).await.unwrap();
        } else {
            client.join(room).await.unwrap();
        }
        clients.push(client);
    }
    clients
}

#[tokio::test]
async fn replies_quote_the_current_text_of_their_target_over_every_wire() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let room = format!("replies{i}");
        let people = room_with(&td, &room, &[(&format!("alice{i}"), wire), (&format!("bob{i}"), Wire::Quic)]).await;
        let (alice, bob) = (&people[0], &people[1]);
        let long = format!("{}{}", "é".repeat(139), "xyz and more");
        let target = alice.send(room.as_str(), &long).await.unwrap().seq;
        let reply = bob.reply(room.as_str(), Seq(target), "indeed").await.unwrap().seq;

        // Live: the reply arrives with its quote.
        let live = next_matching(alice, |e| (e.seq == reply).then(|| message(e).clone())).await;
        let quoted = live.reply_to.expect("reply_to");
        assert_eq!((quoted.seq, quoted.deleted), (target, false), "{wire:?}");
        assert_eq!(quoted.quote, format!("{}x…", "é".repeat(139)));
        assert_eq!(quoted.sender.unwrap().name, format!("alice{i}"));

        // History quotes the target as it is now.
        alice.edit(room.as_str(), Seq(target), "shorter now").await.unwrap();
        let read = message_at(bob, &room, reply).await.reply_to.unwrap();
        assert_eq!((read.quote.as_str(), read.deleted), ("shorter now", false));
        alice.delete_message(room.as_str(), Seq(target)).await.unwrap();
        let read = message_at(bob, &room, reply).await.reply_to.unwrap();
        assert_eq!((read.seq, read.quote.as_str(), read.deleted), (target, "", true));

        // Replies need a live message of the same room.
        assert_eq!(code(bob.reply(room.as_str(), Seq(target), "too late").await), ErrorCode::MessageNotFound);
        assert_eq!(code(bob.reply(room.as_str(), Seq(1), "to a join").await), ErrorCode::MessageNotFound);
        assert_eq!(code(bob.reply(room.as_str(), Seq(9999), "nothing").await), ErrorCode::MessageNotFound);
    }
}

#[tokio::test]
async fn threads_keep_a_summary_on_their_root_and_page_with_get_thread() {
    let td = TestDaemon::start().await;
    let people = room_with(&td, "general", &[("alice", Wire::WsJson), ("bob", Wire::Quic)]).await;
    let (alice, bob) = (&people[0], &people[1]);
    let root = alice.send("general", "what shall we build?").await.unwrap().seq;
    alice.send("general", "in the main timeline").await.unwrap();
    let mut replies = Vec::new();
    for n in 0..7 {
        let (who, name) = if n % 3 == 0 { (bob, "bob") } else { (alice, "alice") };
        let options = SendOptions::new().in_thread(Seq(root));
        replies.push(who.send_with("general", &format!("{name} {n}"), options).await.unwrap().seq);
    }

    let root_now = message_at(alice, "general", root).await;
    let thread = root_now.thread.expect("thread summary");
    assert_eq!((thread.reply_count, thread.last_reply_seq), (7, replies[6]));
    assert!(thread.last_reply_at_ms > 0);
    assert_eq!(names(&thread.participants), ["bob", "alice"], "in order of first reply");
    // Thread messages are ordinary messages of the log too.
    assert_eq!(message_at(bob, "general", replies[0]).await.thread_root_seq, root);

    // Backward from the newest, then older pages.
    let mut seen = Vec::new();
    let mut anchor = Seq(0);
    loop {
        let page = bob.thread("general", Seq(root), HistoryDirection::Backward, anchor, 3).await.unwrap();
        assert_eq!(page.thread_root.as_ref().map(|r| r.seq), Some(root));
        assert_eq!(page.head_seq, *replies.last().unwrap());
        let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
        seen.splice(0..0, seqs);
        if !page.has_more {
            break;
        }
        anchor = Seq(page.events[0].seq);
    }
    assert_eq!(seen, replies);
    let forward = bob.thread("general", Seq(root), HistoryDirection::Forward, Seq(replies[1]), 2).await.unwrap();
    assert_eq!(forward.events.iter().map(|e| e.seq).collect::<Vec<_>>(), replies[2..4]);
    assert!(forward.has_more);
    let tail = bob.thread("general", Seq(root), HistoryDirection::Forward, Seq(replies[5]), 10).await.unwrap();
    assert_eq!(tail.events.len(), 1);
    assert!(!tail.has_more);

    // Threads do not nest; roots must be messages.
    let nested = SendOptions::new().in_thread(Seq(replies[0]));
    assert_eq!(code(alice.send_with("general", "deeper", nested).await), ErrorCode::InvalidArgument);
    let nowhere = SendOptions::new().in_thread(Seq(9999));
    assert_eq!(code(alice.send_with("general", "lost", nowhere).await), ErrorCode::MessageNotFound);
    assert_eq!(
        code(bob.thread("general", Seq(1), HistoryDirection::Backward, Seq(0), 10).await),
        ErrorCode::MessageNotFound
    );
    assert_eq!(
        code(bob.thread("general", Seq(root), HistoryDirection::Backward, Seq(0), 1000).await),
        ErrorCode::InvalidArgument
    );

    // A deleted root keeps its thread.
    alice.delete_message("general", Seq(root)).await.unwrap();
    let page = bob.thread("general", Seq(root), HistoryDirection::Backward, Seq(0), 50).await.unwrap();
    assert_eq!(page.events.len(), 7);
    let root_now = message(page.thread_root.as_ref().unwrap()).clone();
    assert!(root_now.deleted.is_some() && root_now.text.is_empty());
    assert_eq!(root_now.thread.unwrap().reply_count, 7);
    // ... but takes no new replies.
    let options = SendOptions::new().in_thread(Seq(root));
    assert_eq!(code(bob.send_with("general", "after", options).await), ErrorCode::MessageNotFound);
}

#[tokio::test]
async fn edits_replace_the_text_and_are_pushed() {
    let td = TestDaemon::start().await;
    let people = room_with(&td, "general", &[("alice", Wire::WsProto), ("bob", Wire::WsJson)]).await;
    let (alice, bob) = (&people[0], &people[1]);
    let seq = alice.send("general", "frist").await.unwrap().seq;
    let edit = alice.edit("general", Seq(seq), "first").await.unwrap();
    assert!(edit.seq > seq && !edit.duplicate);

    let pushed = next_matching(bob, |e| match &e.kind {
        Some(Kind::MessageEdited(edited)) => Some((e.seq, edited.clone(), e.sender.clone().unwrap().name)),
        _ => None,
    })
    .await;
    assert_eq!((pushed.0, pushed.1.target_seq, pushed.1.text.as_str()), (edit.seq, seq, "first"));
    assert_eq!(pushed.2, "alice");

    let now = message_at(bob, "general", seq).await;
    assert_eq!(now.text, "first");
    assert!(now.edited_at_ms >= edit.server_time_ms && now.edited_at_ms > 0);
    // Editing to the same text still appends an event.
    let again = alice.edit("general", Seq(seq), "first").await.unwrap();
    assert_eq!(again.seq, edit.seq + 1);

    assert_eq!(code(bob.edit("general", Seq(seq), "mine now").await), ErrorCode::Forbidden);
    assert_eq!(code(alice.edit("general", Seq(9999), "?").await), ErrorCode::MessageNotFound);
    assert_eq!(code(alice.edit("general", Seq(1), "a creation").await), ErrorCode::MessageNotFound);
    assert_eq!(code(alice.edit("general", Seq(edit.seq), "an edit").await), ErrorCode::MessageNotFound);
    assert_eq!(code(alice.edit("general", Seq(seq), "  ").await), ErrorCode::InvalidArgument);
    assert_eq!(code(alice.edit("general", Seq(seq), &"x".repeat(20_000)).await), ErrorCode::MessageTooLong);
    assert_eq!(code(alice.edit("nowhere", Seq(seq), "x").await), ErrorCode::RoomNotFound);
    let carol = td.user(Wire::Quic, "carol").await;
    assert_eq!(code(carol.edit("general", Seq(seq), "x").await), ErrorCode::NotAMember);
    // The session carries on.
    alice.send("general", "still here").await.unwrap();
}

#[tokio::test]
async fn deletions_leave_a_tombstone_and_erase_the_text_from_the_store() {
    let mut td = TestDaemon::start().await;
    let people =
        room_with(&td, "general", &[("alice", Wire::Quic), ("bob", Wire::WsProto), ("carol", Wire::WsJson)]).await;
    let (alice, bob, carol) = (&people[0], &people[1], &people[2]);
    let room = RoomId(alice.join("general").await.unwrap().room_id);
    let mine = alice.send("general", "a secret plan for @carol").await.unwrap().seq;
    let edit = alice.edit("general", Seq(mine), "a secret plan, revised").await.unwrap().seq;
    let theirs = bob.send("general", "bob's secret too").await.unwrap().seq;
    bob.react("general", Seq(mine), "👍").await.unwrap();

    // A member may delete only their own messages.
    assert_eq!(code(bob.delete_message("general", Seq(mine)).await), ErrorCode::Forbidden);
    let deleted = alice.delete_message("general", Seq(mine)).await.unwrap();
    let pushed = next_matching(bob, |e| match &e.kind {
        Some(Kind::MessageDeleted(d)) => Some((e.seq, d.target_seq)),
        _ => None,
    })
    .await;
    assert_eq!(pushed, (deleted.seq, mine));
    // The owner (creator) may delete anyone's.
    alice.delete_message("general", Seq(theirs)).await.unwrap();
    assert_eq!(code(alice.delete_message("general", Seq(mine)).await), ErrorCode::MessageNotFound);
    assert_eq!(code(bob.react("general", Seq(mine), "👍").await), ErrorCode::MessageNotFound);
    assert_eq!(code(alice.edit("general", Seq(mine), "back").await), ErrorCode::MessageNotFound);

    let tombstone = message_at(bob, "general", mine).await;
    assert_eq!(tombstone.text, "");
    assert!(tombstone.mentions.is_empty() && tombstone.reactions.is_empty());
    let deletion = tombstone.deleted.expect("deleted");
    assert_eq!((deletion.by.unwrap().name.as_str(), deletion.at_ms > 0), ("alice", true));
    assert_eq!(message_at(bob, "general", theirs).await.deleted.unwrap().by.unwrap().name, "alice");
    match &event_at(bob, "general", edit).await.kind {
        Some(Kind::MessageEdited(edited)) => assert_eq!(edited.text, ""),
        other => panic!("{other:?}"),
    }

    // A retry of the deleted send is answered as the same send, whatever
    // it says: nothing is kept to compare it with.
    let txn_id = tombstone.client_txn_id.clone();
    let retried = alice.send_with_txn("general", "something else", &txn_id).await.unwrap();
    assert_eq!((retried.seq, retried.duplicate), (mine, true));

    // Nothing of the text is left in the stored records, nor its mention
    // (the one that stays is another message's), nor a digest of it.
    alice.send("general", "@carol, another").await.unwrap();
    let carol_id = carol.user().unwrap().user_id;
    let alice_id = alice.user().unwrap().user_id;
    td.stop().await;
    let store = confabd::store::Store::open(&td.dir.path().join("confab.redb")).unwrap();
    let head = store.room(room).unwrap().unwrap().head_seq;
    for (seq, record) in store.events(room, Seq(1), Seq(head), 1000, false).unwrap() {
        let text = match &record.kind {
            Some(confabd::store::EventKind::Message(body)) => body.text.clone(),
            Some(confabd::store::EventKind::MessageEdited(edited)) => edited.text.clone(),
            _ => continue,
        };
        assert!(!text.contains("secret"), "event {seq:?} still holds {text:?}");
    }
    let position = store.position(room, confabd::ids::UserId(carol_id)).unwrap().unwrap();
    assert_eq!(position.mentions, 1, "the deleted message's mention is gone");
    let claimed = store.txn(confabd::ids::UserId(alice_id), &txn_id).unwrap().expect("the txn id stays claimed");
    assert!(claimed.text_digest.is_empty(), "no digest of the deleted text stays");
}

#[tokio::test]
async fn in_a_direct_conversation_only_the_author_deletes() {
    let td = TestDaemon::start().await;
    let bob = td.user(Wire::Quic, "bob").await;
    let carol = td.user(Wire::WsJson, "carol").await;
    let dm = RoomId(bob.open_direct("carol").await.unwrap().room_id);
    let hers = carol.send(dm, "mine to keep").await.unwrap().seq;
    let his = bob.send(dm, "mine to take back").await.unwrap().seq;

    // Both are owners of the conversation, yet neither erases the other.
    match bob.delete_message(dm, Seq(hers)).await {
        Err(confab_sdk::Error::Server(error)) => {
            assert_eq!(error.code, ErrorCode::Forbidden as i32);
            assert_eq!(error.message, "in a direct conversation only the author can delete a message");
        }
        other => panic!("expected FORBIDDEN, got {other:?}"),
    }
    assert_eq!(code(carol.delete_message(dm, Seq(his)).await), ErrorCode::Forbidden);
    assert!(message_at_room(&carol, dm, hers).await.deleted.is_none());
    bob.delete_message(dm, Seq(his)).await.unwrap();
    carol.delete_message(dm, Seq(hers)).await.unwrap();
    assert!(message_at_room(&bob, dm, hers).await.deleted.is_some());
}

/// The message at `seq` of room `room` as history shows it now.
async fn message_at_room(client: &Client, room: RoomId, seq: u64) -> v1::Message {
    let page = client.history(room, HistoryDirection::Backward, Seq(0), 100).await.unwrap();
    message(page.events.iter().find(|e| e.seq == seq).unwrap_or_else(|| panic!("no event {seq}"))).clone()
}

#[tokio::test]
async fn reactions_are_sets_of_emoji_and_user() {
    let td = TestDaemon::start().await;
    let people =
        room_with(&td, "general", &[("alice", Wire::WsJson), ("bob", Wire::Quic), ("carol", Wire::WsProto)]).await;
    let (alice, bob, carol) = (&people[0], &people[1], &people[2]);
    let seq = alice.send("general", "react to me").await.unwrap().seq;

    let added = bob.react("general", Seq(seq), "👍").await.unwrap();
    assert!(added.seq > seq && !added.duplicate);
    let pushed = next_matching(alice, |e| match &e.kind {
        Some(Kind::ReactionAdded(r)) => Some((e.seq, r.target_seq, r.emoji.clone())),
        _ => None,
    })
    .await;
    assert_eq!(pushed, (added.seq, seq, "👍".to_owned()));
    carol.react("general", Seq(seq), "👍").await.unwrap();
    bob.react("general", Seq(seq), "🏳️‍🌈").await.unwrap();
    bob.react("general", Seq(seq), "👍🏽").await.unwrap();
    let again = bob.react("general", Seq(seq), "👍").await.unwrap();
    assert_eq!((again.seq, again.duplicate), (0, true));

    let reactions = message_at(alice, "general", seq).await.reactions;
    let shown: Vec<(&str, u32, Vec<&str>)> =
        reactions.iter().map(|r| (r.emoji.as_str(), r.count, names(&r.users))).collect();
    assert_eq!(shown, [("👍", 2, vec!["bob", "carol"]), ("🏳️‍🌈", 1, vec!["bob"]), ("👍🏽", 1, vec!["bob"])]);

    let removed = bob.unreact("general", Seq(seq), "🏳️‍🌈").await.unwrap();
    assert!(removed.seq > added.seq && !removed.duplicate);
    let pushed = next_matching(alice, |e| match &e.kind {
        Some(Kind::ReactionRemoved(r)) => Some((e.seq, r.emoji.clone())),
        _ => None,
    })
    .await;
    assert_eq!(pushed, (removed.seq, "🏳️‍🌈".to_owned()));
    let none = bob.unreact("general", Seq(seq), "🏳️‍🌈").await.unwrap();
    assert_eq!((none.seq, none.duplicate), (0, true));
    assert_eq!(bob.unreact("general", Seq(seq), "🎉").await.unwrap().seq, 0);
    bob.unreact("general", Seq(seq), "👍").await.unwrap();
    let shown: Vec<(String, Vec<String>)> = message_at(alice, "general", seq)
        .await
        .reactions
        .iter()
        .map(|r| (r.emoji.clone(), r.users.iter().map(|u| u.name.clone()).collect()))
        .collect();
    assert_eq!(shown, [("👍".to_owned(), vec!["carol".to_owned()]), ("👍🏽".to_owned(), vec!["bob".to_owned()])]);

    for bad in ["x", "", "👍👍", ":+1:", "👍 "] {
        assert_eq!(code(bob.react("general", Seq(seq), bad).await), ErrorCode::InvalidArgument, "{bad:?}");
    }
    assert_eq!(code(bob.react("general", Seq(9999), "👍").await), ErrorCode::MessageNotFound);
    assert_eq!(code(bob.react("general", Seq(1), "👍").await), ErrorCode::MessageNotFound);

    // At most 20 distinct emojis on one message.
    let many =
        ["😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "🙃", "😉", "😊", "😇", "🥰", "😍", "🤩", "😘", "😗"];
    for emoji in many {
        carol.react("general", Seq(seq), emoji).await.unwrap();
    }
    assert_eq!(code(carol.react("general", Seq(seq), "😚").await), ErrorCode::InvalidArgument);
    assert!(carol.react("general", Seq(seq), "😀").await.unwrap().duplicate);
    // An emoji already there takes more users.
    assert!(!bob.react("general", Seq(seq), "😀").await.unwrap().duplicate);
    assert_eq!(message_at(alice, "general", seq).await.reactions.len(), 20);
}

#[tokio::test]
async fn mentions_name_members_and_room_mentions_need_a_moderator() {
    let mut td = TestDaemon::start().await;
    let people =
        room_with(&td, "general", &[("alice", Wire::WsProto), ("bob", Wire::Quic), ("carol", Wire::WsJson)]).await;
    let (alice, bob, carol) = (&people[0], &people[1], &people[2]);
    td.user(Wire::WsProto, "dave").await; // registered, not in the room
    let guest = td.client(Wire::Quic).await;
    guest.guest("visitor").await.unwrap();
    guest.join("general").await.unwrap();

    let text = "hi @Carol, @dave @alice and @VISITOR! mail bob@example.com `@bob` @carol";
    let seq = bob.send("general", text).await.unwrap().seq;
    let live = next_matching(carol, |e| (e.seq == seq).then(|| message(e).clone())).await;
    assert_eq!(names(&live.mentions), ["carol", "alice", "visitor"]);
    assert!(live.mentions[2].guest);
    assert!(!live.mentions_room);
    let stored = message_at(alice, "general", seq).await;
    assert_eq!(names(&stored.mentions), ["carol", "alice", "visitor"]);
    assert_eq!(stored.text, text, "the text stays as written");

    // An edit re-reads the mentions.
    let edit = bob.edit("general", Seq(seq), "only @bob and @visitor now").await.unwrap().seq;
    match &event_at(alice, "general", edit).await.kind {
        Some(Kind::MessageEdited(edited)) => assert_eq!(names(&edited.mentions), ["bob", "visitor"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(names(&message_at(alice, "general", seq).await.mentions), ["bob", "visitor"]);

    // @room: moderators and above in public and private rooms.
    assert_eq!(code(bob.send("general", "hey @room").await), ErrorCode::Forbidden);
    let everyone = alice.send("general", "hey @room").await.unwrap().seq;
    assert!(message_at(bob, "general", everyone).await.mentions_room);
    assert_eq!(code(bob.edit("general", Seq(seq), "now @room").await), ErrorCode::Forbidden);
    // Anyone may in a direct conversation.
    let dm = bob.open_direct("carol").await.unwrap();
    let sent = bob.send(RoomId(dm.room_id), "@room hello").await.unwrap().seq;
    let read = carol.history(RoomId(dm.room_id), HistoryDirection::Backward, Seq(0), 10).await.unwrap();
    assert!(message(read.events.iter().find(|e| e.seq == sent).unwrap()).mentions_room);

    // The mention rows behind mention counts: carol's first mention went
    // with the edit, @room reached everyone but its sender.
    let room = RoomId(alice.join("general").await.unwrap().room_id);
    let ids: Vec<u64> = [alice, bob, carol, &guest].iter().map(|c| c.user().unwrap().user_id).collect();
    td.stop().await;
    let store = confabd::store::Store::open(&td.dir.path().join("confab.redb")).unwrap();
    let mentions: Vec<u32> =
        ids.iter().map(|&id| store.position(room, confabd::ids::UserId(id)).unwrap().unwrap().mentions).collect();
    assert_eq!(mentions, [0, 1, 1, 2], "alice, bob, carol, visitor");
}

#[tokio::test]
async fn sending_moves_the_senders_own_read_marker() {
    let td = TestDaemon::start().await;
    let people = room_with(&td, "general", &[("alice", Wire::Quic), ("bob", Wire::WsJson)]).await;
    let (alice, bob) = (&people[0], &people[1]);
    let elsewhere = td.client(Wire::WsProto).await;
    elsewhere.login("alice", "correct horse battery").await.unwrap();
    bob.send("general", "one").await.unwrap();
    let seq = alice.send("general", "two").await.unwrap().seq;
    // No push says so (every client of hers applies the same rule when the
    // message arrives); the room list shows it.
    let rooms = elsewhere.list_rooms(v1::RoomScope::Mine).await.unwrap();
    let general = rooms.iter().find(|r| r.name == "general").expect("general is listed");
    assert_eq!((general.read_seq, general.unread_count, general.mention_count), (seq, 0, 0));
}

#[tokio::test]
async fn locations_and_attachments() {
    let td = TestDaemon::start().await;
    let people = room_with(&td, "general", &[("alice", Wire::WsProto), ("bob", Wire::Quic)]).await;
    let (alice, bob) = (&people[0], &people[1]);

    let here = SendOptions::new().location(52.52, 13.405, "Berlin");
    let seq = alice.send_with("general", "", here).await.unwrap().seq;
    let location = message_at(bob, "general", seq).await.location.expect("location");
    assert_eq!((location.latitude, location.longitude, location.label.as_str()), (52.52, 13.405, "Berlin"));
    let bad = [(91.0, 0.0, ""), (-90.5, 0.0, ""), (0.0, 180.5, ""), (f64::NAN, 0.0, ""), (0.0, f64::INFINITY, "")];
    for (latitude, longitude, label) in bad {
        let options = SendOptions::new().location(latitude, longitude, label);
        assert_eq!(code(alice.send_with("general", "", options).await), ErrorCode::InvalidArgument);
    }
    let long_label = SendOptions::new().location(0.0, 0.0, "x".repeat(257));
    assert_eq!(code(alice.send_with("general", "", long_label).await), ErrorCode::InvalidArgument);
    let edge = SendOptions::new().location(-90.0, 180.0, "x".repeat(256));
    alice.send_with("general", "", edge).await.unwrap();
    assert_eq!(code(alice.send("general", "").await), ErrorCode::InvalidArgument, "no text, nothing else");

    // Attachments: at most [files] max_attachments, own files only.
    let mut eleven = SendOptions::new();
    for n in 0..11 {
        eleven = eleven.attach(format!("{n:032x}"));
    }
    assert_eq!(code(alice.send_with("general", "files", eleven).await), ErrorCode::InvalidArgument);
    let unknown = SendOptions::new().attach("0123456789abcdef0123456789abcdef");
    assert_eq!(code(alice.send_with("general", "", unknown).await), ErrorCode::FileNotFound);
    let twice = SendOptions::new().attach("ab").attach("ab");
    assert_eq!(code(alice.send_with("general", "", twice).await), ErrorCode::InvalidArgument);

    let bytes = b"hello, attachments\n";
    let file = alice.upload("notes.txt", bytes.len() as u64, &mut &bytes[..], |_| {}).await.expect("upload");
    let seq = alice.send_with("general", "", SendOptions::new().attach(&file.file_id)).await.unwrap().seq;
    let live = next_matching(bob, |e| (e.seq == seq).then(|| message(e).clone())).await;
    assert_eq!(live.attachments.len(), 1);
    let stored = message_at(bob, "general", seq).await.attachments;
    assert_eq!(stored, live.attachments);
    assert_eq!((stored[0].file_id.as_str(), stored[0].name.as_str()), (file.file_id.as_str(), "notes.txt"));
    assert_eq!((stored[0].size, stored[0].owner.as_ref().unwrap().name.as_str()), (bytes.len() as u64, "alice"));
    // Someone else's file cannot be attached.
    let theirs = SendOptions::new().attach(&file.file_id);
    assert_eq!(code(bob.send_with("general", "mine?", theirs).await), ErrorCode::FileNotFound);
}

#[tokio::test]
async fn a_retry_must_repeat_the_whole_content() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsJson, "alice").await;
    alice.create_room("general", v1::RoomKind::Public).await.unwrap();
    let target = alice.send("general", "first").await.unwrap().seq;
    let options = || SendOptions::new().reply_to(Seq(target)).location(1.0, 2.0, "here").txn_id("t-1");
    let sent = alice.send_with("general", "answer", options()).await.unwrap();
    let again = alice.send_with("general", "answer", options()).await.unwrap();
    assert!(again.duplicate && again.seq == sent.seq);
    let other_place = SendOptions::new().reply_to(Seq(target)).location(1.0, 2.5, "here").txn_id("t-1");
    assert_eq!(code(alice.send_with("general", "answer", other_place).await), ErrorCode::TxnConflict);
    let no_reply = SendOptions::new().location(1.0, 2.0, "here").txn_id("t-1");
    assert_eq!(code(alice.send_with("general", "answer", no_reply).await), ErrorCode::TxnConflict);
    // A plain text send keeps its digest (the text alone).
    alice.send_with_txn("general", "plain", "t-2").await.unwrap();
    assert!(alice.send_with_txn("general", "plain", "t-2").await.unwrap().duplicate);
}

/// Builds a conversation with every kind of change, restarts, and checks
/// that history and a Resume replay show the same current state.
#[tokio::test]
async fn conversations_survive_a_restart_and_replay_in_their_current_state() {
    let mut td = TestDaemon::start().await;
    let people = room_with(&td, "general", &[("alice", Wire::WsProto), ("bob", Wire::Quic)]).await;
    let (alice, bob) = (&people[0], &people[1]);
    let alice_tokens = alice.tokens().unwrap();
    let room = alice.join("general").await.unwrap().room_id;
    let first = alice.send("general", "hello @bob").await.unwrap().seq;
    let reply = bob.reply("general", Seq(first), "hi alice").await.unwrap().seq;
    let in_thread = bob.send_with("general", "a thread", SendOptions::new().in_thread(Seq(first))).await.unwrap().seq;
    bob.react("general", Seq(first), "🎉").await.unwrap();
    alice.edit("general", Seq(first), "hello @bob, edited").await.unwrap();
    let doomed = bob.send("general", "oops").await.unwrap().seq;
    bob.delete_message("general", Seq(doomed)).await.unwrap();
    let before = history(alice, "general").await;

    td.restart().await;
    let again = td.client(Wire::WsJson).await;
    again.authenticate(&alice_tokens.access_token, alice_tokens.refresh_token.as_deref()).await.unwrap();
    let after = history(&again, "general").await;
    assert_eq!(after, before, "history is the same after a restart");
    let root = message(after.iter().find(|e| e.seq == first).unwrap());
    assert_eq!((root.text.as_str(), root.thread.as_ref().unwrap().reply_count), ("hello @bob, edited", 1));
    assert_eq!(names(&root.mentions), ["bob"]);
    assert_eq!(root.reactions[0].emoji, "🎉");
    let quoted = message(after.iter().find(|e| e.seq == reply).unwrap()).reply_to.clone().unwrap();
    assert_eq!(quoted.quote, "hello @bob, edited");
    assert_eq!(message(after.iter().find(|e| e.seq == in_thread).unwrap()).thread_root_seq, first);
    assert!(message(after.iter().find(|e| e.seq == doomed).unwrap()).deleted.is_some());

    // Resume from before the first message: the replay shows the same.
    let mut raw = td.raw(Wire::Quic).await;
    let auth = Command::Authenticate(v1::Authenticate { access_token: alice_tokens.access_token.clone() });
    assert!(matches!(raw.request(auth).await.unwrap(), Body::Auth(_)));
    let id = raw
        .send_command(Command::Resume(v1::Resume {
            positions: vec![v1::RoomPosition { room_id: room, epoch: 1, seq: first - 1 }],
        }))
        .await
        .unwrap();
    let mut replayed = Vec::new();
    loop {
        let frame = within("resume", raw.recv_frame()).await.unwrap();
        match frame.body {
            Some(Body::Event(event)) => replayed.push(event),
            Some(Body::Resumed(_)) if frame.request_id == id => break,
            _ => {}
        }
    }
    let expected: Vec<_> = after.into_iter().filter(|e| e.seq >= first).collect();
    assert_eq!(replayed, expected);
}
