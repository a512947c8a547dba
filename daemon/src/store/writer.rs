//! The single writer: one thread owns every write transaction. It takes all
//! pending operations, applies them in one transaction, commits durably once
//! (group commit: many sends share one fsync), hands the new events to the
//! hub for fan-out, and only then answers each caller.

use std::{
    sync::Arc,
    thread::JoinHandle,
    time::{SystemTime, UNIX_EPOCH},
};

use redb::{Database, Durability, ReadableTable as _, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::{
    StoreError,
    ops::{OpResult, WriteOp},
    records::*,
    tables::*,
};
use crate::{
    hub::Hub,
    ids::{RoomId, UserId},
};

/// Most operations in one transaction.
const MAX_BATCH: usize = 2048;
/// Operations waiting for the writer before callers are made to wait.
const QUEUE_DEPTH: usize = 8192;

/// Who caused or is named by an event, resolved inside the transaction so
/// fan-out needs no lookups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserSummary {
    pub id: UserId,
    pub name: String,
    pub guest: bool,
    pub display_name: String,
    pub avatar_file_id: String,
}

impl UserSummary {
    pub fn of(id: UserId, record: &UserRecord) -> Self {
        Self {
            id,
            name: record.name.clone(),
            guest: record.is_guest(),
            display_name: record.display_name.clone(),
            avatar_file_id: record.avatar_file_id.clone(),
        }
    }
}

/// An event appended (and, once published, committed) to a room's log.
#[derive(Clone, Debug)]
pub struct AppendedEvent {
    pub room: RoomId,
    pub epoch: u64,
    pub seq: u64,
    pub record: EventRecord,
    pub sender: UserSummary,
    /// Whatever else the event names, for its conversion to the wire.
    pub named: Named,
}

/// What an appended event names besides its sender, resolved inside the
/// transaction: the invitee, mentioned users and attachment owners; the
/// attachments; the message a reply answers.
#[derive(Clone, Debug, Default)]
pub struct Named {
    pub users: Vec<UserSummary>,
    pub files: Vec<(String, FileRecord)>,
    pub reply_to: Option<ReplyTarget>,
}

/// The message a reply answers, as it is when the reply is appended.
#[derive(Clone, Debug)]
pub struct ReplyTarget {
    pub sender: UserSummary,
    /// The start of its text as `convert::quote` cuts it (empty once
    /// deleted).
    pub quote: String,
    pub deleted: bool,
}

/// A change to per-user state that is not a log event but is pushed once
/// its batch is durable (read markers, receipts).
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// MarkRead (`read_moved`) or MarkDelivered moved `user`'s position in
    /// `room`. `origin` is the session that asked: it gets the reply, the
    /// user's other sessions the push. `shared`: the user shares receipts.
    /// `unread` and `mentions` follow the new read marker.
    PositionMoved {
        origin: crate::hub::SessionId,
        user: UserId,
        room: RoomId,
        read_moved: bool,
        record: ReadStateRecord,
        shared: bool,
        unread: u32,
        mentions: u32,
    },
    /// `user` chose how much to hear about `room`.
    NotificationLevelSet { user: UserId, room: RoomId, level: NotificationLevel },
}

/// The state of one batch while its operations run.
pub(super) struct Batch {
    pub now_ms: u64,
    pub events: Vec<AppendedEvent>,
    /// Rooms this batch appends to, with their head before the batch.
    pub touched: Vec<(RoomId, u64)>,
    /// Pushes that are not room events, delivered after the commit.
    pub notices: Vec<Notice>,
}

impl Batch {
    /// Appends an event to `room`'s log and returns its sequence number.
    pub fn append(
        &mut self,
        txn: &WriteTransaction,
        room: RoomId,
        sender: UserId,
        kind: EventKind,
    ) -> Result<u64, StoreError> {
        let mut rooms = txn.open_table(ROOMS)?;
        let mut record = rooms.get(room.0)?.map(|v| v.value()).unwrap_or_default();
        if !self.touched.iter().any(|(r, _)| *r == room) {
            self.touched.push((room, record.head_seq));
        }
        record.head_seq += 1;
        if matches!(kind, EventKind::Message(_)) {
            record.message_count += 1;
        }
        let (seq, epoch, messages_through) = (record.head_seq, record.epoch, record.message_count);
        rooms.insert(room.0, record)?;
        drop(rooms);
        let named = named(txn, room, &kind)?;
        let record = EventRecord { time_ms: self.now_ms, sender: sender.0, messages_through, kind: Some(kind) };
        txn.open_table(EVENTS)?.insert((room.0, seq), &record)?;
        self.events.push(AppendedEvent { room, epoch, seq, record, sender: summary(txn, sender)?, named });
        Ok(seq)
    }
}

