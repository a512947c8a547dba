//! Deterministic transcripts of the client core: frames in, frames, replies,
//! events and actions out, on a virtual clock.

use std::time::{Duration, Instant};

use confab_protocol::{
    Encoding, Epoch, RoomId, Seq,
    v1::{self, client_frame::Command, server_frame::Body},
};

use tokio::sync::oneshot;

use super::{Action, Answer, ClientCore, CoreConfig, Phase};
use crate::{Error, Event, Tokens};

/// Plain numbered tags: someone always waits for them.
impl Answer for u32 {
    fn abandoned(&self) -> bool {
        false
    }
}

/// A core whose replies are answered through `R`: plain numbered tags
/// unless a test needs the client's own oneshot senders.
struct Harness<R = u32> {
    core: ClientCore<R>,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        Self::with_config(|_| {})
    }

    fn with_config(edit: impl FnOnce(&mut CoreConfig)) -> Self {
        Harness::build(edit)
    }
}

impl<R: Answer> Harness<R> {
    fn build(edit: impl FnOnce(&mut CoreConfig)) -> Self {
        let mut config = CoreConfig {
            client_name: "test".into(),
            receive_events: true,
            handshake_timeout: Duration::from_secs(10),
            max_buffered_events: 100,
            request_timeout: None,
            send_retries: 3,
            max_retry_wait: Duration::from_secs(30),
        };
        edit(&mut config);
        let now = Instant::now();
        Harness { core: ClientCore::new(config, now), now }
    }

    fn submit(&mut self, command: Command, reply: R) {
        self.core.submit(self.now, command, reply);
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.core.on_timeout(self.now);
    }

    /// Everything the core wants written, drained.
    fn sent(&mut self) -> Vec<v1::ClientFrame> {
        std::iter::from_fn(|| self.core.poll_transmit(self.now)).collect()
    }

    /// The one frame the core wants written.
    fn sent_one(&mut self) -> (u64, Command) {
        let mut sent = self.sent();
        assert_eq!(sent.len(), 1, "expected one frame, got {sent:?}");
        let frame = sent.remove(0);
        (frame.request_id, frame.command.expect("a command"))
    }

    fn reply(&mut self, request_id: u64, body: Body) {
        self.core.on_frame(self.now, v1::ServerFrame { request_id, body: Some(body) });
    }

    fn push(&mut self, body: Option<Body>) {
        self.core.on_frame(self.now, v1::ServerFrame { request_id: 0, body });
    }

    fn replies(&mut self) -> Vec<(R, Result<Body, Error>)> {
        std::iter::from_fn(|| self.core.poll_reply()).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }

    /// Connects and answers Hello with a Welcome.
    fn connect(&mut self) {
        self.core.on_connected(self.now, Encoding::Proto);
        let (id, command) = self.sent_one();
        let Command::Hello(hello) = command else { panic!("expected Hello, got {command:?}") };
        assert_eq!(hello.versions, vec![1]);
        assert_eq!(hello.feature_level, confab_protocol::FEATURE_LEVEL);
        assert_eq!(hello.capabilities, vec!["resume".to_owned(), "guests".to_owned()]);
        assert_eq!(hello.client_name, "test");
        self.reply(id, Body::Welcome(welcome()));
    }

    /// After a reconnect with tokens: answers Authenticate and Resume.
    fn authenticate_and_resume(&mut self) {
        let (id, command) = self.sent_one();
        assert!(matches!(command, Command::Authenticate(_)), "{command:?}");
        self.reply(id, Body::Auth(v1::AuthResult::default()));
        let (id, command) = self.sent_one();
        assert!(matches!(command, Command::Resume(_)), "{command:?}");
        self.reply(id, resumed(&[]));
    }
}

impl Harness {
    /// Connects and logs in as alice with tokens a1/r1; events start LIVE in
    /// room 1 at seq 10.
    fn logged_in() -> Self {
        let mut h = Harness::new();
        h.connect();
        assert!(matches!(h.events()[..], [Event::Connected { session_id: 77 }]));
        h.submit(Command::Login(v1::Login { username: "alice".into(), ..Default::default() }), 1);
        let (id, _) = h.sent_one();
        h.reply(id, Body::Auth(auth("a1", "r1")));
        assert!(matches!(&h.replies()[..], [(1, Ok(Body::Auth(_)))]));
        assert_eq!(h.core.tokens().unwrap().refresh_token.as_deref(), Some("r1"));
        let (id, command) = h.sent_one();
        assert_eq!(command, Command::Resume(v1::Resume { positions: vec![] }));
        h.reply(id, resumed(&[(1, 1, 10, v1::ResumeOutcome::Live)]));
        assert_eq!(h.core.positions().get(RoomId(1)), Some((Epoch(1), Seq(10))));
        h
    }
}

fn welcome() -> v1::Welcome {
    v1::Welcome {
        version: 1,
        feature_level: 1,
        ping_interval_ms: 10_000,
        idle_timeout_ms: 30_000,
        session_id: 77,
        ..Default::default()
    }
}

fn auth(access: &str, refresh: &str) -> v1::AuthResult {
    v1::AuthResult {
        user: Some(v1::User { user_id: 5, name: "alice".into(), guest: false, ..Default::default() }),
        access_token: access.into(),
        refresh_token: refresh.into(),
        ..Default::default()
    }
}

fn resumed(rooms: &[(u64, u64, u64, v1::ResumeOutcome)]) -> Body {
    Body::Resumed(v1::ResumeResult {
        rooms: rooms
            .iter()
            .map(|&(room_id, epoch, head_seq, outcome)| v1::RoomResumeStatus {
                room_id,
                epoch,
                head_seq,
                outcome: outcome as i32,
                replayed: 0,
            })
            .collect(),
    })
}

