//! Files: what an upload goes through whatever its transport (HTTP `POST
//! /files` or a QUIC upload stream) and what a download needs. Bytes stream
//! to a temporary file in `<data_dir>/files/` while they are hashed and
//! counted (never held whole in memory), the content type is detected from
//! them, images get their dimensions and a thumbnail, and the file is renamed
//! to its id and recorded through the writer. Any failure removes what was
//! written.

use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
    sync::Mutex,
};

use bytes::Bytes;
use confab_protocol::v1::{self, ErrorCode};
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::{
    context::{Context, check},
    convert::UserLookup,
    ids::UserId,
    session::{internal, invalid, rate_limited},
    store::{FileRecord, OpOutput, Refusal, StoreError, WriteOp, now_ms},
};

/// Longest file name an uploader may give, in bytes (FileInfo.name).
pub const MAX_NAME_BYTES: usize = 255;
/// Thumbnails fit in this square.
pub const THUMBNAIL_SIDE: u32 = 320;
/// Images are decoded for a thumbnail only up to these dimensions, read
/// from the header first, so a small file cannot make the daemon allocate
/// gigabytes (a decompression bomb). Larger images keep their dimensions
/// but get no thumbnail.
pub const MAX_DECODE_SIDE: u32 = 12_000;
pub const MAX_DECODE_PIXELS: u64 = 64_000_000;
/// Decodes running at once: each may hold a few hundred megabytes.
const DECODES_AT_ONCE: usize = 2;
/// Bytes an upload buffers before writing to its file.
const WRITE_BUFFER: usize = 256 * 1024;
/// Bytes the content type is detected from.
const SNIFF_BYTES: usize = 8 * 1024;
/// Suffix of uploads in progress; any left from a crash are removed at start.
const PARTIAL_SUFFIX: &str = ".part";

/// The files directory and what uploads in flight hold.
pub struct Files {
    dir: PathBuf,
    /// Bytes of uploads between their quota check and their commit, per
    /// user, so concurrent uploads cannot together pass the quota.
    reserved: Mutex<HashMap<UserId, u64>>,
    decodes: tokio::sync::Semaphore,
}

impl Files {
    /// Opens (creating) `dir` and removes partial uploads left by a crash.
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(PARTIAL_SUFFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self { dir, reserved: Mutex::default(), decodes: tokio::sync::Semaphore::new(DECODES_AT_ONCE) })
    }

    /// Removes stored files that have no record: the bytes of uploads cut
    /// off by a crash after their rename and before their record committed
    /// (see [`record_file`]). Costs a directory listing and one lookup per
    /// stored file, once. Only safe before any upload starts (an upload in
    /// flight has its bytes in place before its record), so it runs at
    /// startup, before the listeners. Returns how many it removed.
    pub fn remove_orphans(&self, store: &crate::store::Store) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().filter(|name| is_file_id(name)) else { continue };
            match store.file(id) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                }
                Err(error) => return Err(io::Error::other(error)),
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed stored files without a record (an upload cut off by a crash)");
        }
        Ok(removed)
    }

    /// Where file `id` (already checked to be an id) lives.
    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn partial_path(&self) -> PathBuf {
        self.dir.join(format!(".upload-{}{PARTIAL_SUFFIX}", hex::encode(rand::random::<[u8; 16]>())))
    }

    /// Reserves `size` bytes of `user`'s quota for an upload about to be
    /// recorded; refused when the stored total, the other uploads in flight
    /// and this one would pass `quota`.
    fn reserve(&self, ctx: &Context, user: UserId, size: u64, quota: u64) -> Result<Reservation<'_>, v1::Error> {
        let mut reserved = self.reserved.lock().expect("file reservations lock");
        let stored = ctx.store.user(user).map_err(internal)?.map_or(0, |u| u.file_bytes);
        let pending = reserved.get(&user).copied().unwrap_or(0);
        let total = stored.saturating_add(pending).saturating_add(size);
        if total > quota {
            return Err(quota_exceeded(size, stored.saturating_add(pending), quota));
        }
        *reserved.entry(user).or_default() += size;
        Ok(Reservation { files: self, user, size })
    }
}

