//! `confab`: the command line client. Parses the command line (clap), sets
//! up the profile and output, and runs one command.

mod commands;
mod conversation;
mod output;
mod profile;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand, ValueEnum};
use confab_sdk::{Encoding, Fingerprint, ProfileUpdate, RoomUpdate, ServerUrl, v1};

use crate::{
    commands::{Command, Context},
    output::Output,
    profile::ProfileDir,
};

/// The server used when nothing else names one.
const DEFAULT_SERVER: &str = "ws://127.0.0.1:7080";

/// confab: chat from the command line.
#[derive(Debug, Parser)]
#[command(name = "confab", version, about, long_about = None)]
struct Cli {
    /// Server URL: quic://HOST:PORT, ws://HOST:PORT or wss://HOST:PORT
    /// [default: the profile's server, else ws://127.0.0.1:7080]
    #[arg(long, env = "CONFAB_SERVER", global = true)]
    server: Option<String>,

    /// Profile directory [default: $XDG_CONFIG_HOME/confab or ~/.config/confab]
    #[arg(long, env = "CONFAB_PROFILE", global = true, value_name = "DIR")]
    profile: Option<PathBuf>,

    /// Print one JSON object per line
    #[arg(long, global = true)]
    json: bool,

    /// WebSocket encoding (QUIC always uses proto)
    #[arg(long, value_enum, default_value_t = EncodingArg::Proto, global = true)]
    encoding: EncodingArg,

    /// Trust the server certificate with this SHA-256 fingerprint (hex,
    /// colons allowed), and remember it
    #[arg(long, global = true, value_name = "HEX")]
    fingerprint: Option<String>,

    /// Trust server certificates issued by the CAs in this PEM file
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,