fn room_event(room: u64, epoch: u64, seq: u64) -> Option<Body> {
    Some(Body::Event(v1::RoomEvent { room_id: room, epoch, seq, ..Default::default() }))
}

fn send(txn: &str) -> Command {
    Command::SendMessage(v1::SendMessage {
        room: Some(v1::RoomRef::name("general")),
        text: "hi".into(),
        client_txn_id: txn.into(),
        ..Default::default()
    })
}

fn error(code: v1::ErrorCode) -> Body {
    Body::Error(v1::Error::new(code, "refused"))
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Room(event) => Some(event.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn requests_wait_for_the_handshake_then_go_out_in_order() {
    let mut h = Harness::new();
    h.submit(Command::ListRooms(v1::ListRooms::default()), 1);
    assert!(h.sent().is_empty(), "nothing goes out before connecting");
    h.core.on_connected(h.now, Encoding::Proto);
    h.submit(Command::Ping(v1::Ping {}), 2);
    let (hello_id, _) = h.sent_one();
    h.reply(hello_id, Body::Welcome(welcome()));
    assert_eq!(h.core.phase(), Phase::Ready);
    let sent = h.sent();
    assert_eq!(sent.len(), 2);
    assert!(matches!(sent[0].command, Some(Command::ListRooms(_))));
    assert!(matches!(sent[1].command, Some(Command::Ping(_))));
    assert!(sent.iter().all(|f| f.request_id != 0 && f.request_id != hello_id));
    h.reply(sent[1].request_id, Body::Pong(v1::Pong {}));
    h.reply(sent[0].request_id, Body::Rooms(v1::RoomList::default()));
    let replies = h.replies();
    assert!(matches!(replies[..], [(2, Ok(Body::Pong(_))), (1, Ok(Body::Rooms(_)))]));
    // A reply to nothing in flight is ignored.
    h.reply(999, Body::Pong(v1::Pong {}));
    assert!(h.replies().is_empty());
}

#[test]
fn error_replies_and_unknown_reply_kinds_become_errors() {
    let mut h = Harness::new();
    h.connect();
    h.submit(Command::JoinRoom(v1::JoinRoom::default()), 1);
    h.submit(Command::ListRooms(v1::ListRooms::default()), 2);
    let sent = h.sent();
    h.reply(sent[0].request_id, error(v1::ErrorCode::RoomNotFound));
    h.core.on_frame(h.now, v1::ServerFrame { request_id: sent[1].request_id, body: None });
    let replies = h.replies();
    assert!(matches!(&replies[0], (1, Err(e)) if e.server_code() == Some(v1::ErrorCode::RoomNotFound)));
    assert!(matches!(&replies[1], (2, Err(Error::Protocol(_)))));
}

#[test]
fn room_events_are_delivered_once_and_gaps_trigger_a_resume() {
    let mut h = Harness::logged_in();
    h.push(room_event(1, 1, 11));
    h.push(room_event(1, 1, 11));
    h.push(room_event(1, 1, 9));
    h.push(room_event(2, 1, 3)); // first event of a room joined since
    h.push(room_event(1, 1, 12));
    assert_eq!(seqs(&h.events()), vec![11, 3, 12]);

    // 13 is missing: 14 is held back and a Resume asks for the gap.
    h.push(room_event(1, 1, 14));
    assert!(h.events().is_empty());
    let (resume_id, command) = h.sent_one();
    let Command::Resume(resume) = command else { panic!("expected Resume") };
    assert!(resume.positions.contains(&v1::RoomPosition { room_id: 1, epoch: 1, seq: 12 }));
    // A second gap while that Resume is in flight asks for one more later.
    h.push(room_event(1, 1, 15));
    assert!(h.sent().is_empty());
    h.push(room_event(1, 1, 13));
    h.push(room_event(1, 1, 14));
    h.reply(resume_id, resumed(&[(1, 1, 14, v1::ResumeOutcome::Replayed)]));
    assert_eq!(seqs(&h.events()), vec![13, 14]);
    let (_, command) = h.sent_one();
    assert!(
        matches!(command, Command::Resume(r) if r.positions.contains(&v1::RoomPosition { room_id: 1, epoch: 1, seq: 14 }))
    );
}

#[test]
fn an_invitation_to_an_unfollowed_room_is_no_position_in_it() {
    let mut h = Harness::logged_in();
    let invitation = v1::RoomEvent {
        room_id: 7,
        epoch: 1,
        seq: 40,
        kind: Some(v1::room_event::Kind::MemberInvited(v1::MemberInvited {
            invitee: Some(v1::User { user_id: 5, name: "alice".into(), guest: false, ..Default::default() }),
        })),
        ..Default::default()
    };
    h.push(Some(Body::Event(invitation)));
    assert_eq!(seqs(&h.events()), vec![40]);
    assert_eq!(h.core.positions().get(RoomId(7)), None);
    // Joining later starts the room at the join event, with no false gap.
    h.push(room_event(7, 1, 45));
    assert_eq!(seqs(&h.events()), vec![45]);
    assert!(h.sent().is_empty(), "no Resume for a gap that is not one");
}

#[test]
fn a_live_answer_never_moves_a_position_back() {
    let mut h = Harness::new();
    h.connect();
    h.submit(Command::Login(v1::Login::default()), 1);
    let (id, _) = h.sent_one();
    h.reply(id, Body::Auth(auth("a1", "r1")));
    let (resume_id, _) = h.sent_one();
    // A live event overtakes the answer, which names the head before it.
    h.push(room_event(1, 1, 11));
    h.reply(resume_id, resumed(&[(1, 1, 10, v1::ResumeOutcome::Live)]));
    h.push(room_event(1, 1, 12));
    assert_eq!(seqs(&h.events()), vec![11, 12]);
    assert!(h.sent().is_empty(), "no gap was seen");
}

#[test]
fn reconnect_authenticates_resumes_then_resends_unanswered_sends() {
    let mut h = Harness::logged_in();
    h.events();
    h.push(room_event(1, 1, 11));
    h.submit(send("txn-1"), 10);
    h.submit(Command::GetHistory(v1::GetHistory::default()), 11);
    h.submit(Command::CreateRoom(v1::CreateRoom { name: "new".into(), ..Default::default() }), 12);
    let sent = h.sent();
    assert_eq!(sent.len(), 3);
    // Written, then the connection drops before any reply.
    h.core.on_disconnected();
    assert_eq!(h.core.phase(), Phase::Disconnected);
    let replies = h.replies();
    assert!(matches!(replies[..], [(12, Err(Error::ConnectionLost))]), "{replies:?}");
    h.submit(Command::ListRooms(v1::ListRooms::default()), 13);

    h.connect();
    let (auth_id, command) = h.sent_one();
    assert_eq!(command, Command::Authenticate(v1::Authenticate { access_token: "a1".into() }));
    h.reply(auth_id, Body::Auth(v1::AuthResult { user: auth("", "").user, ..Default::default() }));
    let (resume_id, command) = h.sent_one();
    assert_eq!(
        command,
        Command::Resume(v1::Resume { positions: vec![v1::RoomPosition { room_id: 1, epoch: 1, seq: 11 }] })
    );
    // Nothing else goes out before the Resume is answered.
    h.submit(Command::Ping(v1::Ping {}), 14);
    assert!(h.sent().is_empty());
    h.push(room_event(1, 1, 11)); // replay overlap
    h.push(room_event(1, 1, 12));
    h.reply(resume_id, resumed(&[(1, 1, 12, v1::ResumeOutcome::Replayed), (3, 2, 40, v1::ResumeOutcome::Reset)]));
    let events = h.events();
    assert_eq!(seqs(&events), vec![11, 12]);
    assert!(
        events.iter().any(|e| matches!(e, Event::RoomReset { room: RoomId(3), epoch: Epoch(2), head_seq: Seq(40) }))
    );
    assert!(matches!(events.last(), Some(Event::Connected { .. })));

    let resent = h.sent();
    let commands: Vec<_> = resent.iter().map(|f| f.command.clone().unwrap()).collect();
    assert_eq!(commands[0], send("txn-1"), "the send goes again with the same transaction id");
    assert!(matches!(commands[1], Command::GetHistory(_)));
    assert!(matches!(commands[2], Command::ListRooms(_)));
    assert!(matches!(commands[3], Command::Ping(_)));
    assert_eq!(commands.len(), 4);
    h.reply(resent[0].request_id, Body::Sent(v1::SendResult { seq: 12, duplicate: true, ..Default::default() }));
    assert!(matches!(&h.replies()[..], [(10, Ok(Body::Sent(v1::SendResult { seq: 12, duplicate: true, .. })))]));
}

#[test]
fn requests_never_written_are_retried_whatever_they_are() {
    let mut h = Harness::logged_in();
    h.submit(Command::CreateRoom(v1::CreateRoom::default()), 1);
    h.submit(Command::LeaveRoom(v1::LeaveRoom::default()), 2);
    // Only the first was written before the drop.
    assert!(h.core.poll_transmit(h.now).is_some());
    h.core.on_disconnected();
    assert!(matches!(h.replies()[..], [(1, Err(Error::ConnectionLost))]));
    h.connect();
    let (auth_id, _) = h.sent_one();
    h.reply(auth_id, Body::Auth(v1::AuthResult::default()));
    let (resume_id, _) = h.sent_one();
    h.reply(resume_id, resumed(&[]));
    let (_, command) = h.sent_one();
    assert!(matches!(command, Command::LeaveRoom(_)));
}

#[test]
fn an_expired_access_token_is_refreshed_and_the_new_tokens_reported() {
    let mut h = Harness::logged_in();
    h.core.on_disconnected();
    h.connect();
    let (id, _) = h.sent_one();
    h.reply(id, error(v1::ErrorCode::TokenExpired));
    let (id, command) = h.sent_one();
    assert_eq!(command, Command::Refresh(v1::Refresh { refresh_token: "r1".into() }));
    h.reply(id, Body::Auth(auth("a2", "r2")));
    let (id, command) = h.sent_one();
    assert_eq!(command, Command::Authenticate(v1::Authenticate { access_token: "a2".into() }));
    h.reply(id, Body::Auth(v1::AuthResult::default()));
    let (id, _) = h.sent_one();
    h.reply(id, resumed(&[]));
    assert_eq!(h.core.tokens(), Some(&Tokens::new("a2", Some("r2".into()))));
    let events = h.events();
    assert!(matches!(&events[..], [Event::TokensRefreshed(t), Event::Connected { .. }] if t.access_token == "a2"));
    assert!(h.core.poll_action().is_none());
}

#[test]
fn a_refused_refresh_on_reconnect_stops_the_client() {
    let mut h = Harness::logged_in();
    h.core.on_disconnected();
    h.connect();
    let (id, _) = h.sent_one();
    h.reply(id, error(v1::ErrorCode::TokenExpired));
    let (id, _) = h.sent_one();
    h.reply(id, error(v1::ErrorCode::TokenReused));
    match h.core.poll_action() {
        Some(Action::Stop(e)) => assert_eq!(e.server_code(), Some(v1::ErrorCode::TokenReused)),
        other => panic!("expected Stop, got {other:?}"),
    }
}

#[test]
fn a_temporary_auth_error_reconnects_after_the_servers_delay() {
    let mut h = Harness::logged_in();
    h.core.on_disconnected();
    h.connect();
    let (id, _) = h.sent_one();
    h.reply(id, Body::Error(v1::Error::temporary(v1::ErrorCode::Unavailable, "busy", 1500)));
    match h.core.poll_action() {
        Some(Action::Reconnect { min_delay, .. }) => assert_eq!(min_delay, Duration::from_millis(1500)),
        other => panic!("expected Reconnect, got {other:?}"),
    }
}

#[test]
fn the_applications_authenticate_reports_refusal_and_stays_connected() {
    let mut h = Harness::new();
    h.connect();
    h.events();
    h.core.authenticate(Tokens::new("stale", None), 1);
    let (id, _) = h.sent_one();
    h.submit(Command::ListRooms(v1::ListRooms::default()), 2);
    assert!(h.sent().is_empty(), "requests wait while authenticating");
    // No refresh token: an expired token is final.
    h.reply(id, error(v1::ErrorCode::TokenExpired));
    let replies = h.replies();
    assert!(matches!(&replies[..], [(1, Err(e))] if e.server_code() == Some(v1::ErrorCode::TokenExpired)));
    assert!(h.core.poll_action().is_none());
    assert_eq!(h.core.tokens(), None);
    assert_eq!(h.core.phase(), Phase::Ready);
    assert!(matches!(h.sent_one().1, Command::ListRooms(_)));
    assert!(h.events().is_empty(), "Connected is announced once per connection");

    // A second authenticate while logged in is refused locally.
    h.core.authenticate(Tokens::new("good", None), 3);
    let (id, _) = h.sent_one();
    h.reply(id, Body::Auth(v1::AuthResult::default()));
    h.sent();
    h.core.authenticate(Tokens::new("again", None), 4);
    assert!(matches!(&h.replies()[..], [(3, Ok(_)), (4, Err(Error::InvalidState(_)))]));
}

#[test]
fn stored_tokens_authenticate_on_the_first_connection() {
    let mut h = Harness::new();
    h.core.authenticate(Tokens::new("a1", Some("r1".into())), 1);
    h.core.on_connected(h.now, Encoding::Proto);
    let (id, _) = h.sent_one();
    h.reply(id, Body::Welcome(welcome()));
    let (id, command) = h.sent_one();
    assert_eq!(command, Command::Authenticate(v1::Authenticate { access_token: "a1".into() }));
    h.reply(id, Body::Auth(auth("", "")));
    assert!(matches!(&h.replies()[..], [(1, Ok(Body::Auth(_)))]));
    assert_eq!(h.core.user().map(|u| u.name.as_str()), Some("alice"));
    assert_eq!(h.core.phase(), Phase::Resuming);
}

#[test]
fn without_events_no_resume_is_sent() {
    let mut h = Harness::with_config(|c| c.receive_events = false);
    h.core.authenticate(Tokens::new("a1", None), 1);
    h.connect();
    let (id, _) = h.sent_one();
    h.reply(id, Body::Auth(v1::AuthResult::default()));
    assert_eq!(h.core.phase(), Phase::Ready);
    assert!(h.sent().is_empty());
}

#[test]
fn close_codes_decide_between_reconnecting_and_stopping() {
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: v1::CloseCode::ServerShutdown as i32, reason: "restart".into() })));
    assert!(matches!(&h.events()[..], [Event::ServerClosed { code: 4000, .. }]));
    assert!(h.core.poll_action().is_none(), "the transport's close code decides");
    h.core.on_transport_closed(Some(4000), "restart".into());
    assert!(matches!(h.core.poll_action(), Some(Action::Reconnect { error: Error::Closed { code: 4000, .. }, .. })));

    // A code of neither range on the transport: the frame decides.
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: 4599, reason: "go away".into() })));
    h.core.on_transport_closed(Some(1000), String::new());
    assert!(matches!(h.core.poll_action(), Some(Action::Stop(Error::Closed { code: 4599, .. }))));

    // No frame, no code: a lost connection, reconnect; a stop code alone stops.
    let mut h = Harness::logged_in();
    h.core.on_transport_closed(None, String::new());
    assert!(matches!(h.core.poll_action(), Some(Action::Reconnect { error: Error::Transport(_), .. })));
    let mut h = Harness::logged_in();
    h.core.on_transport_closed(Some(4502), "too large".into());
    assert!(matches!(h.core.poll_action(), Some(Action::Stop(Error::Closed { code: 4502, .. }))));
    // A failure after a Close frame does what the frame said.
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: 4504, reason: "revoked".into() })));
    h.core.on_transport_lost(Error::Transport("reset".into()));
    assert!(matches!(h.core.poll_action(), Some(Action::Stop(Error::Closed { code: 4504, .. }))));
}

