//! Per-user state through the real daemon, over QUIC and WebSocket: read
//! markers and unread counts, receipts, typing, presence, profiles and
//! search, room settings and archived rooms, groups, the directory,
//! notification levels, and what of it survives a restart.
//!
//! The pushes these features make (read states, receipts, typing, presence,
//! notifications) are not room events, so the tests read them on raw
//! connections. A Ping answered is the barrier that shows a push did NOT
//! come: the hub queues pushes before the write that caused them is
//! answered, so anything meant for a session is ahead of its Pong.

mod support;

use confab_sdk::{
    raw::{RawConnection, RawReceived},
    v1::{self, ErrorCode, client_frame::Command, room_event::Kind, room_ref::Room, server_frame::Body},
};
use support::{TestDaemon, Wire, within};

const PASSWORD: &str = "correct horse battery";

fn room(name: &str) -> Option<v1::RoomRef> {
    Some(v1::RoomRef { room: Some(Room::Name(name.into())) })
}

fn room_id(id: u64) -> Option<v1::RoomRef> {
    Some(v1::RoomRef { room: Some(Room::Id(id)) })
}

/// One session of a user, on a raw connection, resumed (so it gets pushes).
struct Peer {
    raw: RawConnection,
    name: String,
}

impl Peer {
    /// Registers `name` and resumes.
    async fn register(td: &TestDaemon, wire: Wire, name: &str) -> Peer {
        Self::enter(
            td,
            wire,
            name,
            Command::Register(v1::Register {
                username: name.into(),
                password: PASSWORD.into(),
                device_name: "first".into(),
            }),
        )
        .await
    }

    /// Logs in as `name` (another device) and resumes.
    async fn login(td: &TestDaemon, wire: Wire, name: &str) -> Peer {
        Self::enter(
            td,
            wire,
            name,
            Command::Login(v1::Login {
                username: name.into(),
                password: PASSWORD.into(),
                device_name: "another".into(),
            }),
        )
        .await
    }

    /// Enters as a guest and resumes.
    async fn guest(td: &TestDaemon, wire: Wire, name: &str) -> Peer {
        Self::enter(td, wire, name, Command::GuestLogin(v1::GuestLogin { display_name: name.into() })).await
    }

    async fn enter(td: &TestDaemon, wire: Wire, name: &str, command: Command) -> Peer {
        let mut peer = Peer { raw: td.raw(wire).await, name: name.into() };
        assert!(matches!(peer.ok(command).await, Body::Auth(_)));
        assert!(matches!(peer.ok(Command::Resume(v1::Resume { positions: Vec::new() })).await, Body::Resumed(_)));
        peer
    }

    async fn request(&mut self, command: Command) -> Result<Body, confab_sdk::Error> {
        within("a reply", self.raw.request(command)).await
    }

    async fn ok(&mut self, command: Command) -> Body {
        let what = format!("{command:?}");
        self.request(command).await.unwrap_or_else(|error| panic!("{} {what}: {error:?}", self.name))
    }

    async fn code(&mut self, command: Command) -> ErrorCode {
        match self.request(command).await {
            Err(confab_sdk::Error::Server(error)) => ErrorCode::try_from(error.code).expect("known code"),
            other => panic!("{}: expected an error, got {other:?}", self.name),
        }
    }

    /// Sends a message and answers its seq.
    async fn send(&mut self, room_name: &str, text: &str) -> u64 {
        match self.send_result(room_name, text).await {
            Ok(Body::Sent(sent)) => sent.seq,
            other => panic!("{} sends: {other:?}", self.name),
        }
    }

