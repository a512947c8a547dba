//! The QUIC listener: ALPN `confab/1`. A connection's first bidirectional
//! stream carries the session's varint length-delimited protobuf frames;
//! each later one is a file upload (an `UploadFile` frame, the bytes, one
//! answering `ServerFrame`).

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use bytes::{Buf as _, Bytes, BytesMut};
use confab_protocol::{Encoding, codec, v1};
use futures_util::StreamExt as _;
use prost::Message as _;
use quinn::crypto::rustls::QuicServerConfig;
use tokio::sync::Semaphore;

use super::{FrameReader, FrameWriter};
use crate::{config::Config, context::Context, files, session, tls::Identity};

/// Upload streams one connection may have open at once, beside its session.
const UPLOADS_PER_CONNECTION: u8 = 2;
/// Bytes an upload stream's reads take at a time.
const UPLOAD_CHUNK: usize = 64 * 1024;
/// Application error code with which an upload stream's receiving side is
/// stopped when the upload is refused before its end (the answer says why).
const UPLOAD_REFUSED: u32 = 1;

/// Binds the QUIC endpoint.
pub fn bind(identity: &Identity, config: &Config) -> anyhow::Result<quinn::Endpoint> {
    let tls = identity.server_config(&[confab_protocol::ALPN])?;
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(config.idle_timeout().try_into()?))
        .keep_alive_interval(Some(config.ping_interval()))
        // One stream per session and a few uploads; receive windows sized
        // to frames, not to quinn's bulk-transfer defaults.
        .max_concurrent_bidi_streams((1 + UPLOADS_PER_CONNECTION).into())
        .max_concurrent_uni_streams(0u8.into())
        .stream_receive_window((2 * config.limits.max_frame_bytes).into())
        .receive_window((4 * config.limits.max_frame_bytes).into());
    server.transport_config(Arc::new(transport));
    let endpoint = quinn::Endpoint::server(server, config.quic.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen for QUIC on {}: {e}", config.quic.listen))?;
    Ok(endpoint)
}

/// Accepts QUIC connections until shutdown.
pub async fn serve(ctx: Arc<Context>, endpoint: quinn::Endpoint, sessions: Arc<Semaphore>) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = ctx.shutdown.cancelled() => break,
        };
        let Some(incoming) = incoming else { break };
        let ctx2 = ctx.clone();
        let permit = sessions.clone().try_acquire_owned().ok();
        ctx.tracker.spawn(async move {
            let peer = incoming.remote_address();
            let handshake = Duration::from_millis(ctx2.config.limits.handshake_timeout_ms.into());
            let connection = match tokio::time::timeout(handshake, incoming).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "QUIC handshake failed");
                    return;
                }
                Err(_) => return,
            };
            if permit.is_none() {
                connection.close(
                    quinn::VarInt::from(v1::CloseCode::ServerBusy as u32),
                    b"this listener is at its session limit; retry later",
                );
                return;
            }
            let stream = tokio::select! {
                stream = tokio::time::timeout(handshake, connection.accept_bi()) => stream,
                _ = ctx2.shutdown.cancelled() => return,
            };
            let (send, recv) = match stream {
                Ok(Ok(pair)) => pair,
                Ok(Err(_)) => return,
                Err(_) => {
                    connection.close(
                        quinn::VarInt::from(v1::CloseCode::HandshakeTimeout as u32),
                        b"no stream opened within the handshake timeout",
                    );
                    return;
                }
            };
            run_session(ctx2, peer, connection, send, recv).await;
            drop(permit);
        });
    }
}

async fn run_session(
    ctx: Arc<Context>,
    peer: SocketAddr,
    connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let reader = FrameReader::Quic { stream: recv, buffer: BytesMut::with_capacity(1024) };
    let writer = FrameWriter::Quic { stream: send, connection: connection.clone(), scratch: BytesMut::new() };
    let session = session::run(ctx.clone(), peer, Encoding::Proto, reader, writer);
    tokio::pin!(session);
    // Uploads are taken while the session runs; when the connection is
    // gone the session still finishes its own way.
    tokio::select! {
        _ = &mut session => {}
        _ = accept_uploads(ctx, peer, connection) => session.await,
    }
}