#[test]
fn the_transport_close_code_wins_over_the_close_frame() {
    // CLOSE-3: the frame says reconnect, the transport says stop.
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: 4000, reason: "restart".into() })));
    h.core.on_transport_closed(Some(4500), "violation".into());
    assert!(matches!(h.core.poll_action(), Some(Action::Stop(Error::Closed { code: 4500, .. }))));

    // The frame says stop, the transport says reconnect.
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: 4502, reason: "too large".into() })));
    h.core.on_transport_closed(Some(4000), String::new());
    match h.core.poll_action() {
        Some(Action::Reconnect { error: Error::Closed { code: 4000, reason }, .. }) => assert_eq!(reason, "too large"),
        other => panic!("expected Reconnect, got {other:?}"),
    }

    // ENC-7: an unknown code named in JSON reads as 0; the transport carries
    // the number, classified by its range.
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: 0, reason: "rebalancing".into() })));
    h.core.on_transport_closed(Some(4321), String::new());
    assert!(matches!(h.core.poll_action(), Some(Action::Reconnect { error: Error::Closed { code: 4321, .. }, .. })));
}

#[test]
fn a_close_frame_whose_transport_stays_open_decides_after_a_while() {
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: 4503, reason: "late".into() })));
    assert_eq!(h.core.next_deadline(), Some(h.now + super::CLOSE_CODE_WAIT));
    h.advance(super::CLOSE_CODE_WAIT - Duration::from_millis(1));
    assert!(h.core.poll_action().is_none());
    h.advance(Duration::from_millis(1));
    assert!(matches!(h.core.poll_action(), Some(Action::Stop(Error::Closed { code: 4503, .. }))));
}

