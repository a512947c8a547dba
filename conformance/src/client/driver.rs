//! The client under test, as a process: started through `sh -c` with the
//! driver contract's environment (driver-contract.md), given JSON lines on
//! stdin, read as JSON lines on stdout, its stderr kept as evidence. Every
//! wait is bounded; the process group is killed when the case is done with
//! the driver or gives up on it, whether the driver exited or not (its
//! children go too).

use std::{
    collections::VecDeque,
    fmt,
    path::Path,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader},
    process::{Child, ChildStdin, Command},
    sync::mpsc,
    task::JoinHandle,
    time::Instant,
};

use crate::{
    evidence::{Direction, FrameLog},
    outcome::{CaseResult, Stop},
};

/// The exit status by which a driver says it does not support a case.
pub const UNSUPPORTED: i32 = 127;

/// Longest stdout line or stderr text kept (a runaway driver must not eat
/// the memory of the suite).
const MAX_LINE_BYTES: usize = 1 << 20;
const MAX_STDERR_BYTES: usize = 1 << 20;

/// What the driver printed, parsed.
#[derive(Clone, Debug)]
pub struct Output {
    /// The `type` field.
    pub kind: String,
    /// The `id` of the command this answers (`None` for reports).
    pub id: Option<String>,
    pub value: Value,
}

impl Output {
    /// A 64-bit number, written as a string of digits or as a JSON number.
    pub fn u64(&self, field: &str) -> Option<u64> {
        number(self.value.get(field)?)
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.value.get(field)?.as_str()
    }

    pub fn bool(&self, field: &str) -> Option<bool> {
        self.value.get(field)?.as_bool()
    }

    /// The events of a `history` answer.
    pub fn events(&self) -> Vec<Reported> {
        self.value
            .get("events")
            .and_then(Value::as_array)
            .map(|e| e.iter().map(Reported::of).collect())
            .unwrap_or_default()
    }

    /// This output as an event report.
    pub fn event(&self) -> Reported {
        Reported::of(&self.value)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

/// A room event as the driver reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    pub room_id: Option<u64>,
    pub epoch: Option<u64>,
    pub seq: Option<u64>,
    pub sender: String,
    pub kind: String,
    pub text: String,
}

impl Reported {
    fn of(value: &Value) -> Reported {
        let text = |field: &str| value.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
        Reported {
            room_id: value.get("room_id").and_then(number),
            epoch: value.get("epoch").and_then(number),
            seq: value.get("seq").and_then(number),
            sender: text("sender"),
            kind: text("kind"),
            text: text("text"),
        }
    }
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::String(digits) => digits.parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

/// A line on stdout.
enum Line {
    Output(Output),
    /// Not a JSON object with a string `type`.
    Bad(String),
}

/// The environment a driver is started with.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name.into(), value)),
        }
    }
}

/// A running driver.
pub struct Driver {
    child: Child,
    pid: Option<u32>,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Line>,
    /// Everything read and not taken yet, in order.
    pending: VecDeque<Output>,
    /// Every report read, in order (events, resets, closes, reconnects).
    pub reports: Vec<Output>,
    log: FrameLog,
    label: String,
    next_id: u64,
    answer_timeout: Duration,
    /// Everything the driver printed (stdout and stderr), for the secrecy
    /// audit (AUTH-2).
    pub printed: Arc<Mutex<String>>,
    exited: Option<ExitStatus>,
    /// Whether the driver printed a line of the contract: from then on it
    /// has read a command, and exit status 127 no longer means
    /// "unsupported".
    spoke: bool,
    /// The readers of stdout and stderr, stopped with the driver.
    readers: Vec<JoinHandle<()>>,
}