    /// Where file downloads (and uploads over WebSocket) go: the server's
    /// HTTP listener, such as http://HOST:7080 [default: the host and port
    /// of a ws:// or wss:// server; for quic://, the listener the server
    /// names when it connects]
    #[arg(long, env = "CONFAB_FILES_URL", global = true, value_name = "URL")]
    files_url: Option<String>,

    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EncodingArg {
    /// Binary protobuf frames (confab.v1.proto)
    Proto,
    /// Canonical protobuf JSON frames (confab.v1.json)
    Json,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Create an account and log in
    Register {
        username: String,
        /// Read the password from standard input instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log in with a password
    Login {
        username: String,
        /// Read the password from standard input instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// Enter as a guest under a display name
    Guest { name: String },
    /// End the stored session
    Logout,
    /// List your rooms (with unread messages, mentions and topic), or the
    /// public directory
    Rooms {
        /// List the public room directory
        #[arg(long)]
        directory: bool,
    },
    /// Create a room and join it, or (with --member) a group of people
    Create {
        /// The room's name (optional for a group: an unnamed group is named
        /// by its id, as `rooms` shows it)
        #[arg(required_unless_present = "members")]
        room: Option<String>,
        /// Members and invitees only
        #[arg(long)]
        private: bool,
        /// What the room is about (at most 512 bytes)
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        topic: Option<String>,
        /// Make a group: join this registered user to the private room at
        /// once, without an invitation (repeat it, or separate names with
        /// commas; at most 50)
        #[arg(long = "member", value_name = "USER", requires = "private", value_delimiter = ',')]
        members: Vec<String>,
    },
    /// Join a room
    Join {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
    },
    /// Leave a room
    Leave {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
    },
    /// Invite a user to a room
    Invite {
        /// The room: NAME or #NAME
        room: String,
        user: String,
    },
    /// List a room's members
    Members {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
    },
    /// Open the direct conversation with a user; other commands name it @USER
    Dm { user: String },
    /// Send a message
    Send {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// Share a place: latitude and longitude in degrees (before the text)
        #[arg(long, value_name = "LAT,LON", value_parser = parse_location, allow_hyphen_values = true)]
        location: Option<(f64, f64)>,
        /// The place's name, with --location
        #[arg(long, value_name = "TEXT", requires = "location")]
        label: Option<String>,
        /// The message (several words are joined with spaces; optional with
        /// --location)
        #[arg(
            required_unless_present = "location",
            num_args = 1..,
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        text: Vec<String>,
    },
    /// Show a page of a room's history
    History {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// Most events to show [default: 50, or the server's largest page
        /// if that is smaller; 0: the server's largest page]
        #[arg(long)]
        limit: Option<u32>,
        /// Events before this sequence number
        #[arg(long, value_name = "SEQ", conflicts_with = "after")]
        before: Option<u64>,
        /// Events after this sequence number
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
    },
    /// Print a room's new events as they happen, until Ctrl-C
    Tail {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
    },
    /// Replace the text of one of your messages
    Edit {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// The message's sequence number (shown as #SEQ by `history`)
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        seq: u64,
        /// The new text (several words are joined with spaces)
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        text: Vec<String>,
    },
    /// Delete a message: yours, or anyone's as a moderator
    Delete {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// The message's sequence number
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        seq: u64,
    },
    /// React to a message with an emoji (or take your reaction back)
    React {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// The message's sequence number
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        seq: u64,
        /// One emoji, such as 👍
        emoji: String,
        /// Take the reaction back
        #[arg(long)]
        remove: bool,
    },
    /// Answer a message (the answer quotes it)
    Reply {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// The sequence number of the message to answer
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        seq: u64,
        /// The answer (several words are joined with spaces)
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        text: Vec<String>,
    },
    /// Show the thread under a message, or post TEXT into it
    Thread {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// The sequence number of the thread's first message (its root)
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        root_seq: u64,
        /// Post this into the thread instead of showing it (several words
        /// are joined with spaces)
        #[arg(num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
        text: Vec<String>,
        /// Most thread messages to show [default: 50, or the server's
        /// largest page if that is smaller]
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Mark a room read, up to a message or (by default) all of it
    Read {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// Read up to this sequence number [default: the newest event]
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        seq: Option<u64>,
    },
    /// Upload a file and send a message carrying it
    Upload {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        file: PathBuf,
        /// The message's text [default: none]
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        text: Option<String>,
    },
    /// Download a file by its id
    Download {
        /// The file's id (32 hex digits, as `history` shows it)
        file_id: String,
        /// Where to write it; `-` for standard output [default: the file's
        /// name, in the current directory]
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Show a profile (yours by default), or change yours with `profile set`
    #[command(args_conflicts_with_subcommands = true)]
    Profile {
        /// Whose profile [default: yours]
        user: Option<String>,
        #[command(subcommand)]
        set: Option<ProfileCommand>,
    },
    /// Search users by name, or public rooms by name and topic
    Search {
        #[command(subcommand)]
        what: SearchCommand,
    },
    /// Say whether you are here (online) or away, and set your status.
    /// Others see you online or away while one of your clients follows the
    /// rooms (`tail`, an interactive client), offline with a last-seen time
    /// otherwise; your choice and status text are kept.
    Presence {
        #[arg(value_enum)]
        state: PresenceArg,
        /// Your status text (at most 140 bytes; "" clears it)
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        status: Option<String>,
        /// Away (or back) on this device only; you show as away once all
        /// your devices are
        #[arg(long)]
        this_device: bool,
    },
    /// Change a room's settings: `room set`
    Room {
        #[command(subcommand)]
        what: RoomCommand,
    },
    /// Choose which messages of a room notify you
    Notify {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        #[arg(value_enum)]
        level: NotifyArg,
    },
    /// Tell a room you are typing (it lasts a few seconds), or stop
    Typing {
        /// The room: NAME or #NAME, or @USER for the direct conversation with USER
        room: String,
        /// Say you stopped typing
        #[arg(long)]
        stop: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Change your profile: only what you give changes
    Set(ProfileSetArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
struct ProfileSetArgs {
    /// The name shown instead of your user name (at most 64 bytes; "" removes it)
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    display_name: Option<String>,
    /// Your status text (at most 140 bytes; "" clears it)
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    status: Option<String>,
    /// An image to upload as your avatar ("" removes it)
    #[arg(long, value_name = "FILE")]
    avatar: Option<PathBuf>,
    /// Whether others see how far you have read
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    share_receipts: Option<bool>,
}

#[derive(Debug, Subcommand)]
enum RoomCommand {
    /// Change a room's settings (only what you give changes) and show the
    /// room: moderators may change the topic, admins and the owner the rest
    Set(RoomSetArgs),
}

#[derive(Debug, Args)]
struct RoomSetArgs {
    /// The room: NAME or #NAME, or @USER for the direct conversation with USER
    room: String,
    #[command(flatten)]
    changes: RoomChanges,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
struct RoomChanges {
    /// Rename the room
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// What the room is about (at most 512 bytes; "" clears it)
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    topic: Option<String>,
    /// An image to upload as the room's avatar
    #[arg(long, value_name = "FILE", conflicts_with = "no_avatar")]
    avatar: Option<PathBuf>,
    /// Remove the room's avatar
    #[arg(long)]
    no_avatar: bool,
    /// Make the room read-only (it can still be read, left and unarchived)
    #[arg(long, conflicts_with = "unarchive")]
    archive: bool,
    /// Make an archived room writable again
    #[arg(long)]
    unarchive: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum NotifyArg {
    /// Every message by someone else
    All,
    /// Only messages that mention you (or @room)
    Mentions,
    /// Nothing (unread counts still move)
    None,
    /// The server's default: all in direct conversations and groups,
    /// mentions elsewhere
    Default,
}

#[derive(Debug, Subcommand)]
enum SearchCommand {
    /// Registered users whose name starts with PREFIX
    Users {
        prefix: String,
        /// Most users to list (1 to 50) [default: 20]
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Public rooms whose name or topic contains QUERY
    Rooms { query: String },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PresenceArg {
    Online,
    Away,
}

impl From<CliCommand> for Command {
    fn from(command: CliCommand) -> Self {
        match command {
            CliCommand::Register { username, password_stdin } => Command::Register { username, password_stdin },
            CliCommand::Login { username, password_stdin } => Command::Login { username, password_stdin },
            CliCommand::Guest { name } => Command::Guest { name },
            CliCommand::Logout => Command::Logout,
            CliCommand::Rooms { directory } => Command::Rooms { directory },
            CliCommand::Create { room, private, topic, members } => {
                Command::Create { room: room.unwrap_or_default(), private, topic, members }
            }
            CliCommand::Join { room } => Command::Join { room },
            CliCommand::Leave { room } => Command::Leave { room },
            CliCommand::Invite { room, user } => Command::Invite { room, username: user },
            CliCommand::Members { room } => Command::Members { room },
            CliCommand::Dm { user } => Command::Dm { username: user },
            CliCommand::Send { room, location, label, text } => {
                let location = location.map(|(latitude, longitude)| v1::Location {
                    latitude,
                    longitude,
                    label: label.unwrap_or_default(),
                });
                Command::Send { room, text: text.join(" "), location }
            }
            CliCommand::History { room, limit, before, after } => Command::History { room, limit, before, after },
            CliCommand::Tail { room } => Command::Tail { room },
            CliCommand::Edit { room, seq, text } => Command::Edit { room, seq, text: text.join(" ") },
            CliCommand::Delete { room, seq } => Command::Delete { room, seq },
            CliCommand::React { room, seq, emoji, remove } => Command::React { room, seq, emoji, remove },
            CliCommand::Reply { room, seq, text } => Command::Reply { room, seq, text: text.join(" ") },
            CliCommand::Thread { room, root_seq, text, limit } => {
                let text = (!text.is_empty()).then(|| text.join(" "));
                Command::Thread { room, root_seq, text, limit }
            }
            CliCommand::Read { room, seq } => Command::Read { room, seq },
            CliCommand::Upload { room, file, text } => Command::Upload { room, file, text },
            CliCommand::Download { file_id, output } => Command::Download { file_id, output },
            CliCommand::Profile { user, set: None } => Command::Profile { user },
            CliCommand::Profile { set: Some(ProfileCommand::Set(args)), .. } => Command::ProfileSet {
                update: ProfileUpdate {
                    display_name: args.display_name,
                    status_text: args.status,
                    share_receipts: args.share_receipts,
                    avatar_file_id: None,
                },
                avatar: args.avatar,
            },
            CliCommand::Search { what: SearchCommand::Users { prefix, limit } } => {
                Command::SearchUsers { prefix, limit }
            }
            CliCommand::Search { what: SearchCommand::Rooms { query } } => Command::SearchRooms { query },
            CliCommand::Presence { state, status, this_device } => {
                Command::Presence { away: matches!(state, PresenceArg::Away), status, this_device }
            }
            CliCommand::Typing { room, stop } => Command::Typing { room, stop },
            CliCommand::Room { what: RoomCommand::Set(RoomSetArgs { room, changes }) } => {
                let archived = match (changes.archive, changes.unarchive) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                };
                Command::RoomSet {
                    room,
                    update: RoomUpdate {
                        name: changes.name,
                        topic: changes.topic,
                        avatar_file_id: changes.no_avatar.then(String::new),
                        archived,
                    },
                    avatar: changes.avatar,
                }
            }
            CliCommand::Notify { room, level } => Command::Notify {
                room,
                level: match level {
                    NotifyArg::All => v1::NotificationLevel::NotifyAll,
                    NotifyArg::Mentions => v1::NotificationLevel::NotifyMentions,
                    NotifyArg::None => v1::NotificationLevel::NotifyNone,
                    NotifyArg::Default => v1::NotificationLevel::NotifyDefault,
                },
            },
        }
    }
}

/// `48.85,2.35` (degrees; the server checks the ranges).
fn parse_location(text: &str) -> Result<(f64, f64), String> {
    let (latitude, longitude) = text.split_once(',').ok_or("expected LAT,LON, such as 48.85,2.35")?;
    let number = |s: &str| s.trim().parse::<f64>().map_err(|_| format!("{:?} is not a number of degrees", s.trim()));
    Ok((number(latitude)?, number(longitude)?))
}

fn main() -> ExitCode {
    // Usage errors exit with 2 (clap), --help and --version with 0.
    let cli = Cli::parse();
    let json = cli.json;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(anyhow::anyhow!(error).context("cannot start the async runtime"), json),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error, json),
    }
}

/// Reports `error` on stderr: a line for people, or with `--json` one
/// object, `{"error": CODE, "message": ...}`, where CODE is the server's
/// error code name when the server refused (else null).
fn fail(error: anyhow::Error, json: bool) -> ExitCode {
    if json {
        let code = error.chain().find_map(|cause| match cause.downcast_ref::<confab_sdk::Error>() {
            Some(confab_sdk::Error::Server(refusal)) => {
                Some(confab_sdk::v1::ErrorCode::try_from(refusal.code).map_or("UNKNOWN", |c| c.as_str_name()))
            }
            _ => None,
        });
        eprintln!("{}", serde_json::json!({ "error": code, "message": format!("{error:#}") }));
    } else {
        eprintln!("confab: error: {error:#}");
    }
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let profile_dir = ProfileDir::locate(cli.profile)?;
    let profile = profile_dir.load()?;
    let fingerprint = cli.fingerprint.as_deref().map(str::parse::<Fingerprint>).transpose()?;
    let server = cli.server.or_else(|| profile.server.clone()).unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    // Canonical form, so `ws://h:1` and `ws://h:1/ws` share a stored login.
    let server = ServerUrl::parse(&server)?.to_string();
    let mut ctx = Context {
        server,
        profile_dir,
        profile,
        output: Output { json: cli.json },
        encoding: match cli.encoding {
            EncodingArg::Proto => Encoding::Proto,
            EncodingArg::Json => Encoding::Json,
        },
        fingerprint,
        ca: cli.ca,
        files_url: cli.files_url,
    };
    commands::run(&mut ctx, cli.command.into()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn send_joins_words_and_history_refuses_both_anchors() {
        let cli = Cli::try_parse_from(["confab", "send", "#general", "hello", "-", "world"]).unwrap();
        match Command::from(cli.command) {
            Command::Send { room, text, location: None } => {
                assert_eq!((room.as_str(), text.as_str()), ("#general", "hello - world"))
            }
            other => panic!("{other:?}"),
        }
        let error = Cli::try_parse_from(["confab", "history", "g", "--before", "3", "--after", "1"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let cli = Cli::try_parse_from(["confab", "rooms", "--json", "--server", "quic://h:1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.server.as_deref(), Some("quic://h:1"));
    }

    fn parse(args: &[&str]) -> Command {
        Command::from(Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}")).command)
    }

    #[test]
    fn conversation_commands_parse() {
        match parse(&["confab", "thread", "g", "4"]) {
            Command::Thread { root_seq: 4, text: None, .. } => {}
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "thread", "g", "4", "me", "too"]) {
            Command::Thread { text: Some(text), .. } => assert_eq!(text, "me too"),
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "react", "g", "3", "👍", "--remove"]) {
            Command::React { seq: 3, emoji, remove: true, .. } => assert_eq!(emoji, "👍"),
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "profile"]) {
            Command::Profile { user: None } => {}
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "profile", "bob"]) {
            Command::Profile { user: Some(user) } => assert_eq!(user, "bob"),
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "profile", "set", "--status", "-", "--share-receipts", "false"]) {
            Command::ProfileSet { update, avatar: None } => {
                assert_eq!(
                    (update.status_text.as_deref(), update.share_receipts, update.display_name),
                    (Some("-"), Some(false), None)
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["confab", "profile", "set"]).is_err(), "something to set");
        match parse(&["confab", "presence", "away", "--this-device"]) {
            Command::Presence { away: true, this_device: true, status: None } => {}
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "search", "rooms", "rust"]) {
            Command::SearchRooms { query } => assert_eq!(query, "rust"),
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "read", "g"]) {
            Command::Read { seq: None, .. } => {}
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["confab", "presence", "busy"]).is_err());
        match parse(&["confab", "send", "g", "--location", "-33.9,151.2", "--label", "Sydney"]) {
            Command::Send { text, location: Some(location), .. } => {
                assert_eq!(text, "");
                assert_eq!((location.latitude, location.longitude, location.label.as_str()), (-33.9, 151.2, "Sydney"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["confab", "send", "g", "--location", "north"]).is_err());
        assert!(
            Cli::try_parse_from(["confab", "send", "g", "--label", "x", "hi"]).is_err(),
            "--label needs --location"
        );
    }

    #[test]
    fn room_settings_groups_and_notifications_parse() {
        match parse(&["confab", "room", "set", "#g", "--topic", "-news-", "--archive"]) {
            Command::RoomSet { room, update, avatar: None } => {
                assert_eq!(room, "#g");
                assert_eq!(
                    update,
                    RoomUpdate { topic: Some("-news-".into()), archived: Some(true), ..RoomUpdate::default() }
                );
            }
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "room", "set", "g", "--unarchive", "--no-avatar", "--name", "h"]) {
            Command::RoomSet { update, avatar: None, .. } => assert_eq!(
                update,
                RoomUpdate {
                    name: Some("h".into()),
                    avatar_file_id: Some(String::new()),
                    archived: Some(false),
                    ..RoomUpdate::default()
                }
            ),
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "room", "set", "g", "--avatar", "room.png"]) {
            Command::RoomSet { update, avatar: Some(path), .. } => {
                assert_eq!((update, path), (RoomUpdate::default(), PathBuf::from("room.png")))
            }
            other => panic!("{other:?}"),
        }
        for wrong in [
            &["confab", "room", "set", "g"][..],
            &["confab", "room", "set", "g", "--archive", "--unarchive"],
            &["confab", "room", "set", "g", "--avatar", "a.png", "--no-avatar"],
            &["confab", "room", "set", "--topic", "t"],
        ] {
            assert!(Cli::try_parse_from(wrong).is_err(), "{wrong:?}");
        }

        match parse(&["confab", "create", "team", "--private", "--member", "bob", "--member", "carol,dave"]) {
            Command::Create { room, private: true, members, topic: None } => {
                assert_eq!((room.as_str(), members), ("team", vec!["bob".into(), "carol".into(), "dave".into()]))
            }
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "create", "--private", "--member", "bob"]) {
            Command::Create { room, members, .. } => assert_eq!((room.as_str(), members.len()), ("", 1)),
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "create", "news", "--topic", "today"]) {
            Command::Create { room, private: false, members, topic: Some(topic) } => {
                assert_eq!((room.as_str(), members.len(), topic.as_str()), ("news", 0, "today"))
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["confab", "create", "team", "--member", "bob"]).is_err(), "groups are private");
        assert!(Cli::try_parse_from(["confab", "create", "--private"]).is_err(), "a name or members");

        match parse(&["confab", "notify", "g", "none"]) {
            Command::Notify { room, level: v1::NotificationLevel::NotifyNone } => assert_eq!(room, "g"),
            other => panic!("{other:?}"),
        }
        match parse(&["confab", "notify", "@bob", "default"]) {
            Command::Notify { level: v1::NotificationLevel::NotifyDefault, .. } => {}
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["confab", "notify", "g", "loud"]).is_err());
    }
}
