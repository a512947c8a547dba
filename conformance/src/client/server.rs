//! The scripted server of one case: the [`transport`](super::transport)
//! listener, the [`Model`] answering what the client sends, and what the
//! case itself writes (events, crafted frames, closes, drops). Every frame
//! both ways goes into the case's frame log; everything the client does
//! (connections, frames, closes) is kept in order as [`Seen`] items that
//! the case waits on, each wait bounded.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use confab_protocol::{Encoding, codec, v1};
use confab_sdk::Fingerprint;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    craft::{self, Dialect},
    model::{ConnId, Model, Writes, push},
    transport::{Accepted, Carrier, Identity, Inbound, Incoming, Listener, Reader, Writer},
};
use crate::{
    evidence::{Direction, FrameLog},
    outcome::Check,
    runner::Record,
    wire::Wire,
};

/// How long the server waits for a client to answer a close before it
/// drops the connection.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Something the server writes on a connection.
#[derive(Debug)]
pub enum WriteOp {
    /// A frame, encoded in the session's encoding and the server's dialect.
    Frame(v1::ServerFrame),
    /// A payload made by hand, framed like any frame.
    Crafted { payload: Bytes, what: String },
    /// One WebSocket message of this type, whatever the encoding.
    WsMessage { text: bool, payload: Bytes, what: String },
    /// Bytes onto the QUIC stream with no length prefix.
    Raw { bytes: Bytes, what: String },
    /// A frame written in pieces (QUIC writes, WebSocket fragments).
    Pieces { frame: v1::ServerFrame, pieces: usize },
    /// Nothing is written on this connection for this long.
    Pause(Duration),
    /// A WebSocket ping control frame.
    WsPing,
    /// The transport closed with this code (after what precedes it).
    Close { code: u32, reason: String },
    /// The connection ends without a close code (once what precedes it has
    /// been delivered).
    Drop,
}

/// What the client did, in order.
#[derive(Clone, Debug)]
pub enum Seen {
    /// A connection completed its transport handshake.
    Opened { conn: ConnId, at: Instant, offered: Vec<String> },
    /// A connection attempt failed in its transport handshake.
    Refused { at: Instant, error: String },
    /// A frame arrived (after the server answered it).
    Frame { conn: ConnId, at: Instant, frame: v1::ClientFrame },
    /// A connection ended; `by_client` when the client ended it (or it was
    /// lost), with its close code.
    Ended { conn: ConnId, at: Instant, by_client: bool, code: Option<u32>, reason: String },
    /// The client opened a QUIC stream besides the first (QUIC-3).
    ExtraStream { conn: ConnId },
    /// A frame over the session's limit arrived (LIMIT-1).
    Oversized { conn: ConnId, len: usize },
}

impl Seen {
    /// The command of a frame item, with its connection and request id.
    pub fn command(&self) -> Option<(ConnId, u64, &v1::client_frame::Command)> {
        match self {
            Seen::Frame { conn, frame, .. } => frame.command.as_ref().map(|c| (*conn, frame.request_id, c)),
            _ => None,
        }
    }
}

struct Shared {
    log: FrameLog,
    record: Record,
    model: Mutex<Model>,
    conns: Mutex<BTreeMap<ConnId, Conn>>,
    seen: Mutex<Vec<Seen>>,
    changes: watch::Sender<usize>,
    dialect: Mutex<Dialect>,
    next_conn: AtomicU32,
}

/// The most writes queued for one connection. A case writes hundreds at
/// most; only a client that sends without reading what it is answered gets
/// here, and is then answered no more (its case fails on its own timeout).
const MAX_QUEUED_WRITES: usize = 10_000;

/// The server's end of one connection, for writing.
struct Conn {
    /// Filled by the model and the case (with the model locked, so no
    /// `.await`), drained by the connection's writer; bounded by `queued`
    /// and [`MAX_QUEUED_WRITES`].
    ops: mpsc::UnboundedSender<WriteOp>,
    queued: Arc<AtomicUsize>,
    encoding: Encoding,
}