impl Driver {
    /// Starts `exec` through `sh -c` in its own process group.
    pub fn spawn(
        exec: &str,
        env: &Env,
        dir: &Path,
        log: FrameLog,
        label: String,
        answer_timeout: Duration,
    ) -> CaseResult<Driver> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(exec)
            .current_dir(dir)
            .envs(env.vars.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|e| Stop::Failed(format!("cannot start the driver {exec:?}: {e}")))?;
        let pid = child.id();
        log.event(&label, &format!("started: sh -c {exec:?} (pid {})", pid.unwrap_or(0)));
        let printed = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines) = mpsc::channel(1024);
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let (log, label) = (log.clone(), label.clone());
            readers.push(tokio::spawn(read_stdout(stdout, lines_tx, printed.clone(), log, label)));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(read_stderr(stderr, log.clone(), label.clone(), printed.clone())));
        }
        let stdin = child.stdin.take();
        Ok(Driver {
            child,
            pid,
            stdin,
            lines,
            pending: VecDeque::new(),
            reports: Vec::new(),
            log,
            label,
            next_id: 1,
            answer_timeout,
            printed,
            exited: None,
            spoke: false,
            readers,
        })
    }

    /// Writes a command; returns its id. `fields` are added to `cmd`/`id`.
    pub async fn command(&mut self, cmd: &str, fields: Value) -> CaseResult<String> {
        let id = self.next_id.to_string();
        self.next_id += 1;
        let mut line = json!({"cmd": cmd, "id": id});
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        self.write_line(&line).await?;
        Ok(id)
    }

    async fn write_line(&mut self, line: &Value) -> CaseResult {
        self.log.frame(&self.label, Direction::Sent, line);
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(Stop::Failed("the driver's stdin is closed".into()));
        };
        let mut text = line.to_string();
        text.push('\n');
        let written = tokio::time::timeout(self.answer_timeout, async {
            stdin.write_all(text.as_bytes()).await?;
            stdin.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.gone("while the suite wrote a command").await),
            Err(_) => Err(Stop::Failed(format!("the driver read no command for {} s", self.answer_timeout.as_secs()))),
        }
    }

    /// Sends a command and waits for its answer.
    pub async fn call(&mut self, cmd: &str, fields: Value) -> CaseResult<Output> {
        let id = self.command(cmd, fields).await?;
        self.answer(&id).await
    }

    /// The answer to command `id`, within the answer timeout. Reports that
    /// come first are kept.
    pub async fn answer(&mut self, id: &str) -> CaseResult<Output> {
        match self.try_answer(id, self.answer_timeout).await? {
            Some(answer) => Ok(answer),
            None => Err(Stop::Failed(format!(
                "the driver did not answer command {id} within {} s",
                self.answer_timeout.as_secs()
            ))),
        }
    }

    /// The answer to command `id` if it comes within `within`.
    pub async fn try_answer(&mut self, id: &str, within: Duration) -> CaseResult<Option<Output>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = self.pending.iter().position(|o| o.id.as_deref() == Some(id)) {
                let mut rest = self.pending.split_off(at);
                let found = rest.pop_front();
                self.pending.extend(rest);
                if let Some(found) = found {
                    return Ok(Some(found));
                }
            }
            if !self.read_until(deadline).await? {
                return Ok(None);
            }
        }
    }

    /// Answers read and never taken: a second answer to one command, or
    /// one to a command never given.
    pub fn stray_answers(&self) -> Vec<Output> {
        self.pending.iter().filter(|o| o.id.is_some()).cloned().collect()
    }

    /// The first report from `*from` on (an index into [`Driver::reports`])
    /// that `pick` accepts, waiting at most `within`; `*from` moves past
    /// what was looked at.
    pub async fn report<T>(
        &mut self,
        from: &mut usize,
        within: Duration,
        mut pick: impl FnMut(&Output) -> Option<T>,
    ) -> CaseResult<Option<T>> {
        let deadline = Instant::now() + within;
        loop {
            while *from < self.reports.len() {
                let found = pick(&self.reports[*from]);
                *from += 1;
                if found.is_some() {
                    return Ok(found);
                }
            }
            if !self.read_until(deadline).await? {
                return Ok(None);
            }
        }
    }

    /// Reads what the driver printed until `deadline`; false when nothing
    /// came in time.
    async fn read_until(&mut self, deadline: Instant) -> CaseResult<bool> {
        let line = match tokio::time::timeout_at(deadline, self.lines.recv()).await {
            Err(_) => return Ok(false),
            Ok(None) => return Err(self.gone("while the suite waited for it").await),
            Ok(Some(line)) => line,
        };
        match line {
            Line::Bad(text) => Err(Stop::Failed(format!(
                "the driver printed {:?}, which is not a JSON object with a \"type\" (stdout is for the \
                     contract's lines only; log to stderr)",
                crate::evidence::show(text.as_bytes())
            ))),
            Line::Output(output) => {
                self.spoke = true;
                if output.id.is_none() {
                    self.reports.push(output.clone());
                }
                self.pending.push_back(output);
                Ok(true)
            }
        }
    }

    /// Why the driver stopped talking: its exit (127: unsupported, if it
    /// had printed nothing yet).
    async fn gone(&mut self, when: &str) -> Stop {
        let status = match self.exited {
            Some(status) => Some(status),
            None => tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await.ok().and_then(Result::ok),
        };
        self.exited = status;
        match status {
            Some(status) => self.exit_stop(status, when),
            None => Stop::Failed(format!("the driver closed its stdout {when}")),
        }
    }

    /// What an exit with `status` means for the case. 127 means
    /// "unsupported" only before the driver read its first command; the
    /// suite writes `connect` as soon as it starts the driver, so it cannot
    /// see that read, and takes the driver's first line on stdout as the
    /// sign that it happened.
    fn exit_stop(&self, status: ExitStatus, when: &str) -> Stop {
        self.log.event(&self.label, &format!("exited with {}", describe(status)));
        match status.code() {
            Some(UNSUPPORTED) if !self.spoke => {
                Stop::Unsupported("the driver exited 127: the client does not support this case".into())
            }
            Some(UNSUPPORTED) => Stop::Failed(format!(
                "the driver exited 127 {when}, after it had answered: 127 means \"unsupported\" only before the \
                 driver reads its first command"
            )),
            _ => Stop::Failed(format!("the driver exited with {} {when}", describe(status))),
        }
    }

    /// `quit`, then its exit within `within`; status 0 is required.
    pub async fn quit(mut self, within: Duration) -> CaseResult {
        let quit = json!({"cmd": "quit"});
        self.log.frame(&self.label, Direction::Sent, &quit);
        if let Some(mut stdin) = self.stdin.take() {
            let text = format!("{quit}\n");
            let _ = tokio::time::timeout(within, async {
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.flush().await;
            })
            .await;
        }
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.exited = Some(status);
                match status.code() {
                    Some(0) => {
                        self.log.event(&self.label, "exited with status 0");
                        Ok(())
                    }
                    _ => Err(self.exit_stop(status, "after quit (0 expected)")),
                }
            }
            Ok(Err(error)) => Err(Stop::Failed(format!("waiting for the driver: {error}"))),
            Err(_) => Err(Stop::Failed(format!("the driver did not exit within {} s of quit", within.as_secs()))),
        }
    }

    /// Waits until `done` holds for the reports read so far, reading more
    /// for at most `within`; false when it still does not.
    pub async fn wait_reports(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&[Output]) -> bool,
    ) -> CaseResult<bool> {
        let deadline = Instant::now() + within;
        loop {
            if done(&self.reports) {
                return Ok(true);
            }
            if !self.read_until(deadline).await? {
                return Ok(false);
            }
        }
    }

    /// Waits at most `within` until stdout and stderr are read to their
    /// end (after the driver exited, say), so that everything it printed
    /// is in [`Driver::printed`].
    pub async fn drained(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        for mut reader in std::mem::take(&mut self.readers) {
            if tokio::time::timeout_at(deadline, &mut reader).await.is_err() {
                reader.abort();
            }
        }
    }

    /// Waits for the driver to exit by itself (stdin closed), within `within`.
    pub async fn exit_status(&mut self, within: Duration) -> Option<ExitStatus> {
        self.stdin.take();
        let status = tokio::time::timeout(within, self.child.wait()).await.ok().and_then(Result::ok);
        self.exited = status.or(self.exited);
        status
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Even when the driver exited: children it started may live on in
        // its process group (driver-contract.md, "Time limits").
        kill_group(self.pid);
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// An exit status in a few words: `status 3`, or how it was killed.
pub fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("status {code}"),
        None => status.to_string(),
    }
}

