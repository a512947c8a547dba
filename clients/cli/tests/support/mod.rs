//! Shared by the CLI's end-to-end tests: a real `confabd` process on free
//! loopback ports with a temporary data directory, and the real `confab`
//! binary run as a subprocess with a profile of its own. Every wait is
//! bounded, so a hang fails the test instead of hanging CI.
#![allow(dead_code)] // not every test uses every helper

use std::{
    fmt,
    io::{BufRead as _, BufReader, Read, Write as _},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// The longest any one `confab` command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a running command (`tail`) may take to print an expected line.
pub const OUTPUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Every test account's password, as typed on standard input.
pub const PASSWORD: &str = "correct horse battery";

/// How a user reaches the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// `ws://`, plain WebSocket.
    Ws,
    /// `quic://`, with the daemon's certificate pinned by `--fingerprint`.
    Quic,
}

pub use confab_testkit::{Daemon, DaemonSpec, closed_tcp_port, signal};

/// How a finished `confab` command went.
pub struct Outcome {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts exit status 0.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code(), Some(0), "expected success:\n{self}");
        self
    }

    /// Asserts exit status `code` and nothing on standard output.
    #[track_caller]
    pub fn failure(self, code: i32) -> Self {
        assert_eq!(self.code(), Some(code), "expected exit status {code}:\n{self}");
        assert_eq!(self.stdout, "", "a failed command printed a result:\n{self}");
        self
    }

    /// Asserts that the command failed (status 1) with exactly one line on
    /// standard error, `confab: error: ...` containing every one of
    /// `needles`; returns that line.
    #[track_caller]
    pub fn error(self, needles: &[&str]) -> String {
        let outcome = self.failure(1);
        let lines: Vec<&str> = outcome.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr:\n{outcome}");
        let line = lines[0];
        assert!(line.starts_with("confab: error: "), "{outcome}");
        for needle in needles {
            assert!(line.contains(needle), "expected {needle:?} in the error:\n{outcome}");
        }
        line.to_owned()
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Standard output as one JSON object per line.
    #[track_caller]
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                let value: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{self}"));
                assert!(value.is_object(), "not a JSON object: {line:?}\n{self}");
                value
            })
            .collect()
    }

    /// The only JSON line of standard output.
    #[track_caller]
    pub fn json_one(&self) -> Value {
        let mut values = self.json();
        assert_eq!(values.len(), 1, "expected one JSON line:\n{self}");
        values.remove(0)
    }
}

/// A simulated person: a profile directory of their own, a server, and for
/// QUIC the certificate fingerprint passed with `--fingerprint`.
pub struct User {
    home: tempfile::TempDir,
    pub server: String,
    pub fingerprint: Option<String>,
    /// `--files-url`, when a test names the daemon's HTTP listener itself
    /// (QUIC users otherwise learn it from `Welcome.http_url`).
    pub files_url: Option<String>,
}

impl User {
    pub fn new(server: impl Into<String>, fingerprint: Option<&str>) -> User {
        User {
            home: tempfile::tempdir().expect("a temporary directory"),
            server: server.into(),
            fingerprint: fingerprint.map(str::to_owned),
            files_url: None,
        }
    }

    /// A user of `daemon` over `wire` (QUIC with the fingerprint pinned).
    pub fn on(daemon: &Daemon, wire: Wire) -> User {
        match wire {
            Wire::Ws => User::new(daemon.ws_url(), None),
            Wire::Quic => User::new(daemon.quic_url(), Some(&daemon.fingerprint)),
        }
    }

    /// A directory of this user's own, for files to upload and download.
    pub fn dir(&self) -> PathBuf {
        self.home.path().to_path_buf()
    }

    pub fn profile_dir(&self) -> PathBuf {
        self.home.path().join("profile")
    }