#[test]
fn a_send_refused_for_now_is_kept_and_retried_with_its_transaction_id() {
    let mut h = Harness::logged_in();
    h.submit(send("txn-1"), 1);
    let (id, _) = h.sent_one();
    h.reply(id, Body::Error(v1::Error::temporary(v1::ErrorCode::RateLimited, "slow down", 700)));
    assert!(h.replies().is_empty(), "the application waits: the send is still in the outbox");
    assert_eq!(h.core.next_deadline(), Some(h.now + Duration::from_millis(700)));
    h.advance(Duration::from_millis(699));
    assert!(h.sent().is_empty(), "not before retry_after_ms");
    h.advance(Duration::from_millis(1));
    let (id, command) = h.sent_one();
    assert_eq!(command, send("txn-1"));
    // Refused for now again, without retry_after_ms: the backoff's second
    // delay, 2 s. The connection drops; after the reconnect it goes again
    // once due, before a send made later.
    h.reply(id, Body::Error(v1::Error::temporary(v1::ErrorCode::Unavailable, "busy", 0)));
    h.submit(send("txn-2"), 2);
    h.core.on_disconnected();
    h.connect();
    h.authenticate_and_resume();
    assert!(h.sent().is_empty());
    h.advance(Duration::from_secs(2));
    let resent: Vec<_> = h.sent().into_iter().map(|f| (f.request_id, f.command.unwrap())).collect();
    assert_eq!(resent.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(), vec![send("txn-1"), send("txn-2")]);
    h.reply(resent[0].0, Body::Sent(v1::SendResult { seq: 11, ..Default::default() }));
    // A permanent error ends it.
    h.reply(resent[1].0, error(v1::ErrorCode::NotAMember));
    let replies = h.replies();
    assert!(matches!(&replies[0], (1, Ok(Body::Sent(s))) if s.seq == 11));
    assert!(matches!(&replies[1], (2, Err(e)) if e.server_code() == Some(v1::ErrorCode::NotAMember)));
}

