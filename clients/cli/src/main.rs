//! `confab`: the command line client. Parses the command line (clap), sets
//! up the profile and output, and runs one command.

mod commands;
mod output;
mod profile;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use confab_sdk::{Encoding, Fingerprint, ServerUrl};

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
    /// List your rooms, or the public directory
    Rooms {
        /// List the public room directory
        #[arg(long)]
        directory: bool,
    },
    /// Create a room and join it
    Create {
        room: String,
        /// Members and invitees only
        #[arg(long)]
        private: bool,
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
        /// The message (several words are joined with spaces)
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
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
}

impl From<CliCommand> for Command {
    fn from(command: CliCommand) -> Self {
        match command {
            CliCommand::Register { username, password_stdin } => Command::Register { username, password_stdin },
            CliCommand::Login { username, password_stdin } => Command::Login { username, password_stdin },
            CliCommand::Guest { name } => Command::Guest { name },
            CliCommand::Logout => Command::Logout,
            CliCommand::Rooms { directory } => Command::Rooms { directory },
            CliCommand::Create { room, private } => Command::Create { room, private },
            CliCommand::Join { room } => Command::Join { room },
            CliCommand::Leave { room } => Command::Leave { room },
            CliCommand::Invite { room, user } => Command::Invite { room, username: user },
            CliCommand::Members { room } => Command::Members { room },
            CliCommand::Dm { user } => Command::Dm { username: user },
            CliCommand::Send { room, text } => Command::Send { room, text: text.join(" ") },
            CliCommand::History { room, limit, before, after } => Command::History { room, limit, before, after },
            CliCommand::Tail { room } => Command::Tail { room },
        }
    }
}

fn main() -> ExitCode {
    // Usage errors exit with 2 (clap), --help and --version with 0.
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(anyhow::anyhow!(error).context("cannot start the async runtime")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error),
    }
}

fn fail(error: anyhow::Error) -> ExitCode {
    eprintln!("confab: error: {error:#}");
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
            Command::Send { room, text } => assert_eq!((room.as_str(), text.as_str()), ("#general", "hello - world")),
            other => panic!("{other:?}"),
        }
        let error = Cli::try_parse_from(["confab", "history", "g", "--before", "3", "--after", "1"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let cli = Cli::try_parse_from(["confab", "rooms", "--json", "--server", "quic://h:1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.server.as_deref(), Some("quic://h:1"));
    }
}
