//! The HTTP listener: `GET /healthz`, and the WebSocket endpoint `/ws`,
//! where the subprotocol picks the encoding.

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use confab_protocol::{Encoding, v1};
use futures_util::StreamExt as _;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
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
use crate::{context::Context, session};

type Body = Full<Bytes>;

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
                    async move { Ok::<_, std::convert::Infallible>(response) }
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

fn text(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("static response")
}

fn route(ctx: Arc<Context>, peer: SocketAddr, sessions: Arc<Semaphore>, request: Request<Incoming>) -> Response<Body> {
    match (request.method().as_str(), request.uri().path()) {
        ("GET", "/healthz") => text(StatusCode::OK, "ok\n"),
        ("GET", "/ws") => upgrade(ctx, peer, sessions, request),
        (_, "/healthz" | "/ws") => text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
        _ => text(StatusCode::NOT_FOUND, "not found; the WebSocket endpoint is /ws\n"),
    }
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
        .body(Full::new(Bytes::new()))
        .expect("static response")
}