    async fn send_result(&mut self, room_name: &str, text: &str) -> Result<Body, confab_sdk::Error> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static TXN: AtomicU64 = AtomicU64::new(1);
        let txn = TXN.fetch_add(1, Ordering::Relaxed);
        self.request(Command::SendMessage(v1::SendMessage {
            room: room(room_name),
            text: text.into(),
            client_txn_id: format!("t{txn}"),
            ..Default::default()
        }))
        .await
    }

    async fn create(&mut self, name: &str, kind: v1::RoomKind) -> v1::RoomInfo {
        match self
            .ok(Command::CreateRoom(v1::CreateRoom { name: name.into(), kind: kind as i32, ..Default::default() }))
            .await
        {
            Body::Room(info) => info,
            other => panic!("{other:?}"),
        }
    }

    async fn join(&mut self, name: &str) -> v1::RoomInfo {
        match self.ok(Command::JoinRoom(v1::JoinRoom { room: room(name) })).await {
            Body::Room(info) => info,
            other => panic!("{other:?}"),
        }
    }

    async fn mine(&mut self) -> Vec<v1::RoomInfo> {
        match self
            .ok(Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Mine as i32, query: String::new() }))
            .await
        {
            Body::Rooms(list) => list.rooms,
            other => panic!("{other:?}"),
        }
    }

    async fn my_room(&mut self, room_id: u64) -> v1::RoomInfo {
        self.mine().await.into_iter().find(|r| r.room_id == room_id).expect("the room is listed")
    }

    async fn directory(&mut self, query: &str) -> Vec<String> {
        let list = Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Directory as i32, query: query.into() });
        match self.ok(list).await {
            Body::Rooms(list) => list.rooms.into_iter().map(|r| r.name).collect(),
            other => panic!("{other:?}"),
        }
    }

    async fn mark_read(&mut self, room_id: u64, seq: u64) -> v1::ReadState {
        match self.ok(Command::MarkRead(v1::MarkRead { room: self::room_id(room_id), seq })).await {
            Body::ReadState(state) => state,
            other => panic!("{other:?}"),
        }
    }

    async fn profile(&mut self, username: &str) -> v1::Profile {
        match self.ok(Command::GetProfile(v1::GetProfile { username: username.into() })).await {
            Body::Profile(profile) => profile,
            other => panic!("{other:?}"),
        }
    }

    async fn receipts(&mut self, room_id: u64) -> Vec<v1::Receipt> {
        match self.ok(Command::GetReceipts(v1::GetReceipts { room: self::room_id(room_id) })).await {
            Body::Receipts(list) => list.receipts,
            other => panic!("{other:?}"),
        }
    }

    async fn presence(&mut self, state: v1::PresenceState, status_text: Option<&str>, this_device_only: bool) {
        let command = Command::SetPresence(v1::SetPresence {
            state: state as i32,
            status_text: status_text.map(str::to_owned),
            this_device_only,
        });
        assert!(matches!(self.ok(command).await, Body::Done(_)));
    }

    /// The next push that `pick` accepts; other pushes are skipped.
    async fn push<T>(&mut self, what: &str, mut pick: impl FnMut(&Body) -> Option<T>) -> T {
        let name = self.name.clone();
        within(&format!("{what} for {name}"), async {
            loop {
                match self.raw.recv().await.expect("connection open") {
                    RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(body) }) => {
                        if let Some(found) = pick(&body) {
                            return found;
                        }
                    }
                    RawReceived::Frame(_) => {}
                    other => panic!("{name} waiting for {what}: {other:?}"),
                }
            }
        })
        .await
    }

    /// Every push queued for this session so far (up to a Ping's answer).
    async fn pushes(&mut self) -> Vec<Body> {
        let id = self.raw.send_command(Command::Ping(v1::Ping {})).await.unwrap();
        let mut pushes = Vec::new();
        within("a pong", async {
            loop {
                match self.raw.recv().await.expect("connection open") {
                    RawReceived::Frame(v1::ServerFrame { request_id, body: Some(Body::Pong(_)) })
                        if request_id == id =>
                    {
                        return;
                    }
                    RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(Body::Ping(_)) }) => {}
                    RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(body) }) => pushes.push(body),
                    RawReceived::Frame(_) => {}
                    other => panic!("waiting for a pong: {other:?}"),
                }
            }
        })
        .await;
        pushes
    }

    /// Pushes queued so far, without room events.
    async fn state_pushes(&mut self) -> Vec<Body> {
        self.pushes().await.into_iter().filter(|body| !matches!(body, Body::Event(_))).collect()
    }

    async fn close(self) {
        self.raw.close().await;
    }
}

fn read_state(body: &Body) -> Option<v1::ReadState> {
    match body {
        Body::ReadState(state) => Some(*state),
        _ => None,
    }
}

fn receipt_of(name: &str) -> impl FnMut(&Body) -> Option<v1::Receipt> + '_ {
    move |body| match body {
        Body::Receipt(receipt) if receipt.user.as_ref().is_some_and(|u| u.name == name) => Some(receipt.clone()),
        _ => None,
    }
}

fn presence_of(name: &str, state: v1::PresenceState) -> impl FnMut(&Body) -> Option<v1::Presence> + '_ {
    move |body| match body {
        Body::Presence(p) if p.user.as_ref().is_some_and(|u| u.name == name) && p.state == state as i32 => {
            Some(p.clone())
        }
        _ => None,
    }
}

