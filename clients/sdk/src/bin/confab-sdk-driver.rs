//! `confab-sdk-driver`: the SDK's driver for the client mode of the
//! conformance suite (`conformance/driver-contract.md`). It reads the
//! contract's environment, runs the commands it reads on stdin through a
//! [`Client`], and prints what the client observed as JSON lines on stdout.
//! Reconnecting, resuming and resending are the SDK's own; the driver only
//! reports, keeps the tokens in `CONFAB_STATE_DIR`, and reloads a room the
//! SDK reports as reset.
//!
//! ```sh
//! confab-conformance client --exec target/debug/confab-sdk-driver
//! ```

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex as SyncMutex},
};

use confab_sdk::{
    Client, ClientOptions, Encoding, Error, Event, Fingerprint, RoomId, Seq, Tokens, Trust,
    v1::{self, room_event::Kind},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Stdout},
    sync::Mutex,
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

/// The cases this driver plays: every client case of the suite. A case the
/// suite adds later is answered 127 (unsupported) until it is listed here.
const CASES: &[&str] = &[
    "hello/first-frame",
    "close/client-closes",
    "enc/unknown-fields",
    "enc/non-canonical-binary",
    "enc/json-variants",
    "enc/unknown-enum-values",
    "enc/unknown-push-and-reply",
    "log/unknown-event-kind",
    "log/order-and-duplicates",
    "live/pings-when-quiet",
    "live/silent-server",
    "errors/temporary-retry",
    "close/reconnect-range",
    "close/stop-range",
    "close/transport-code-decides",
    "close/backoff",
    "auth/expired-token",
    "auth/stored-tokens",
    "idem/resend-after-drop",
    "idem/resend-several-in-order",
    "frame/reply-order",
    "resume/dropped-mid-stream",
    "resume/gap",
    "resume/reset",
    "resume/epoch-change",
    "resume/gone",
    "resume/live-before-result",
    "resume/slow-consumer",
    "resume/invitation-is-no-position",
    "limit/frame-size",
    "quic/fingerprint",
    "quic/split-and-coalesced-frames",
    "ws/fragmented-messages",
    "frame/malformed-from-server",
];

/// The exit status for a case this driver does not play.
const UNSUPPORTED: u8 = 127;

/// How many events a reload after a reset reads.
const RELOAD_PAGE: u32 = 50;

/// The contract's environment.
struct Config {
    url: String,
    encoding: Encoding,
    fingerprint: Option<Fingerprint>,
    case: String,
    username: String,
    password: String,
    state_dir: PathBuf,
}

impl Config {
    fn from_env() -> Result<Config, String> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        let encoding = match var("CONFAB_ENCODING")?.as_str() {
            "proto" => Encoding::Proto,
            "json" => Encoding::Json,
            other => return Err(format!("CONFAB_ENCODING {other:?} is neither proto nor json")),
        };
        let fingerprint = match std::env::var("CONFAB_FINGERPRINT") {
            Ok(hex) if !hex.is_empty() => {
                Some(hex.parse::<Fingerprint>().map_err(|e| format!("CONFAB_FINGERPRINT: {e}"))?)
            }
            _ => None,
        };
        Ok(Config {
            url: var("CONFAB_URL")?,
            encoding,
            fingerprint,
            case: var("CONFAB_CASE")?,
            username: var("CONFAB_USERNAME")?,
            password: var("CONFAB_PASSWORD")?,
            state_dir: PathBuf::from(var("CONFAB_STATE_DIR")?),
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("confab-sdk-driver: {error}");
            return ExitCode::from(2);
        }
    };
    if !CASES.contains(&config.case.as_str()) {
        eprintln!("confab-sdk-driver: case {:?} is not supported", config.case);
        return ExitCode::from(UNSUPPORTED);
    }
    let mut driver = Driver {
        config: Arc::new(config),
        out: Out::default(),
        client: None,
        tasks: JoinSet::new(),
        stop: CancellationToken::new(),
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            // End of input means quit.
            Ok(None) | Err(_) => break,
        };
        if line.trim().is_empty() {
            continue;
        }
        let command: Value = match serde_json::from_str(&line) {
            Ok(command) => command,
            Err(error) => {
                eprintln!("confab-sdk-driver: not a JSON command ({error}): {line}");
                continue;
            }
        };
        if !driver.handle(command).await {
            break;
        }
    }
    driver.disconnect().await;
    ExitCode::SUCCESS
}