/// Quota held for one upload until it is recorded (or fails).
struct Reservation<'a> {
    files: &'a Files,
    user: UserId,
    size: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut reserved = self.files.reserved.lock().expect("file reservations lock");
        if let Some(held) = reserved.get_mut(&self.user) {
            *held = held.saturating_sub(self.size);
            if *held == 0 {
                reserved.remove(&self.user);
            }
        }
    }
}

/// A file on disk that is removed when this is dropped, unless kept: so an
/// upload that fails or is abandoned (its task dropped) leaves nothing.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An upload admitted to send its bytes.
pub struct Admitted {
    user: UserId,
    name: String,
    /// The size the uploader announced (Content-Length, `UploadFile.size`):
    /// the bytes must match it exactly.
    declared: Option<u64>,
}

/// Everything an upload is checked for before its bytes are read: the token
/// (None: none was given), a registered user, the upload rate, the name,
/// and the announced size against the size limit and the quota.
pub fn admit(ctx: &Context, token: Option<&str>, name: &str, declared: Option<u64>) -> Result<Admitted, v1::Error> {
    let token = token.ok_or_else(|| {
        v1::Error::new(ErrorCode::TokenInvalid, "an upload needs an access token (Authorization: Bearer <token>)")
    })?;
    let bearer = crate::session::verify_bearer(ctx, token)?;
    if bearer.record.is_guest() {
        return Err(v1::Error::new(ErrorCode::Forbidden, "guests cannot upload files; register to share files"));
    }
    check(&ctx.limiters.uploads, &bearer.user).map_err(|wait| rate_limited(wait, "uploads"))?;
    check_name(name)?;
    let limits = &ctx.config.files;
    if let Some(size) = declared {
        if size > limits.max_file_bytes {
            return Err(too_large(limits.max_file_bytes));
        }
        let stored = bearer.record.file_bytes;
        if stored.saturating_add(size) > limits.quota_bytes_per_user {
            return Err(quota_exceeded(size, stored, limits.quota_bytes_per_user));
        }
    }
    Ok(Admitted { user: bearer.user, name: name.to_owned(), declared })
}