fn notification(body: &Body) -> Option<v1::Notification> {
    match body {
        Body::Notification(n) => Some(n.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn read_markers_follow_the_user_across_sessions_and_count_what_is_unread() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let (alice_name, bob_name, name) = (format!("alice{i}"), format!("bob{i}"), format!("den{i}"));
        let mut alice = Peer::register(&td, wire, &alice_name).await;
        let mut alice2 = Peer::login(&td, Wire::ALL[(i + 1) % 3], &alice_name).await;
        let mut bob = Peer::register(&td, Wire::ALL[(i + 2) % 3], &bob_name).await;
        let info = alice.create(&name, v1::RoomKind::Public).await;
        let joined = bob.join(&name).await;
        assert_eq!(joined.read_seq, 3, "a newcomer's backlog is not unread");
        assert_eq!((joined.unread_count, joined.mention_count), (0, 0));

        let first = bob.send(&name, "one").await;
        let second = bob.send(&name, &format!("two, @{alice_name}")).await;
        let third = bob.send(&name, "three").await;
        let listed = alice.my_room(info.room_id).await;
        assert_eq!((listed.read_seq, listed.unread_count, listed.mention_count), (2, 3, 1), "{listed:?}");
        assert_eq!(listed.role, v1::Role::Owner as i32);
        assert_eq!(listed.notification_level, v1::NotificationLevel::NotifyDefault as i32);
        alice.pushes().await;
        alice2.pushes().await;

        let state = alice.mark_read(info.room_id, first).await;
        assert_eq!((state.read_seq, state.unread_count, state.mention_count), (first, 2, 1));
        let pushed = alice2.push("a read state", read_state).await;
        assert_eq!(pushed, state, "the other session hears of the move");
        assert!(alice.state_pushes().await.iter().all(|b| read_state(b).is_none()), "not the session that asked");
        let receipt = bob.push("alice's receipt", receipt_of(&alice_name)).await;
        assert_eq!((receipt.read_seq, receipt.delivered_seq), (first, first));

        let state = alice2.mark_read(info.room_id, third).await;
        assert_eq!((state.read_seq, state.unread_count, state.mention_count), (third, 0, 0));
        assert_eq!(alice.push("a read state", read_state).await.read_seq, third);
        // Backwards changes nothing and pushes nothing.
        let state = alice.mark_read(info.room_id, second).await;
        assert_eq!((state.read_seq, state.unread_count), (third, 0));
        assert!(alice2.state_pushes().await.iter().all(|b| read_state(b).is_none()));

        // Sending implies having read: one's own messages are never unread.
        alice.send(&name, "mine").await;
        let listed = alice2.my_room(info.room_id).await;
        assert_eq!(listed.unread_count, 0, "{listed:?}");

        let beyond = Command::MarkRead(v1::MarkRead { room: room_id(info.room_id), seq: 1000 });
        assert_eq!(alice.code(beyond).await, ErrorCode::InvalidArgument);
        let mut carol = Peer::register(&td, wire, &format!("carol{i}")).await;
        let outsider = Command::MarkRead(v1::MarkRead { room: room_id(info.room_id), seq: 1 });
        assert_eq!(carol.code(outsider).await, ErrorCode::NotAMember);
        let missing = Command::MarkRead(v1::MarkRead { room: room_id(999_999), seq: 1 });
        assert_eq!(carol.code(missing).await, ErrorCode::RoomNotFound);
    }
}

#[tokio::test]
async fn receipts_are_seen_by_members_until_the_user_opts_out() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let (alice_name, bob_name, name) = (format!("alice{i}"), format!("bob{i}"), format!("den{i}"));
        let mut alice = Peer::register(&td, wire, &alice_name).await;
        let mut bob = Peer::register(&td, Wire::ALL[(i + 1) % 3], &bob_name).await;
        let info = alice.create(&name, v1::RoomKind::Private).await;
        alice.ok(Command::InviteToRoom(v1::InviteToRoom { room: room(&name), username: bob_name.clone() })).await;
        bob.join(&name).await;
        let seq = alice.send(&name, "did you get this?").await;

        let delivered = Command::MarkDelivered(v1::MarkDelivered { room: room_id(info.room_id), seq });
        assert!(matches!(bob.ok(delivered.clone()).await, Body::Done(_)));
        let receipt = alice.push("bob's receipt", receipt_of(&bob_name)).await;
        assert_eq!((receipt.delivered_seq, receipt.read_seq), (seq, 4), "read up to his join");
        assert!(receipt.updated_at_ms > 0);
        let listed = alice.receipts(info.room_id).await;
        let bobs = listed.iter().find(|r| r.user.as_ref().unwrap().name == bob_name).expect("bob's receipt listed");
        assert_eq!(bobs.delivered_seq, seq);
        assert!(listed.iter().any(|r| r.user.as_ref().unwrap().name == alice_name));
        // Again: nothing moved, nothing pushed.
        bob.ok(delivered).await;
        assert!(alice.state_pushes().await.is_empty());

        let opt_out = Command::SetProfile(v1::SetProfile { share_receipts: Some(false), ..Default::default() });
        match bob.ok(opt_out).await {
            Body::Profile(profile) => assert!(!profile.share_receipts),
            other => panic!("{other:?}"),
        }
        assert!(!bob.profile(&bob_name).await.share_receipts);
        bob.mark_read(info.room_id, seq).await;
        assert!(alice.state_pushes().await.iter().all(|b| !matches!(b, Body::Receipt(_))), "opted out: no push");
        let listed = alice.receipts(info.room_id).await;
        assert!(listed.iter().all(|r| r.user.as_ref().unwrap().name != bob_name), "opted out: not listed");

        let beyond = Command::MarkDelivered(v1::MarkDelivered { room: room_id(info.room_id), seq: seq + 10 });
        assert_eq!(bob.code(beyond).await, ErrorCode::InvalidArgument);
        let mut carol = Peer::register(&td, wire, &format!("carol{i}")).await;
        assert_eq!(
            carol.code(Command::GetReceipts(v1::GetReceipts { room: room_id(info.room_id) })).await,
            ErrorCode::RoomNotFound
        );
    }
}

