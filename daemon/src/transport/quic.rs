//! The QUIC listener: ALPN `confab/1`, one bidirectional stream per session
//! carrying varint length-delimited protobuf frames.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::BytesMut;
use confab_protocol::{Encoding, v1};
use quinn::crypto::rustls::QuicServerConfig;
use tokio::sync::Semaphore;

use super::{FrameReader, FrameWriter};
use crate::{config::Config, context::Context, session, tls::Identity};

/// Binds the QUIC endpoint.
pub fn bind(identity: &Identity, config: &Config) -> anyhow::Result<quinn::Endpoint> {
    let tls = identity.server_config(&[confab_protocol::ALPN])?;
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(config.idle_timeout().try_into()?))
        .keep_alive_interval(Some(config.ping_interval()))
        // One stream per session; receive windows sized to frames, not to
        // quinn's bulk-transfer defaults.
        .max_concurrent_bidi_streams(1u8.into())
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
    let writer = FrameWriter::Quic { stream: send, connection, scratch: BytesMut::new() };
    session::run(ctx, peer, Encoding::Proto, reader, writer).await;
}