#[test]
fn a_send_refused_for_now_too_often_or_for_too_long_reports_the_error() {
    let limited =
        |retry_after_ms| Body::Error(v1::Error::temporary(v1::ErrorCode::RateLimited, "slow", retry_after_ms));
    let mut h = Harness::logged_in();
    h.submit(send("txn-1"), 1);
    for _ in 0..3 {
        let (id, _) = h.sent_one();
        h.reply(id, limited(100));
        assert!(h.replies().is_empty());
        h.advance(Duration::from_millis(100));
    }
    let (id, _) = h.sent_one();
    h.reply(id, limited(100));
    assert!(matches!(&h.replies()[..], [(1, Err(e))] if e.server_code() == Some(v1::ErrorCode::RateLimited)));

    // A wait longer than the application's is not waited for.
    h.submit(send("txn-2"), 2);
    let (id, _) = h.sent_one();
    h.reply(id, limited(31_000));
    assert!(matches!(&h.replies()[..], [(2, Err(_))]));

    // Retries off: the first temporary error is the application's.
    let mut h = Harness::with_config(|c| c.send_retries = 0);
    h.connect();
    h.submit(send("txn-3"), 3);
    let (id, _) = h.sent_one();
    h.reply(id, limited(100));
    assert!(matches!(&h.replies()[..], [(3, Err(_))]));
}

#[test]
fn an_event_of_another_epoch_resets_the_room() {
    let mut h = Harness::logged_in();
    h.push(room_event(1, 1, 11));
    h.push(room_event(1, 2, 4));
    let events = h.events();
    assert_eq!(seqs(&events), vec![11], "the new epoch's event is read with the reload");
    assert!(matches!(events.last(), Some(Event::RoomReset { room: RoomId(1), epoch: Epoch(2), head_seq: Seq(4) })));
    assert_eq!(h.core.positions().get(RoomId(1)), Some((Epoch(2), Seq(4))));
    h.push(room_event(1, 2, 5));
    assert_eq!(seqs(&h.events()), vec![5]);
    assert!(h.sent().is_empty(), "no Resume: the reload is the application's");
}

#[test]
fn a_request_over_the_frame_limit_is_refused_without_sending_it() {
    let limited = |unauthenticated, authenticated| v1::Welcome {
        limits: Some(v1::Limits {
            max_frame_bytes_unauthenticated: unauthenticated,
            max_frame_bytes: authenticated,
            ..Default::default()
        }),
        ..welcome()
    };
    let long = |text: &str| {
        Command::SendMessage(v1::SendMessage {
            room: Some(v1::RoomRef::name("general")),
            text: text.into(),
            client_txn_id: "t".into(),
            ..Default::default()
        })
    };
    for encoding in [Encoding::Proto, Encoding::Json] {
        let mut h = Harness::new();
        h.core.on_connected(h.now, encoding);
        let (id, _) = h.sent_one();
        h.reply(id, Body::Welcome(limited(100, 1000)));
        // Before logging in, the smaller limit applies.
        h.submit(Command::Login(v1::Login { password: "p".repeat(200), ..Default::default() }), 1);
        assert!(h.sent().is_empty());
        assert!(matches!(&h.replies()[..], [(1, Err(Error::FrameTooLarge { limit: 100, .. }))]));
        h.submit(Command::Login(v1::Login { username: "alice".into(), ..Default::default() }), 2);
        let (id, _) = h.sent_one();
        h.reply(id, Body::Auth(auth("a1", "r1")));
        h.sent();
        h.replies();
        h.submit(long(&"x".repeat(2000)), 3);
        h.submit(long(&"x".repeat(500)), 4);
        let sent = h.sent();
        assert_eq!(sent.len(), 1, "{encoding:?}");
        assert!(matches!(&h.replies()[..], [(3, Err(Error::FrameTooLarge { limit: 1000, .. }))]));
    }
}