/// GetReceipts lists at most `[presence] max_room_members` receipts, the
/// most recently updated first, and takes from `lookups_per_user`.
#[tokio::test]
async fn receipt_lists_are_bounded_to_the_newest_and_rate_limited() {
    let td = TestDaemon::start_with(|config| {
        config.presence.max_room_members = 2;
        config.rate_limits.lookups_per_user = confabd::config::Rate { per_second: 0.001, burst: 3 };
    })
    .await;
    let mut alice = Peer::register(&td, Wire::Quic, "alice").await;
    let mut bob = Peer::register(&td, Wire::WsProto, "bob").await;
    let mut carol = Peer::register(&td, Wire::WsJson, "carol").await;
    let info = alice.create("den", v1::RoomKind::Public).await;
    bob.join("den").await;
    carol.join("den").await;
    // The message is from someone who then leaves (not listed), so the
    // three members' receipts all move.
    let mut dave = Peer::register(&td, Wire::Quic, "dave").await;
    dave.join("den").await;
    let seq = dave.send("den", "hello").await;
    dave.ok(Command::LeaveRoom(v1::LeaveRoom { room: room("den") })).await;

    // Everyone's receipt as alice hears of it.
    let mut pushed = Vec::new();
    for peer in [&mut alice, &mut bob, &mut carol] {
        let delivered = Command::MarkDelivered(v1::MarkDelivered { room: room_id(info.room_id), seq });
        assert!(matches!(peer.ok(delivered).await, Body::Done(_)));
    }
    for name in ["alice", "bob", "carol"] {
        pushed.push(alice.push("a receipt", receipt_of(name)).await);
    }
    // Newest first; at equal times, the lower user id first.
    pushed.sort_by_key(|r| (std::cmp::Reverse(r.updated_at_ms), r.user.as_ref().unwrap().user_id));
    pushed.truncate(2);
    assert_eq!(alice.receipts(info.room_id).await, pushed);

    alice.receipts(info.room_id).await;
    alice.receipts(info.room_id).await;
    let again = Command::GetReceipts(v1::GetReceipts { room: room_id(info.room_id) });
    assert_eq!(alice.code(again).await, ErrorCode::RateLimited);
    assert_eq!(bob.receipts(info.room_id).await.len(), 2, "a limit per user");
}

#[tokio::test]
async fn typing_reaches_the_others_only_and_is_rate_limited() {
    let td = TestDaemon::start_with(|config| {
        config.rate_limits.typing_per_user = confabd::config::Rate { per_second: 0.001, burst: 4 };
    })
    .await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let (alice_name, name) = (format!("alice{i}"), format!("den{i}"));
        let mut alice = Peer::register(&td, wire, &alice_name).await;
        let mut alice2 = Peer::login(&td, Wire::ALL[(i + 1) % 3], &alice_name).await;
        let mut bob = Peer::register(&td, Wire::ALL[(i + 2) % 3], &format!("bob{i}")).await;
        let info = alice.create(&name, v1::RoomKind::Public).await;
        bob.join(&name).await;

        let typing = |typing| Command::SetTyping(v1::SetTyping { room: room(&name), typing });
        assert!(matches!(alice.ok(typing(true)).await, Body::Done(_)));
        let pushed = bob
            .push("alice typing", |body| match body {
                Body::Typing(t) => Some(t.clone()),
                _ => None,
            })
            .await;
        assert_eq!((pushed.room_id, pushed.typing, pushed.expires_in_ms), (info.room_id, true, 6_000));
        assert_eq!(pushed.user.unwrap().name, alice_name);
        alice.ok(typing(false)).await;
        let stopped = bob
            .push("alice stopped", |body| match body {
                Body::Typing(t) => Some(t.typing),
                _ => None,
            })
            .await;
        assert!(!stopped);
        for session in [&mut alice, &mut alice2] {
            assert!(session.state_pushes().await.iter().all(|b| !matches!(b, Body::Typing(_))), "not to the typist");
        }

        alice.ok(typing(true)).await;
        alice.ok(typing(true)).await;
        assert_eq!(alice.code(typing(true)).await, ErrorCode::RateLimited);

        let mut carol = Peer::register(&td, wire, &format!("carol{i}")).await;
        assert_eq!(
            carol.code(Command::SetTyping(v1::SetTyping { room: room(&name), typing: true })).await,
            ErrorCode::NotAMember
        );
    }
}

#[tokio::test]
async fn presence_adds_up_the_devices_and_remembers_when_last_seen() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let (alice_name, name) = (format!("alice{i}"), format!("den{i}"));
        let mut bob = Peer::register(&td, wire, &format!("bob{i}")).await;
        let mut alice = Peer::register(&td, Wire::ALL[(i + 1) % 3], &alice_name).await;
        bob.create(&name, v1::RoomKind::Public).await;
        alice.join(&name).await;
        assert_eq!(bob.profile(&alice_name).await.presence, v1::PresenceState::Online as i32);

        let mut phone = Peer::login(&td, Wire::ALL[(i + 2) % 3], &alice_name).await;
        bob.pushes().await;
        // One device idle: still online. Both idle: away.
        phone.presence(v1::PresenceState::Away, None, true).await;
        assert!(bob.state_pushes().await.iter().all(|b| !matches!(b, Body::Presence(_))));
        alice.presence(v1::PresenceState::Away, None, true).await;
        let away = bob.push("alice away", presence_of(&alice_name, v1::PresenceState::Away)).await;
        assert_eq!(away.last_seen_ms, 0);
        alice.presence(v1::PresenceState::Online, Some("on a train"), true).await;
        let back = bob.push("alice back", presence_of(&alice_name, v1::PresenceState::Online)).await;
        assert_eq!(back.status_text, "on a train");
        phone.push("her own presence", presence_of(&alice_name, v1::PresenceState::Online)).await;

        // Chosen AWAY holds on every device.
        phone.presence(v1::PresenceState::Away, None, false).await;
        bob.push("alice away by choice", presence_of(&alice_name, v1::PresenceState::Away)).await;
        assert_eq!(bob.profile(&alice_name).await.presence, v1::PresenceState::Away as i32);
        phone.presence(v1::PresenceState::Online, None, false).await;
        bob.push("alice online by choice", presence_of(&alice_name, v1::PresenceState::Online)).await;

        // The last session ending makes her offline, seen just now.
        phone.close().await;
        alice.close().await;
        let gone = bob.push("alice offline", presence_of(&alice_name, v1::PresenceState::Offline)).await;
        assert!(gone.last_seen_ms > 0);
        let profile = bob.profile(&alice_name).await;
        assert_eq!((profile.presence, profile.last_seen_ms), (v1::PresenceState::Offline as i32, gone.last_seen_ms));
        assert_eq!(profile.status_text, "on a train");

        let bad_state =
            Command::SetPresence(v1::SetPresence { state: v1::PresenceState::Offline as i32, ..Default::default() });
        assert_eq!(bob.code(bad_state).await, ErrorCode::InvalidArgument);
        let long = Command::SetPresence(v1::SetPresence {
            state: v1::PresenceState::Online as i32,
            status_text: Some("x".repeat(141)),
            this_device_only: false,
        });
        assert_eq!(bob.code(long).await, ErrorCode::InvalidArgument);
    }
}

