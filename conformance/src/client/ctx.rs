//! [`Ctx`]: what a client case works with: its scripted server, the
//! driver processes it starts (with the contract's environment and a state
//! directory kept between the runs of the case), and the checks it
//! records. [`Client`] is one running driver seen from both ends: the
//! process and the connection it holds.

use std::{
    ops::Deref,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use confab_protocol::v1::{self, client_frame::Command};
use serde_json::json;

use super::{
    Target,
    driver::{Driver, Env, Output, Reported},
    model::{ConnId, Model},
    server::{ScriptedServer, Seen},
};
use crate::{
    checks::Checks,
    outcome::{CaseResult, Check, Stop},
    runner::Record,
    wire::{Transport, Wire},
};

/// How long a driver may take to exit after `quit`.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client case's context. Cloning shares it.
#[derive(Clone)]
pub struct Ctx(Arc<Inner>);

struct Inner {
    target: Arc<Target>,
    case: &'static str,
    wire: Wire,
    checks: Checks,
    server: ScriptedServer,
    state: tempfile::TempDir,
    runs: AtomicUsize,
    /// What each driver printed, for the secrecy audit.
    printed: Mutex<Vec<Arc<Mutex<String>>>>,
}

/// `cx.check(..)` and the other recording methods are [`Checks`]'.
impl Deref for Ctx {
    type Target = Checks;

    fn deref(&self) -> &Checks {
        &self.0.checks
    }
}

impl Ctx {
    pub(super) async fn new(
        target: Arc<Target>,
        case: &'static str,
        wire: Wire,
        requirements: &'static [&'static str],
        record: Record,
    ) -> CaseResult<Ctx> {
        let model = Model::new(&target.username, &target.password);
        let server = ScriptedServer::start(wire, &target.identity, model, record.clone())
            .await
            .map_err(|e| Stop::Failed(format!("cannot start the scripted server: {e:#}")))?;
        let state = tempfile::Builder::new()
            .prefix("confab-conformance-state-")
            .tempdir()
            .map_err(|e| Stop::Failed(format!("cannot make a state directory: {e}")))?;
        Ok(Ctx(Arc::new(Inner {
            target,
            case,
            wire,
            checks: Checks::new(requirements, record),
            server,
            state,
            runs: AtomicUsize::new(0),
            printed: Mutex::default(),
        })))
    }

    pub fn wire(&self) -> Wire {
        self.0.wire
    }

    pub fn is_quic(&self) -> bool {
        self.0.wire.transport == Transport::Quic
    }

    pub fn server(&self) -> &ScriptedServer {
        &self.0.server
    }

    /// How long the driver has to answer a command.
    pub fn answer_timeout(&self) -> Duration {
        self.0.target.answer_timeout
    }

    /// The contract's environment for this case (driver-contract.md).
    pub fn env(&self) -> Env {
        let mut env = Env::default();
        env.set("CONFAB_URL", self.0.server.url());
        env.set(
            "CONFAB_TRANSPORT",
            match self.0.wire.transport {
                Transport::Quic => "quic",
                Transport::Ws => "ws",
            },
        );
        env.set("CONFAB_ENCODING", if self.0.wire.is_json() { "json" } else { "proto" });
        env.set("CONFAB_FINGERPRINT", self.0.server.fingerprint().to_string());
        env.set("CONFAB_CASE", self.0.case);
        env.set("CONFAB_USERNAME", &self.0.target.username);
        env.set("CONFAB_PASSWORD", &self.0.target.password);
        env.set("CONFAB_STATE_DIR", self.0.state.path().display().to_string());
        env
    }

    /// Starts the driver with `env`.
    pub fn spawn(&self, env: &Env) -> CaseResult<Driver> {
        let run = self.0.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let label = if run == 1 { "driver".to_owned() } else { format!("driver#{run}") };
        let driver = Driver::spawn(
            &self.0.target.exec,
            env,
            &self.work_dir(),
            self.log().clone(),
            label,
            self.answer_timeout(),
        )?;
        if let Ok(mut printed) = self.0.printed.lock() {
            printed.push(driver.printed.clone());
        }
        Ok(driver)
    }

    fn work_dir(&self) -> PathBuf {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    }

    /// A driver started with the contract's environment, connected and
    /// logged in, whose connection has sent `Resume` (so room events reach
    /// it from now on).
    pub async fn start(&self) -> CaseResult<Client> {
        self.start_with(&self.env()).await
    }

    pub async fn start_with(&self, env: &Env) -> CaseResult<Client> {
        let mut driver = self.spawn(env)?;
        let mut cursor = self.0.server.cursor();
        let answer = driver.call("connect", json!({})).await?;
        if answer.kind != "connected" {
            return Err(Stop::Failed(format!("connect was answered {answer}")));
        }
        let server = &self.0.server;
        let resumed = server
            .wait(&mut cursor, self.answer_timeout(), |seen| match seen.command() {
                Some((conn, _, Command::Resume(_))) => Some(conn),
                _ => None,
            })
            .await;
        let Some(conn) = resumed else {
            return Err(Stop::Failed(format!(
                "the client logged in but sent no Resume within {} s (STATE-3: a client sends Resume to receive \
                 room events)",
                self.answer_timeout().as_secs()
            )));
        };
        self.negotiated(conn)?;
        Ok(Client { driver, conn, cursor })
    }

    /// Requires that the WebSocket connection `conn` runs in the encoding
    /// of the wire under test. The server selects the first subprotocol the
    /// client offers (WS-2), so a client that offers only the other one
    /// does not play this wire (unsupported), and one that offers this
    /// wire's subprotocol after the other ignores `CONFAB_ENCODING`.
    fn negotiated(&self, conn: ConnId) -> CaseResult {
        if self.is_quic() {
            return Ok(());
        }
        let server = &self.0.server;
        let wanted = self.0.wire.encoding;
        if server.encoding(conn) == wanted {
            return Ok(());
        }
        let offered = self.offered(conn);
        let subprotocol = wanted.ws_subprotocol();
        if offered.iter().any(|name| name == subprotocol) {
            Err(Stop::Failed(format!(
                "CONFAB_ENCODING asked for {subprotocol}, but the client offered {offered:?}, and the server selects \
                 the first it supports (WS-2): offer {subprotocol} first"
            )))
        } else {
            Err(Stop::Unsupported(format!(
                "the client offered {offered:?}, not {subprotocol}: it does not speak this wire's encoding"
            )))
        }
    }

    /// The WebSocket subprotocols the client offered on `conn`, in its
    /// order.
    pub fn offered(&self, conn: ConnId) -> Vec<String> {
        self.0
            .server
            .seen()
            .iter()
            .find_map(|s| match s {
                Seen::Opened { conn: c, offered, .. } if *c == conn => Some(offered.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    // ---- checks ----------------------------------------------------------

    /// A remark in the frame log only.
    pub fn remark(&self, text: &str) {
        self.log().note(text);
    }

    /// Checks that the client reported exactly the events of `room` with
    /// `seq` in `after+1 ..= upto` of the log: each once, in order, with
    /// its epoch, kind and text (events of unknown kinds may be left out).
    pub fn check_events(&self, requirement: &str, client: &Client, room: u64, after: u64, upto: u64) -> bool {
        let expected: Vec<(u64, u64, String, String)> = self.0.server.model(|model| {
            model.room(room).map_or_else(Vec::new, |r| {
                r.events
                    .iter()
                    .filter(|e| e.seq > after && e.seq <= upto)
                    .map(|e| (e.epoch, e.seq, kind(e), text(e)))
                    .collect()
            })
        });
        let reported: Vec<(u64, u64, String, String)> = client
            .events(room)
            .into_iter()
            .filter(|e| e.seq.is_some_and(|s| s > after))
            .map(|e| (e.epoch.unwrap_or(0), e.seq.unwrap_or(0), e.kind, e.text))
            .collect();
        let known: Vec<_> = expected.iter().filter(|e| e.2 != "unknown").cloned().collect();
        let held = reported == expected || reported == known;
        let show = |events: &[(u64, u64, String, String)]| {
            events.iter().map(|(epoch, seq, kind, _)| format!("{epoch}/{seq} {kind}")).collect::<Vec<_>>().join(", ")
        };
        self.check(
            requirement,
            held,
            if held {
                format!("room {room}: every event after seq {after} reported once, in order ({})", show(&reported))
            } else {
                format!(
                    "room {room}: expected events after seq {after}: [{}]; reported: [{}]{}",
                    show(&expected),
                    show(&reported),
                    text_mismatch(&expected, &reported)
                )
            },
        )
    }

    /// Audits at the end of the case: no token the server issued appears
    /// in anything a driver printed (AUTH-2: never log them).
    pub(super) async fn finish(&self) {
        let secrets = self.0.server.model(|model| model.secrets());
        let printed: Vec<String> = match self.0.printed.lock() {
            Ok(printed) => printed.iter().map(|p| p.lock().map(|p| p.clone()).unwrap_or_default()).collect(),
            Err(_) => Vec::new(),
        };
        let leaked: Vec<&String> = secrets.iter().filter(|s| printed.iter().any(|p| p.contains(s.as_str()))).collect();
        if !leaked.is_empty() {
            self.audit(Check::of(
                "AUTH-2",
                false,
                format!("{} token(s) the server issued appear in the driver's stdout or stderr", leaked.len()),
            ));
        } else if self.declares("AUTH-2") && !secrets.is_empty() {
            self.audit(Check::of(
                "AUTH-2",
                true,
                format!("none of the {} tokens issued appears in the driver's output", secrets.len()),
            ));
        }
    }
}

fn text_mismatch(expected: &[(u64, u64, String, String)], reported: &[(u64, u64, String, String)]) -> String {
    for (e, r) in expected.iter().zip(reported) {
        if e.1 == r.1 && e.3 != r.3 {
            return format!("; seq {} text {:?} reported as {:?}", e.1, e.3, r.3);
        }
    }
    String::new()
}

/// The contract's name of an event's kind.
pub fn kind(event: &v1::RoomEvent) -> String {
    use v1::room_event::Kind;
    match &event.kind {
        Some(Kind::RoomCreated(_)) => "room_created",
        Some(Kind::MemberJoined(_)) => "member_joined",
        Some(Kind::MemberLeft(_)) => "member_left",
        Some(Kind::MemberInvited(_)) => "member_invited",
        Some(Kind::Message(_)) => "message",
        Some(Kind::MessageEdited(_)) => "message_edited",
        Some(Kind::MessageDeleted(_)) => "message_deleted",
        Some(Kind::ReactionAdded(_)) => "reaction_added",
        Some(Kind::ReactionRemoved(_)) => "reaction_removed",
        Some(Kind::RoomUpdated(_)) => "room_updated",
        None => "unknown",
    }
    .into()
}

fn text(event: &v1::RoomEvent) -> String {
    match &event.kind {
        Some(v1::room_event::Kind::Message(message)) => message.text.clone(),
        _ => String::new(),
    }
}

/// One running driver and the connection it holds.
pub struct Client {
    pub driver: Driver,
    /// The connection of the client's current session.
    pub conn: ConnId,
    /// Where the next wait on the server starts.
    pub cursor: usize,
}

/// A reconnection the client made by itself.
#[derive(Debug)]
pub struct Reconnect {
    pub conn: ConnId,
    /// The commands on the new connection up to and including its `Resume`.
    pub commands: Vec<Command>,
    pub resume: v1::Resume,
}

impl Reconnect {
    /// The position the `Resume` gives for `room`.
    pub fn position(&self, room: u64) -> Option<(u64, u64)> {
        self.resume.positions.iter().find(|p| p.room_id == room).map(|p| (p.epoch, p.seq))
    }

    /// Whether it logged in with `Login` rather than its token.
    pub fn used_login(&self) -> bool {
        self.commands.iter().any(|c| matches!(c, Command::Login(_) | Command::Register(_)))
    }

    pub fn names(&self) -> String {
        self.commands.iter().map(super::model::name).collect::<Vec<_>>().join(", ")
    }
}

impl Client {
    /// Every room event the driver reported for `room`, in order.
    pub fn events(&self, room: u64) -> Vec<Reported> {
        self.driver
            .reports
            .iter()
            .filter(|o| o.kind == "event")
            .map(Output::event)
            .filter(|e| e.room_id == Some(room))
            .collect()
    }

    /// Waits until the driver reported an event of `room` with `seq` at
    /// least `seq`.
    pub async fn wait_event(&mut self, room: u64, seq: u64, within: Duration) -> CaseResult<bool> {
        self.driver
            .wait_reports(within, |reports| {
                reports.iter().any(|o| o.kind == "event" && o.u64("room_id") == Some(room) && o.u64("seq") >= Some(seq))
            })
            .await
    }

    /// Waits until the client has reconnected by itself: a newer
    /// connection that got as far as `Resume`. `None` when it did not
    /// within `within`.
    pub async fn reconnected(&mut self, server: &ScriptedServer, within: Duration) -> CaseResult<Option<Reconnect>> {
        let current = self.conn;
        let mut commands: Vec<(ConnId, Command)> = Vec::new();
        let found = server
            .wait(&mut self.cursor, within, |seen| {
                let (conn, _, command) = seen.command()?;
                if conn <= current {
                    return None;
                }
                commands.push((conn, command.clone()));
                match command {
                    Command::Resume(resume) => Some((conn, resume.clone())),
                    _ => None,
                }
            })
            .await;
        Ok(found.map(|(conn, resume)| {
            self.conn = conn;
            let commands = commands.into_iter().filter(|(c, _)| *c == conn).map(|(_, command)| command).collect();
            Reconnect { conn, commands, resume }
        }))
    }

    /// Whether the client opened any connection after its current one
    /// within `within` (for cases where it must not).
    pub async fn opened_another(&mut self, server: &ScriptedServer, within: Duration) -> Option<ConnId> {
        let current = self.conn;
        server
            .wait(&mut self.cursor, within, |seen| match seen {
                Seen::Opened { conn, .. } if *conn > current => Some(*conn),
                Seen::Refused { .. } => Some(ConnId::MAX),
                _ => None,
            })
            .await
    }

    /// Watches the client's connection for `within`: `None` when it stayed
    /// up and no other was opened, else what happened. The whole log is
    /// read, so a loss before the watch counts too.
    pub async fn lost_session(&self, server: &ScriptedServer, within: Duration) -> Option<String> {
        let current = self.conn;
        server
            .wait(&mut 0, within, |seen| match seen {
                Seen::Ended { conn, by_client, code, .. } if *conn == current => Some(format!(
                    "conn/{current} ended ({}, code {code:?})",
                    if *by_client { "by the client" } else { "by the server" }
                )),
                Seen::Opened { conn, .. } if *conn > current => Some(format!("the client opened conn/{conn}")),
                _ => None,
            })
            .await
    }

    /// The next command the client sends on any connection after the
    /// cursor, picked by `pick`, within `within`.
    pub async fn next_command<T>(
        &mut self,
        server: &ScriptedServer,
        within: Duration,
        mut pick: impl FnMut(ConnId, u64, &Command) -> Option<T>,
    ) -> Option<T> {
        server.wait(&mut self.cursor, within, |seen| seen.command().and_then(|(conn, id, c)| pick(conn, id, c))).await
    }

    /// [`Client::next_command`], with when the command arrived.
    pub async fn next_command_timed<T>(
        &mut self,
        server: &ScriptedServer,
        within: Duration,
        mut pick: impl FnMut(ConnId, &Command) -> Option<T>,
    ) -> Option<(T, tokio::time::Instant)> {
        server
            .wait(&mut self.cursor, within, |seen| match seen {
                Seen::Frame { conn, at, frame } => {
                    frame.command.as_ref().and_then(|c| pick(*conn, c)).map(|t| (t, *at))
                }
                _ => None,
            })
            .await
    }

    /// `send`: a message to `room`. The answer (`sent` or `error`).
    pub async fn send(&mut self, room: u64, text: &str) -> CaseResult<Output> {
        self.driver.call("send", json!({"room_id": room.to_string(), "text": text})).await
    }

    /// `history` of `room`. The answer (`history` or `error`).
    pub async fn history(&mut self, room: u64, direction: &str, anchor: u64, limit: u32) -> CaseResult<Output> {
        let fields =
            json!({"room_id": room.to_string(), "direction": direction, "anchor": anchor.to_string(), "limit": limit});
        self.driver.call("history", fields).await
    }

    /// `quit`: the driver must exit 0.
    pub async fn quit(self) -> CaseResult {
        self.driver.quit(QUIT_TIMEOUT).await
    }
}
