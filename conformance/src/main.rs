//! `confab-conformance`: checks a confab protocol v1 implementation against
//! `PROTOCOL.md` and writes a report. See conformance/README.md.

use std::{io::Write as _, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use confab_conformance::{
    case::Case,
    client,
    outcome::{Grade, Summary},
    report::{self, Report},
    server::{self, Target},
    wire::{Transport, Wire},
};
use confab_sdk::{ClientOptions, Encoding, Fingerprint, Scheme, ServerUrl, Trust, raw::RawConnection};

/// Check a confab protocol v1 server or client against PROTOCOL.md.
#[derive(Debug, Parser)]
#[command(name = "confab-conformance", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Play clients against a server and check every requirement
    Server(ServerArgs),
    /// Play a scripted, adversarial server against a client, driven
    /// through the driver contract (conformance/driver-contract.md)
    Client(ClientArgs),
    /// List the cases and the requirements they check
    List,
}

/// What both modes take.
#[derive(Debug, clap::Args)]
struct Common {
    /// Test only this transport [default: both, or those with a --url]
    #[arg(long, value_enum)]
    transport: Option<Transport>,

    /// Test only this WebSocket encoding [default: both]
    #[arg(long, value_enum)]
    encoding: Option<EncodingArg>,

    /// Run only the cases whose id starts with this (repeatable), e.g.
    /// `auth/` or `resume/`
    #[arg(long = "case", value_name = "PREFIX")]
    cases: Vec<String>,

    /// Write index.json, junit.xml, index.html and the frame logs here
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,

    /// Cases run at once (in client mode each starts its own driver process)
    #[arg(long, default_value_t = 4)]
    jobs: usize,
}

impl Common {
    /// The wires of `available` that --transport and --encoding leave.
    /// QUIC carries protobuf only, so `--encoding json` leaves it out.
    fn wires(&self, available: impl IntoIterator<Item = Wire>) -> Vec<Wire> {
        available
            .into_iter()
            .filter(|w| self.transport.is_none_or(|t| t == w.transport))
            .filter(|w| match self.encoding {
                None => true,
                Some(EncodingArg::Proto) => w.encoding == Encoding::Proto,
                Some(EncodingArg::Json) => w.encoding == Encoding::Json,
            })
            .collect()
    }

    /// The cases --case asks for (all without it); a prefix that matches
    /// no case is an error, not silently nothing.
    fn select<C>(&self, cases: Vec<Case<C>>) -> anyhow::Result<Vec<Case<C>>> {
        if let Some(unknown) = self.cases.iter().find(|p| !cases.iter().any(|case| case.id.starts_with(p.as_str()))) {
            bail!("no case id starts with {unknown:?}; `confab-conformance list` shows them");
        }
        Ok(cases
            .into_iter()
            .filter(|case| self.cases.is_empty() || self.cases.iter().any(|p| case.id.starts_with(p.as_str())))
            .collect())
    }
}

#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// The driver: a shell command (run with `sh -c`) that speaks the
    /// driver contract on stdin and stdout, once per case
    #[arg(long, value_name = "COMMAND")]
    exec: String,

    #[command(flatten)]
    common: Common,

    /// Longest the driver may take to answer one command, in seconds
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    answer_timeout: u64,
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Server URL, quic://HOST:PORT or ws://HOST:PORT[/PATH] (wss:// too);
    /// give one of each to test both transports
    #[arg(long = "url", required = true, value_name = "URL")]
    urls: Vec<String>,

    #[command(flatten)]
    common: Common,

    /// Trust the server certificate with this SHA-256 fingerprint (hex;
    /// confabd prints it at start)
    #[arg(long, value_name = "HEX")]
    fingerprint: Option<String>,

    /// Trust server certificates issued by the CAs in this PEM file
    #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
    ca: Option<PathBuf>,

    /// Longest a case may wait for a server timer (idle and handshake
    /// timeouts, token lifetimes), in seconds; cases that need longer are
    /// skipped
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    max_wait: u64,

    /// The server's handshake timeout, which the protocol cannot announce
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    handshake_timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EncodingArg {
    Proto,
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Server(args) => run_server(args).await,
        Mode::Client(args) => run_client(args).await,
        Mode::List => {
            list();
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|error| {
        eprintln!("confab-conformance: {error:#}");
        ExitCode::from(2)
    })
}

/// Prints every case; stops quietly when the reader goes away (`| head`).
fn list() {
    let server = server::cases().into_iter().map(|c| ("server", c.id, c.requirements, c.title));
    let client = client::cases().into_iter().map(|c| ("client", c.id, c.requirements, c.title));
    let mut out = std::io::stdout().lock();
    for (mode, id, requirements, title) in server.chain(client) {
        if writeln!(out, "{mode}  {id:<36} {:<40} {title}", requirements.join(",")).is_err() {
            return;
        }
    }
}

