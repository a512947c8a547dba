//! File transfers beside the command stream: uploads over a QUIC upload
//! stream (`UploadFile` frame, then the bytes) or HTTP (`POST /files`), and
//! downloads over HTTP (`GET /files/{id}`), streamed in chunks with
//! [`Progress`] reports, never held whole in memory. Each HTTP transfer opens
//! its own connection (TCP, and TLS as for `wss://`) and drives it in the
//! caller's task.

use std::{
    pin::Pin,
    sync::atomic::{AtomicU64, Ordering},
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use confab_protocol::{
    Encoding, codec,
    v1::{self, server_frame::Body},
};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
    sync::mpsc,
};

use crate::{
    Error,
    tls::{TlsSetup, Trust},
    url::{Scheme, ServerUrl},
};

/// How far a transfer has come: bytes sent (or received) so far, of `total`
/// when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

/// What a download brought, besides the bytes written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    /// As the server detected it from the content.
    pub content_type: String,
    /// Bytes written.
    pub size: u64,
    /// The uploader's name for the file, from `Content-Disposition`.
    pub file_name: Option<String>,
}

/// Bytes read or written per step (and per progress report).
const CHUNK: usize = 64 * 1024;
/// The largest answer read for an upload (a `FileInfo` or an error).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Where HTTP file transfers go: `http(s)://host:port/base/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpTarget {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Ends with `/`; `files/...` is appended.
    pub base_path: String,
}

impl HttpTarget {
    /// The HTTP side of a `ws://` or `wss://` URL: the same host and port,
    /// and the directory of the WebSocket path (`/ws` → `/`, `/chat/ws` →
    /// `/chat/`). `None` for QUIC, whose HTTP listener is elsewhere.
    pub fn of_server(url: &ServerUrl) -> Option<Self> {
        let tls = match url.scheme() {
            Scheme::Quic => return None,
            Scheme::Ws => false,
            Scheme::Wss => true,
        };
        let path = url.path().split('?').next().unwrap_or("/");
        let base_path = match path.rfind('/') {
            Some(at) => path[..=at].to_owned(),
            None => "/".to_owned(),
        };
        Some(HttpTarget { tls, host: url.host().to_owned(), port: url.port(), base_path })
    }

    /// `http://host[:port][/base]` or `https://...`.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidUrl { url: input.to_owned(), reason: reason.to_owned() };
        let url = url::Url::parse(input.trim()).map_err(|e| invalid(&e.to_string()))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(invalid(&format!("unsupported scheme {other:?} for file transfers; use http or https")));
            }
        };
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(invalid("a files URL takes no query, fragment or credentials"));
        }
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            _ => return Err(invalid("no host")),
        };
        let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        let mut base_path = url.path().to_owned();
        if !base_path.ends_with('/') {
            base_path.push('/');
        }
        Ok(HttpTarget { tls, host, port, base_path })
    }

    /// The same listener with an unspecified host (`0.0.0.0`, `::`, as a
    /// server listening on every address names itself) replaced by the host
    /// the client reached the server at.
    pub fn reached_through(mut self, server: &ServerUrl) -> Self {
        if self.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
            self.host = server.host().to_owned();
        }
        self
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default { host } else { format!("{host}:{}", self.port) }
    }

    fn describe(&self) -> String {
        format!("{}://{}{}", if self.tls { "https" } else { "http" }, self.host_header(), self.base_path)
    }
}

/// How one transfer connects and how long it may stall.
pub(crate) struct TransferSettings {
    pub trust: Trust,
    pub connect_timeout: Duration,
    /// No progress (and no answer) for this long fails with
    /// [`Error::Timeout`].
    pub stall_timeout: Option<Duration>,
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Undoes percent-encoding; `None` when the result is not UTF-8 or an
/// escape is malformed.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file name of a `Content-Disposition` header: `filename*=UTF-8''...`
/// (RFC 5987), else a plain `filename="..."`.
pub(crate) fn disposition_file_name(value: &str) -> Option<String> {
    let params = value.split(';').map(str::trim);
    let mut plain = None;
    for param in params {
        let Some((key, raw)) = param.split_once('=') else { continue };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let (charset, rest) = raw.trim().split_once('\'')?;
                let (_, encoded) = rest.split_once('\'')?;
                if charset.eq_ignore_ascii_case("utf-8") {
                    return percent_decode(encoded);
                }
            }
            "filename" => plain = Some(raw.trim().trim_matches('"').to_owned()),
            _ => {}
        }
    }
    plain
}

