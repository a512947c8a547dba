//! What each CLI command does: connect (trusting the server's certificate
//! per the profile), authenticate with the stored tokens where needed, make
//! the request, print the result, and keep the profile up to date.

use std::{
    io::{BufRead as _, IsTerminal as _},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, anyhow, bail};
use confab_sdk::{
    Client, ClientOptions, Encoding, Error, Event, Fingerprint, ProfileUpdate, ReconnectPolicy, RoomId, RoomRef,
    RoomUpdate, SendOptions, Seq, ServerUrl, Trust, v1,
};

use crate::{
    output::{Output, shown},
    profile::{Profile, ProfileDir, StoredLogin},
};

/// A CLI command, parsed.
#[derive(Clone, Debug)]
pub enum Command {
    Register { username: String, password_stdin: bool },
    Login { username: String, password_stdin: bool },
    Guest { name: String },
    Logout,
    Rooms { directory: bool },
    // `room` is empty for an unnamed group; `members` (a group) only with `private`.
    Create { room: String, private: bool, topic: Option<String>, members: Vec<String> },
    Join { room: String },
    Leave { room: String },
    Invite { room: String, username: String },
    Members { room: String },
    Dm { username: String },
    Send { room: String, text: String, location: Option<v1::Location> },
    History { room: String, limit: Option<u32>, before: Option<u64>, after: Option<u64> },
    Tail { room: String },
    Edit { room: String, seq: u64, text: String },
    Delete { room: String, seq: u64 },
    React { room: String, seq: u64, emoji: String, remove: bool },
    Reply { room: String, seq: u64, text: String },
    Thread { room: String, root_seq: u64, text: Option<String>, limit: Option<u32> },
    Read { room: String, seq: Option<u64> },
    Upload { room: String, file: PathBuf, text: Option<String> },
    Download { file_id: String, output: Option<PathBuf> },
    Profile { user: Option<String> },
    // The avatar, when given, is a file to upload (an empty path removes it).
    ProfileSet { update: ProfileUpdate, avatar: Option<PathBuf> },
    SearchUsers { prefix: String, limit: Option<u32> },
    SearchRooms { query: String },
    Presence { away: bool, status: Option<String>, this_device: bool },
    Typing { room: String, stop: bool },
    // The avatar, when given, is an image to upload (an empty path removes it).
    RoomSet { room: String, update: RoomUpdate, avatar: Option<PathBuf> },
    Notify { room: String, level: v1::NotificationLevel },
}

/// Everything a command needs besides its arguments.
pub struct Context {
    pub server: String,
    pub profile_dir: ProfileDir,
    pub profile: Profile,
    pub output: Output,
    pub encoding: Encoding,
    /// `--fingerprint`: trust exactly this certificate (and remember it).
    pub fingerprint: Option<Fingerprint>,
    /// `--ca`: trust certificates issued by these CAs.
    pub ca: Option<PathBuf>,
    /// `--files-url`: the server's HTTP listener, for file transfers.
    pub files_url: Option<String>,
}

