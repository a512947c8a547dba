//! File transfers on [`Client`]: uploads over the connection's own QUIC
//! connection (an upload stream) or over HTTP beside the WebSocket, and
//! downloads over HTTP, each with the session's access token.

use std::path::Path;

use confab_protocol::v1;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Client, lock};
use crate::{
    Error, Scheme, Trust,
    transfer::{self, Download, HttpTarget, Progress, TransferSettings},
};

/// A token expiring sooner than this is refreshed before a transfer, which
/// cannot be repeated by itself once its bytes are gone.
const TOKEN_MARGIN_MS: u64 = 60_000;

impl Client {
    /// Uploads the file at `path` under its file name (see
    /// [`Client::upload`]).
    pub async fn upload_file(&self, path: &Path, progress: impl FnMut(Progress) + Send) -> Result<v1::FileInfo, Error> {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| Error::LocalFile(format!("{} names no file", path.display())))?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::LocalFile(format!("cannot open {}: {e}", path.display())))?;
        let size =
            file.metadata().await.map_err(|e| Error::LocalFile(format!("cannot read {}: {e}", path.display())))?.len();
        self.upload(&name, size, &mut file, progress).await
    }

    /// Uploads `size` bytes read from `reader` under `name` (at most 255
    /// bytes), streamed in chunks; `progress` hears how many bytes went out.
    /// Over `quic://` the bytes go on an upload stream of the client's QUIC
    /// connection, over `ws://` and `wss://` in an HTTP `POST /files` to the
    /// same host and port. The server detects the content type, makes a
    /// thumbnail of images, and answers with the file's [`v1::FileInfo`];
    /// attach its `file_id` to a message with
    /// [`SendOptions::attach`](crate::SendOptions::attach). A refusal is an
    /// [`Error::Server`] (`FILE_TOO_LARGE`, `QUOTA_EXCEEDED`,
    /// `RATE_LIMITED`, `FORBIDDEN` for guests, ...); a file over the limit
    /// the server states in `Welcome` is [`Error::FileTooLarge`] without
    /// sending anything. Not retried by itself.
    pub async fn upload(
        &self,
        name: &str,
        size: u64,
        reader: &mut (dyn AsyncRead + Unpin + Send),
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<v1::FileInfo, Error> {
        let limit = self.welcome().and_then(|welcome| welcome.limits).map_or(0, |limits| limits.max_file_bytes);
        if limit > 0 && size > limit {
            // Refused here: a server refusing mid-body may cut the connection
            // before its answer can be read.
            return Err(Error::FileTooLarge { size, limit });
        }
        let token = self.transfer_token().await?;
        let settings = self.transfer_settings();
        if self.url.scheme() == Scheme::Quic {
            let connection = lock(&self.shared)
                .quic
                .clone()
                .ok_or_else(|| Error::Transport("not connected (the upload goes over the QUIC connection)".into()))?;
            let header = v1::UploadFile { name: name.into(), size, access_token: token };
            return transfer::quic_upload(&connection, header, reader, &mut progress, settings.stall_timeout).await;
        }
        let target = self.files_target()?;
        transfer::http_upload(&target, &settings, &token, name, size, reader, &mut progress).await
    }

    /// Downloads file `file_id` into `writer` over HTTP (`GET /files/{id}`),
    /// streamed in chunks; `progress` hears how many bytes came. Files the
    /// user may not see are `FILE_NOT_FOUND`, like unknown ones. With a
    /// `quic://` server URL, downloads need
    /// [`ClientOptions::files_url`](crate::ClientOptions::files_url).
    pub async fn download(
        &self,
        file_id: &str,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        progress: impl FnMut(Progress) + Send,
    ) -> Result<Download, Error> {
        self.download_path(&transfer::percent_encode(file_id), writer, progress).await
    }

    /// Downloads the thumbnail of image `file_id` (see [`Client::download`]).
    pub async fn download_thumbnail(
        &self,
        file_id: &str,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        progress: impl FnMut(Progress) + Send,
    ) -> Result<Download, Error> {
        self.download_path(&format!("{}/thumbnail", transfer::percent_encode(file_id)), writer, progress).await
    }

    async fn download_path(
        &self,
        path: &str,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<Download, Error> {
        let target = self.files_target()?;
        let token = self.transfer_token().await?;
        transfer::http_download(&target, &self.transfer_settings(), &token, path, writer, &mut progress).await
    }

    /// Where HTTP transfers go: `files_url`, else the WebSocket URL's host,
    /// else the HTTP listener the server names in `Welcome.http_url`.
    fn files_target(&self) -> Result<HttpTarget, Error> {
        if let Some(url) = &self.options.files_url {
            return HttpTarget::parse(url);
        }
        if let Some(target) = HttpTarget::of_server(&self.url) {
            return Ok(target);
        }
        match self.welcome().map(|welcome| welcome.http_url).filter(|url| !url.is_empty()) {
            Some(url) => Ok(HttpTarget::parse(&url)?.reached_through(&self.url)),
            None => Err(Error::InvalidState(
                "file downloads go over HTTP and this server names no HTTP listener: set the files URL \
                 (the server's HTTP listener, such as http://HOST:7080)"
                    .into(),
            )),
        }
    }

    /// The access token for a transfer, refreshed first when it is about to
    /// expire.
    async fn transfer_token(&self) -> Result<String, Error> {
        let tokens = self.tokens().ok_or_else(|| Error::InvalidState("not logged in".into()))?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        let expiring = tokens.access_expires_at_ms > 0 && tokens.access_expires_at_ms <= now_ms + TOKEN_MARGIN_MS;
        if expiring && tokens.refresh_token.is_some() {
            let renewed = self.refresh().await?;
            return Ok(renewed.access_token);
        }
        Ok(tokens.access_token)
    }

    fn transfer_settings(&self) -> TransferSettings {
        let trust = match (&self.options.trust, self.server_fingerprint()) {
            // Trusted on first use: the certificate the connection saw.
            (Trust::TrustOnFirstUse, Some(seen)) => Trust::Fingerprint(seen),
            (trust, _) => trust.clone(),
        };
        TransferSettings {
            trust,
            connect_timeout: self.options.connect_timeout,
            stall_timeout: self.options.request_timeout,
        }
    }
}
