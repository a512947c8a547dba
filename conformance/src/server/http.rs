//! A small HTTP/1.1 client over TCP, for the file routes of §28: one
//! request per connection (`Connection: close`), the answer read whole
//! (by `Content-Length`, chunks, or to the end of the stream), every wait
//! bounded. It speaks plain HTTP only: a server behind `wss://` has its
//! file routes checked elsewhere.

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use super::Ctx;
use crate::outcome::{CaseResult, Stop};

/// What a request sends as its body.
pub enum Body<'a> {
    None,
    /// With `Content-Length`.
    Bytes(&'a [u8]),
    /// `Content-Length: n` without sending a byte of it: a server refuses
    /// an announced size over its limit before reading (FILE-4).
    Announce(u64),
    /// `Transfer-Encoding: chunked`, in chunks of 64 KiB.
    Chunked(&'a [u8]),
}

/// An answer as it came.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header `name` (case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `code` of a JSON error body (`{"code":"FILE_TOO_LARGE",...}`).
    pub fn error_code(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value.get("code")?.as_str().map(Into::into)
    }

    /// The status and, for an error, its code and message, for details.
    pub fn brief(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let shown: String = text.chars().take(300).collect();
        if self.status >= 300 || self.header("content-type").is_some_and(|t| t.starts_with("application/json")) {
            format!("{} {shown}", self.status)
        } else {
            format!("{} ({} bytes)", self.status, self.body.len())
        }
    }

    /// Whether this is the status `status` with the JSON error `code`.
    pub fn is_error(&self, status: u16, code: &str) -> bool {
        self.status == status && self.error_code().as_deref() == Some(code)
    }
}

/// `host:port` of the server's HTTP listener, from its WebSocket URL.
fn address(cx: &Ctx) -> CaseResult<String> {
    let url = cx
        .target()
        .ws_url
        .as_deref()
        .ok_or_else(|| Stop::Skipped("no ws:// URL: no HTTP listener to upload to".into()))?;
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| Stop::Skipped(format!("{url}: this suite's file client speaks plain HTTP only")))?;
    Ok(rest.split('/').next().unwrap_or(rest).to_owned())
}

/// Percent-encodes `text` for a query value or a path segment.
pub fn percent(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Sends one request and reads its answer. `headers` come after the
/// ones this function writes (`Host`, `Connection`, `Authorization` for
/// `token`, and the body's length).
pub async fn request(
    cx: &Ctx,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> CaseResult<Response> {
    let address = address(cx)?;
    let wait = cx.target().reply_timeout;
    let label = "http";
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    match &body {
        Body::None => {}
        Body::Bytes(bytes) => head.push_str(&format!("Content-Length: {}\r\n", bytes.len())),
        Body::Announce(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        Body::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let shown_body = match &body {
        Body::None => String::new(),
        Body::Bytes(b) => format!(" with {} bytes", b.len()),
        Body::Announce(n) => format!(" announcing {n} bytes, sending none"),
        Body::Chunked(b) => format!(" with {} bytes in chunks", b.len()),
    };
    let shown_head = match token {
        Some(token) if !token.is_empty() => head.replace(token, "<token>"),
        _ => head.clone(),
    };
    cx.log().event(label, &format!("-> {}{shown_body}", shown_head.trim_end().replace("\r\n", " | ")));

    let mut stream = tokio::time::timeout(wait, TcpStream::connect(&address))
        .await
        .map_err(|_| Stop::Failed(format!("HTTP: could not connect to {address} within {wait:?}")))?
        .map_err(|e| Stop::Failed(format!("HTTP: could not connect to {address}: {e}")))?;
    // A server may answer (and close) before the body is all sent: write
    // errors are not failures, the answer decides.
    let written = async {
        stream.write_all(head.as_bytes()).await?;
        match body {
            Body::None | Body::Announce(_) => {}
            Body::Bytes(bytes) => stream.write_all(bytes).await?,
            Body::Chunked(bytes) => {
                for chunk in bytes.chunks(64 * 1024) {
                    stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                    stream.write_all(chunk).await?;
                    stream.write_all(b"\r\n").await?;
                }
                stream.write_all(b"0\r\n\r\n").await?;
            }
        }
        stream.flush().await
    };
    if let Err(error) = tokio::time::timeout(wait, written).await.unwrap_or(Ok(())) {
        cx.log().event(label, &format!("writing stopped: {error}"));
    }
    let response = tokio::time::timeout(wait, read_response(&mut stream))
        .await
        .map_err(|_| Stop::Failed(format!("HTTP {method} {path}: no complete answer within {wait:?}")))?
        .map_err(|e| Stop::Failed(format!("HTTP {method} {path}: {e}")))?;
    cx.log().event(label, &format!("<- {}", response.brief()));
    Ok(response)
}

async fn read_response(stream: &mut TcpStream) -> Result<Response, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            return Err(format!("the connection closed before a complete head ({} bytes)", buf.len()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let mut rest = buf[header_end + 4..].to_vec();
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    loop {
        let complete = match (length, chunked) {
            (Some(n), _) => rest.len() >= n,
            (None, true) => dechunk(&rest).is_some(),
            (None, false) => false,
        };
        if complete {
            break;
        }
        let n = stream.read(&mut chunk).await.map_err(|e| format!("reading the body: {e}"))?;
        if n == 0 {
            if length.is_some() || chunked {
                return Err(format!("the connection closed {} bytes into the body", rest.len()));
            }
            break;
        }
        rest.extend_from_slice(&chunk[..n]);
    }
    let body = match (length, chunked) {
        (Some(n), _) => rest[..n].to_vec(),
        (None, true) => dechunk(&rest).unwrap_or_default(),
        (None, false) => rest,
    };
    Ok(Response { status, headers, body })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body of a complete chunked encoding, or `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