async fn run_client(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let wires = args.common.wires(Wire::ALL);
    if wires.is_empty() {
        bail!("no wire left to test: --transport and --encoding exclude every wire");
    }
    let cases = args.common.select(client::cases())?;
    let mut target = client::Target::new(args.exec.clone(), wires).context("preparing the scripted server")?;
    target.answer_timeout = Duration::from_secs(args.answer_timeout.max(1));
    eprintln!("confab-conformance: {} client cases against {:?}", cases.len(), args.exec);
    let case_timeout = Duration::from_secs(60) + target.answer_timeout * 4;
    let outcomes = client::run(Arc::new(target), &cases, args.common.jobs, case_timeout).await;
    // A driver that exits 127 for everything "conforms" by the summary; so
    // does a mistyped --exec whose shell happens to exit 127 too.
    let played = outcomes.iter().any(|o| {
        o.case != client::CONTRACT_CASE && matches!(o.grade, Grade::Pass | Grade::NonStrict | Grade::Informational)
    });
    let exit = finish(Report::new("client", args.exec.clone(), outcomes), args.common.report)?;
    if !played {
        eprintln!("confab-conformance: the driver supports no case on these wires: is --exec {:?} right?", args.exec);
        return Ok(ExitCode::FAILURE);
    }
    Ok(exit)
}

async fn run_server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let (mut quic_url, mut ws_url) = (None, None);
    for url in &args.urls {
        let parsed = ServerUrl::parse(url).with_context(|| format!("--url {url}"))?;
        let slot = match parsed.scheme() {
            Scheme::Quic => &mut quic_url,
            Scheme::Ws | Scheme::Wss => &mut ws_url,
        };
        if slot.replace(url.clone()).is_some() {
            bail!("--url {url}: give at most one URL per transport");
        }
    }
    let trust = match (&args.fingerprint, &args.ca) {
        (Some(hex), _) => Trust::Fingerprint(hex.parse::<Fingerprint>().context("--fingerprint")?),
        (None, Some(ca)) => Trust::CaFile(ca.clone()),
        (None, None) => Trust::WebPki,
    };
    let wires = args.common.wires(server::wires_of(quic_url.is_some(), ws_url.is_some()));
    if wires.is_empty() {
        bail!("no wire left to test: --transport and --encoding exclude every URL given");
    }
    let cases = args.common.select(server::cases())?;
    for url in [&quic_url, &ws_url].into_iter().flatten() {
        reachable(url, &trust).await?;
    }
    let mut target = Target::new(quic_url, ws_url, trust, wires);
    target.max_wait = Duration::from_secs(args.max_wait);
    target.handshake_timeout = Duration::from_millis(args.handshake_timeout_ms);
    let implementation = args.urls.join(" ");
    let runs: usize = cases.iter().map(|case| case.wires.select(&target.wires).len().max(1)).sum();
    eprintln!("confab-conformance: {} cases, {runs} runs over the wires, against {implementation}", cases.len());
    let case_timeout = Duration::from_secs(60) + target.max_wait.max(target.handshake_timeout) * 2;
    let outcomes = server::run(Arc::new(target), &cases, args.common.jobs, case_timeout).await;
    // A server that answers everything RATE_LIMITED would only be skipped.
    let checked = outcomes.iter().any(|o| matches!(o.grade, Grade::Pass | Grade::NonStrict | Grade::Informational));
    let exit = finish(Report::new("server", implementation, outcomes), args.common.report)?;
    if !checked {
        eprintln!("confab-conformance: no case could be checked; the report says why");
        return Ok(ExitCode::FAILURE);
    }
    Ok(exit)
}

/// Fails with what to do when `url` cannot be reached or does not answer
/// `Hello`, rather than failing every case with the same error.
async fn reachable(url: &str, trust: &Trust) -> anyhow::Result<()> {
    let options =
        ClientOptions { trust: trust.clone(), connect_timeout: Duration::from_secs(10), ..Default::default() };
    let hint = match (url.starts_with("quic://"), trust) {
        (true, Trust::WebPki) => {
            "Is the server running there? For a self-signed certificate, give --fingerprint (confabd prints it \
             when it starts)"
        }
        _ => "Is the server running there?",
    };
    let mut raw = RawConnection::connect(url, &options)
        .await
        .map_err(|error| anyhow::anyhow!("cannot reach {url}: {error}. {hint}"))?;
    raw.hello("confab-conformance")
        .await
        .with_context(|| format!("{url} does not answer Hello like a confab server"))?;
    raw.close().await;
    Ok(())
}

fn finish(mut report: Report, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let summary = Summary::of(&report.outcomes);
    for outcome in report.outcomes.iter().filter(|o| o.grade == Grade::Fail) {
        eprintln!("FAIL {} [{}]: {}", outcome.case, outcome.wire, report::failure_summary(outcome));
    }
    if let Some(dir) = dir {
        report::write(&dir, &mut report).with_context(|| format!("writing the report to {}", dir.display()))?;
        eprintln!("report: {}", dir.join("index.html").display());
    }
    eprintln!("{summary}");
    Ok(if summary.conforms() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
