//! One live connection of a [`crate::Client`]: the transport plus a reader
//! task (decodes server frames into a bounded channel) and a writer task
//! (writes encoded frames from a bounded channel). Dropping it stops both;
//! [`Connection::close`] closes the transport politely first.

use bytes::Bytes;
use confab_protocol::{Encoding, codec, v1};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument as _;

use crate::{
    Error,
    tls::Fingerprint,
    transport::{self, Received, TransportReader, TransportSettings, TransportWriter},
    url::ServerUrl,
};

/// Frames buffered between the transport tasks and the client's driver in
/// each direction. When full, the reader stops reading (backpressure on the
/// server) and the driver keeps frames in its own queue.
const CHANNEL_FRAMES: usize = 64;

/// What the reader (or a failed writer) reports.
#[derive(Debug)]
pub(crate) enum Incoming {
    Frame(v1::ServerFrame),
    /// The server closed the transport (after its `Close` frame, normally).
    Closed {
        code: Option<i32>,
        reason: String,
    },
    /// Reading or decoding failed; the connection is unusable.
    Failed(Error),
    /// Writing failed; the reader may still report the close code.
    WriteFailed(Error),
}

pub(crate) struct Connection {
    pub incoming: mpsc::Receiver<Incoming>,
    /// Encoded frames for the writer task.
    pub outgoing: mpsc::Sender<Bytes>,
    pub encoding: Encoding,
    pub fingerprint: Option<Fingerprint>,
    /// The QUIC connection (QUIC only), for file upload streams.
    pub quic: Option<quinn::Connection>,
    writer: Option<JoinHandle<()>>,
    cancel: CancellationToken,
}

impl Connection {
    /// Connects and starts the reader and writer tasks on `tracker`; they
    /// stop when `parent` is cancelled or the connection is dropped.
    pub async fn open(
        url: &ServerUrl,
        settings: &TransportSettings,
        tracker: &TaskTracker,
        parent: &CancellationToken,
    ) -> Result<Connection, Error> {
        let connected = transport::connect(url, settings).await?;
        let cancel = parent.child_token();
        let (incoming_tx, incoming) = mpsc::channel(CHANNEL_FRAMES);
        let (outgoing, outgoing_rx) = mpsc::channel(CHANNEL_FRAMES);
        let span = tracing::debug_span!("connection", server = %url.host_port());
        tracker.spawn(
            read_loop(connected.reader, connected.encoding, incoming_tx.clone(), cancel.clone())
                .instrument(span.clone()),
        );
        let writer =
            tracker.spawn(write_loop(connected.writer, outgoing_rx, incoming_tx, cancel.clone()).instrument(span));
        tracing::debug!(server = %url.host_port(), "connected");
        Ok(Connection {
            incoming,
            outgoing,
            encoding: connected.encoding,
            fingerprint: connected.fingerprint,
            quic: connected.quic,
            writer: Some(writer),
            cancel,
        })
    }

    /// The next thing the reader reports; `Closed` once it has stopped.
    pub async fn recv(&mut self) -> Incoming {
        self.incoming.recv().await.unwrap_or(Incoming::Closed { code: None, reason: String::new() })
    }

    /// Writes what is queued, closes the transport politely (bounded by a
    /// short deadline), then stops the tasks.
    pub async fn close(mut self) {
        let Connection { outgoing, writer, .. } = &mut self;
        // Dropping the only sender lets the writer drain and close.
        drop(std::mem::replace(outgoing, mpsc::channel(1).0));
        if let Some(writer) = writer.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn read_loop(
    mut reader: TransportReader,
    encoding: Encoding,
    incoming: mpsc::Sender<Incoming>,
    cancel: CancellationToken,
) {
    let run = async {
        loop {
            let item = match reader.next().await {
                Ok(Received::Frame(payload)) => match codec::decode::<v1::ServerFrame>(&payload, encoding) {
                    Ok(frame) => Incoming::Frame(frame),
                    Err(e) => Incoming::Failed(Error::Protocol(format!("undecodable frame from the server: {e}"))),
                },
                Ok(Received::Closed { code, reason }) => Incoming::Closed { code, reason },
                Err(error) => Incoming::Failed(error),
            };
            let last = !matches!(item, Incoming::Frame(_));
            if incoming.send(item).await.is_err() || last {
                return;
            }
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = run => {}
    }
}

async fn write_loop(
    mut writer: TransportWriter,
    mut outgoing: mpsc::Receiver<Bytes>,
    incoming: mpsc::Sender<Incoming>,
    cancel: CancellationToken,
) {
    let run = async {
        while let Some(frame) = outgoing.recv().await {
            if let Err(error) = writer.send_frame(frame).await {
                tracing::debug!(%error, "write failed");
                let _ = incoming.send(Incoming::WriteFailed(error)).await;
                return;
            }
        }
        writer.close().await;
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = run => {}
    }
}