/// Fails with [`Error::Timeout`] once `counter` has not moved for `limit`
/// (checked every `limit`, so a stall is noticed within twice that).
async fn stall_watch(counter: &AtomicU64, limit: Option<Duration>) -> Error {
    let Some(limit) = limit else { return std::future::pending().await };
    let mut last = counter.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(limit).await;
        let now = counter.load(Ordering::Relaxed);
        if now == last {
            return Error::Timeout;
        }
        last = now;
    }
}

/// The bytes of an upload, read in chunks, with progress reported as each
/// chunk is handed on.
struct Source<'a> {
    reader: &'a mut (dyn AsyncRead + Unpin + Send),
    size: u64,
    done: u64,
    progress: &'a mut (dyn FnMut(Progress) + Send),
    moved: &'a AtomicU64,
}

impl<'a> Source<'a> {
    fn new(
        reader: &'a mut (dyn AsyncRead + Unpin + Send),
        size: u64,
        progress: &'a mut (dyn FnMut(Progress) + Send),
        moved: &'a AtomicU64,
    ) -> Self {
        progress(Progress { done: 0, total: Some(size) });
        Source { reader, size, done: 0, progress, moved }
    }

    /// The next chunk, `None` after `size` bytes; fails if the source ends
    /// early.
    async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        if self.done >= self.size {
            return Ok(None);
        }
        let want = usize::try_from(self.size - self.done).unwrap_or(usize::MAX).min(CHUNK);
        let mut buffer = BytesMut::zeroed(want);
        let read = self
            .reader
            .read(&mut buffer)
            .await
            .map_err(|e| Error::LocalFile(format!("cannot read the file being uploaded: {e}")))?;
        if read == 0 {
            return Err(Error::LocalFile(format!(
                "the file ended after {} of {} bytes while uploading",
                self.done, self.size
            )));
        }
        buffer.truncate(read);
        Ok(Some(buffer.freeze()))
    }

    /// `len` more bytes went out.
    fn sent(&mut self, len: usize) {
        self.done += len as u64;
        self.moved.fetch_add(len as u64, Ordering::Relaxed);
        (self.progress)(Progress { done: self.done, total: Some(self.size) });
    }
}

// ---- QUIC ---------------------------------------------------------------

/// Uploads over a new bidirectional stream of `connection`: one
/// length-prefixed `UploadFile`, `size` raw bytes, finish; the answer is
/// one length-prefixed `ServerFrame` (`file` or `error`).
pub(crate) async fn quic_upload(
    connection: &quinn::Connection,
    header: v1::UploadFile,
    reader: &mut (dyn AsyncRead + Unpin + Send),
    progress: &mut (dyn FnMut(Progress) + Send),
    stall_timeout: Option<Duration>,
) -> Result<v1::FileInfo, Error> {
    let moved = AtomicU64::new(0);
    let size = header.size;
    let transfer = async {
        let (mut send, mut recv) = connection
            .open_bi()
            .await
            .map_err(|e| Error::Transport(format!("cannot open a QUIC upload stream: {e}")))?;
        let mut first = BytesMut::new();
        codec::put_length_prefix(prost::Message::encoded_len(&header), &mut first);
        prost::Message::encode(&header, &mut first).map_err(|e| Error::Protocol(e.to_string()))?;
        let written = async {
            send.write_all(&first).await.map_err(quic_write_error)?;
            let mut source = Source::new(reader, size, progress, &moved);
            while let Some(chunk) = source.next().await? {
                send.write_all(&chunk).await.map_err(quic_write_error)?;
                source.sent(chunk.len());
            }
            send.finish().map_err(|e| Error::Transport(format!("QUIC upload stream: {e}")))
        }
        .await;
        // A server that refuses early (too large, a bad token) stops
        // reading and answers: its answer is the better error.
        if let Err(error @ Error::LocalFile(_)) = written {
            let _ = send.reset(0u32.into());
            return Err(error);
        }
        let answer = recv.read_to_end(MAX_ANSWER_BYTES).await;
        moved.fetch_add(1, Ordering::Relaxed);
        match (answer, written) {
            (Ok(bytes), written) if !bytes.is_empty() => match decode_answer(&bytes)? {
                Ok(info) => written.map(|()| info),
                Err(refusal) => Err(refusal),
            },
            (_, Err(error)) => Err(error),
            (Ok(_), Ok(())) => Err(Error::Protocol("the server finished the upload stream without an answer".into())),
            (Err(e), Ok(())) => Err(Error::Transport(format!("reading the upload's answer: {e}"))),
        }
    };
    tokio::select! {
        result = transfer => result,
        error = stall_watch(&moved, stall_timeout) => Err(error),
    }
}