#[test]
fn unknown_pushes_are_ignored_and_stray_errors_reported() {
    let mut h = Harness::logged_in();
    h.push(None);
    h.push(Some(Body::Ping(v1::Ping {})));
    h.push(Some(Body::Pong(v1::Pong {})));
    assert!(h.events().is_empty());
    assert!(h.core.poll_action().is_none());
    h.push(Some(error(v1::ErrorCode::BadFrame)));
    assert!(matches!(&h.events()[..], [Event::ServerError(e)] if e.code == v1::ErrorCode::BadFrame as i32));
}

#[test]
fn pings_when_quiet_and_gives_up_on_a_silent_server() {
    let mut h = Harness::logged_in();
    let s = Duration::from_secs;
    assert!(h.core.next_deadline().is_some());
    h.advance(s(9));
    assert!(h.sent().is_empty());
    h.advance(s(1));
    assert!(matches!(h.sent_one().1, Command::Ping(_)));
    h.advance(s(10));
    assert!(matches!(h.sent_one().1, Command::Ping(_)));
    // The server said nothing for 30 s (its idle timeout).
    h.advance(s(10));
    h.sent();
    assert!(matches!(h.core.poll_action(), Some(Action::Reconnect { error: Error::Timeout, .. })));
}

#[test]
fn no_welcome_within_the_handshake_timeout_is_a_timeout() {
    let mut h = Harness::new();
    h.core.on_connected(h.now, Encoding::Proto);
    h.sent();
    h.advance(Duration::from_secs(9));
    assert!(h.core.poll_action().is_none());
    assert!(h.sent().is_empty(), "no keep-alive before Welcome");
    h.advance(Duration::from_secs(1));
    assert!(matches!(h.core.poll_action(), Some(Action::Reconnect { error: Error::Timeout, .. })));
}

#[test]
fn an_application_that_falls_behind_gets_the_dropped_events_replayed() {
    let mut h = Harness::with_config(|c| c.max_buffered_events = 4);
    h.connect();
    h.core.authenticate(Tokens::new("a1", None), 1);
    let (id, _) = h.sent_one();
    h.reply(id, Body::Auth(v1::AuthResult::default()));
    let (id, _) = h.sent_one();
    h.reply(id, resumed(&[(1, 1, 0, v1::ResumeOutcome::Live)]));
    // Connected is buffered; room events 1-3 fit, 4 and 5 are dropped.
    for seq in 1..=5 {
        h.push(room_event(1, 1, seq));
    }
    assert!(h.sent().is_empty());
    let first = h.core.poll_event();
    assert!(matches!(first, Some(Event::Connected { .. })));
    assert!(h.sent().is_empty(), "still more than half full");
    let events = h.events();
    assert_eq!(seqs(&events), vec![1, 2, 3]);
    let (_, command) = h.sent_one();
    assert_eq!(
        command,
        Command::Resume(v1::Resume { positions: vec![v1::RoomPosition { room_id: 1, epoch: 1, seq: 3 }] })
    );
}

#[test]
fn logout_forgets_tokens_and_positions() {
    let mut h = Harness::logged_in();
    h.submit(Command::Logout(v1::Logout {}), 1);
    let (id, _) = h.sent_one();
    h.reply(id, Body::Done(v1::Done {}));
    assert_eq!(h.core.tokens(), None);
    assert_eq!(h.core.positions().get(RoomId(1)), None);
    h.core.on_disconnected();
    h.connect();
    assert_eq!(h.core.phase(), Phase::Ready, "no authentication without tokens");
}

#[test]
fn fail_all_answers_everything_waiting() {
    let mut h = Harness::new();
    h.core.authenticate(Tokens::new("a", None), 1);
    h.submit(send("t"), 2);
    h.core.on_connected(h.now, Encoding::Proto);
    h.sent();
    h.core.fail_all(&Error::ClientClosed);
    let mut tags: Vec<u32> = h
        .replies()
        .into_iter()
        .map(|(tag, result)| {
            assert!(matches!(result, Err(Error::ClientClosed)));
            tag
        })
        .collect();
    tags.sort();
    assert_eq!(tags, vec![1, 2]);
}

fn limited(retry_after_ms: u32) -> Body {
    Body::Error(v1::Error::temporary(v1::ErrorCode::RateLimited, "slow down", retry_after_ms))
}

fn is_rate_limited(error: &Error) -> bool {
    error.server_code() == Some(v1::ErrorCode::RateLimited)
}

fn auth_as(user_id: u64) -> Body {
    let user = v1::User { user_id, name: format!("user{user_id}"), guest: false, ..Default::default() };
    Body::Auth(v1::AuthResult { user: Some(user), ..auth("a2", "r2") })
}

#[test]
fn later_sends_wait_behind_a_send_refused_for_now_and_other_requests_go_ahead() {
    let mut h = Harness::logged_in();
    h.submit(send("txn-1"), 1);
    let (id, _) = h.sent_one();
    h.reply(id, limited(700));
    h.submit(send("txn-2"), 2);
    h.submit(Command::ListRooms(v1::ListRooms::default()), 3);
    h.submit(send("txn-3"), 4);
    let (_, command) = h.sent_one();
    assert!(matches!(command, Command::ListRooms(_)), "only the read goes ahead, got {command:?}");
    h.advance(Duration::from_millis(700));
    let commands: Vec<_> = h.sent().into_iter().map(|f| f.command.unwrap()).collect();
    assert_eq!(commands, vec![send("txn-1"), send("txn-2"), send("txn-3")], "in the application's order (SEND-6)");
}