/// The writer's end of a connection's queue, with its count.
struct Queue {
    ops: mpsc::UnboundedReceiver<WriteOp>,
    queued: Arc<AtomicUsize>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One case's scripted server. Dropping it stops every task it started.
pub struct ScriptedServer {
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    url: String,
    fingerprint: Fingerprint,
    /// Stops every task of this server (they are spawned on one tracker
    /// and all watch this token).
    cancel: CancellationToken,
}

impl ScriptedServer {
    /// Listens on 127.0.0.1 for `wire`'s transport and serves `model`.
    pub async fn start(
        wire: Wire,
        identity: &Identity,
        model: Model,
        record: Record,
    ) -> anyhow::Result<ScriptedServer> {
        let listener = Arc::new(Listener::bind(wire.transport, identity).await?);
        let url = listener.url()?;
        let shared = Arc::new(Shared {
            log: record.log.clone(),
            record,
            model: Mutex::new(model),
            conns: Mutex::default(),
            seen: Mutex::default(),
            changes: watch::Sender::new(0),
            dialect: Mutex::default(),
            next_conn: AtomicU32::new(1),
        });
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(shared.clone(), listener.clone(), cancel.clone(), tracker.clone()));
        shared.log.event("server", &format!("listening at {url} ({wire})"));
        tracker.close();
        Ok(ScriptedServer { shared, listener, url, fingerprint: identity.fingerprint, cancel })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// How well-formed frames are encoded from now on.
    pub fn set_dialect(&self, dialect: Dialect) {
        *lock(&self.shared.dialect) = dialect;
    }

    /// Reads or changes the model without writing anything.
    pub fn model<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        f(&mut lock(&self.shared.model))
    }

    /// Changes the model and performs the writes that produced, in order
    /// with everything else the model writes.
    pub fn act<T>(&self, f: impl FnOnce(&mut Model) -> (T, Writes)) -> T {
        let mut model = lock(&self.shared.model);
        let (value, writes) = f(&mut model);
        self.shared.dispatch(writes);
        value
    }

    /// A message from bob in `room`, pushed to the sessions that follow it.
    pub fn bob_says(&self, room: u64, text: &str) -> v1::RoomEvent {
        self.act(|model| model.bob_says(room, text))
    }

    /// Writes `op` on `conn` (after what is queued there).
    pub fn write(&self, conn: ConnId, op: WriteOp) {
        let _model = lock(&self.shared.model);
        self.shared.dispatch(vec![(conn, op)]);
    }

    /// A crafted payload for `conn`'s encoding, written there.
    pub fn write_crafted(&self, conn: ConnId, craft: impl FnOnce(Encoding) -> (Bytes, String)) {
        let encoding = self.encoding(conn);
        let (payload, what) = craft(encoding);
        self.write(conn, WriteOp::Crafted { payload, what });
    }

    /// The encoding of `conn` (binary protobuf once it is gone).
    pub fn encoding(&self, conn: ConnId) -> Encoding {
        lock(&self.shared.conns).get(&conn).map_or(Encoding::Proto, |c| c.encoding)
    }

    /// Ends `conn` as a server does (CLOSE-1): a `Close` frame with
    /// `frame_code` (none when `None`), then the transport closed with
    /// `transport_code`.
    pub fn close(&self, conn: ConnId, frame_code: Option<u32>, transport_code: u32, reason: &str) {
        let mut ops = Vec::new();
        if let Some(code) = frame_code {
            ops.push((conn, close_frame(self.encoding(conn), code, reason)));
        }
        ops.push((conn, WriteOp::Close { code: transport_code, reason: reason.into() }));
        let _model = lock(&self.shared.model);
        self.shared.dispatch(ops);
    }

    /// Drops `conn` without a close code.
    pub fn drop_conn(&self, conn: ConnId) {
        self.write(conn, WriteOp::Drop);
    }

    /// Writes the replies held back by `SendAct::Hold`.
    pub fn release_held(&self) {
        self.act(|model| ((), model.release_held()));
    }