fn quic_write_error(error: quinn::WriteError) -> Error {
    Error::Transport(format!("QUIC upload stream: {error}"))
}

/// The upload stream's answer: `Ok(Ok(info))`, `Ok(Err(refusal))`, or a
/// protocol error.
fn decode_answer(bytes: &[u8]) -> Result<Result<v1::FileInfo, Error>, Error> {
    let (prefix, len) = codec::split_frame(bytes, MAX_ANSWER_BYTES)
        .map_err(|e| Error::Protocol(format!("bad answer on the upload stream: {e}")))?
        .ok_or_else(|| Error::Protocol("a truncated answer on the upload stream".into()))?;
    let frame: v1::ServerFrame = codec::decode(&bytes[prefix..prefix + len], Encoding::Proto)
        .map_err(|e| Error::Protocol(format!("undecodable answer on the upload stream: {e}")))?;
    match frame.body {
        Some(Body::File(info)) => Ok(Ok(info)),
        Some(Body::Error(error)) => Ok(Err(Error::Server(error))),
        _ => Err(Error::Protocol("the upload stream answered with neither a file nor an error".into())),
    }
}

// ---- HTTP ---------------------------------------------------------------

/// A TCP (or TLS) stream to `target`.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn open(target: &HttpTarget, settings: &TransferSettings) -> Result<Box<dyn Stream>, Error> {
    let connect = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| Error::Transport(format!("cannot connect to {}: {e}", target.describe())))?;
        let _ = tcp.set_nodelay(true);
        if !target.tls {
            return Ok(Box::new(tcp) as Box<dyn Stream>);
        }
        let setup = TlsSetup::new(&settings.trust, &[b"http/1.1"], false)?;
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| Error::Tls(format!("{} is not a valid TLS server name: {e}", target.host)))?;
        let tls = tokio_rustls::TlsConnector::from(setup.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| setup.handshake_error(e))?;
        Ok(Box::new(tls) as Box<dyn Stream>)
    };
    tokio::time::timeout(settings.connect_timeout, connect).await.map_err(|_| Error::Timeout)?
}

/// An upload body fed from a channel by the caller's task.
struct ChannelBody {
    chunks: mpsc::Receiver<Bytes>,
    size: u64,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.chunks.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.size)
    }
}

/// One request on a fresh connection, the connection driven alongside;
/// `then` reads the response.
async fn exchange<B, T, F, Fut>(
    target: &HttpTarget,
    settings: &TransferSettings,
    request: Request<B>,
    feed: impl Future<Output = Result<(), Error>>,
    then: F,
) -> Result<T, Error>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: FnOnce(Response<Incoming>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let stream = open(target, settings).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, B>(TokioIo::new(stream))
        .await
        .map_err(|e| Error::Transport(format!("HTTP to {}: {e}", target.describe())))?;
    let mut connection = std::pin::pin!(connection);
    let mut connection_done = false;
    let work = async {
        let sent = sender.send_request(request);
        let mut sent = std::pin::pin!(sent);
        let mut feed = std::pin::pin!(feed);
        let mut fed = false;
        let response = loop {
            tokio::select! {
                response = &mut sent => break response,
                result = &mut feed, if !fed => {
                    fed = true;
                    result?;
                }
            }
        };
        let response = response.map_err(|e| Error::Transport(format!("HTTP to {}: {e}", target.describe())))?;
        then(response).await
    };
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            result = &mut connection, if !connection_done => {
                connection_done = true;
                if let Err(error) = result {
                    tracing::debug!(%error, "HTTP connection for a file transfer ended");
                }
            }
        }
    }
}