#[tokio::test]
async fn profiles_can_be_set_read_and_searched() {
    let td = TestDaemon::start().await;
    let mut alice = Peer::register(&td, Wire::Quic, "alice").await;
    let mut alan = Peer::register(&td, Wire::WsJson, "Alan").await;
    let _bob = Peer::register(&td, Wire::WsProto, "bob").await;

    let set = Command::SetProfile(v1::SetProfile {
        display_name: Some("Alice Liddell".into()),
        status_text: Some("down the rabbit hole".into()),
        ..Default::default()
    });
    let own = match alice.ok(set).await {
        Body::Profile(profile) => profile,
        other => panic!("{other:?}"),
    };
    assert_eq!((own.display_name.as_str(), own.share_receipts), ("Alice Liddell", true));
    assert_eq!(own.user.as_ref().unwrap().display_name, "Alice Liddell");
    let seen = alan.profile("ALICE").await;
    assert_eq!((seen.display_name.as_str(), seen.status_text.as_str()), ("Alice Liddell", "down the rabbit hole"));
    assert_eq!(seen.presence, v1::PresenceState::Online as i32);
    assert!(!seen.share_receipts, "only in one's own profile");
    assert!(seen.created_at_ms > 0);

    for wire in Wire::ALL {
        let mut searcher = Peer::login(&td, wire, "bob").await;
        let search = |prefix: &str, limit| Command::SearchUsers(v1::SearchUsers { prefix: prefix.into(), limit });
        let names = |body: Body| match body {
            Body::Profiles(list) => list.profiles.into_iter().map(|p| p.user.unwrap().name).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(names(searcher.ok(search("AL", 0)).await), ["alan", "alice"]);
        assert_eq!(names(searcher.ok(search("al", 1)).await), ["alan"]);
        assert!(names(searcher.ok(search("zed", 0)).await).is_empty());
        assert_eq!(searcher.code(search("", 0)).await, ErrorCode::InvalidArgument);
        assert_eq!(searcher.code(search(&"a".repeat(33), 0)).await, ErrorCode::InvalidArgument);
        assert_eq!(searcher.code(search("al", 51)).await, ErrorCode::InvalidArgument);
        let unknown = Command::GetProfile(v1::GetProfile { username: "nobody".into() });
        assert_eq!(searcher.code(unknown).await, ErrorCode::UserNotFound);
    }

    let nothing = Command::SetProfile(v1::SetProfile::default());
    assert_eq!(alice.code(nothing).await, ErrorCode::InvalidArgument);
    let long = Command::SetProfile(v1::SetProfile { display_name: Some("x".repeat(65)), ..Default::default() });
    assert_eq!(alice.code(long).await, ErrorCode::InvalidArgument);
    let control = Command::SetProfile(v1::SetProfile { display_name: Some("a\u{7}b".into()), ..Default::default() });
    assert_eq!(alice.code(control).await, ErrorCode::InvalidArgument);
    let long = Command::SetProfile(v1::SetProfile { status_text: Some("x".repeat(141)), ..Default::default() });
    assert_eq!(alice.code(long).await, ErrorCode::InvalidArgument);
    let no_file = Command::SetProfile(v1::SetProfile { avatar_file_id: Some("0".repeat(32)), ..Default::default() });
    assert_eq!(alice.code(no_file).await, ErrorCode::FileNotFound);
    let not_an_id =
        Command::SetProfile(v1::SetProfile { avatar_file_id: Some("../confab.redb".into()), ..Default::default() });
    assert_eq!(alice.code(not_an_id).await, ErrorCode::FileNotFound);

    let mut guest = Peer::guest(&td, Wire::WsProto, "visitor").await;
    let named = Command::SetProfile(v1::SetProfile { display_name: Some("V".into()), ..Default::default() });
    assert_eq!(guest.code(named).await, ErrorCode::Forbidden);
    let status = Command::SetProfile(v1::SetProfile { status_text: Some("just looking".into()), ..Default::default() });
    assert!(matches!(guest.ok(status).await, Body::Profile(_)));
    assert_eq!(alice.profile("visitor").await.status_text, "just looking");
    let search = Command::SearchUsers(v1::SearchUsers { prefix: "vis".into(), limit: 0 });
    assert!(
        matches!(alice.ok(search).await, Body::Profiles(list) if list.profiles.is_empty()),
        "guests are not listed"
    );
}

#[tokio::test]
async fn room_settings_take_the_right_role_and_archived_rooms_are_read_only() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let name = format!("den{i}");
        let mut alice = Peer::register(&td, wire, &format!("alice{i}")).await;
        let mut bob = Peer::register(&td, Wire::ALL[(i + 1) % 3], &format!("bob{i}")).await;
        let create = v1::CreateRoom {
            name: name.clone(),
            kind: v1::RoomKind::Public as i32,
            topic: "cosy".into(),
            ..Default::default()
        };
        let info = match alice.ok(Command::CreateRoom(create)).await {
            Body::Room(info) => info,
            other => panic!("{other:?}"),
        };
        assert_eq!(info.topic, "cosy");
        bob.join(&name).await;
        let update =
            |update: v1::UpdateRoom| Command::UpdateRoom(v1::UpdateRoom { room: room_id(info.room_id), ..update });

        assert_eq!(
            bob.code(update(v1::UpdateRoom { topic: Some("mine now".into()), ..Default::default() })).await,
            ErrorCode::Forbidden
        );
        assert_eq!(
            bob.code(update(v1::UpdateRoom { archived: Some(true), ..Default::default() })).await,
            ErrorCode::Forbidden
        );
        assert_eq!(alice.code(update(v1::UpdateRoom::default())).await, ErrorCode::InvalidArgument);
        assert_eq!(
            alice.code(update(v1::UpdateRoom { avatar_file_id: Some("x".repeat(100)), ..Default::default() })).await,
            ErrorCode::FileNotFound
        );
        let long = "x".repeat(513);
        assert_eq!(
            alice.code(update(v1::UpdateRoom { topic: Some(long), ..Default::default() })).await,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            alice.code(update(v1::UpdateRoom { name: Some("no spaces".into()), ..Default::default() })).await,
            ErrorCode::InvalidArgument
        );
        alice.create(&format!("other{i}"), v1::RoomKind::Public).await;
        let taken = update(v1::UpdateRoom { name: Some(format!("OTHER{i}")), ..Default::default() });
        assert_eq!(alice.code(taken).await, ErrorCode::NameTaken);
        bob.pushes().await;

        let topic = update(v1::UpdateRoom { topic: Some("warm".into()), ..Default::default() });
        let updated = match alice.ok(topic.clone()).await {
            Body::Room(room) => room,
            other => panic!("{other:?}"),
        };
        assert_eq!((updated.topic.as_str(), updated.head_seq), ("warm", info.head_seq + 2));
        let event = bob
            .push("room updated", |body| match body {
                Body::Event(v1::RoomEvent { kind: Some(Kind::RoomUpdated(updated)), .. }) => Some(updated.clone()),
                _ => None,
            })
            .await;
        assert_eq!((event.topic.as_deref(), event.name.as_deref(), event.archived), (Some("warm"), None, None));
        // The same value again is no change: no event.
        match alice.ok(topic).await {
            Body::Room(room) => assert_eq!(room.head_seq, updated.head_seq),
            other => panic!("{other:?}"),
        }
        let renamed = format!("lounge{i}");
        alice.ok(update(v1::UpdateRoom { name: Some(renamed.clone()), ..Default::default() })).await;
        assert_eq!(bob.join(&renamed).await.room_id, info.room_id, "found by its new name");
        assert!(bob.directory(&name).await.is_empty(), "the old name is free");

        alice.ok(update(v1::UpdateRoom { archived: Some(true), ..Default::default() })).await;
        assert!(bob.my_room(info.room_id).await.archived);
        match bob.send_result(&renamed, "hello?").await {
            Err(confab_sdk::Error::Server(error)) => assert_eq!(error.code, ErrorCode::RoomArchived as i32),
            other => panic!("{other:?}"),
        }
        let typing = Command::SetTyping(v1::SetTyping { room: room_id(info.room_id), typing: true });
        assert_eq!(bob.code(typing).await, ErrorCode::RoomArchived);
        let head = bob.my_room(info.room_id).await.head_seq;
        assert_eq!(bob.mark_read(info.room_id, head).await.read_seq, head, "reading still works");
        let topic = update(v1::UpdateRoom { topic: Some("cold".into()), ..Default::default() });
        assert_eq!(alice.code(topic).await, ErrorCode::RoomArchived);
        let mut carol = Peer::register(&td, wire, &format!("carol{i}")).await;
        assert_eq!(
            carol.code(Command::JoinRoom(v1::JoinRoom { room: room_id(info.room_id) })).await,
            ErrorCode::RoomArchived
        );

        alice.ok(update(v1::UpdateRoom { archived: Some(false), ..Default::default() })).await;
        bob.send(&renamed, "back in business").await;

        // Direct conversations keep their (absent) name.
        let direct = match alice.ok(Command::OpenDirect(v1::OpenDirect { username: format!("bob{i}") })).await {
            Body::Room(room) => room,
            other => panic!("{other:?}"),
        };
        let rename = Command::UpdateRoom(v1::UpdateRoom {
            room: room_id(direct.room_id),
            name: Some(format!("ours{i}")),
            ..Default::default()
        });
        assert_eq!(alice.code(rename).await, ErrorCode::Forbidden);
        let not_member = Command::UpdateRoom(v1::UpdateRoom {
            room: room_id(info.room_id),
            topic: Some("hi".into()),
            ..Default::default()
        });
        assert_eq!(carol.code(not_member).await, ErrorCode::NotAMember);
    }
}

