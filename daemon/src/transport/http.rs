//! The HTTP listener: `GET /healthz`, the WebSocket endpoint `/ws` (where
//! the subprotocol picks the encoding), and files: `POST /files` uploads,
//! `GET /files/{id}` and `GET /files/{id}/thumbnail` download.

use std::{io, net::SocketAddr, sync::Arc};

use bytes::{Bytes, BytesMut};
use confab_protocol::{Encoding, v1};
use futures_util::{StreamExt as _, TryStreamExt as _};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::{
    body::{Frame, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};

use super::{FrameReader, FrameWriter};
use crate::{context::Context, files, session};

/// Response bodies: small ones whole, downloads streamed from disk.
type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Bytes a download reads from disk at a time.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// Accepts HTTP connections until shutdown.
pub async fn serve(ctx: Arc<Context>, listener: TcpListener, sessions: Arc<Semaphore>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = ctx.shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx2 = ctx.clone();
        let sessions = sessions.clone();
        ctx.tracker.spawn(async move {
            let service = {
                let ctx = ctx2.clone();
                service_fn(move |request| {
                    let response = route(ctx.clone(), peer, sessions.clone(), request);
                    async move { Ok::<_, std::convert::Infallible>(response.await) }
                })
            };
            let connection = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = &mut connection => {}
                _ = ctx2.shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

fn whole(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(whole(body.to_owned()))
        .expect("static response")
}

async fn route(
    ctx: Arc<Context>,
    peer: SocketAddr,
    sessions: Arc<Semaphore>,
    request: Request<Incoming>,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let method = request.method().as_str();
    match (method, path.as_str()) {
        ("GET", "/healthz") => text(StatusCode::OK, "ok\n"),
        ("GET", "/ws") => upgrade(ctx, peer, sessions, request),
        (_, "/healthz" | "/ws") => text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
        ("POST", "/files") => upload(&ctx, request).await,
        (_, "/files") => method_not_allowed("POST"),
        (_, path) if path.starts_with("/files/") => {
            let rest = &path["/files/".len()..];
            let (id, thumbnail) = match rest.split_once('/') {
                None => (rest, false),
                Some((id, "thumbnail")) => (id, true),
                Some(_) => return error(&not_a_file()),
            };
            if method != "GET" {
                return method_not_allowed("GET");
            }
            download(&ctx, &request, id, thumbnail).await
        }
        _ => text(StatusCode::NOT_FOUND, "not found; the WebSocket endpoint is /ws, files are under /files\n"),
    }
}

fn not_a_file() -> v1::Error {
    v1::Error::new(v1::ErrorCode::FileNotFound, "files are at /files/{id} and /files/{id}/thumbnail")
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = error(&v1::Error::new(v1::ErrorCode::InvalidArgument, format!("use {allow} here")));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The HTTP status of an error code.
fn status(code: v1::ErrorCode) -> StatusCode {
    use v1::ErrorCode as C;
    match code {
        C::TokenInvalid | C::TokenExpired => StatusCode::UNAUTHORIZED,
        C::Forbidden | C::AccountDisabled => StatusCode::FORBIDDEN,
        C::FileNotFound => StatusCode::NOT_FOUND,
        C::FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        C::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        C::QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
        C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An error as JSON: `{"code":"FILE_TOO_LARGE","message":"..."}`.
fn error(error: &v1::Error) -> Response<Body> {
    let code = v1::ErrorCode::try_from(error.code).unwrap_or(v1::ErrorCode::Unspecified);
    let body = serde_json::json!({ "code": code.as_str_name(), "message": error.message });
    let mut response = Response::builder()
        .status(status(code))
        .header(header::CONTENT_TYPE, "application/json")
        .body(whole(body.to_string()))
        .expect("static response");
    let headers = response.headers_mut();
    if code == v1::ErrorCode::RateLimited {
        let seconds = error.retry_after_ms.div_ceil(1000).max(1);
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if matches!(code, v1::ErrorCode::TokenInvalid | v1::ErrorCode::TokenExpired) {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The access token of `Authorization: Bearer <token>`.
fn bearer_token<B>(request: &Request<B>) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// `POST /files?name=...`: the body is the file.
async fn upload(ctx: &Context, request: Request<Incoming>) -> Response<Body> {
    let name = match query_name(request.uri().query()) {
        Ok(name) => name,
        Err(message) => return error(&v1::Error::new(v1::ErrorCode::InvalidArgument, message)),
    };
    let declared = match request.headers().get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(|v| v.parse::<u64>().ok()) {
            Some(length) => Some(length),
            None => return error(&v1::Error::new(v1::ErrorCode::InvalidArgument, "Content-Length is not a number")),
        },
    };
    // Everything that can be refused before reading is: a body over the
    // limit is refused from its Content-Length, unread.
    let admitted = match files::admit(ctx, bearer_token(&request), &name, declared) {
        Ok(admitted) => admitted,
        Err(e) => return error(&e),
    };
    let body = request.into_body().into_data_stream().map_err(io::Error::other);
    match files::receive(ctx, admitted, body).await {
        Ok(info) => Response::builder()
            .status(StatusCode::CREATED)
            .header(header::CONTENT_TYPE, "application/json")
            .body(whole(serde_json::to_vec(&info).expect("FileInfo serializes")))
            .expect("static response"),
        Err(e) => error(&e),
    }
}

/// The `name` query parameter, percent-decoded.
fn query_name(query: Option<&str>) -> Result<String, String> {
    let Some(raw) = query.unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("name=")) else {
        return Err("name the file: POST /files?name=<percent-encoded name>".into());
    };
    percent_decode(raw).ok_or_else(|| "the name is not percent-encoded UTF-8".into())
}

fn percent_decode(raw: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut input = raw.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'%' => {
                let high = (input.next()? as char).to_digit(16)?;
                let low = (input.next()? as char).to_digit(16)?;
                bytes.push((high * 16 + low) as u8);
            }
            b'+' => bytes.push(b' '),
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

/// `filename*` of Content-Disposition (RFC 6266, RFC 8187): UTF-8,
/// percent-encoding all but the attr-chars.
fn disposition(inline: bool, name: &str) -> String {
    let mut value = String::from(if inline { "inline; filename*=UTF-8''" } else { "attachment; filename*=UTF-8''" });
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            value.push(byte as char);
        } else {
            value.push_str(&format!("%{byte:02X}"));
        }
    }
    value
}

/// `GET /files/{id}` and `/files/{id}/thumbnail`, streamed from disk.
async fn download(ctx: &Context, request: &Request<Incoming>, id: &str, thumbnail: bool) -> Response<Body> {
    let Some(token) = bearer_token(request) else {
        return error(&v1::Error::new(
            v1::ErrorCode::TokenInvalid,
            "a download needs an access token (Authorization: Bearer <token>)",
        ));
    };
    let opened = match crate::session::verify_bearer(ctx, token) {
        Ok(bearer) => files::open(ctx, &bearer, id, thumbnail).await,
        Err(e) => Err(e),
    };
    let download = match opened {
        Ok(download) => download,
        Err(e) => return error(&e),
    };
    let disposition = disposition(download.inline(), &download.name);
    let content_type = download.content_type.clone();
    let size = download.size;
    let chunks = futures_util::stream::unfold((download.file, size), |(mut file, remaining)| async move {
        use tokio::io::AsyncReadExt as _;
        if remaining == 0 {
            return None;
        }
        let mut buffer = BytesMut::with_capacity(DOWNLOAD_CHUNK.min(remaining as usize));
        match file.read_buf(&mut buffer).await {
            Ok(0) => {
                let short = io::Error::new(io::ErrorKind::UnexpectedEof, "the stored file is shorter than recorded");
                Some((Err(short), (file, 0)))
            }
            Ok(read) => Some((Ok(Frame::data(buffer.freeze())), (file, remaining - read as u64))),
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, size)
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, "sandbox")
        .header(header::CACHE_CONTROL, "private, max-age=31536000, immutable")
        .body(StreamBody::new(chunks).boxed_unsync())
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "a stored file has an unusable content type\n"))
}

/// The encoding chosen from the client's offered subprotocols, in its order.
fn chosen_encoding(request: &Request<Incoming>) -> Option<Encoding> {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(Encoding::from_ws_subprotocol)
}

fn upgrade(
    ctx: Arc<Context>,
    peer: SocketAddr,
    sessions: Arc<Semaphore>,
    mut request: Request<Incoming>,
) -> Response<Body> {
    let headers = request.headers();
    let is_upgrade =
        headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).filter(|_| is_upgrade && version_ok) else {
        return text(StatusCode::BAD_REQUEST, "this is confab's WebSocket endpoint: connect with a WebSocket client\n");
    };
    let Some(encoding) = chosen_encoding(&request) else {
        return text(
            StatusCode::BAD_REQUEST,
            "offer the WebSocket subprotocol confab.v1.proto (binary protobuf) or confab.v1.json (JSON text)\n",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    let limits = &ctx.config.limits;
    let ws_config = WebSocketConfig::default()
        // Idle connections should cost little: small buffers, grown on demand.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_outbound_queue_bytes as usize + limits.max_frame_bytes as usize)
        .max_message_size(Some(limits.max_frame_bytes as usize))
        .max_frame_size(Some(limits.max_frame_bytes as usize));
    let permit = sessions.try_acquire_owned().ok();
    let ctx2 = ctx.clone();
    ctx.tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config)).await;
        let (sink, stream) = ws.split();
        let writer = FrameWriter::Ws { sink, encoding };
        let Some(_permit) = permit else {
            writer
                .close(v1::Close {
                    code: v1::CloseCode::ServerBusy as i32,
                    reason: "this listener is at its session limit; retry later".into(),
                })
                .await;
            return;
        };
        session::run(ctx2, peer, encoding, FrameReader::Ws { stream, encoding }, writer).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(header::SEC_WEBSOCKET_PROTOCOL, encoding.ws_subprotocol())
        .body(whole(Bytes::new()))
        .expect("static response")
}