/// How long an upload waits for the server's `100 Continue` before sending
/// the body anyway (a server or proxy may not send one).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// `POST {base}files?name=...` with the bytes as the body. The request asks
/// for `100 Continue` first, so a refusal (a bad token, a guest, over the
/// size or the quota, rate-limited) comes before any byte is sent: a server
/// that refuses mid-body would close the connection on unread bytes, which
/// can destroy its answer before the client reads it.
pub(crate) async fn http_upload(
    target: &HttpTarget,
    settings: &TransferSettings,
    access_token: &str,
    name: &str,
    size: u64,
    reader: &mut (dyn AsyncRead + Unpin + Send),
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<v1::FileInfo, Error> {
    let (chunks, receiver) = mpsc::channel::<Bytes>(4);
    let mut request = Request::post(format!("{}files?name={}", target.base_path, percent_encode(name)))
        .header(header::HOST, target.host_header())
        .header(header::AUTHORIZATION, format!("Bearer {access_token}"))
        .header(header::CONTENT_LENGTH, size)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::EXPECT, "100-continue")
        .body(ChannelBody { chunks: receiver, size })
        .map_err(|e| Error::InvalidState(format!("cannot build the upload request: {e}")))?;
    let go_on = std::sync::Arc::new(tokio::sync::Notify::new());
    let signal = go_on.clone();
    hyper::ext::on_informational(&mut request, move |response| {
        if response.status() == StatusCode::CONTINUE {
            signal.notify_one();
        }
    });
    let moved = AtomicU64::new(0);
    let feed = async {
        if size > 0 {
            tokio::select! {
                _ = go_on.notified() => {}
                _ = tokio::time::sleep(CONTINUE_WAIT) => {
                    tracing::debug!("no 100 Continue from the server; sending the upload's body anyway");
                }
            }
        }
        let mut source = Source::new(reader, size, progress, &moved);
        while let Some(chunk) = source.next().await? {
            let len = chunk.len();
            if chunks.send(chunk).await.is_err() {
                // The body is gone (the server answered early): its answer
                // tells why.
                break;
            }
            source.sent(len);
        }
        Ok(())
    };
    let transfer = exchange(target, settings, request, feed, |response| async {
        let status = response.status();
        let retry_after = retry_after_ms(&response);
        let body = read_limited(response.into_body(), MAX_ANSWER_BYTES).await?;
        if status == StatusCode::CREATED || status == StatusCode::OK {
            return codec::decode::<v1::FileInfo>(&body, Encoding::Json)
                .map_err(|e| Error::Protocol(format!("the upload's answer is not a FileInfo: {e}")));
        }
        Err(http_error(status, retry_after, &body))
    });
    tokio::select! {
        result = transfer => result,
        error = stall_watch(&moved, settings.stall_timeout) => Err(error),
    }
}

/// `GET {base}files/{path}` streamed into `writer`.
pub(crate) async fn http_download(
    target: &HttpTarget,
    settings: &TransferSettings,
    access_token: &str,
    path: &str,
    writer: &mut (dyn AsyncWrite + Unpin + Send),
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Download, Error> {
    let request = Request::get(format!("{}files/{path}", target.base_path))
        .header(header::HOST, target.host_header())
        .header(header::AUTHORIZATION, format!("Bearer {access_token}"))
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| Error::InvalidState(format!("cannot build the download request: {e}")))?;
    let moved = AtomicU64::new(0);
    let transfer = exchange(target, settings, request, std::future::ready(Ok(())), |response| async {
        let status = response.status();
        if status != StatusCode::OK {
            let retry_after = retry_after_ms(&response);
            let body = read_limited(response.into_body(), MAX_ANSWER_BYTES).await?;
            return Err(http_error(status, retry_after, &body));
        }
        let header = |name| response.headers().get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
        let content_type = header(header::CONTENT_TYPE).unwrap_or("application/octet-stream").to_owned();
        let total = header(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        let file_name = header(header::CONTENT_DISPOSITION).and_then(disposition_file_name);
        let mut body = response.into_body();
        let mut done = 0u64;
        progress(Progress { done, total });
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Transport(format!("download from {}: {e}", target.describe())))?;
            let Ok(data) = frame.into_data() else { continue };
            writer.write_all(&data).await.map_err(|e| Error::LocalFile(format!("cannot write the download: {e}")))?;
            done += data.len() as u64;
            moved.fetch_add(data.len() as u64 + 1, Ordering::Relaxed);
            progress(Progress { done, total });
        }
        writer.flush().await.map_err(|e| Error::LocalFile(format!("cannot write the download: {e}")))?;
        if let Some(total) = total.filter(|&total| total != done) {
            return Err(Error::Transport(format!("the download ended after {done} of {total} bytes")));
        }
        Ok(Download { content_type, size: done, file_name })
    });
    tokio::select! {
        result = transfer => result,
        error = stall_watch(&moved, settings.stall_timeout) => Err(error),
    }
}

fn retry_after_ms(response: &Response<Incoming>) -> u32 {
    let seconds = response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.trim().parse::<u32>().ok());
    seconds.map_or(0, |s| s.saturating_mul(1000))
}

async fn read_limited(body: Incoming, limit: usize) -> Result<Bytes, Error> {
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| Error::Transport(format!("reading the server's answer: {e}")))
}

