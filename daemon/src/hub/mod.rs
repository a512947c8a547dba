//! Fan-out: which sessions follow which rooms, and delivery of committed
//! events to them. Each event is encoded once per encoding and the bytes are
//! shared by every subscriber.
//!
//! Invariant (no gap, no duplicate): for every room the hub knows the last
//! sequence number it has published. `Resume` replays from the store only up
//! to that point and subscribes in the same critical section; everything
//! after it reaches the session through `publish`. The writer calls
//! `prepare` before committing, so a room never has committed events the
//! hub neither published nor knows to be in flight.
//!
//! The hub also sends the pushes that are not log events (`notify`: read
//! states, receipts, notifications for new messages, typing) and tracks
//! presence (`presence`: a user is present while one of their sessions is
//! resumed). Apart from `Resume`, which must read memberships and replay
//! under the lock, and a room's first notification (which loads the room's
//! levels once), nothing reads the store while holding the hub's lock: what
//! a push needs from the store is read before, so `publish` never waits
//! for a disk read.

mod notify;
mod presence;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use confab_protocol::{Encoding, codec, resume, v1};

use crate::{
    convert,
    ids::{Epoch, RoomId, Seq, UserId},
    outbox::Outbox,
    store::{AppendedEvent, EventKind, MembershipState, Store, StoreError},
};

use notify::RoomNotifications;
use presence::Shown;

/// Identifies one connection's session.
pub type SessionId = u64;

/// A session that receives room events.
#[derive(Clone)]
pub struct Subscriber {
    pub id: SessionId,
    pub user: UserId,
    pub encoding: Encoding,
    pub outbox: Arc<Outbox>,
}

struct SessionEntry {
    subscriber: Subscriber,
    rooms: HashSet<RoomId>,
    /// The device is idle (SetPresence with `this_device_only`).
    away: bool,
}

#[derive(Default)]
struct RoomEntry {
    published_head: u64,
    subscribers: HashSet<SessionId>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, SessionEntry>,
    users: HashMap<UserId, HashSet<SessionId>>,
    rooms: HashMap<RoomId, RoomEntry>,
    notifications: HashMap<RoomId, RoomNotifications>,
    /// Present users (a resumed session): their presence as last pushed.
    shown: HashMap<UserId, Shown>,
    /// When users' last sessions ended, until the store has it too
    /// (`SetLastSeen`, written just after; `Hub::last_seen_stored` drops
    /// the entry then). At most one per user.
    last_seen: HashMap<UserId, u64>,
}

pub struct Hub {
    store: Store,
    max_resume_events: u64,
    /// Encoded bytes one room's replay may queue; beyond it, RESET.
    max_resume_bytes: usize,
    state: Mutex<State>,
    /// Taken by presence refreshes for their whole run (store reads, then
    /// the hub's lock), so they run one at a time and the last one pushes
    /// what the store holds after every write that asked for one. Never
    /// taken while holding `state`.
    presence_turn: Mutex<()>,
}

/// An event encoded lazily, once per encoding, for all its recipients.
struct SharedEvent {
    event: v1::ServerFrame,
    proto: Option<Bytes>,
    json: Option<Bytes>,
}

impl SharedEvent {
    fn new(event: v1::RoomEvent) -> Self {
        Self::frame(push(v1::server_frame::Body::Event(event)))
    }

    fn frame(event: v1::ServerFrame) -> Self {
        Self { event, proto: None, json: None }
    }

    fn bytes(&mut self, encoding: Encoding) -> Bytes {
        let slot = match encoding {
            Encoding::Proto => &mut self.proto,
            Encoding::Json => &mut self.json,
        };
        slot.get_or_insert_with(|| codec::encode(&self.event, encoding)).clone()
    }
}

/// A push frame (request id 0).
pub fn push(body: v1::server_frame::Body) -> v1::ServerFrame {
    v1::ServerFrame { request_id: 0, body: Some(body) }
}