    /// The newest connection.
    pub fn latest(&self) -> Option<ConnId> {
        lock(&self.shared.conns).keys().next_back().copied()
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// Where a wait starting now begins.
    pub fn cursor(&self) -> usize {
        lock(&self.shared.seen).len()
    }

    /// The first item from `*from` on that `pick` accepts, waiting at most
    /// `within` for it. `*from` moves past what was looked at.
    pub async fn wait<T>(
        &self,
        from: &mut usize,
        within: Duration,
        mut pick: impl FnMut(&Seen) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + within;
        let mut changes = self.shared.changes.subscribe();
        loop {
            {
                let seen = lock(&self.shared.seen);
                while *from < seen.len() {
                    let item = &seen[*from];
                    *from += 1;
                    if let Some(found) = pick(item) {
                        return Some(found);
                    }
                }
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.listener.close();
    }
}

impl Shared {
    /// Queues writes; called with the model locked so that every writer
    /// sees frames in the order the model produced them.
    fn dispatch(&self, writes: Writes) {
        let conns = lock(&self.conns);
        for (conn, op) in writes {
            let Some(target) = conns.get(&conn) else { continue };
            let queued = target.queued.fetch_add(1, Ordering::Relaxed);
            if queued < MAX_QUEUED_WRITES {
                let _ = target.ops.send(op);
            } else {
                target.queued.fetch_sub(1, Ordering::Relaxed);
                if queued == MAX_QUEUED_WRITES {
                    self.log.event(
                        &format!("conn/{conn}"),
                        "the client reads nothing of what it is answered: no more writes",
                    );
                }
            }
        }
    }

    fn saw(&self, item: Seen) {
        let mut seen = lock(&self.seen);
        seen.push(item);
        self.changes.send_replace(seen.len());
    }

    fn breach(&self, check: Check) {
        self.record.push(check);
    }
}

/// A `Close` push: a plain frame for a code this version knows, crafted
/// for one it does not (which the canonical JSON mapping cannot name).
fn close_frame(encoding: Encoding, code: u32, reason: &str) -> WriteOp {
    match v1::CloseCode::try_from(code as i32) {
        Ok(_) => {
            WriteOp::Frame(push(v1::server_frame::Body::Close(v1::Close { code: code as i32, reason: reason.into() })))
        }
        Err(_) => {
            let (payload, what) = craft::close_frame(encoding, code, reason);
            WriteOp::Crafted { payload, what }
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: Arc<Listener>, cancel: CancellationToken, tracker: TaskTracker) {
    loop {
        let incoming = tokio::select! {
            _ = cancel.cancelled() => return,
            incoming = listener.accept() => incoming,
        };
        let Some(incoming) = incoming else { return };
        tracker.spawn(serve(shared.clone(), incoming, cancel.child_token(), tracker.clone()));
    }
}

/// One connection: handshake, then read until it ends (the writer runs
/// beside).
async fn serve(shared: Arc<Shared>, incoming: Incoming, cancel: CancellationToken, tracker: TaskTracker) {
    let accepted = tokio::select! {
        _ = cancel.cancelled() => return,
        accepted = incoming.handshake() => accepted,
    };
    let Accepted { reader, writer, encoding, offered, quic } = match accepted {
        Ok(accepted) => accepted,
        Err(error) => {
            shared.log.event("server", &format!("a connection attempt failed: {error}"));
            shared.saw(Seen::Refused { at: Instant::now(), error });
            return;
        }
    };
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let label = format!("conn/{conn}");
    let how = match encoding {
        Encoding::Proto if offered.is_empty() => "QUIC".to_owned(),
        Encoding::Proto => format!("WebSocket confab.v1.proto (offered {offered:?})"),
        Encoding::Json => format!("WebSocket confab.v1.json (offered {offered:?})"),
    };
    shared.log.event(&label, &format!("opened: {how}"));
    // Unbounded as a channel, bounded by `queued` (see `Conn::ops`).
    let (ops, queue) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    {
        let mut model = lock(&shared.model);
        model.opened(conn, encoding);
        lock(&shared.conns).insert(conn, Conn { ops, queued: queued.clone(), encoding });
    }
    shared.saw(Seen::Opened { conn, at: Instant::now(), offered });
    let closing = Arc::new(AtomicBool::new(false));
    let queue = Queue { ops: queue, queued };
    tracker.spawn(write_loop(shared.clone(), label.clone(), writer, queue, encoding, cancel.clone(), closing.clone()));
    if let Some(connection) = quic {
        tracker.spawn(watch_streams(shared.clone(), conn, label.clone(), connection, cancel.clone()));
    }
    read_loop(&shared, conn, &label, reader, encoding, &cancel, &closing).await;
    cancel.cancel();
    lock(&shared.model).closed(conn);
    lock(&shared.conns).remove(&conn);
}

async fn read_loop(
    shared: &Shared,
    conn: ConnId,
    label: &str,
    mut reader: Reader,
    encoding: Encoding,
    cancel: &CancellationToken,
    closing: &AtomicBool,
) {
    loop {
        let inbound = tokio::select! {
            _ = cancel.cancelled() => {
                shared.saw(Seen::Ended { conn, at: Instant::now(), by_client: false, code: None, reason: String::new() });
                return;
            }
            inbound = reader.next() => inbound,
        };
        match inbound {
            Inbound::Payload { payload, carrier } => on_payload(shared, conn, label, &payload, carrier, encoding),
            Inbound::Unreadable(error) => {
                shared.log.event(label, &format!("unreadable bytes: {error}"));
                shared.breach(Check::of(
                    "QUIC-4",
                    false,
                    format!("the client's stream cannot be split into frames: {error}"),
                ));
                let code = v1::CloseCode::ProtocolViolation as u32;
                let ops = vec![
                    (conn, close_frame(encoding, code, "bad length prefix")),
                    (conn, WriteOp::Close { code, reason: "bad length prefix".into() }),
                ];
                let _model = lock(&shared.model);
                shared.dispatch(ops);
            }
            Inbound::Closed { code, reason, by_peer } => {
                let by_client = by_peer && !closing.load(Ordering::Relaxed);
                let who = if by_client { "the client ended the connection" } else { "the connection ended" };
                shared.log.event(label, &format!("{who}: code {code:?}, reason {reason:?}"));
                shared.saw(Seen::Ended { conn, at: Instant::now(), by_client, code, reason });
                return;
            }
        }
    }
}

fn on_payload(shared: &Shared, conn: ConnId, label: &str, payload: &[u8], carrier: Carrier, encoding: Encoding) {
    match (carrier, encoding) {
        (Carrier::WsText, Encoding::Proto) => shared.breach(Check::of(
            "WS-3",
            false,
            "a text message on a confab.v1.proto session (every message must be binary)",
        )),
        (Carrier::WsBinary, Encoding::Json) => shared.breach(Check::of(
            "WS-4",
            false,
            "a binary message on a confab.v1.json session (every message must be text)",
        )),
        _ => {}
    }
    let limit = lock(&shared.model).frame_limit(conn);
    if limit > 0 && payload.len() > limit {
        shared.log.bytes(label, Direction::Received, "frame over the limit", payload);
        shared.breach(Check::of(
            "LIMIT-1",
            false,
            format!("a frame of {} bytes; the session's limit from Welcome is {limit}", payload.len()),
        ));
        shared.saw(Seen::Oversized { conn, len: payload.len() });
        let code = v1::CloseCode::FrameTooLarge as u32;
        let _model = lock(&shared.model);
        shared.dispatch(vec![
            (conn, close_frame(encoding, code, "frame too large")),
            (conn, WriteOp::Close { code, reason: "frame too large".into() }),
        ]);
        return;
    }
    let frame = match codec::decode::<v1::ClientFrame>(payload, encoding) {
        Ok(frame) => frame,
        Err(error) => {
            shared.log.bytes(label, Direction::Received, &format!("undecodable ({error})"), payload);
            shared.breach(Check::of(
                "FRAME-1",
                false,
                format!("the client sent a frame that does not decode: {error}"),
            ));
            let bad = v1::Error::new(v1::ErrorCode::BadFrame, "undecodable frame");
            shared.write_locked(conn, WriteOp::Frame(push(v1::server_frame::Body::Error(bad))));
            return;
        }
    };
    shared.log.frame(label, Direction::Received, &frame);
    let effects = {
        let mut model = lock(&shared.model);
        let effects = model.handle(conn, &frame);
        shared.dispatch(effects.writes);
        effects.breaches
    };
    for breach in effects {
        shared.breach(breach);
    }
    shared.saw(Seen::Frame { conn, at: Instant::now(), frame });
}

impl Shared {
    fn write_locked(&self, conn: ConnId, op: WriteOp) {
        let _model = lock(&self.model);
        self.dispatch(vec![(conn, op)]);
    }

    fn encode(&self, frame: &v1::ServerFrame, encoding: Encoding) -> Result<(Bytes, Dialect), String> {
        let dialect = *lock(&self.dialect);
        craft::encode(frame, encoding, dialect).map(|payload| (payload, dialect))
    }
}

async fn write_loop(
    shared: Arc<Shared>,
    label: String,
    mut writer: Writer,
    mut queue: Queue,
    encoding: Encoding,
    cancel: CancellationToken,
    closing: Arc<AtomicBool>,
) {
    let log = shared.log.clone();
    loop {
        let op = tokio::select! {
            _ = cancel.cancelled() => return,
            op = queue.ops.recv() => op,
        };
        let Some(op) = op else { return };
        queue.queued.fetch_sub(1, Ordering::Relaxed);
        let written = match op {
            WriteOp::Frame(frame) => match shared.encode(&frame, encoding) {
                Ok((payload, dialect)) => {
                    log.frame(&label, Direction::Sent, &frame);
                    if dialect != Dialect::Canonical {
                        as_written(&log, &label, dialect, encoding, &payload);
                    }
                    writer.frame(&payload).await
                }
                Err(error) => {
                    log.note(&format!("{label}: a frame could not be encoded (a bug in the suite): {error}"));
                    Ok(())
                }
            },
            WriteOp::Crafted { payload, what } => {
                log.bytes(&label, Direction::Sent, &format!("crafted: {what}"), &payload);
                writer.frame(&payload).await
            }
            WriteOp::WsMessage { text, payload, what } => {
                log.bytes(&label, Direction::Sent, &format!("crafted: {what}"), &payload);
                writer.ws_message(text, &payload).await
            }
            WriteOp::Raw { bytes, what } => {
                log.bytes(&label, Direction::Sent, &format!("raw: {what}"), &bytes);
                writer.raw(&bytes).await
            }
            WriteOp::Pieces { frame, pieces } => match shared.encode(&frame, encoding) {
                Ok((payload, _)) => {
                    log.frame(&label, Direction::Sent, &frame);
                    log.event(&label, &format!("  written in {pieces} pieces"));
                    writer.pieces(&payload, pieces).await
                }
                Err(error) => {
                    log.note(&format!("{label}: a frame could not be encoded (a bug in the suite): {error}"));
                    Ok(())
                }
            },
            WriteOp::Pause(pause) => {
                log.event(&label, &format!("holding further frames for {} ms", pause.as_millis()));
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                Ok(())
            }
            WriteOp::WsPing => {
                log.event(&label, "WebSocket ping (a control frame, no protocol frame)");
                writer.ws_ping().await
            }
            WriteOp::Close { code, reason } => {
                closing.store(true, Ordering::Relaxed);
                log.event(&label, &format!("closing the transport with code {code} {reason:?}"));
                writer.close(code, &reason).await;
                // Let the client answer the close, then let go.
                let _ = tokio::time::timeout(CLOSE_GRACE, cancel.cancelled()).await;
                cancel.cancel();
                return;
            }
            WriteOp::Drop => {
                closing.store(true, Ordering::Relaxed);
                log.event(&label, "dropping the connection (no close code)");
                writer.abort().await;
                cancel.cancel();
                return;
            }
        };
        if let Err(error) = written {
            log.event(&label, &format!("write failed: {error}"));
            return;
        }
    }
}

/// What a frame in a dialect looked like on the wire: the JSON text (up to
/// a screenful), or the bytes.
fn as_written(log: &FrameLog, label: &str, dialect: Dialect, encoding: Encoding, payload: &[u8]) {
    const SHOWN_CHARS: usize = 600;
    let what = format!("  written {}", dialect.describe());
    match (encoding, std::str::from_utf8(payload)) {
        (Encoding::Json, Ok(text)) => {
            let shown: String = text.chars().take(SHOWN_CHARS).collect();
            let more = if shown.len() < text.len() { "..." } else { "" };
            log.event(label, &format!("{what}: {shown}{more}"));
        }
        _ => log.bytes(label, Direction::Sent, &what, payload),
    }
}

/// Watches a QUIC connection for streams besides the first (QUIC-3).
async fn watch_streams(
    shared: Arc<Shared>,
    conn: ConnId,
    label: String,
    connection: quinn::Connection,
    cancel: CancellationToken,
) {
    loop {
        let opened = tokio::select! {
            _ = cancel.cancelled() => return,
            bi = connection.accept_bi() => bi.map(|_| "bidirectional"),
            uni = connection.accept_uni() => uni.map(|_| "unidirectional"),
        };
        match opened {
            Ok(kind) => {
                shared.log.event(&label, &format!("the client opened another stream ({kind})"));
                shared.breach(Check::of("QUIC-3", false, format!("the client opened a second stream ({kind})")));
                shared.saw(Seen::ExtraStream { conn });
            }
            Err(_) => return,
        }
    }
}