/// Standard output, one whole line at a time.
#[derive(Clone, Default)]
struct Out(Arc<Mutex<Option<Stdout>>>);

impl Out {
    async fn emit(&self, line: Value) {
        let mut out = self.0.lock().await;
        let stdout = out.get_or_insert_with(tokio::io::stdout);
        let mut text = line.to_string();
        text.push('\n');
        let _ = stdout.write_all(text.as_bytes()).await;
        let _ = stdout.flush().await;
    }
}

struct Driver {
    config: Arc<Config>,
    out: Out,
    client: Option<Arc<Client>>,
    /// Commands in flight and the event pump; stopped on disconnect.
    tasks: JoinSet<()>,
    /// Cancelled on disconnect: a command in flight then answers `error`
    /// (every command gets its one answer), the pump stops.
    stop: CancellationToken,
}

impl Driver {
    /// Runs one command; false when the driver should exit.
    async fn handle(&mut self, command: Value) -> bool {
        let id = command.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let cmd = command.get("cmd").and_then(Value::as_str).unwrap_or_default();
        match cmd {
            "quit" => return false,
            "connect" => self.connect(&id).await,
            "disconnect" => {
                self.disconnect().await;
                self.out.emit(json!({"type": "disconnected", "id": id})).await;
            }
            "send" | "history" => {
                let Some(client) = self.client.clone() else {
                    self.out.emit(json!({"type": "error", "id": id, "message": "not connected"})).await;
                    return true;
                };
                let (out, config, stop) = (self.out.clone(), self.config.clone(), self.stop.clone());
                // Each in its own task: the suite may send a command before
                // the previous one is answered.
                self.tasks.spawn(async move {
                    let line = tokio::select! {
                        line = run_command(&client, &id, &command) => line,
                        () = stop.cancelled() => json!({"type": "error", "id": id, "message": "disconnected"}),
                    };
                    // A Refresh may have rotated the tokens meanwhile.
                    store_tokens(&config.state_dir, &client);
                    out.emit(line).await;
                });
            }
            other => {
                let message = format!("unknown command {other:?}");
                self.out.emit(json!({"type": "error", "id": id, "message": message})).await;
            }
        }
        if let Some(client) = &self.client {
            store_tokens(&self.config.state_dir, client);
        }
        true
    }

    async fn connect(&mut self, id: &str) {
        if self.client.is_some() {
            self.out.emit(json!({"type": "connected", "id": id})).await;
            return;
        }
        match login(&self.config).await {
            Ok(client) => {
                let client = Arc::new(client);
                self.tasks.spawn(pump(client.clone(), self.out.clone(), self.config.clone(), self.stop.clone()));
                self.client = Some(client);
                self.out.emit(json!({"type": "connected", "id": id})).await;
            }
            Err(error) => self.out.emit(error_line(id, &error)).await,
        }
    }

    /// Stops what runs (commands in flight answer `error`), stores the
    /// tokens and closes the client politely.
    async fn disconnect(&mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.stop = CancellationToken::new();
        if let Some(client) = self.client.take() {
            store_tokens(&self.config.state_dir, &client);
            match Arc::try_unwrap(client) {
                Ok(client) => client.close().await,
                Err(shared) => drop(shared),
            }
        }
    }
}