#[test]
fn a_send_refused_for_now_keeps_its_due_time_and_its_place_across_a_reconnect() {
    let mut h = Harness::logged_in();
    h.submit(send("txn-1"), 1);
    let (id, _) = h.sent_one();
    h.reply(id, limited(5000));
    let due = h.now + Duration::from_millis(5000);
    h.submit(send("txn-2"), 2);
    h.advance(Duration::from_secs(1));
    h.core.on_disconnected();
    h.connect();
    h.authenticate_and_resume();
    h.submit(Command::Ping(v1::Ping {}), 3);
    let (_, command) = h.sent_one();
    assert!(matches!(command, Command::Ping(_)), "the sends wait for retry_after_ms, got {command:?}");
    assert_eq!(h.core.next_deadline(), Some(due));
    h.advance(Duration::from_millis(3999));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(1));
    let commands: Vec<_> = h.sent().into_iter().map(|f| f.command.unwrap()).collect();
    assert_eq!(commands, vec![send("txn-1"), send("txn-2")], "in their original order (IDEM-5)");
}

#[test]
fn a_send_is_given_up_with_its_error_when_the_application_stops_waiting() {
    let mut h = Harness::with_config(|c| c.request_timeout = Some(Duration::from_secs(5)));
    h.connect();
    h.submit(send("txn-1"), 1);
    let (id, _) = h.sent_one();
    h.reply(id, limited(3000));
    assert!(h.replies().is_empty());
    h.advance(Duration::from_secs(3));
    let (id, _) = h.sent_one();
    // A second wait would end at 6 s, after the application's 5 s: its error now.
    h.reply(id, limited(3000));
    assert!(matches!(&h.replies()[..], [(1, Err(e))] if is_rate_limited(e)));

    // Waiting for its retry, or for a connection, past the deadline: answered
    // with its last error, or a timeout, and never sent.
    h.submit(send("txn-2"), 2);
    let (id, _) = h.sent_one();
    h.reply(id, limited(1000));
    h.core.on_disconnected();
    h.submit(send("txn-3"), 3);
    assert_eq!(h.core.next_deadline(), Some(h.now + Duration::from_secs(5)));
    h.advance(Duration::from_secs(5));
    let replies = h.replies();
    assert!(matches!(&replies[..], [(2, Err(e)), (3, Err(Error::Timeout))] if is_rate_limited(e)), "{replies:?}");
    h.connect();
    assert!(h.sent().is_empty());
}

#[test]
fn the_retry_wait_is_bounded_in_all_not_per_delay() {
    let mut h = Harness::with_config(|c| c.max_retry_wait = Duration::from_secs(1));
    h.connect();
    h.submit(send("txn-1"), 1);
    let (id, _) = h.sent_one();
    h.reply(id, limited(600));
    assert!(h.replies().is_empty());
    h.advance(Duration::from_millis(600));
    let (id, _) = h.sent_one();
    h.reply(id, limited(600));
    assert!(matches!(&h.replies()[..], [(1, Err(e))] if is_rate_limited(e)), "1.2 s in all is over the 1 s allowed");
}

#[test]
fn a_send_whose_caller_stopped_waiting_is_not_sent_again_nor_holds_later_ones() {
    let mut h = Harness::<oneshot::Sender<Result<Body, Error>>>::build(|_| {});
    h.connect();
    let (reply, answer) = oneshot::channel();
    h.submit(send("txn-1"), reply);
    let (id, _) = h.sent_one();
    h.reply(id, limited(700));
    drop(answer);
    let (reply, _answer) = oneshot::channel();
    h.submit(send("txn-2"), reply);
    assert_eq!(h.sent_one().1, send("txn-2"));
    h.advance(Duration::from_millis(700));
    assert!(h.sent().is_empty());
}

#[test]
fn logging_out_or_in_as_someone_else_fails_the_sends_still_waiting() {
    let mut h = Harness::logged_in();
    h.submit(send("txn-1"), 1);
    let (id, _) = h.sent_one();
    h.reply(id, limited(700));
    h.submit(send("txn-2"), 2);
    h.submit(Command::Logout(v1::Logout {}), 3);
    let (id, _) = h.sent_one();
    h.reply(id, Body::Done(v1::Done {}));
    let replies = h.replies();
    assert!(
        matches!(
            &replies[..],
            [(1, Err(Error::SessionChanged)), (2, Err(Error::SessionChanged)), (3, Ok(Body::Done(_)))]
        ),
        "{replies:?}"
    );
    h.advance(Duration::from_millis(700));
    assert!(h.sent().is_empty());

    // Logging in again as the same user keeps the send; as another, fails it.
    for (user_id, kept) in [(5, true), (6, false)] {
        let mut h = Harness::logged_in();
        h.submit(send("txn-1"), 1);
        let (id, _) = h.sent_one();
        h.reply(id, limited(700));
        h.submit(Command::Login(v1::Login::default()), 2);
        let (id, _) = h.sent_one();
        h.reply(id, auth_as(user_id));
        let replies = h.replies();
        if kept {
            assert!(matches!(&replies[..], [(2, Ok(_))]), "{replies:?}");
        } else {
            assert!(matches!(&replies[..], [(1, Err(Error::SessionChanged)), (2, Ok(_))]), "{replies:?}");
        }
    }
}