impl Hub {
    pub fn new(store: Store, max_resume_events: u64, max_resume_bytes: usize) -> Self {
        Self {
            store,
            max_resume_events,
            max_resume_bytes,
            state: Mutex::new(State::default()),
            presence_turn: Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("hub lock")
    }

    /// Called by the writer before it commits events to `touched` rooms
    /// (each with its head before the batch).
    pub fn prepare(&self, touched: &[(RoomId, u64)]) {
        let mut state = self.lock();
        for &(room, head_before) in touched {
            state.rooms.entry(room).or_insert_with(|| RoomEntry { published_head: head_before, ..Default::default() });
        }
    }

    /// Delivers committed events, in order, to the sessions following them
    /// (and a new message's notifications).
    pub fn publish(&self, events: &[AppendedEvent]) {
        let mut state = self.lock();
        let state = &mut *state;
        for appended in events {
            let event = convert::appended(appended);
            let sender = event.sender.clone();
            let mut shared = SharedEvent::new(event);
            let room = appended.room;
            let kind = appended.record.kind.as_ref();
            // A member's sessions follow a room from their join on; its
            // creator's from the creation (it joins in the same write).
            if matches!(kind, Some(EventKind::MemberJoined(_) | EventKind::RoomCreated(_))) {
                for id in state.users.get(&appended.sender.id).into_iter().flatten() {
                    if let Some(session) = state.sessions.get_mut(id) {
                        session.rooms.insert(room);
                        state.rooms.entry(room).or_default().subscribers.insert(*id);
                    }
                }
            }
            let entry = state.rooms.entry(room).or_default();
            entry.published_head = appended.seq;
            for id in &entry.subscribers {
                if let Some(session) = state.sessions.get(id) {
                    let subscriber = &session.subscriber;
                    subscriber.outbox.push(shared.bytes(subscriber.encoding));
                }
            }
            match kind {
                Some(EventKind::MemberInvited(invited)) => {
                    // The invitee follows nothing here yet; tell it anyway.
                    for id in state.users.get(&UserId(invited.invitee)).into_iter().flatten() {
                        if !entry.subscribers.contains(id)
                            && let Some(session) = state.sessions.get(id)
                        {
                            let subscriber = &session.subscriber;
                            subscriber.outbox.push(shared.bytes(subscriber.encoding));
                        }
                    }
                }
                Some(EventKind::MemberLeft(_)) => {
                    for id in state.users.get(&appended.sender.id).into_iter().flatten() {
                        entry.subscribers.remove(id);
                        if let Some(session) = state.sessions.get_mut(id) {
                            session.rooms.remove(&room);
                        }
                    }
                }
                _ => {}
            }
            self.keep_notifications(&mut state.notifications, &state.sessions, entry, appended, &sender);
        }
    }

    /// Starts (or restarts) delivery to `subscriber` from `positions`,
    /// replaying what it missed. Answers one status per room.
    pub fn resume(
        &self,
        subscriber: Subscriber,
        positions: &[v1::RoomPosition],
    ) -> Result<Vec<v1::RoomResumeStatus>, StoreError> {
        let mut lookup = convert::UserLookup::new(&self.store);
        let mut statuses = Vec::new();

        // Memberships are read under the lock: a join published before it
        // is in the store already, one published after it finds this
        // session registered.
        let mut guard = self.lock();
        let state = &mut *guard;
        let joined: Vec<RoomId> = self
            .store
            .user_rooms(subscriber.user)?
            .into_iter()
            .filter(|(_, state)| *state == MembershipState::Joined)
            .map(|(room, _)| room)
            .collect();
        let away = state.sessions.get(&subscriber.id).is_some_and(|entry| entry.away);
        detach(state, subscriber.id);
        state.users.entry(subscriber.user).or_default().insert(subscriber.id);
        let mut following = HashSet::new();
        for room in joined {
            let Some(record) = self.store.room(room)? else { continue };
            let entry = state
                .rooms
                .entry(room)
                .or_insert_with(|| RoomEntry { published_head: record.head_seq, ..Default::default() });
            let head = Seq(entry.published_head);
            let position = positions.iter().find(|p| p.room_id == room.0).map(|p| (Epoch(p.epoch), Seq(p.seq)));
            let (outcome, replayed) = match resume::plan(position, Epoch(record.epoch), head, self.max_resume_events) {
                resume::ResumePlan::Live => (v1::ResumeOutcome::Live, 0),
                resume::ResumePlan::Reset => (v1::ResumeOutcome::Reset, 0),
                resume::ResumePlan::Replay { after, head } => {
                    let mut frames = Vec::new();
                    let mut bytes = 0;
                    for (seq, event) in self.store.events(room, after.next(), head, usize::MAX, false)? {
                        let event = lookup.event(room.0, record.epoch, seq.0, &event)?;
                        let frame = codec::encode(&push(v1::server_frame::Body::Event(event)), subscriber.encoding);
                        bytes += frame.len();
                        frames.push(frame);
                        if bytes > self.max_resume_bytes {
                            break;
                        }
                    }
                    if bytes > self.max_resume_bytes {
                        // More than the session's queue can take at once.
                        (v1::ResumeOutcome::Reset, 0)
                    } else {
                        let replayed = frames.len() as u64;
                        for frame in frames {
                            subscriber.outbox.push(frame);
                        }
                        (v1::ResumeOutcome::Replayed, replayed)
                    }
                }
            };
            entry.subscribers.insert(subscriber.id);
            following.insert(room);
            statuses.push(v1::RoomResumeStatus {
                room_id: room.0,
                epoch: record.epoch,
                head_seq: head.0,
                outcome: outcome as i32,
                replayed,
            });
        }
        for position in positions {
            if !following.contains(&RoomId(position.room_id)) {
                statuses.push(v1::RoomResumeStatus {
                    room_id: position.room_id,
                    outcome: v1::ResumeOutcome::Gone as i32,
                    ..Default::default()
                });
            }
        }
        state.sessions.insert(subscriber.id, SessionEntry { subscriber, rooms: following, away });
        Ok(statuses)
    }
}

/// Queues `frame` for each of `sessions` that is resumed.
fn deliver<'a>(
    sessions: &HashMap<SessionId, SessionEntry>,
    to: impl Iterator<Item = &'a SessionId>,
    frame: &mut SharedEvent,
) {
    for id in to {
        if let Some(session) = sessions.get(id) {
            let subscriber = &session.subscriber;
            subscriber.outbox.push(frame.bytes(subscriber.encoding));
        }
    }
}