/// Connects and logs in: with the tokens a run before stored, or else (or
/// when they are refused) with the password.
async fn login(config: &Config) -> Result<Client, Error> {
    let options = ClientOptions {
        encoding: config.encoding,
        trust: config.fingerprint.map_or(Trust::WebPki, Trust::Fingerprint),
        client_name: concat!("confab-sdk-driver/", env!("CARGO_PKG_VERSION")).into(),
        device_name: "conformance".into(),
        ..ClientOptions::default()
    };
    let client = Client::connect(&config.url, options).await?;
    let stored = load_tokens(&config.state_dir);
    let authenticated = match stored {
        Some(tokens) => match client.authenticate_with(tokens).await {
            Ok(_) => true,
            Err(error @ Error::Server(_)) => {
                eprintln!("confab-sdk-driver: the stored tokens were refused ({error}); logging in");
                false
            }
            Err(error) => return Err(error),
        },
        None => false,
    };
    if !authenticated {
        client.login(&config.username, &config.password).await?;
    }
    store_tokens(&config.state_dir, &client);
    Ok(client)
}

/// The answer to a `send` or `history` command.
async fn run_command(client: &Client, id: &str, command: &Value) -> Value {
    let Some(room) = u64_field(command, "room_id") else {
        return json!({"type": "error", "id": id, "message": "room_id is missing"});
    };
    if command.get("cmd").and_then(Value::as_str) == Some("send") {
        send(client, id, room, command).await
    } else {
        history(client, id, room, command).await
    }
}

async fn send(client: &Client, id: &str, room: u64, command: &Value) -> Value {
    let text = command.get("text").and_then(Value::as_str).unwrap_or_default();
    match client.send(RoomId(room), text).await {
        Ok(sent) => json!({
            "type": "sent",
            "id": id,
            "room_id": sent.room_id.to_string(),
            "epoch": sent.epoch.to_string(),
            "seq": sent.seq.to_string(),
            "duplicate": sent.duplicate,
        }),
        Err(error) => error_line(id, &error),
    }
}

async fn history(client: &Client, id: &str, room: u64, command: &Value) -> Value {
    let direction = match command.get("direction").and_then(Value::as_str) {
        Some("FORWARD") => v1::HistoryDirection::Forward,
        _ => v1::HistoryDirection::Backward,
    };
    let anchor = u64_field(command, "anchor").unwrap_or(0);
    let limit = command.get("limit").and_then(Value::as_u64).and_then(|l| u32::try_from(l).ok()).unwrap_or(0);
    match client.history(RoomId(room), direction, Seq(anchor), limit).await {
        Ok(page) => json!({
            "type": "history",
            "id": id,
            "room_id": page.room_id.to_string(),
            "epoch": page.epoch.to_string(),
            "head_seq": page.head_seq.to_string(),
            "has_more": page.has_more,
            "events": page.events.iter().map(event_json).collect::<Vec<_>>(),
        }),
        Err(error) => error_line(id, &error),
    }
}

/// Reports what the client observes, until it stops or `stop` is
/// cancelled.
async fn pump(client: Arc<Client>, out: Out, config: Arc<Config>, stop: CancellationToken) {
    // The first connection was announced by the answer to connect.
    let mut first = true;
    // Reloads after resets; stopped with the pump.
    let mut reloads = JoinSet::new();
    while let Some(event) = tokio::select! {
        event = client.next_event() => event,
        () = stop.cancelled() => None,
    } {
        while reloads.try_join_next().is_some() {}
        match event {
            Event::Room(event) => {
                let mut line = event_json(&event);
                line["type"] = json!("event");
                out.emit(line).await;
            }
            Event::RoomReset { room, epoch, head_seq } => {
                out.emit(json!({
                    "type": "reset",
                    "room_id": room.0.to_string(),
                    "epoch": epoch.0.to_string(),
                    "head_seq": head_seq.0.to_string(),
                }))
                .await;
                // Reload the room, as RESUME-3 asks; the page is the
                // application's business, not a report.
                let client = client.clone();
                reloads.spawn(async move {
                    let anchor = Seq(head_seq.0 + 1);
                    if let Err(error) = client.history(room, v1::HistoryDirection::Backward, anchor, RELOAD_PAGE).await
                    {
                        eprintln!("confab-sdk-driver: reloading room {} failed: {error}", room.0);
                    }
                });
            }
            // A later connection: the client reconnected by itself.
            Event::Connected { session_id } if !std::mem::take(&mut first) => {
                out.emit(json!({"type": "connected", "session_id": session_id.to_string()})).await;
            }
            Event::Reconnecting { error, .. } => {
                out.emit(json!({"type": "closed", "code": close_code(&error), "reconnecting": true})).await;
            }
            Event::Disconnected { reason } => {
                out.emit(json!({"type": "closed", "code": close_code(&reason), "reconnecting": false})).await;
            }
            // The newest tokens, which may be newer than the event's.
            Event::TokensRefreshed(_) => store_tokens(&config.state_dir, &client),
            Event::ServerError(error) => eprintln!("confab-sdk-driver: the server reported {error}"),
            _ => {}
        }
    }
}