fn summary(txn: &WriteTransaction, user: UserId) -> Result<UserSummary, StoreError> {
    let record = txn.open_table(USERS)?.get(user.0)?.map(|v| v.value()).unwrap_or_default();
    Ok(UserSummary::of(user, &record))
}

/// What an event of `kind` names, read before it is appended.
fn named(txn: &WriteTransaction, room: RoomId, kind: &EventKind) -> Result<Named, StoreError> {
    let mut named = Named::default();
    let mut users = Vec::new();
    match kind {
        EventKind::MemberInvited(invited) => users.push(invited.invitee),
        EventKind::MessageEdited(edited) => users.extend(&edited.mentions),
        EventKind::Message(body) => {
            users.extend(&body.mentions);
            if !body.attachment_ids.is_empty() {
                let files = txn.open_table(FILES)?;
                for id in &body.attachment_ids {
                    if let Some(file) = files.get(id.as_str())?.map(|v| v.value()) {
                        users.push(file.owner);
                        named.files.push((id.clone(), file));
                    }
                }
            }
            if body.reply_to_seq != 0 {
                let target = txn.open_table(EVENTS)?.get((room.0, body.reply_to_seq))?.map(|v| v.value());
                if let Some(EventRecord { sender, kind: Some(EventKind::Message(target)), .. }) = target {
                    let deleted = target.deleted_at_ms != 0;
                    named.reply_to = Some(ReplyTarget {
                        sender: summary(txn, UserId(sender))?,
                        quote: if deleted { String::new() } else { crate::convert::quote(&target.text) },
                        deleted,
                    });
                }
            }
        }
        _ => {}
    }
    for user in users {
        if !named.users.iter().any(|u| u.id.0 == user) {
            named.users.push(summary(txn, UserId(user))?);
        }
    }
    Ok(named)
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<OpResult, StoreError>>,
}

enum Msg {
    Job(Job),
    Stop,
}

/// Submits writes. Cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
}

impl WriterHandle {
    /// Queues `op` and waits until it is durable (or refused).
    pub async fn write(&self, op: WriteOp) -> Result<OpResult, StoreError> {
        self.submit(op).await?.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `op` (in call order) and returns the future answer, so a
    /// caller can queue several writes in order and await them later.
    pub async fn submit(&self, op: WriteOp) -> Result<oneshot::Receiver<Result<OpResult, StoreError>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Msg::Job(Job { op, reply })).await.map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }
}

/// The writer thread. Stop it with [`Writer::stop`].
pub struct Writer {
    handle: WriterHandle,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(db: Arc<Database>, hub: Arc<Hub>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("confab-writer".into())
            .spawn(move || run(db, hub, rx))
            .expect("spawning the writer thread");
        Self { handle: WriterHandle { tx }, thread: Some(thread) }
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Finishes the writes queued so far, then stops the thread.
    pub async fn stop(mut self) {
        let _ = self.handle.tx.send(Msg::Stop).await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn run(db: Arc<Database>, hub: Arc<Hub>, mut rx: mpsc::Receiver<Msg>) {
    let mut last_now = 0;
    loop {
        let mut jobs = Vec::new();
        let mut stop = false;
        match rx.blocking_recv() {
            Some(Msg::Job(job)) => jobs.push(job),
            Some(Msg::Stop) | None => break,
        }
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => jobs.push(job),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let now = now_ms().max(last_now);
        last_now = now;
        run_batch(&db, &hub, now, jobs);
        if stop {
            break;
        }
    }
    tracing::debug!("writer stopped");
}

fn run_batch(db: &Database, hub: &Hub, now_ms: u64, jobs: Vec<Job>) {
    let (ops, replies): (Vec<_>, Vec<_>) = jobs.into_iter().map(|job| (job.op, job.reply)).unzip();
    let mut batch = Batch { now_ms, events: Vec::new(), touched: Vec::new(), notices: Vec::new() };
    let outcome = (|| -> Result<Vec<OpResult>, StoreError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate).map_err(|e| StoreError::BatchFailed(e.to_string()))?;
        let results = ops.into_iter().map(|op| op.apply(&txn, &mut batch)).collect::<Result<Vec<_>, _>>()?;
        // Before the events become visible to readers, tell the hub where
        // each touched room's published log ends, so a concurrent Resume
        // replays only up to there and leaves the rest to `publish`.
        hub.prepare(&batch.touched);
        txn.commit()?;
        Ok(results)
    })();
    match outcome {
        Ok(results) => {
            hub.publish(&batch.events);
            hub.notify(&batch.notices);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(error) => {
            tracing::error!(%error, ops = replies.len(), "write batch failed; nothing in it was applied");
            let message = error.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::BatchFailed(message.clone())));
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