fn check_name(name: &str) -> Result<(), v1::Error> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(v1::Error::new(
            ErrorCode::InvalidArgument,
            format!("the file name must be 1 to {MAX_NAME_BYTES} bytes"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(v1::Error::new(ErrorCode::InvalidArgument, "the file name must not contain control characters"));
    }
    Ok(())
}

fn too_large(max: u64) -> v1::Error {
    v1::Error::new(ErrorCode::FileTooLarge, format!("files may be at most {max} bytes"))
}

fn quota_exceeded(size: u64, used: u64, quota: u64) -> v1::Error {
    v1::Error::new(
        ErrorCode::QuotaExceeded,
        format!("this file ({size} bytes) does not fit: your files take {used} of your {quota} bytes"),
    )
}

/// Receives an admitted upload's bytes from `body` and records the file.
/// Refuses with FILE_TOO_LARGE as soon as the bytes pass the limit; any
/// failure, or dropping this future, leaves nothing behind, except that
/// once the record is handed to the writer the bytes stay (the record may
/// commit whatever becomes of this future; see [`record_file`]).
pub async fn receive<S>(ctx: &Context, upload: Admitted, mut body: S) -> Result<v1::FileInfo, v1::Error>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    let files = &ctx.files;
    let max = ctx.config.files.max_file_bytes;
    let idle = ctx.config.idle_timeout();
    let scratch = Scratch { path: files.partial_path(), keep: false };
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&scratch.path)
        .await
        .map_err(|e| io_failure("cannot create an upload file", e))?;
    // Small pieces (HTTP chunks of a few KiB) are written in larger runs.
    let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut utf8 = Utf8Check::default();
    let mut size: u64 = 0;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle, body.next()) => next,
            _ = ctx.shutdown.cancelled() => {
                let message = "the server is shutting down; upload again shortly";
                return Err(v1::Error::temporary(ErrorCode::Unavailable, message, 1000));
            }
        };
        let chunk = match next {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(error))) => return Err(invalid(format!("the upload was cut off after {size} bytes: {error}"))),
            Ok(None) => break,
            Err(_) => {
                return Err(invalid(format!(
                    "nothing arrived for {} ms after {size} bytes; the upload is abandoned",
                    idle.as_millis()
                )));
            }
        };
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large(max));
        }
        if upload.declared.is_some_and(|declared| size > declared) {
            return Err(invalid(format!("more bytes than the {} announced", upload.declared.unwrap_or(0))));
        }
        hasher.update(&chunk);
        utf8.feed(&chunk);
        let room = SNIFF_BYTES - head.len();
        head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        file.write_all(&chunk).await.map_err(|e| io_failure("cannot write an upload file", e))?;
    }
    if let Some(declared) = upload.declared
        && size != declared
    {
        return Err(invalid(format!("the upload ended after {size} of the {declared} bytes announced")));
    }
    file.flush().await.map_err(|e| io_failure("cannot write an upload file", e))?;
    file.get_ref().sync_all().await.map_err(|e| io_failure("cannot write an upload file", e))?;
    drop(file);
    let _reservation = files.reserve(ctx, upload.user, size, ctx.config.files.quota_bytes_per_user)?;

    let content_type = content_type(&head, utf8.finish());
    let image = match image_format(&content_type) {
        Some(format) => examine_image(files, scratch.path.clone(), format).await,
        None => None,
    };
    let id = new_id();
    let mut stored = Scratch { path: files.path(&id), keep: false };
    tokio::fs::rename(&scratch.path, &stored.path).await.map_err(|e| io_failure("cannot store an upload", e))?;
    let mut record = FileRecord {
        owner: upload.user.0,
        name: upload.name,
        content_type,
        size,
        sha256: hasher.finalize().to_vec(),
        uploaded_at_ms: now_ms(),
        ..Default::default()
    };
    if let Some(image) = &image {
        record.width = image.width;
        record.height = image.height;
    }
    sync_dir(&files.dir).await;
    record_file(ctx, id.clone(), record.clone(), &mut stored).await?;

    if let Some(thumbnail) = image.and_then(|image| image.thumbnail) {
        match store_thumbnail(ctx, &id, &record, thumbnail).await {
            Ok(thumbnail_id) => record.thumbnail_id = thumbnail_id,
            Err(error) => tracing::warn!(file = %id, %error, "the thumbnail could not be stored"),
        }
    }
    tracing::info!(file = %id, size, content_type = %record.content_type, "file uploaded");
    file_info(ctx, &id, &record).map_err(internal)
}

/// Records file `id`, whose bytes are in place at `stored`. From the moment
/// the writer has the operation the bytes are kept (`stored.keep`), so that
/// dropping this future while the writer works cannot leave a record
/// without its bytes. They are removed only when the answer says nothing
/// was recorded: the writer refused the file, or its batch failed. Any
/// other end (the writer stopped without answering) keeps them: at worst
/// an orphan, which [`Files::remove_orphans`] removes at the next start.
async fn record_file(ctx: &Context, id: String, record: FileRecord, stored: &mut Scratch) -> Result<(), v1::Error> {
    let op = WriteOp::StoreFile { id, record, quota_bytes: ctx.config.files.quota_bytes_per_user };
    // Not queued if this future is dropped while waiting for room in the
    // queue (the channel's send is cancel-safe); queued once it returns.
    let answer = ctx.writer.submit(op).await.map_err(internal)?;
    stored.keep = true;
    match answer.await {
        Ok(Ok(Ok(OpOutput::Done))) => Ok(()),
        Ok(Ok(Ok(other))) => {
            tracing::error!(?other, "unexpected write output");
            Err(v1::Error::temporary(ErrorCode::Internal, "internal error", 1000))
        }
        Ok(Ok(Err(refusal))) => {
            stored.keep = false;
            Err(refused(refusal))
        }
        // The writer answers errors only for a failed batch, which applied
        // nothing.
        Ok(Err(error)) => {
            stored.keep = false;
            Err(internal(error))
        }
        Err(_) => Err(internal(StoreError::Closed)),
    }
}