/// An HTTP refusal as the protocol error it names (`{"code": "FILE_TOO_LARGE",
/// "message": "..."}`), or a transport error quoting the body.
pub(crate) fn http_error(status: StatusCode, retry_after_ms: u32, body: &[u8]) -> Error {
    let refusal = serde_json::from_slice::<serde_json::Value>(body).ok();
    if let Some(code) = refusal.as_ref().and_then(|r| r["code"].as_str()) {
        let code = v1::ErrorCode::from_str_name(code).unwrap_or(v1::ErrorCode::Unspecified);
        let message = refusal.as_ref().and_then(|r| r["message"].as_str()).unwrap_or_default().to_owned();
        let temporary = matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
        return Error::Server(v1::Error { code: code as i32, message, temporary, retry_after_ms });
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned();
    Error::Transport(format!("HTTP {status}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_side_of_a_websocket_url() {
        let target = |url: &str| HttpTarget::of_server(&ServerUrl::parse(url).unwrap());
        let ws = target("ws://127.0.0.1:7080").unwrap();
        assert_eq!((ws.tls, ws.host.as_str(), ws.port, ws.base_path.as_str()), (false, "127.0.0.1", 7080, "/"));
        assert_eq!(ws.host_header(), "127.0.0.1:7080");
        let proxied = target("wss://chat.example.com/chat/ws?x=1").unwrap();
        assert_eq!((proxied.tls, proxied.port, proxied.base_path.as_str()), (true, 443, "/chat/"));
        assert_eq!(proxied.host_header(), "chat.example.com");
        assert_eq!(target("quic://127.0.0.1:7443"), None);
        let v6 = HttpTarget::parse("http://[::1]:8080/files-base").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.base_path.as_str(), v6.host_header()),
            ("::1", "/files-base/", "[::1]:8080".into())
        );
        assert!(HttpTarget::parse("ftp://h").is_err());
        assert!(HttpTarget::parse("http://h/?q").is_err());
    }

    #[test]
    fn names_travel_percent_encoded() {
        assert_eq!(percent_encode("a b/ü.txt"), "a%20b%2F%C3%BC.txt");
        assert_eq!(percent_decode("a%20b%2F%C3%BC.txt").as_deref(), Some("a b/ü.txt"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(
            disposition_file_name("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf").as_deref(),
            Some("résumé.pdf")
        );
        assert_eq!(disposition_file_name("inline; filename=\"cat.png\"").as_deref(), Some("cat.png"));
        assert_eq!(disposition_file_name("inline"), None);
    }

    #[test]
    fn http_refusals_read_as_protocol_errors() {
        let error =
            http_error(StatusCode::PAYLOAD_TOO_LARGE, 0, br#"{"code":"FILE_TOO_LARGE","message":"over 10 MiB"}"#);
        assert_eq!(error.server_code(), Some(v1::ErrorCode::FileTooLarge));
        assert_eq!(error.to_string(), "FILE_TOO_LARGE: over 10 MiB");
        let Error::Server(limited) = http_error(StatusCode::TOO_MANY_REQUESTS, 2000, br#"{"code":"RATE_LIMITED"}"#)
        else {
            panic!("not a server error")
        };
        assert!(limited.temporary);
        assert_eq!(limited.retry_after_ms, 2000);
        let other = http_error(StatusCode::BAD_GATEWAY, 0, b"<html>proxy</html>");
        assert!(matches!(&other, Error::Transport(text) if text.contains("502")), "{other}");
    }

    #[test]
    fn upload_stream_answers_decode() {
        let frame = |body| {
            let mut out = BytesMut::new();
            let frame = v1::ServerFrame { request_id: 0, body: Some(body) };
            codec::put_length_prefix(prost::Message::encoded_len(&frame), &mut out);
            prost::Message::encode(&frame, &mut out).unwrap();
            out
        };
        let info = v1::FileInfo { file_id: "ab".repeat(16), size: 3, ..Default::default() };
        assert_eq!(decode_answer(&frame(Body::File(info.clone()))).unwrap().unwrap(), info);
        let refused = decode_answer(&frame(Body::Error(v1::Error::new(v1::ErrorCode::TokenExpired, "expired"))));
        assert_eq!(refused.unwrap().unwrap_err().server_code(), Some(v1::ErrorCode::TokenExpired));
        assert!(decode_answer(&frame(Body::Done(v1::Done {}))).is_err());
        assert!(decode_answer(&[5, 1]).is_err());
    }
}