/// A room event as the contract prints it.
fn event_json(event: &v1::RoomEvent) -> Value {
    let (kind, text) = match &event.kind {
        Some(Kind::RoomCreated(_)) => ("room_created", ""),
        Some(Kind::MemberJoined(_)) => ("member_joined", ""),
        Some(Kind::MemberLeft(_)) => ("member_left", ""),
        Some(Kind::MemberInvited(_)) => ("member_invited", ""),
        Some(Kind::Message(message)) => ("message", message.text.as_str()),
        Some(Kind::MessageEdited(edited)) => ("message_edited", edited.text.as_str()),
        Some(Kind::MessageDeleted(_)) => ("message_deleted", ""),
        Some(Kind::ReactionAdded(reaction)) => ("reaction_added", reaction.emoji.as_str()),
        Some(Kind::ReactionRemoved(reaction)) => ("reaction_removed", reaction.emoji.as_str()),
        Some(Kind::RoomUpdated(_)) => ("room_updated", ""),
        None => ("unknown", ""),
    };
    json!({
        "room_id": event.room_id.to_string(),
        "epoch": event.epoch.to_string(),
        "seq": event.seq.to_string(),
        "sender": event.sender.as_ref().map(|s| s.name.as_str()).unwrap_or_default(),
        "kind": kind,
        "text": text,
    })
}

/// A command's failure as the contract prints it.
fn error_line(id: &str, error: &Error) -> Value {
    let mut line = json!({"type": "error", "id": id, "message": error.to_string()});
    if let Some(code) = error.server_code() {
        line["code"] = json!(code.as_str_name());
    }
    if let Error::Closed { code, .. } = error {
        line["close_code"] = json!(code);
    }
    line
}

fn close_code(error: &Error) -> Value {
    match error {
        Error::Closed { code, .. } => json!(code),
        _ => Value::Null,
    }
}

/// A 64-bit number given as a string of digits or a JSON number.
fn u64_field(command: &Value, field: &str) -> Option<u64> {
    match command.get(field)? {
        Value::String(digits) => digits.parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

const TOKENS_FILE: &str = "tokens.json";

fn load_tokens(dir: &Path) -> Option<Tokens> {
    let text = std::fs::read_to_string(dir.join(TOKENS_FILE)).ok()?;
    let stored: Value = serde_json::from_str(&text).ok()?;
    let access = stored.get("access_token")?.as_str()?;
    let refresh = stored.get("refresh_token").and_then(Value::as_str).map(str::to_owned);
    Some(Tokens::new(access, refresh))
}

/// Stores the client's current tokens, one writer at a time, so that an
/// older pair never replaces a newer one: a next run must never present a
/// rotated refresh token (AUTH-10).
fn store_tokens(dir: &Path, client: &Client) {
    static WRITING: SyncMutex<()> = SyncMutex::new(());
    let _writing = WRITING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(tokens) = client.tokens() {
        save_tokens(dir, &tokens);
    }
}

/// Writes the tokens (replacing the file whole, so a crash leaves the old
/// or the new pair, never half of one).
fn save_tokens(dir: &Path, tokens: &Tokens) {
    let stored = json!({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token});
    let temporary = dir.join(format!("{TOKENS_FILE}.new"));
    let written = std::fs::write(&temporary, stored.to_string())
        .and_then(|()| std::fs::rename(&temporary, dir.join(TOKENS_FILE)));
    if let Err(error) = written {
        eprintln!("confab-sdk-driver: cannot store the tokens in {}: {error}", dir.display());
    }
}