fn refused(refusal: Refusal) -> v1::Error {
    let code = match &refusal {
        Refusal::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
        Refusal::Forbidden(_) => ErrorCode::Forbidden,
        Refusal::FileNotFound(_) => ErrorCode::FileNotFound,
        Refusal::TokenInvalid | Refusal::UserNotFound => ErrorCode::TokenInvalid,
        _ => ErrorCode::InvalidArgument,
    };
    v1::Error::new(code, refusal.to_string())
}

/// Stores a thumbnail as its own file; returns its id.
async fn store_thumbnail(
    ctx: &Context,
    original_id: &str,
    original: &FileRecord,
    thumbnail: Thumbnail,
) -> Result<String, String> {
    let files = &ctx.files;
    let scratch = Scratch { path: files.partial_path(), keep: false };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&scratch.path)
        .await
        .map_err(|e| e.to_string())?;
    file.write_all(&thumbnail.bytes).await.map_err(|e| e.to_string())?;
    file.sync_all().await.map_err(|e| e.to_string())?;
    drop(file);
    let id = new_id();
    let mut stored = Scratch { path: files.path(&id), keep: false };
    tokio::fs::rename(&scratch.path, &stored.path).await.map_err(|e| e.to_string())?;
    sync_dir(&files.dir).await;
    let record = FileRecord {
        owner: original.owner,
        name: format!("thumbnail.{}", thumbnail.extension),
        content_type: thumbnail.content_type.into(),
        size: thumbnail.bytes.len() as u64,
        width: thumbnail.width,
        height: thumbnail.height,
        sha256: Sha256::digest(&thumbnail.bytes).to_vec(),
        uploaded_at_ms: original.uploaded_at_ms,
        thumbnail_of: original_id.to_owned(),
        ..Default::default()
    };
    record_file(ctx, id.clone(), record, &mut stored).await.map_err(|e| e.message)?;
    Ok(id)
}

/// Makes a rename durable (best effort: not every platform can).
async fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    {
        let dir = dir.to_owned();
        let _ = tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all()).await;
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn io_failure(what: &str, error: io::Error) -> v1::Error {
    tracing::error!(%error, "{what}");
    v1::Error::temporary(ErrorCode::Internal, "the server could not store the file; try again", 1000)
}

/// A new file id: 32 lowercase hex characters from 128 random bits.
fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Whether `id` has the shape of a file id (and so is safe in a path).
pub fn is_file_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn not_found(id: &str) -> v1::Error {
    v1::Error::new(ErrorCode::FileNotFound, format!("no file {id:?} that you may see"))
}

/// A file `user` may see, by id (FILE_NOT_FOUND for one they may not, so ids
/// do not leak).
pub fn visible(ctx: &Context, user: UserId, id: &str) -> Result<FileRecord, v1::Error> {
    if !is_file_id(id) {
        return Err(not_found(id));
    }
    ctx.store.visible_file(id, user).map_err(internal)?.ok_or_else(|| not_found(id))
}

/// A file as clients see it, its owner resolved.
pub fn file_info(ctx: &Context, id: &str, record: &FileRecord) -> Result<v1::FileInfo, StoreError> {
    let owner = UserLookup::new(&ctx.store).get(record.owner)?;
    Ok(crate::convert::file_info(id, record, Some(crate::convert::user(&owner))))
}

/// A file opened for download.
pub struct Download {
    pub file: tokio::fs::File,
    pub size: u64,
    pub content_type: String,
    pub name: String,
}