pub async fn run(ctx: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Register { username, password_stdin } => {
            let password = read_password(password_stdin, true)?;
            let client = connect(ctx, false, one_shot()).await?;
            let result = client.register(&username, &password).await?;
            remember_login(ctx, &client, &username, false)?;
            ctx.output.logged_in(&result);
            client.close().await;
        }
        Command::Login { username, password_stdin } => {
            let password = read_password(password_stdin, false)?;
            let client = connect(ctx, false, one_shot()).await?;
            let result = client.login(&username, &password).await?;
            remember_login(ctx, &client, &username, false)?;
            ctx.output.logged_in(&result);
            client.close().await;
        }
        Command::Guest { name } => {
            let client = connect(ctx, false, one_shot()).await?;
            let result = client.guest(&name).await?;
            let shown = result.user.as_ref().map_or(name.clone(), |u| u.name.clone());
            remember_login(ctx, &client, &shown, true)?;
            ctx.output.logged_in(&result);
            client.close().await;
        }
        Command::Logout => logout(ctx).await?,
        Command::Rooms { directory } => {
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            let scope = if directory { v1::RoomScope::Directory } else { v1::RoomScope::Mine };
            let rooms = client.list_rooms(scope).await?;
            ctx.output.rooms(&rooms);
            finish(ctx, client).await?;
        }
        Command::Create { room, private, topic, members } => {
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            let kind = if private { v1::RoomKind::Private } else { v1::RoomKind::Public };
            let name = room_name(&room);
            let info = if !members.is_empty() {
                client.create_group(&name, members, topic.as_deref().unwrap_or_default()).await?
            } else if let Some(topic) = topic {
                client.create_room_with_topic(&name, kind, &topic).await?
            } else {
                client.create_room(&name, kind).await?
            };
            ctx.output.room("created", &info);
            finish(ctx, client).await?;
        }
        Command::Join { room } => {
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            // A direct conversation is entered by opening it.
            let info = match room.strip_prefix('@') {
                Some(peer) => client.open_direct(peer).await?,
                None => client.join(room_ref(&room)).await?,
            };
            ctx.output.room("joined", &info);
            finish(ctx, client).await?;
        }
        Command::Leave { room } => {
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            let target = target(&client, &room).await?;
            client.leave(target.room).await?;
            ctx.output.done("left", || format!("Left {}.", shown(&target.name)));
            finish(ctx, client).await?;
        }
        Command::Invite { room, username } => {
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            let target = target(&client, &room).await?;
            client.invite(target.room, &username).await?;
            ctx.output.done("invited", || format!("Invited {username} to {}.", shown(&target.name)));
            finish(ctx, client).await?;
        }
        Command::Members { room } => {
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            let target = target(&client, &room).await?;
            let members = client.members(target.room).await?;
            ctx.output.members(&members);
            finish(ctx, client).await?;
        }
        Command::Dm { username } => {
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            let info = client.open_direct(&username).await?;
            ctx.output.room("opened", &info);
            finish(ctx, client).await?;
        }
        Command::Send { room, text, location } => {
            if text.trim().is_empty() && location.is_none() {
                bail!("nothing to send: give the message text after the room");
            }
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            let target = target(&client, &room).await?;
            let options = SendOptions { location, ..SendOptions::new() };
            let result = send_patiently(ctx, &client, &target.room, &text, options).await?;
            ctx.output.sent(&target.name, &result);
            finish(ctx, client).await?;
        }
        Command::History { room, limit, before, after } => {
            let client = connect_authenticated(ctx, false, one_shot()).await?;
            let target = target(&client, &room).await?;
            let (direction, anchor) = match (before, after) {
                (_, Some(after)) => (v1::HistoryDirection::Forward, after),
                (before, None) => (v1::HistoryDirection::Backward, before.unwrap_or(0)),
            };
            let limit = limit.unwrap_or_else(|| default_history_page(&client));
            let page = client.history(target.room, direction, Seq(anchor), limit).await?;
            for event in &page.events {
                ctx.output.event(&target.name, event);
            }
            if page.has_more && !ctx.output.json {
                let hint = match (direction, page.events.first(), page.events.last()) {
                    (v1::HistoryDirection::Forward, _, Some(last)) => format!("--after {}", last.seq),
                    (_, Some(first), _) => format!("--before {}", first.seq),
                    _ => String::new(),
                };
                ctx.output.notice(format!("more history: {hint}"));
            }
            finish(ctx, client).await?;
        }
        Command::Tail { room } => tail(ctx, &room).await?,
        other => crate::conversation::run(ctx, other).await?,
    }
    Ok(())
}

/// `#general`, `General` and `general` all name the room `general` (room
/// names are case-insensitive, and the server keeps them in lowercase).
pub(crate) fn room_name(room: &str) -> String {
    room.strip_prefix('#').unwrap_or(room).to_ascii_lowercase()
}

/// A room argument that is not `@user`: a room name, or the number of a
/// room (an unnamed group is named by its id; room names start with a
/// letter, so a number is never a name).
pub(crate) fn room_ref(room: &str) -> RoomRef {
    let name = room_name(room);
    match name.parse::<u64>() {
        Ok(id) if name.bytes().all(|b| b.is_ascii_digit()) => RoomRef::Id(RoomId(id)),
        _ => RoomRef::Name(name),
    }
}

