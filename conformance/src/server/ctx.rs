//! [`Ctx`]: what a server case works with. It opens logged connections to
//! the target, makes accounts with names unique to this run, and records
//! checks against the requirements the case declared.

use std::{
    fmt,
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use confab_sdk::{
    ClientOptions, Trust,
    raw::RawConnection,
    v1::{self, client_frame::Command, server_frame::Body},
};
use rand::Rng as _;

use super::{
    conn::{Closing, Conn, Reply, is_authenticated, is_error, is_error_frame},
    show::{show_frame, show_reply},
};
use crate::{
    checks::Checks,
    outcome::{CaseResult, Stop},
    runner::Record,
    wire::{Transport, Wire},
};

/// The server under test.
pub struct Target {
    pub quic_url: Option<String>,
    pub ws_url: Option<String>,
    pub trust: Trust,
    /// The wires to test, in order.
    pub wires: Vec<Wire>,
    /// The longest a case may wait for a server timer (idle and handshake
    /// timeouts); cases that would wait longer are skipped.
    pub max_wait: Duration,
    /// The server's handshake timeout, which `Welcome` cannot state (it
    /// applies before). confabd's default is 10 s.
    pub handshake_timeout: Duration,
    /// How long to wait for any one expected frame.
    pub reply_timeout: Duration,
    /// A random tag in every name this run makes, so runs against the same
    /// server do not collide.
    run_tag: String,
    names: AtomicU64,
}

impl Target {
    pub fn new(quic_url: Option<String>, ws_url: Option<String>, trust: Trust, wires: Vec<Wire>) -> Target {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let run_tag = (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        Target {
            quic_url,
            ws_url,
            trust,
            wires,
            max_wait: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(10),
            run_tag,
            names: AtomicU64::new(0),
        }
    }

    fn url(&self, transport: Transport) -> Option<&str> {
        match transport {
            Transport::Quic => self.quic_url.as_deref(),
            Transport::Ws => self.ws_url.as_deref(),
        }
    }
}

/// An account a case registered, with its current tokens.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
    pub id: u64,
    pub access_token: String,
    pub refresh_token: String,
}

impl User {
    pub fn from_auth(name: &str, password: &str, auth: &v1::AuthResult) -> User {
        User {
            name: name.into(),
            password: password.into(),
            id: auth.user.as_ref().map_or(0, |u| u.user_id),
            access_token: auth.access_token.clone(),
            refresh_token: auth.refresh_token.clone(),
        }
    }
}

/// The password of every account the suite registers.
pub const PASSWORD: &str = "conformance suite password";

/// A server case's context. Cloning shares it.
#[derive(Clone)]
pub struct Ctx {
    target: Arc<Target>,
    wire: Wire,
    checks: Checks,
    connections: Arc<AtomicUsize>,
}

/// `cx.check(..)` and the other recording methods are [`Checks`]'.
impl Deref for Ctx {
    type Target = Checks;

    fn deref(&self) -> &Checks {
        &self.checks
    }
}

impl Ctx {
    pub(crate) fn new(target: Arc<Target>, wire: Wire, requirements: &'static [&'static str], record: Record) -> Ctx {
        Ctx { target, wire, checks: Checks::new(requirements, record), connections: Arc::default() }
    }

    pub fn wire(&self) -> Wire {
        self.wire
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A valid name (AUTH-1) no one else has used: a letter, the run's tag,
    /// up to 12 characters of `hint`, a counter.
    pub fn name(&self, hint: &str) -> String {
        let n = self.target.names.fetch_add(1, Ordering::Relaxed);
        let hint: String = hint.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
        format!("c{}{}{n}", self.target.run_tag, hint.to_ascii_lowercase())
    }

    /// Opens a transport connection on this case's wire, sending nothing.
    pub async fn connect(&self, who: &str) -> CaseResult<Conn> {
        self.connect_on(self.wire, who).await
    }

    /// Opens a transport connection on `wire` (for cases that cross wires).
    pub async fn connect_on(&self, wire: Wire, who: &str) -> CaseResult<Conn> {
        let url = self
            .target
            .url(wire.transport)
            .ok_or_else(|| Stop::Skipped(format!("no {:?} URL given", wire.transport)))?;
        let label = format!("{who}/{}", self.connections.fetch_add(1, Ordering::Relaxed) + 1);
        let options = ClientOptions {
            encoding: wire.encoding,
            trust: self.target.trust.clone(),
            connect_timeout: self.target.reply_timeout,
            ..ClientOptions::default()
        };
        let raw = RawConnection::connect(url, &options)
            .await
            .map_err(|error| Stop::Failed(format!("{label}: could not connect to {url}: {error}")))?;
        self.log().event(&label, &format!("connected to {url} ({wire})"));
        Ok(Conn::new(raw, label, self.log().clone(), self.target.reply_timeout))
    }

    /// A connection past the handshake (`Hello`, `Welcome`).
    pub async fn open(&self, who: &str) -> CaseResult<Conn> {
        let mut conn = self.connect(who).await?;
        conn.hello().await?;
        Ok(conn)
    }

    /// A connection logged in as a newly registered account.
    pub async fn user(&self, who: &str) -> CaseResult<(Conn, User)> {
        self.user_on(self.wire, who).await
    }

    /// [`Ctx::user`] on `wire` (for cases that mix wires).
    pub async fn user_on(&self, wire: Wire, who: &str) -> CaseResult<(Conn, User)> {
        let mut conn = self.connect_on(wire, who).await?;
        conn.hello().await?;
        let name = self.name(who);
        let auth = conn.register(&name, PASSWORD).await?;
        Ok((conn, User::from_auth(&name, PASSWORD, &auth)))
    }

    /// A room of `kind` that `conn`'s user creates, with a fresh name.
    pub async fn new_room(&self, conn: &mut Conn, kind: v1::RoomKind) -> CaseResult<v1::RoomInfo> {
        conn.create_room(&self.name("room"), kind).await
    }

    /// A new connection of `user`, authenticated with their access token.
    pub async fn reconnect(&self, user: &User, who: &str) -> CaseResult<Conn> {
        let mut conn = self.open(who).await?;
        conn.authenticate(&user.access_token).await?;
        Ok(conn)
    }

    /// `Authenticate` with `access_token` on a new connection, closed
    /// afterwards; the reply as it came.
    pub async fn try_authenticate(&self, access_token: &str) -> CaseResult<Reply> {
        let mut conn = self.open("client").await?;
        let reply = conn.try_authenticate(access_token).await?;
        conn.close().await;
        Ok(reply)
    }

    /// Checks that `reply` is the error `expected` (ignoring its message).
    pub fn check_error(&self, requirement: &str, reply: &Reply, expected: v1::ErrorCode) -> bool {
        self.check(
            requirement,
            is_error(reply, expected),
            format!("expected {}, got {}", expected.as_str_name(), show_reply(reply)),
        )
    }

    /// Checks that `reply` is the error `expected`, with the detail
    /// "`what`: expected CODE, got ...".
    pub fn check_refused(
        &self,
        requirement: &str,
        what: impl fmt::Display,
        reply: &Reply,
        expected: v1::ErrorCode,
    ) -> bool {
        self.check(
            requirement,
            is_error(reply, expected),
            format!("{what}: expected {}, got {}", expected.as_str_name(), show_reply(reply)),
        )
    }

    /// Checks that `conn`'s session is authenticated ([`Conn::probe`]); the
    /// detail is `what` and the probe's reply. Returns whether it held.
    pub async fn check_logged_in(
        &self,
        requirement: &str,
        conn: &mut Conn,
        what: impl fmt::Display,
    ) -> CaseResult<bool> {
        let probe = conn.probe().await?;
        Ok(self.check(requirement, is_authenticated(&probe), format!("{what}: {}", show_reply(&probe))))
    }

    /// Checks that `conn`'s session is not authenticated: [`Conn::probe`]
    /// is answered `WRONG_STATE`. Returns whether it held.
    pub async fn check_logged_out(
        &self,
        requirement: &str,
        conn: &mut Conn,
        what: impl fmt::Display,
    ) -> CaseResult<bool> {
        let probe = conn.probe().await?;
        let held = is_error(&probe, v1::ErrorCode::WrongState);
        Ok(self.check(requirement, held, format!("{what}: {}", show_reply(&probe))))
    }

    /// Checks that `frame` is an `Error` push (request id 0) with `code`;
    /// the detail starts with `what`.
    pub fn check_push_error(
        &self,
        requirement: &str,
        frame: &v1::ServerFrame,
        code: v1::ErrorCode,
        what: &str,
    ) -> bool {
        self.check(
            requirement,
            frame.request_id == 0 && is_error_frame(frame, code),
            format!("{what}: expected an Error push {} (request id 0), got {}", code.as_str_name(), show_frame(frame)),
        )
    }

    /// Checks that `conn`'s session is still open and answers a `Ping`
    /// (`after` says after what). Returns whether it held.
    pub async fn check_alive(&self, requirement: &str, conn: &mut Conn, after: &str) -> CaseResult<bool> {
        let request_id = conn.command(Command::Ping(v1::Ping {})).await?;
        let detail = match conn.reply(request_id).await {
            Ok(frame) if matches!(frame.body, Some(Body::Pong(_))) => None,
            Ok(frame) => Some(show_frame(&frame)),
            Err(stop) => Some(stop.to_string()),
        };
        let held = detail.is_none();
        self.check(
            requirement,
            held,
            format!(
                "{after}, the session is open and a Ping is answered Pong{}",
                detail.map_or(String::new(), |d| format!(": {d}"))
            ),
        );
        Ok(held)
    }

    /// Checks that the session was closed with `expected` in both the
    /// `Close` frame and the transport (the detail starts with `what`), then
    /// the form of the close ([`Ctx::check_close_form`]). Returns whether
    /// the code held.
    pub fn check_close(&self, requirement: &str, closing: &Closing, expected: v1::CloseCode, what: &str) -> bool {
        let held = self.check(
            requirement,
            closing.is(expected),
            format!("{what}: expected the close {}; {}", expected.as_str_name(), closing.describe()),
        );
        self.check_close_form(closing);
        held
    }

    /// CLOSE-1: a `Close` frame, then the transport closed with the same
    /// code; and QUIC-6 or WS-7 (by the case's wire): with the same reason,
    /// at most 120 bytes of it.
    pub fn check_close_form(&self, closing: &Closing) {
        let frame_code = closing.close.as_ref().map(|close| close.code);
        self.check(
            "CLOSE-1",
            frame_code.is_some() && frame_code == closing.code,
            format!("a Close frame, then the transport closed with the same code: {}", closing.describe()),
        );
        if let Some(close) = &closing.close {
            let requirement = match self.wire.transport {
                Transport::Quic => "QUIC-6",
                Transport::Ws => "WS-7",
            };
            let held = if close.reason.len() <= 120 {
                closing.reason == close.reason
            } else {
                closing.reason.len() <= 120 && close.reason.starts_with(&closing.reason)
            };
            self.check(
                requirement,
                held,
                format!(
                    "the transport close's reason is the Close frame's (at most 120 bytes): {:?} for {:?}",
                    closing.reason, close.reason
                ),
            );
        }
    }

    /// How long to wait for the server's handshake timeout to close a
    /// session (the timeout and 3 s); skips the case when that is beyond
    /// [`Target::max_wait`].
    pub fn handshake_wait(&self) -> CaseResult<Duration> {
        let timeout = self.target.handshake_timeout;
        let wait = timeout + Duration::from_secs(3);
        if wait > self.target.max_wait {
            return Err(Stop::Skipped(format!("the handshake timeout ({timeout:?}) is beyond --max-wait")));
        }
        Ok(wait)
    }
}