impl Download {
    /// Whether browsers may show it in place: images (FILE-6), but not SVG,
    /// which is a document with scripts (the sandbox policy would hold it,
    /// but there is no need to try).
    pub fn inline(&self) -> bool {
        self.content_type.starts_with("image/") && !self.content_type.starts_with("image/svg")
    }
}

/// Opens file `id` (or its thumbnail) for `bearer`, if they may see it.
pub async fn open(
    ctx: &Context,
    bearer: &crate::session::Bearer,
    id: &str,
    thumbnail: bool,
) -> Result<Download, v1::Error> {
    let record = visible(ctx, bearer.user, id)?;
    let (id, record) = if thumbnail {
        if record.thumbnail_id.is_empty() {
            return Err(v1::Error::new(ErrorCode::FileNotFound, format!("file {id:?} has no thumbnail")));
        }
        let thumbnail = ctx.store.file(&record.thumbnail_id).map_err(internal)?.ok_or_else(|| not_found(id))?;
        (record.thumbnail_id.clone(), thumbnail)
    } else {
        (id.to_owned(), record)
    };
    let file =
        tokio::fs::File::open(ctx.files.path(&id)).await.map_err(|e| io_failure("cannot open a stored file", e))?;
    Ok(Download { file, size: record.size, content_type: record.content_type, name: record.name })
}

/// The content type of a file that starts with `head`, from its bytes.
fn content_type(head: &[u8], utf8: bool) -> String {
    match infer::get(head) {
        Some(kind) => kind.mime_type().to_owned(),
        None if utf8 => "text/plain; charset=utf-8".to_owned(),
        None => "application/octet-stream".to_owned(),
    }
}

fn image_format(content_type: &str) -> Option<image::ImageFormat> {
    match content_type {
        "image/png" => Some(image::ImageFormat::Png),
        "image/jpeg" => Some(image::ImageFormat::Jpeg),
        "image/gif" => Some(image::ImageFormat::Gif),
        "image/webp" => Some(image::ImageFormat::WebP),
        _ => None,
    }
}

/// What decoding an image found.
struct ImageFacts {
    width: u32,
    height: u32,
    thumbnail: Option<Thumbnail>,
}

struct Thumbnail {
    bytes: Vec<u8>,
    content_type: &'static str,
    extension: &'static str,
    width: u32,
    height: u32,
}

/// Reads an image's dimensions and makes its thumbnail, off the async
/// threads and a few at a time. None: it does not decode.
async fn examine_image(files: &Files, path: PathBuf, format: image::ImageFormat) -> Option<ImageFacts> {
    let _permit = files.decodes.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || examine_image_blocking(&path, format)).await.ok().flatten()
}

fn examine_image_blocking(path: &Path, format: image::ImageFormat) -> Option<ImageFacts> {
    // The header alone first, without limits, for the dimensions; the
    // decode only within them.
    let reader = |bounded: bool| -> io::Result<image::ImageReader<io::BufReader<std::fs::File>>> {
        let mut reader = image::ImageReader::open(path)?;
        reader.set_format(format);
        if bounded {
            let mut limits = image::Limits::default();
            limits.max_image_width = Some(MAX_DECODE_SIDE);
            limits.max_image_height = Some(MAX_DECODE_SIDE);
            reader.limits(limits);
        }
        Ok(reader)
    };
    let (width, height) = reader(false).ok()?.into_dimensions().ok()?;
    if width == 0 || height == 0 {
        return None;
    }
    if width > MAX_DECODE_SIDE || height > MAX_DECODE_SIDE || u64::from(width) * u64::from(height) > MAX_DECODE_PIXELS {
        return Some(ImageFacts { width, height, thumbnail: None });
    }
    let image = reader(true).ok()?.decode().ok()?;
    let small = if width > THUMBNAIL_SIDE || height > THUMBNAIL_SIDE {
        image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        image
    };
    let mut bytes = io::Cursor::new(Vec::new());
    let (content_type, extension) = if format == image::ImageFormat::Jpeg {
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80);
        small.to_rgb8().write_with_encoder(encoder).ok()?;
        ("image/jpeg", "jpg")
    } else {
        small.write_to(&mut bytes, image::ImageFormat::Png).ok()?;
        ("image/png", "png")
    };
    let thumbnail =
        Thumbnail { bytes: bytes.into_inner(), content_type, extension, width: small.width(), height: small.height() };
    Some(ImageFacts { width, height, thumbnail: Some(thumbnail) })
}