/// Kills the driver's process group (it may have started children).
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // the group was created for this driver (process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Reads the driver's stdout, logging each line as it arrives.
async fn read_stdout(
    stdout: impl AsyncRead + Unpin,
    lines: mpsc::Sender<Line>,
    printed: Arc<Mutex<String>>,
    log: FrameLog,
    label: String,
) {
    let mut reader = BufReader::new(stdout);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match read_line(&mut reader, &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buffer).trim_end().to_owned();
        if text.is_empty() {
            continue;
        }
        remember(&printed, &text);
        let line = match serde_json::from_str::<Value>(&text) {
            Ok(value) => match value.get("type").and_then(Value::as_str) {
                Some(kind) => Line::Output(Output {
                    kind: kind.to_owned(),
                    id: value
                        .get("id")
                        .and_then(|id| id.as_str().map(str::to_owned).or_else(|| number(id).map(|n| n.to_string()))),
                    value,
                }),
                None => Line::Bad(text),
            },
            Err(_) => Line::Bad(text),
        };
        match &line {
            Line::Output(output) => log.frame(&label, Direction::Received, &output.value),
            Line::Bad(text) => log.bytes(&label, Direction::Received, "not a line of the contract", text.as_bytes()),
        }
        if lines.send(line).await.is_err() {
            return;
        }
    }
}

/// One line, at most [`MAX_LINE_BYTES`] of it kept.
async fn read_line(reader: &mut BufReader<impl AsyncRead + Unpin>, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(buffer.len());
        buffer.extend_from_slice(&available[..used.min(room)]);
        reader.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}

async fn read_stderr(stderr: impl AsyncRead + Unpin, log: FrameLog, label: String, printed: Arc<Mutex<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut buffer = Vec::new();
    let mut kept = 0usize;
    loop {
        buffer.clear();
        match read_line(&mut reader, &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        kept += buffer.len();
        if kept > MAX_STDERR_BYTES {
            continue;
        }
        let line = String::from_utf8_lossy(&buffer);
        let line = line.trim_end();
        remember(&printed, line);
        log.event(&label, &format!("stderr: {line}"));
    }
}

fn remember(printed: &Mutex<String>, text: &str) {
    let mut printed = printed.lock().unwrap_or_else(|p| p.into_inner());
    if printed.len() < 2 * MAX_STDERR_BYTES {
        printed.push_str(text);
        printed.push('\n');
    }
}