fn detach(state: &mut State, session: SessionId) {
    let Some(entry) = state.sessions.remove(&session) else { return };
    for room in entry.rooms {
        if let Some(room) = state.rooms.get_mut(&room) {
            room.subscribers.remove(&session);
        }
    }
    let user = entry.subscriber.user;
    if let Some(sessions) = state.users.get_mut(&user) {
        sessions.remove(&session);
        if sessions.is_empty() {
            state.users.remove(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        outbox::Drained,
        store::{OpOutput, RoomKind, TokenGrant, WriteOp, Writer},
    };

    /// Resumes at many points while a writer appends: every resumed session
    /// must see each event after its position exactly once, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resume_during_appends_has_no_gap_and_no_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.redb")).unwrap();
        let hub = Arc::new(Hub::new(store.clone(), 100_000, usize::MAX));
        let writer = Writer::start(store.database(), hub.clone());
        let handle = writer.handle();
        let (user, room) = alice_in_general(&handle).await;

        const SENDS: u64 = 600;
        let sender = tokio::spawn({
            let handle = handle.clone();
            async move {
                let mut answers = Vec::new();
                for i in 0..SENDS {
                    let op = WriteOp::Send {
                        user,
                        room,
                        txn_id: format!("t{i}"),
                        content: crate::store::MessageContent::text("x"),
                    };
                    answers.push(handle.submit(op).await.unwrap());
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                for answer in answers {
                    answer.await.unwrap().unwrap().unwrap();
                }
            }
        });

        let mut sessions = Vec::new();
        // A client's position is something it was sent: at most the head
        // the previous resume reported as published.
        let mut published = 2;
        for id in 0..40u64 {
            let outbox = Arc::new(Outbox::new(u64::MAX));
            let position = published - (id % 7).min(published - 1);
            let subscriber = Subscriber { id, user, encoding: Encoding::Proto, outbox: outbox.clone() };
            let positions = [v1::RoomPosition { room_id: room.0, epoch: 1, seq: position }];
            let status = hub.resume(subscriber, &positions).unwrap();
            assert_eq!(status[0].outcome, v1::ResumeOutcome::Replayed as i32);
            published = status[0].head_seq;
            sessions.push((outbox, position));
            tokio::task::yield_now().await;
        }
        sender.await.unwrap();
        let final_head = store.room(room).unwrap().unwrap().head_seq;
        assert_eq!(final_head, SENDS + 2);

        for (outbox, position) in sessions {
            let seqs = delivered(&outbox, Encoding::Proto).await;
            assert_eq!(seqs, (position + 1..=final_head).collect::<Vec<_>>(), "resumed after {position}");
        }
        writer.stop().await;
    }

    /// The writer's window between commit and publish, made deterministic:
    /// a second hub sees events committed in the store that it has been told
    /// (through `prepare`) are still in flight.
    #[tokio::test]
    async fn resume_replays_only_what_was_published() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.redb")).unwrap();
        let writer = Writer::start(store.database(), Arc::new(Hub::new(store.clone(), 1000, usize::MAX)));
        let handle = writer.handle();
        let (user, room) = alice_in_general(&handle).await;
        for i in 0..8 {
            let op =
                WriteOp::Send { user, room, txn_id: format!("t{i}"), content: crate::store::MessageContent::text("x") };
            handle.write(op).await.unwrap().unwrap();
        }
        writer.stop().await; // events 1..=10 are committed

        let hub = Hub::new(store.clone(), 1000, usize::MAX);
        hub.prepare(&[(room, 5)]); // 6..=10 committed, not yet published
        let outbox = Arc::new(Outbox::new(u64::MAX));
        let subscriber = Subscriber { id: 1, user, encoding: Encoding::Json, outbox: outbox.clone() };
        let status = hub.resume(subscriber, &[v1::RoomPosition { room_id: room.0, epoch: 1, seq: 3 }]).unwrap();
        assert_eq!((status[0].replayed, status[0].head_seq), (2, 5));

        let summary = crate::store::UserSummary { id: user, name: "alice".into(), ..Default::default() };
        let in_flight: Vec<AppendedEvent> = store
            .events(room, Seq(6), Seq(10), 10, false)
            .unwrap()
            .into_iter()
            .map(|(seq, record)| AppendedEvent {
                room,
                epoch: 1,
                seq: seq.0,
                record,
                sender: summary.clone(),
                named: Default::default(),
            })
            .collect();
        hub.publish(&in_flight);

        assert_eq!(delivered(&outbox, Encoding::Json).await, vec![4, 5, 6, 7, 8, 9, 10]);
    }

    /// Registers alice and has her create the public room `general`.
    async fn alice_in_general(handle: &crate::store::WriterHandle) -> (UserId, RoomId) {
        let grant = TokenGrant { hash: [1; 32], expires_at_ms: u64::MAX };
        let op =
            WriteOp::Register { name: "alice".into(), password_hash: String::new(), device_name: String::new(), grant };
        let OpOutput::User { user, .. } = handle.write(op).await.unwrap().unwrap() else { panic!() };
        let op = WriteOp::CreateRoom {
            creator: user,
            name: "general".into(),
            kind: RoomKind::Public,
            topic: String::new(),
            members: Vec::new(),
        };
        let OpOutput::Room { room } = handle.write(op).await.unwrap().unwrap() else { panic!() };
        (user, room)
    }

    /// Closes `outbox` and returns the sequence numbers of the events in it,
    /// which must hold nothing else: these tests resume without a presence
    /// refresh, and a send pushes its sender no read state nor notification.
    async fn delivered(outbox: &Outbox, encoding: Encoding) -> Vec<u64> {
        outbox.close(v1::Close::default());
        let mut frames = Vec::new();
        assert!(matches!(outbox.drain(&mut frames).await, Drained::Close(_)));
        frames
            .iter()
            .map(|bytes| match codec::decode::<v1::ServerFrame>(bytes, encoding).unwrap().body {
                Some(v1::server_frame::Body::Event(event)) => event.seq,
                other => panic!("{other:?}"),
            })
            .collect()
    }
}