/// Takes each further bidirectional stream as an upload, until the
/// connection closes or the daemon shuts down.
async fn accept_uploads(ctx: Arc<Context>, peer: SocketAddr, connection: quinn::Connection) {
    loop {
        let accepted = tokio::select! {
            accepted = connection.accept_bi() => accepted,
            _ = ctx.shutdown.cancelled() => return,
        };
        let Ok((send, recv)) = accepted else { return };
        let ctx2 = ctx.clone();
        ctx.tracker.spawn(async move {
            let span = tracing::info_span!("upload", %peer);
            let _ = tracing::Instrument::instrument(upload(ctx2, send, recv), span).await;
        });
    }
}

/// One upload stream: the `UploadFile` frame, then exactly `size` bytes and
/// the end of the stream; answered with one frame, `file` or `error`.
async fn upload(ctx: Arc<Context>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let mut buffer = BytesMut::new();
    let outcome = match read_header(&ctx, &mut recv, &mut buffer).await {
        Err(error) => Err(error),
        Ok(header) => match files::admit(&ctx, Some(&header.access_token), &header.name, Some(header.size)) {
            Err(error) => Err(error),
            Ok(admitted) => {
                let first = (!buffer.is_empty()).then(|| Ok(buffer.split().freeze()));
                let rest = futures_util::stream::unfold(&mut recv, |recv| async move {
                    match recv.read_chunk(UPLOAD_CHUNK, true).await {
                        Ok(Some(chunk)) => Some((Ok(chunk.bytes), recv)),
                        Ok(None) => None,
                        Err(error) => Some((Err(io::Error::other(error)), recv)),
                    }
                });
                let body = futures_util::stream::iter(first).chain(rest);
                files::receive(&ctx, admitted, Box::pin(body)).await
            }
        },
    };
    let body = match outcome {
        Ok(info) => v1::server_frame::Body::File(info),
        Err(error) => {
            // Whatever the peer still sends is not wanted.
            let _ = recv.stop(UPLOAD_REFUSED.into());
            v1::server_frame::Body::Error(error)
        }
    };
    let frame = codec::encode(&v1::ServerFrame { request_id: 0, body: Some(body) }, Encoding::Proto);
    let mut out = BytesMut::with_capacity(frame.len() + 10);
    codec::put_length_prefix(frame.len(), &mut out);
    out.extend_from_slice(&frame);
    if send.write_all(&out).await.is_ok() {
        let _ = send.finish();
        // Let the answer reach the peer before the stream is dropped.
        let _ = tokio::time::timeout(ctx.config.idle_timeout(), send.stopped()).await;
    }
}

/// Reads the `UploadFile` frame, leaving any bytes after it in `buffer`.
async fn read_header(
    ctx: &Context,
    recv: &mut quinn::RecvStream,
    buffer: &mut BytesMut,
) -> Result<v1::UploadFile, v1::Error> {
    let max = ctx.config.limits.max_frame_bytes_unauthenticated as usize;
    let wait = Duration::from_millis(ctx.config.limits.handshake_timeout_ms.into());
    let invalid = |message: String| v1::Error::new(v1::ErrorCode::InvalidArgument, message);
    loop {
        match codec::split_frame(buffer, max) {
            Ok(Some((prefix, len))) => {
                buffer.advance(prefix);
                let frame: Bytes = buffer.split_to(len).freeze();
                return v1::UploadFile::decode(frame)
                    .map_err(|e| invalid(format!("the first frame of an upload stream is not an UploadFile: {e}")));
            }
            Ok(None) => {}
            Err(e) => return Err(invalid(format!("the UploadFile frame cannot be read: {e}"))),
        }
        match tokio::time::timeout(wait, recv.read_chunk(UPLOAD_CHUNK, true)).await {
            Ok(Ok(Some(chunk))) => buffer.extend_from_slice(&chunk.bytes),
            Ok(Ok(None)) => return Err(invalid("the upload stream ended before its UploadFile frame".into())),
            Ok(Err(e)) => return Err(invalid(format!("the upload stream failed: {e}"))),
            Err(_) => return Err(invalid("no UploadFile frame within the handshake timeout".into())),
        }
    }
}