/// A room as the command line names it.
pub(crate) struct Target {
    /// How to ask the server about it.
    pub room: RoomRef,
    /// How to name it back: `general`, or `@bob` for a direct conversation.
    pub name: String,
}

/// Resolves a room argument: a room name (`general`, `#general`), a room
/// id (`17`, for unnamed groups), or `@user` for the direct conversation
/// with that user (direct rooms have no name, so it is looked up among the
/// user's rooms).
pub(crate) async fn target(client: &Client, arg: &str) -> anyhow::Result<Target> {
    let Some(peer) = arg.strip_prefix('@') else {
        return Ok(Target { room: room_ref(arg), name: room_name(arg) });
    };
    let rooms = client.list_rooms(v1::RoomScope::Mine).await?;
    let direct = rooms.iter().find_map(|room| {
        let with = room.peer.as_ref().filter(|_| room.kind == v1::RoomKind::Direct as i32)?;
        with.name.eq_ignore_ascii_case(peer).then(|| (room.room_id, with.name.clone()))
    });
    match direct {
        Some((id, with)) => Ok(Target { room: RoomRef::Id(RoomId(id)), name: format!("@{with}") }),
        None => bail!("you have no direct conversation with {peer}; open one with `confab dm {peer}`"),
    }
}

/// `history` shows this many events unless told otherwise, or fewer when
/// the server's pages are smaller (asking for more is an error).
const DEFAULT_HISTORY_PAGE: u32 = 50;

pub(crate) fn default_history_page(client: &Client) -> u32 {
    let largest = client.welcome().and_then(|w| w.limits).map_or(0, |limits| limits.max_history_page);
    if largest == 0 { DEFAULT_HISTORY_PAGE } else { DEFAULT_HISTORY_PAGE.min(largest) }
}

/// How many times `confab send` sends a message refused for now (over the
/// server's rate limit, or the server busy) again before reporting the
/// refusal.
const SEND_RETRIES: u32 = 8;

/// Sends with one transaction id (a retry is never applied twice), waiting
/// out temporary refusals with a notice on standard error each time; when
/// the retries run out, the server's refusal is the error.
pub(crate) async fn send_patiently(
    ctx: &Context,
    client: &Client,
    room: &RoomRef,
    text: &str,
    options: SendOptions,
) -> anyhow::Result<v1::SendResult> {
    let options = options.txn_id(new_txn_id());
    let mut retry = 0;
    loop {
        let error = match client.send_with(room.clone(), text, options.clone()).await {
            Ok(result) => return Ok(result),
            Err(error) => error,
        };
        retry += 1;
        let Some(wait) = retry_wait(&error, retry) else { return Err(error.into()) };
        ctx.output.notice(format!(
            "the server refused the message for now ({error}); sending it again in {} ms (retry {retry} of {SEND_RETRIES})",
            wait.as_millis()
        ));
        tokio::time::sleep(wait).await;
    }
}

/// How long to wait before retry number `retry` after `error`, or `None` to
/// report it: only temporary refusals are retried (ERR-4), after the
/// server's `retry_after_ms` (LIMIT-3), else after a doubling backoff.
fn retry_wait(error: &Error, retry: u32) -> Option<Duration> {
    let Error::Server(refusal) = error else { return None };
    if !refusal.temporary || retry > SEND_RETRIES {
        return None;
    }
    if refusal.retry_after_ms > 0 {
        return Some(Duration::from_millis(refusal.retry_after_ms.into()));
    }
    Some(Duration::from_secs(1 << (retry - 1).min(5)))
}

/// A fresh transaction id, 32 hex digits: std's randomly keyed hasher
/// (keys from the operating system) stands in for a random number crate.
fn new_txn_id() -> String {
    use std::hash::{BuildHasher as _, RandomState};
    let half = || RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{:016x}{:016x}", half(), half())
}

/// Reconnects for a one-shot command: a few attempts, then give up.
pub(crate) fn one_shot() -> ReconnectPolicy {
    ReconnectPolicy { max_attempts: Some(6), ..ReconnectPolicy::default() }
}