#[test]
fn after_a_close_frame_nothing_is_written_and_a_write_failure_waits_for_the_close_code() {
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: 4503, reason: "revoked".into() })));
    h.submit(Command::ListRooms(v1::ListRooms::default()), 1);
    assert!(!h.core.has_transmit());
    assert!(h.sent().is_empty(), "nothing is written after a Close frame");
    h.core.on_write_failed(Error::Transport("broken pipe".into()));
    assert!(h.core.poll_action().is_none(), "the transport's close code may still come (CLOSE-3)");
    h.core.on_transport_closed(Some(4000), String::new());
    assert!(matches!(h.core.poll_action(), Some(Action::Reconnect { error: Error::Closed { code: 4000, .. }, .. })));
    // The request waits for the next connection.
    h.core.on_disconnected();
    h.connect();
    h.authenticate_and_resume();
    assert!(matches!(h.sent_one().1, Command::ListRooms(_)));

    // No close code after all: the frame decides at the close deadline.
    let mut h = Harness::logged_in();
    h.push(Some(Body::Close(v1::Close { code: 4503, reason: "revoked".into() })));
    h.core.on_write_failed(Error::Transport("broken pipe".into()));
    h.advance(super::CLOSE_CODE_WAIT - Duration::from_millis(1));
    assert!(h.core.poll_action().is_none());
    h.advance(Duration::from_millis(1));
    assert!(matches!(h.core.poll_action(), Some(Action::Stop(Error::Closed { code: 4503, .. }))));
}

/// A send with everything a message can carry besides its text.
fn rich_send(txn: &str) -> Command {
    Command::SendMessage(v1::SendMessage {
        room: Some(v1::RoomRef::name("general")),
        text: String::new(),
        client_txn_id: txn.into(),
        reply_to_seq: 4,
        thread_root_seq: 2,
        attachment_ids: vec!["0f".repeat(16), "1e".repeat(16)],
        location: Some(v1::Location { latitude: 48.85, longitude: 2.35, label: "Paris".into() }),
    })
}

#[test]
fn a_rich_send_keeps_its_whole_content_and_its_place_across_refusals_and_reconnects() {
    let mut h = Harness::logged_in();
    h.submit(rich_send("txn-1"), 1);
    let (id, command) = h.sent_one();
    assert_eq!(command, rich_send("txn-1"));
    h.reply(id, limited(1000));
    h.submit(send("txn-2"), 2);
    // Written but unanswered when the connection drops: the retry is the
    // same content under the same id, still ahead of the later send.
    h.advance(Duration::from_secs(1));
    let commands: Vec<_> = h.sent().into_iter().map(|f| f.command.unwrap()).collect();
    assert_eq!(commands, vec![rich_send("txn-1"), send("txn-2")]);
    h.core.on_disconnected();
    h.connect();
    h.authenticate_and_resume();
    let commands: Vec<_> = h.sent().into_iter().map(|f| f.command.unwrap()).collect();
    assert_eq!(commands, vec![rich_send("txn-1"), send("txn-2")], "whole, and in order (IDEM-5)");
}

#[test]
fn edits_and_deletions_are_not_resent_but_state_settings_and_reads_are() {
    let mut h = Harness::logged_in();
    let room = || Some(v1::RoomRef::name("general"));
    h.submit(Command::EditMessage(v1::EditMessage { room: room(), seq: 3, text: "fixed".into() }), 1);
    h.submit(Command::DeleteMessage(v1::DeleteMessage { room: room(), seq: 3 }), 2);
    h.submit(Command::React(v1::React { room: room(), seq: 3, emoji: "👍".into(), remove: false }), 3);
    h.submit(Command::MarkRead(v1::MarkRead { room: room(), seq: 3 }), 4);
    h.submit(Command::GetThread(v1::GetThread { room: room(), root_seq: 3, ..Default::default() }), 5);
    h.submit(Command::GetProfile(v1::GetProfile { username: "bob".into() }), 6);
    assert_eq!(h.sent().len(), 6);
    h.core.on_disconnected();
    let replies = h.replies();
    let lost: Vec<u32> = replies.iter().map(|(tag, _)| *tag).collect();
    assert_eq!(lost, vec![1, 2], "{replies:?}");
    assert!(replies.iter().all(|(_, result)| matches!(result, Err(Error::ConnectionLost))));
    h.connect();
    h.authenticate_and_resume();
    let again: Vec<_> = h.sent().into_iter().map(|f| f.command.unwrap()).collect();
    assert!(matches!(
        &again[..],
        [Command::React(_), Command::MarkRead(_), Command::GetThread(_), Command::GetProfile(_)]
    ));
}

#[test]
fn state_pushes_become_events_and_are_dropped_when_the_application_is_behind() {
    let mut h = Harness::with_config(|c| c.max_buffered_events = 5);
    h.connect();
    h.events();
    let user = Some(v1::User { user_id: 6, name: "bob".into(), ..Default::default() });
    h.push(Some(Body::ReadState(v1::ReadState { room_id: 1, read_seq: 9, unread_count: 2, mention_count: 1 })));
    h.push(Some(Body::Receipt(v1::Receipt { room_id: 1, user: user.clone(), read_seq: 9, ..Default::default() })));
    h.push(Some(Body::Typing(v1::Typing { room_id: 1, user: user.clone(), typing: true, expires_in_ms: 5000 })));
    h.push(Some(Body::Presence(v1::Presence {
        user: user.clone(),
        state: v1::PresenceState::Away as i32,
        ..Default::default()
    })));
    h.push(Some(Body::Notification(v1::Notification { room_id: 1, seq: 10, sender: user, ..Default::default() })));
    h.push(Some(Body::Typing(v1::Typing { room_id: 1, typing: false, ..Default::default() })));
    let events = h.events();
    assert!(
        matches!(
            &events[..],
            [
                Event::ReadState(v1::ReadState { read_seq: 9, unread_count: 2, .. }),
                Event::Receipt(_),
                Event::Typing(v1::Typing { typing: true, .. }),
                Event::Presence(_),
                Event::Notification(v1::Notification { seq: 10, .. }),
            ]
        ),
        "the sixth push found the buffer full: {events:?}"
    );
    assert!(h.core.poll_action().is_none());
}