    /// `profile.json`, parsed.
    pub fn profile(&self) -> Value {
        let path = self.profile_dir().join("profile.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("profile.json is JSON")
    }

    /// `confab --profile DIR [--server URL [--fingerprint HEX] [--files-url URL]] ARGS...`,
    /// with no inherited CONFAB_* or RUST_LOG settings and a private home.
    fn command(&self, args: &[&str], explicit_server: bool) -> (Command, String) {
        let mut full: Vec<String> = vec!["--profile".into(), self.profile_dir().display().to_string()];
        if explicit_server {
            full.extend(["--server".into(), self.server.clone()]);
            if let Some(fingerprint) = &self.fingerprint {
                full.extend(["--fingerprint".into(), fingerprint.clone()]);
            }
            if let Some(files_url) = &self.files_url {
                full.extend(["--files-url".into(), files_url.clone()]);
            }
        }
        full.extend(args.iter().map(|a| a.to_string()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
        command
            .args(&full)
            .env_remove("CONFAB_SERVER")
            .env_remove("CONFAB_PROFILE")
            .env_remove("CONFAB_FILES_URL")
            .env_remove("RUST_LOG")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"));
        (command, format!("confab {}", full.join(" ")))
    }

    /// Runs a command with an empty standard input.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_with_stdin(args, "")
    }

    /// Runs a command, asserting success.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Outcome {
        self.run(args).success()
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Outcome {
        let (command, shown) = self.command(args, true);
        run_bounded(command, shown, stdin)
    }

    /// Runs a command without `--server` and `--fingerprint`: the server
    /// and the certificate to trust come from the profile.
    pub fn run_from_profile(&self, args: &[&str]) -> Outcome {
        let (command, shown) = self.command(args, false);
        run_bounded(command, shown, "")
    }

    /// `register NAME --password-stdin` with [`PASSWORD`], asserting success.
    #[track_caller]
    pub fn register(&self, name: &str) -> Outcome {
        self.run_with_stdin(&["register", name, "--password-stdin"], &format!("{PASSWORD}\n")).success()
    }

    /// Starts a long-running command (`tail`).
    pub fn spawn(&self, args: &[&str]) -> Running {
        let (mut command, shown) = self.command(args, true);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start `{shown}`: {e}"));
        let stdout = line_reader(child.stdout.take().expect("piped stdout"));
        let stderr = line_reader(child.stderr.take().expect("piped stderr"));
        Running { child, command: shown, stdout, stderr, stdout_seen: Vec::new(), stderr_seen: Vec::new() }
    }
}

/// Runs `command` to completion with `stdin` as its standard input, killing
/// it (and failing the test) after [`COMMAND_TIMEOUT`].
fn run_bounded(mut command: Command, shown: String, stdin: &str) -> Outcome {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start `{shown}`: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_owned();
    // Closing standard input after the text: the CLI sees end of file.
    let writer = thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll confab") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
            panic!("`{shown}` did not finish within {COMMAND_TIMEOUT:?}\n--- stdout ---\n{out}--- stderr ---\n{err}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    Outcome {
        command: shown,
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn line_reader(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// A command still running, its output read line by line; killed when
/// dropped.
pub struct Running {
    child: Child,
    command: String,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Every line read so far.
    pub stdout_seen: Vec<String>,
    pub stderr_seen: Vec<String>,
}

impl Running {
    /// Reads standard output until a line matches (within
    /// [`OUTPUT_TIMEOUT`]); returns it.
    #[track_caller]
    pub fn expect_stdout(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        self.expect_line(true, what, matches)
    }

    /// Reads standard error until a line matches; returns it.
    #[track_caller]
    pub fn expect_stderr(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        self.expect_line(false, what, matches)
    }

    #[track_caller]
    fn expect_line(&mut self, stdout: bool, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + OUTPUT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (channel, seen) =
                if stdout { (&self.stdout, &mut self.stdout_seen) } else { (&self.stderr, &mut self.stderr_seen) };
            match channel.recv_timeout(left) {
                Ok(line) => {
                    seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(error) => {
                    let ended = matches!(error, mpsc::RecvTimeoutError::Disconnected);
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "`{}`: no line {what} on {} ({}; exit status {status:?})\n\
                         --- stdout so far ---\n{}\n--- stderr so far ---\n{}",
                        self.command,
                        if stdout { "stdout" } else { "stderr" },
                        if ended { "the stream ended" } else { "timed out" },
                        self.stdout_seen.join("\n"),
                        self.stderr_seen.join("\n"),
                    );
                }
            }
        }
    }

    /// Sends SIGINT, as Ctrl-C does.
    #[cfg(unix)]
    pub fn interrupt(&self) {
        signal(self.child.id(), "INT");
    }

    /// Waits (bounded) for the command to exit; collects its remaining
    /// output into `stdout_seen` and `stderr_seen`.
    #[track_caller]
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll confab") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("`{}` did not exit within {COMMAND_TIMEOUT:?}", self.command);
            }
            thread::sleep(Duration::from_millis(5));
        };
        // The pipes close at exit; the readers then end.
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(5)) {
            self.stdout_seen.push(line);
        }
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.stderr_seen.push(line);
        }
        status
    }

    pub fn command(&self) -> &str {
        &self.command
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