/// The password: from a hidden prompt on a terminal, else one line of
/// standard input (always with `--password-stdin`).
fn read_password(from_stdin: bool, confirm: bool) -> anyhow::Result<String> {
    let password = if !from_stdin && std::io::stdin().is_terminal() {
        let password = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        if confirm {
            let again = rpassword::prompt_password("Password (again): ").context("cannot read the password")?;
            if again != password {
                bail!("the passwords do not match");
            }
        }
        password
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// Which certificates to trust for `url`, and whether to remember the one
/// seen: `--ca`, then `--fingerprint`, then the profile's fingerprint for
/// the host, then trust on first use.
fn trust_for(ctx: &Context, url: &ServerUrl) -> anyhow::Result<(Trust, bool)> {
    if !url.scheme().uses_tls() {
        return Ok((Trust::WebPki, false));
    }
    if let Some(ca) = &ctx.ca {
        return Ok((Trust::CaFile(ca.clone()), false));
    }
    if let Some(fingerprint) = ctx.fingerprint {
        return Ok((Trust::Fingerprint(fingerprint), true));
    }
    match ctx.profile.known_fingerprints.get(&url.host_port()) {
        Some(known) => {
            let known: Fingerprint = known.parse().with_context(|| {
                format!(
                    "the fingerprint stored for {} in {} is damaged",
                    url.host_port(),
                    ctx.profile_dir.file().display()
                )
            })?;
            Ok((Trust::Fingerprint(known), false))
        }
        None => Ok((Trust::TrustOnFirstUse, true)),
    }
}

/// Connects to the server, handling certificate trust.
async fn connect(ctx: &mut Context, events: bool, reconnect: ReconnectPolicy) -> anyhow::Result<Client> {
    let url = ServerUrl::parse(&ctx.server)?;
    let (trust, remember) = trust_for(ctx, &url)?;
    let options = ClientOptions {
        encoding: ctx.encoding,
        trust,
        client_name: concat!("confab-cli/", env!("CARGO_PKG_VERSION")).into(),
        device_name: "confab command line".into(),
        receive_events: events,
        reconnect,
        // `confab send` waits out temporary refusals itself, saying so.
        send_retries: 0,
        files_url: ctx.files_url.clone(),
        ..ClientOptions::default()
    };
    let client = match Client::connect(&ctx.server, options).await {
        Ok(client) => client,
        Err(Error::FingerprintMismatch { expected, presented }) if ctx.fingerprint.is_some() => {
            bail!(
                "the certificate of {} has fingerprint {presented}, not {expected} as given with --fingerprint",
                url.host_port()
            );
        }
        Err(Error::FingerprintMismatch { expected, presented }) => {
            bail!(
                "the certificate of {host} has changed: it was {expected}, it is now {presented}. \
                 This happens when the server got a new certificate, or when someone is intercepting \
                 the connection. If you trust the new certificate, run again with --fingerprint {presented} \
                 (or remove \"{host}\" from known_fingerprints in {file}).",
                host = url.host_port(),
                file = ctx.profile_dir.file().display(),
            );
        }
        // Transport errors name the address already.
        Err(error @ Error::Transport(_)) => return Err(error.into()),
        Err(error) => return Err(anyhow!(error).context(format!("cannot connect to {}", ctx.server))),
    };
    if remember && let Some(seen) = client.server_fingerprint() {
        let key = url.host_port();
        let seen_hex = seen.to_string();
        if ctx.profile.known_fingerprints.get(&key) != Some(&seen_hex) {
            if ctx.fingerprint.is_none() {
                ctx.output.notice(format!(
                    "trusting {key} on first use; its certificate fingerprint (SHA-256) is {seen_hex} \
                     (compare it with the one confabd printed at start)"
                ));
            }
            ctx.profile.known_fingerprints.insert(key, seen_hex);
            ctx.profile_dir.save(&ctx.profile)?;
        }
    }
    Ok(client)
}

/// Connects and authenticates with the stored login, saving renewed tokens.
pub(crate) async fn connect_authenticated(
    ctx: &mut Context,
    events: bool,
    reconnect: ReconnectPolicy,
) -> anyhow::Result<Client> {
    let Some(login) = ctx.profile.login_for(&ctx.server).cloned() else {
        bail!(
            "not logged in to {}; run `confab login USER`, `confab register USER` or `confab guest NAME`",
            ctx.server
        );
    };
    let client = connect(ctx, events, reconnect).await?;
    if let Err(error) = client.authenticate_with(login.tokens()).await {
        if matches!(
            error.server_code(),
            Some(v1::ErrorCode::TokenExpired | v1::ErrorCode::TokenInvalid | v1::ErrorCode::TokenReused)
        ) {
            ctx.profile.login = None;
            ctx.profile_dir.save(&ctx.profile)?;
            bail!(
                "{error}\nthe stored session for {} has ended; log in again with `confab login {}`",
                login.username,
                login.username
            );
        }
        return Err(error.into());
    }
    save_tokens(ctx, &client)?;
    Ok(client)
}

/// Stores the client's tokens if they changed (a refresh rotates them).
pub(crate) fn save_tokens(ctx: &mut Context, client: &Client) -> anyhow::Result<()> {
    let Some(tokens) = client.tokens() else { return Ok(()) };
    let server = ctx.server.clone();
    if let Some(login) = ctx.profile.login.as_mut().filter(|login| login.server == server)
        && login.tokens() != tokens
    {
        login.set_tokens(&tokens);
        ctx.profile_dir.save(&ctx.profile)?;
    }
    Ok(())
}

/// Saves the tokens one last time and closes politely.
pub(crate) async fn finish(ctx: &mut Context, client: Client) -> anyhow::Result<()> {
    save_tokens(ctx, &client)?;
    client.close().await;
    Ok(())
}

fn remember_login(ctx: &mut Context, client: &Client, username: &str, guest: bool) -> anyhow::Result<()> {
    let tokens = client.tokens().context("the server logged us in without tokens")?;
    ctx.profile.login = Some(StoredLogin::new(&ctx.server, username, guest, &tokens));
    ctx.profile.server = Some(ctx.server.clone());
    ctx.profile_dir.save(&ctx.profile)
}

async fn logout(ctx: &mut Context) -> anyhow::Result<()> {
    let Some(login) = ctx.profile.login_for(&ctx.server).cloned() else {
        bail!("not logged in to {}", ctx.server);
    };
    let outcome = async {
        let client = connect_authenticated(ctx, false, one_shot()).await?;
        client.logout().await?;
        client.close().await;
        anyhow::Ok(())
    }
    .await;
    if ctx.profile.login.is_some() {
        ctx.profile.login = None;
        ctx.profile_dir.save(&ctx.profile)?;
    }
    match outcome {
        Ok(()) => ctx.output.done("logged_out", || format!("Logged out {}.", login.username)),
        Err(error) => {
            ctx.output
                .notice(format!("the server did not confirm the logout ({error:#}); the stored session was removed"));
            ctx.output.done("logged_out", || format!("Logged out {} locally.", login.username));
        }
    }
    Ok(())
}

/// Prints the room's live events until Ctrl-C or the client stops for good.
async fn tail(ctx: &mut Context, arg: &str) -> anyhow::Result<()> {
    let client = connect_authenticated(ctx, true, ReconnectPolicy::default()).await?;
    let target = target(&client, arg).await?;
    let name = target.name.as_str();
    let rooms = client.list_rooms(v1::RoomScope::Mine).await?;
    let found = rooms.iter().find(|r| match &target.room {
        RoomRef::Id(id) => r.room_id == id.0,
        RoomRef::Name(wanted) => r.name.eq_ignore_ascii_case(wanted),
    });
    let Some(room) = found.filter(|r| r.membership == v1::Membership::Joined as i32) else {
        bail!("you are not in {}; join it first with `confab join {name}`", shown(name));
    };
    let room_id = RoomId(room.room_id);
    if !ctx.output.json {
        ctx.output.notice(format!("showing new events in {}; Ctrl-C to stop", shown(name)));
    }
    let mut last: Option<(u64, u64)> = None;
    let mut reconnecting = false;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let event = tokio::select! {
            _ = &mut interrupted => break,
            event = client.next_event() => event,
        };
        let Some(event) = event else {
            return Err(client.stopped().unwrap_or(Error::ClientClosed).into());
        };
        match event {
            Event::Room(event) if event.room_id == room_id.0 => {
                ctx.output.event(name, &event);
                last = Some((event.epoch, event.seq));
            }
            Event::Typing(typing) if typing.room_id == room_id.0 && !ctx.output.json => {
                let who = typing.user.as_ref().map(|u| crate::output::terminal_safe(&u.name)).unwrap_or_default();
                let doing = if typing.typing { "is typing" } else { "stopped typing" };
                ctx.output.notice(format!("{who} {doing} in {}", shown(name)));
            }
            Event::RoomReset { room, epoch, head_seq } if room == room_id => {
                catch_up(ctx, &client, name, room_id, last, epoch.0, head_seq).await?;
                last = Some((epoch.0, head_seq.0));
            }
            Event::Reconnecting { attempt, delay, error } => {
                reconnecting = true;
                let what = if attempt == 1 { "connection lost" } else { "reconnecting failed" };
                ctx.output
                    .notice(format!("{what} ({error}); retrying in {} ms (attempt {attempt})", delay.as_millis()));
            }
            Event::Connected { .. } if reconnecting => {
                reconnecting = false;
                ctx.output.notice("reconnected");
            }
            Event::TokensRefreshed(_) => save_tokens(ctx, &client)?,
            // A final close is reported as the error that follows.
            Event::ServerClosed { code, reason } if v1::CloseCode::is_reconnect_code(code) => {
                ctx.output.notice(format!("the server closed the connection: {reason}"))
            }
            Event::Disconnected { reason } => return Err(reason.into()),
            _ => {}
        }
    }
    finish(ctx, client).await
}

/// After a reset, prints what was missed (when the log's epoch is the same
/// and the gap is modest); otherwise says that events were skipped.
async fn catch_up(
    ctx: &Context,
    client: &Client,
    name: &str,
    room_id: RoomId,
    last: Option<(u64, u64)>,
    epoch: u64,
    head: Seq,
) -> anyhow::Result<()> {
    const MAX_PAGES: usize = 20;
    let Some((last_epoch, mut seen)) = last.filter(|&(e, _)| e == epoch) else {
        ctx.output.notice(format!("the history of {} was reset; earlier events are not shown", shown(name)));
        return Ok(());
    };
    for _ in 0..MAX_PAGES {
        if seen >= head.0 {
            return Ok(());
        }
        let page = client.history(room_id, v1::HistoryDirection::Forward, Seq(seen), 0).await?;
        if page.epoch != last_epoch {
            break;
        }
        for event in &page.events {
            if event.seq > seen && event.seq <= head.0 {
                ctx.output.event(name, event);
                seen = event.seq;
            }
        }
        if !page.has_more || page.events.is_empty() {
            return Ok(());
        }
    }
    ctx.output.notice(format!("some events of {} were missed; see `confab history {name}`", shown(name)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_wait_out_temporary_refusals_a_bounded_number_of_times() {
        let limited = Error::Server(v1::Error::temporary(v1::ErrorCode::RateLimited, "slow down", 700));
        assert_eq!(retry_wait(&limited, 1), Some(Duration::from_millis(700)));
        assert_eq!(retry_wait(&limited, SEND_RETRIES), Some(Duration::from_millis(700)));
        assert_eq!(retry_wait(&limited, SEND_RETRIES + 1), None, "the refusal is reported");
        let busy = Error::Server(v1::Error::temporary(v1::ErrorCode::Unavailable, "busy", 0));
        assert_eq!(retry_wait(&busy, 1), Some(Duration::from_secs(1)));
        assert_eq!(retry_wait(&busy, 3), Some(Duration::from_secs(4)));
        let final_refusal = Error::Server(v1::Error::new(v1::ErrorCode::NotAMember, "no"));
        assert_eq!(retry_wait(&final_refusal, 1), None);
        assert_eq!(retry_wait(&Error::Timeout, 1), None);
        assert_ne!(new_txn_id(), new_txn_id());
        assert_eq!(new_txn_id().len(), 32);
    }

    #[test]
    fn room_arguments_name_rooms_case_insensitively() {
        assert_eq!(room_name("#General"), "general");
        assert_eq!(room_name("ops-2"), "ops-2");
        assert_eq!(room_ref("#17"), RoomRef::Id(RoomId(17)));
        assert_eq!(room_ref("General"), RoomRef::Name("general".into()));
        assert_eq!(room_ref("+17"), RoomRef::Name("+17".into()));
    }
}