#[tokio::test]
async fn groups_are_created_with_their_members_and_the_directory_can_be_searched() {
    let td = TestDaemon::start().await;
    let mut alice = Peer::register(&td, Wire::WsJson, "alice").await;
    let mut bob = Peer::register(&td, Wire::Quic, "bob").await;
    let mut carol = Peer::register(&td, Wire::WsProto, "carol").await;
    let _guest = Peer::guest(&td, Wire::WsProto, "visitor").await;

    let group = |members: &[&str], kind: v1::RoomKind| {
        Command::CreateRoom(v1::CreateRoom {
            name: String::new(),
            kind: kind as i32,
            members: members.iter().map(|m| m.to_string()).collect(),
            topic: "plans".into(),
        })
    };
    let info = match alice.ok(group(&["bob", "Carol", "alice"], v1::RoomKind::Private)).await {
        Body::Room(info) => info,
        other => panic!("{other:?}"),
    };
    assert_eq!((info.name.as_str(), info.kind, info.member_count), ("", v1::RoomKind::Private as i32, 3));
    assert_eq!((info.topic.as_str(), info.head_seq), ("plans", 4));
    for member in [&mut bob, &mut carol] {
        let listed = member.my_room(info.room_id).await;
        assert_eq!((listed.membership, listed.role), (v1::Membership::Joined as i32, v1::Role::Member as i32));
        let joined = member
            .push("the member's join", |body| match body {
                Body::Event(event @ v1::RoomEvent { kind: Some(Kind::MemberJoined(_)), .. }) => Some(event.clone()),
                _ => None,
            })
            .await;
        assert_eq!(joined.room_id, info.room_id);
    }
    let seq = match bob
        .request(Command::SendMessage(v1::SendMessage {
            room: room_id(info.room_id),
            text: "hi all".into(),
            client_txn_id: "g1".into(),
            ..Default::default()
        }))
        .await
    {
        Ok(Body::Sent(sent)) => sent.seq,
        other => panic!("{other:?}"),
    };
    // Groups notify every message by default.
    let told = carol.push("a notification", notification).await;
    assert_eq!((told.seq, told.reason), (seq, v1::NotificationReason::ReasonMessage as i32));

    assert_eq!(alice.code(group(&["nobody"], v1::RoomKind::Private)).await, ErrorCode::UserNotFound);
    assert_eq!(alice.code(group(&["visitor"], v1::RoomKind::Private)).await, ErrorCode::Forbidden);
    assert_eq!(alice.code(group(&["bob"], v1::RoomKind::Public)).await, ErrorCode::InvalidArgument);
    let many: Vec<String> = (0..51).map(|n| format!("u{n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(alice.code(group(&many, v1::RoomKind::Private)).await, ErrorCode::InvalidArgument);
    assert_eq!(alice.code(group(&[], v1::RoomKind::Private)).await, ErrorCode::InvalidArgument, "a room needs a name");

    for (name, topic) in [("rustaceans", "Crabs and borrows"), ("gophers", "a rust-free zone"), ("knitting", "")] {
        let create = v1::CreateRoom {
            name: name.into(),
            kind: v1::RoomKind::Public as i32,
            topic: topic.into(),
            ..Default::default()
        };
        alice.ok(Command::CreateRoom(create)).await;
    }
    alice.create("rusty-secrets", v1::RoomKind::Private).await;
    let mut found = bob.directory("RUST").await;
    found.sort();
    assert_eq!(found, ["gophers", "rustaceans"]);
    assert_eq!(bob.directory("crab").await, ["rustaceans"]);
    assert_eq!(bob.directory("").await.len(), 3);
    assert_eq!(
        bob.code(Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Directory as i32, query: "x".repeat(300) }))
            .await,
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn notification_levels_decide_who_is_told() {
    let td = TestDaemon::start().await;
    for (i, wire) in Wire::ALL.into_iter().enumerate() {
        let (alice_name, bob_name, name) = (format!("alice{i}"), format!("bob{i}"), format!("den{i}"));
        let mut alice = Peer::register(&td, wire, &alice_name).await;
        let mut bob = Peer::register(&td, Wire::ALL[(i + 1) % 3], &bob_name).await;
        let info = alice.create(&name, v1::RoomKind::Public).await;
        bob.join(&name).await;
        let level = |level: v1::NotificationLevel| {
            Command::SetNotificationLevel(v1::SetNotificationLevel { room: room(&name), level: level as i32 })
        };

        // A public room's default is MENTIONS.
        alice.send(&name, "just chatting").await;
        assert!(bob.state_pushes().await.iter().all(|b| notification(b).is_none()));
        let seq = alice.send(&name, &format!("hey @{bob_name}, look")).await;
        let told = bob.push("a mention", notification).await;
        assert_eq!(
            (told.seq, told.reason, told.room_id),
            (seq, v1::NotificationReason::ReasonMention as i32, info.room_id)
        );
        assert_eq!((told.excerpt, told.room_name.as_str()), (format!("hey @{bob_name}, look"), name.as_str()));
        assert_eq!(told.sender.unwrap().name, alice_name);
        assert!(alice.state_pushes().await.iter().all(|b| notification(b).is_none()), "not to the sender");

        match bob.ok(level(v1::NotificationLevel::NotifyAll)).await {
            Body::Room(room) => assert_eq!(room.notification_level, v1::NotificationLevel::NotifyAll as i32),
            other => panic!("{other:?}"),
        }
        let long = "y".repeat(300);
        let seq = alice.send(&name, &long).await;
        let told = bob.push("a message", notification).await;
        assert_eq!((told.seq, told.reason), (seq, v1::NotificationReason::ReasonMessage as i32));
        assert_eq!(told.excerpt.chars().count(), 100);

        bob.ok(level(v1::NotificationLevel::NotifyNone)).await;
        alice.send(&name, &format!("@{bob_name} are you there?")).await;
        assert!(bob.state_pushes().await.iter().all(|b| notification(b).is_none()), "NONE: never");
        assert_eq!(bob.my_room(info.room_id).await.mention_count, 2, "counts still move");

        bob.ok(level(v1::NotificationLevel::NotifyMentions)).await;
        alice.send(&name, "@room hello").await;
        // Only moderators and above may use @room in public rooms; alice owns it.
        let told = bob.push("a room mention", notification).await;
        assert_eq!(told.reason, v1::NotificationReason::ReasonRoomMention as i32);

        if bob.raw.encoding() == confab_sdk::Encoding::Proto {
            // (JSON cannot even carry an unknown enum value.)
            let bad = Command::SetNotificationLevel(v1::SetNotificationLevel { room: room(&name), level: 7 });
            assert_eq!(bob.code(bad).await, ErrorCode::InvalidArgument);
        }
        let mut carol = Peer::register(&td, wire, &format!("carol{i}")).await;
        assert_eq!(carol.code(level(v1::NotificationLevel::NotifyAll)).await, ErrorCode::NotAMember);

        // Direct conversations default to ALL.
        let direct = match alice.ok(Command::OpenDirect(v1::OpenDirect { username: bob_name.clone() })).await {
            Body::Room(room) => room,
            other => panic!("{other:?}"),
        };
        let sent = alice
            .request(Command::SendMessage(v1::SendMessage {
                room: room_id(direct.room_id),
                text: "psst".into(),
                client_txn_id: format!("d{i}"),
                ..Default::default()
            }))
            .await
            .unwrap();
        let Body::Sent(sent) = sent else { panic!("{sent:?}") };
        let told = bob.push("a direct message", notification).await;
        assert_eq!((told.seq, told.room_id, told.room_name.as_str()), (sent.seq, direct.room_id, ""));
    }
}

#[tokio::test]
async fn read_markers_profiles_settings_and_last_seen_survive_a_restart() {
    let mut td = TestDaemon::start().await;
    let mut alice = Peer::register(&td, Wire::Quic, "alice").await;
    let mut bob = Peer::register(&td, Wire::WsJson, "bob").await;
    let info = alice.create("den", v1::RoomKind::Public).await;
    bob.join("den").await;
    for text in ["one", "two", "three"] {
        bob.send("den", text).await;
    }
    let read = alice.mark_read(info.room_id, 4).await;
    let set = Command::SetProfile(v1::SetProfile {
        display_name: Some("Alice L.".into()),
        status_text: Some("away for tea".into()),
        share_receipts: Some(false),
        ..Default::default()
    });
    alice.ok(set).await;
    let topic = Command::UpdateRoom(v1::UpdateRoom {
        room: room_id(info.room_id),
        topic: Some("tea".into()),
        ..Default::default()
    });
    alice.ok(topic).await;
    alice
        .ok(Command::SetNotificationLevel(v1::SetNotificationLevel {
            room: room_id(info.room_id),
            level: v1::NotificationLevel::NotifyNone as i32,
        }))
        .await;
    alice.close().await;
    let gone = bob.push("alice offline", presence_of("alice", v1::PresenceState::Offline)).await;
    bob.close().await;

    td.restart().await;
    let mut bob = Peer::login(&td, Wire::WsProto, "bob").await;
    let profile = bob.profile("alice").await;
    assert_eq!((profile.presence, profile.last_seen_ms), (v1::PresenceState::Offline as i32, gone.last_seen_ms));
    assert_eq!((profile.display_name.as_str(), profile.status_text.as_str()), ("Alice L.", "away for tea"));
    let mut alice = Peer::login(&td, Wire::WsJson, "alice").await;
    let listed = alice.my_room(info.room_id).await;
    assert_eq!((listed.read_seq, listed.unread_count), (read.read_seq, read.unread_count), "{listed:?}");
    assert_eq!((listed.topic.as_str(), listed.notification_level), ("tea", v1::NotificationLevel::NotifyNone as i32));
    assert!(!alice.profile("alice").await.share_receipts);
    assert_eq!(bob.profile("alice").await.last_seen_ms, 0, "online again");
}