/// Whether a byte stream, fed in pieces, is valid UTF-8 (a character may
/// straddle two pieces).
#[derive(Default)]
struct Utf8Check {
    invalid: bool,
    /// The start of a character cut by the end of the last piece.
    carry: Vec<u8>,
}

impl Utf8Check {
    fn feed(&mut self, mut piece: &[u8]) {
        if self.invalid {
            return;
        }
        while !self.carry.is_empty() {
            let Some((&first, rest)) = piece.split_first() else { return };
            self.carry.push(first);
            piece = rest;
            match std::str::from_utf8(&self.carry) {
                Ok(_) => self.carry.clear(),
                Err(e) if e.error_len().is_some() => {
                    self.invalid = true;
                    return;
                }
                Err(_) => {}
            }
        }
        if let Err(e) = std::str::from_utf8(piece) {
            match e.error_len() {
                Some(_) => self.invalid = true,
                None => self.carry.extend_from_slice(&piece[e.valid_up_to()..]),
            }
        }
    }

    fn finish(&self) -> bool {
        !self.invalid && self.carry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_in_pieces(bytes: &[u8], at: &[usize]) -> bool {
        let mut check = Utf8Check::default();
        let mut start = 0;
        for &end in at {
            check.feed(&bytes[start..end]);
            start = end;
        }
        check.feed(&bytes[start..]);
        check.finish()
    }

    #[test]
    fn utf8_is_checked_across_pieces() {
        let text = "héllo → 🎉 wörld".as_bytes();
        for cut in 0..=text.len() {
            assert!(check_in_pieces(text, &[cut]), "cut at {cut}");
        }
        let every_byte: Vec<usize> = (1..text.len()).collect();
        assert!(check_in_pieces(text, &every_byte));
        assert!(!check_in_pieces(b"ok \xff", &[]));
        assert!(!check_in_pieces(b"cut \xe2\x86", &[5]), "a character cut off at the end");
        assert!(!check_in_pieces(b"\xe2\x28\xa1", &[1]), "a bad continuation after a cut");
    }

    #[test]
    fn content_types_come_from_the_bytes() {
        assert_eq!(content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", false), "image/png");
        assert_eq!(content_type(b"just words", true), "text/plain; charset=utf-8");
        assert_eq!(content_type(b"\x00\x01\x02\xff", false), "application/octet-stream");
    }

    #[test]
    fn stored_files_without_a_record_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("test.redb")).unwrap();
        let files = Files::open(dir.path().join("files")).unwrap();
        let (recorded, orphan) = (new_id(), new_id());
        let db = store.database();
        let txn = db.begin_write().unwrap();
        txn.open_table(crate::store::tables::FILES)
            .unwrap()
            .insert(recorded.as_str(), FileRecord { owner: 1, size: 1, ..Default::default() })
            .unwrap();
        txn.commit().unwrap();
        for name in [recorded.as_str(), orphan.as_str(), "notes.txt"] {
            std::fs::write(files.path(name), b"x").unwrap();
        }
        assert_eq!(files.remove_orphans(&store).unwrap(), 1);
        assert!(files.path(&recorded).exists(), "a recorded file stays");
        assert!(!files.path(&orphan).exists(), "an orphan goes");
        assert!(files.path("notes.txt").exists(), "what is not a file id is not ours to remove");
    }

    #[test]
    fn file_ids_are_32_lowercase_hex() {
        assert!(is_file_id(&new_id()));
        assert!(!is_file_id("../../etc/passwd"));
        assert!(!is_file_id(&"A".repeat(32)));
        assert!(!is_file_id(&"a".repeat(31)));
    }
}
