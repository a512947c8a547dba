//! Feature level 2, §28 files: uploads over HTTP and QUIC, downloads and
//! who may make them, attachments, avatars, and the limits of LIMIT-6.

use bytes::BytesMut;
use confab_protocol::codec;
use confab_sdk::v1::{self, client_frame::Command, server_frame::Body};
use prost::Message as _;
use sha2::{Digest as _, Sha256};

use super::{
    Case, Ctx,
    calls::{self, brief, delete, get_file, message, message_at, profile, room_info, send, set_profile, update_room},
    conn::by_id,
    events::plausible_time,
    hand::Hand,
    http::{self, Body as HttpBody, Response, percent},
    show::show_frame,
};
use crate::{
    evidence::Direction,
    outcome::{CaseResult, Stop},
    wire::{Wire, Wires},
};

const FILES: &str = "Files";

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "files/upload-http",
            FILES,
            "POST /files answers 201 with a FileInfo: a random id, the detected type, size, digest, and image dimensions",
            &["FILE-1", "FILE-2", "FILE-3", "FILE-11", "LIMIT-6"],
            Wires::Once,
            upload_http,
        ),
        Case::new(
            "files/upload-refused",
            FILES,
            "Uploads without a valid token, name or size, by guests, with other methods, or over quota are refused",
            &["FILE-4", "LIMIT-6"],
            Wires::Once,
            upload_refused,
        ),
        Case::new(
            "files/download",
            FILES,
            "GET /files/ID serves the owner, readers of a room it was posted in, and no one else, with safe headers",
            &["FILE-5", "FILE-6", "FILE-10", "FILE-11"],
            Wires::All,
            download,
        ),
        Case::new(
            "files/attach-refused",
            FILES,
            "Attachments must be the sender's own files, not thumbnails, at most max_attachments; deletion drops them",
            &["FILE-10", "SEND-1", "DEL-3", "ERR-3"],
            Wires::All,
            attach_refused,
        ),
        Case::new(
            "files/avatars",
            FILES,
            "An avatar is one's own image; it becomes visible to everyone",
            &["FILE-9", "PROFILE-2", "UPDATE-2"],
            Wires::All,
            avatars,
        ),
        Case::new(
            "files/upload-quic",
            FILES,
            "A QUIC upload stream carries UploadFile and the bytes and gets one ServerFrame back; bad uploads get errors",
            &["FILE-7", "FILE-8", "QUIC-3", "LIMIT-6"],
            Wires::Quic,
            upload_quic,
        ),
    ]
}

// --- content ---

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A valid RGB PNG of `width` × `height` (a gradient), its pixel data in
/// stored (uncompressed) deflate blocks: no compression library needed.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity((height * (1 + width * 3)) as usize);
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            raw.extend_from_slice(&[(x * 255 / width.max(1)) as u8, (y * 255 / height.max(1)) as u8, 128]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &header);
    png_chunk(&mut out, b"IDAT", &zlib);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Width and height from a PNG's IHDR, if `data` is a PNG.
fn png_size(data: &[u8]) -> Option<(u32, u32)> {
    if data.len() < 24 || &data[..8] != b"\x89PNG\r\n\x1a\n" || &data[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    Some((word(16), word(20)))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

// --- uploads ---

/// `POST /files?name=...` with `content` as `token`'s user.
async fn post(cx: &Ctx, token: &str, name: &str, content: &[u8]) -> CaseResult<Response> {
    http::request(cx, "POST", &format!("/files?name={}", percent(name)), Some(token), &[], HttpBody::Bytes(content))
        .await
}

/// An upload that must succeed; its `FileInfo`.
async fn upload(cx: &Ctx, token: &str, name: &str, content: &[u8]) -> CaseResult<v1::FileInfo> {
    let response = post(cx, token, name, content).await?;
    file_info(&response).ok_or_else(|| {
        Stop::Failed(format!("uploading {name:?}: expected 201 and a FileInfo, got {}", response.brief()))
    })
}

fn file_info(response: &Response) -> Option<v1::FileInfo> {
    (response.status == 201).then(|| serde_json::from_slice(&response.body).ok()).flatten()
}

async fn get(cx: &Ctx, token: Option<&str>, path: &str) -> CaseResult<Response> {
    http::request(cx, "GET", path, token, &[], HttpBody::None).await
}

/// `max_file_bytes` from `Welcome` (LIMIT-6); the case cannot check the
/// size limit without it.
fn stated_max(cx: &Ctx, conn: &super::Conn) -> CaseResult<u64> {
    let max = conn.limits().max_file_bytes;
    cx.ensure("LIMIT-6", max > 0, format!("Welcome states max_file_bytes: {max}"))?;
    Ok(max)
}

fn is_file_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

async fn upload_http(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, _) = cx.user("bob").await?;
    let limits = ada.limits();
    cx.check(
        "LIMIT-6",
        limits.max_file_bytes > 0 && limits.max_attachments > 0,
        format!(
            "Welcome states max_file_bytes {} and max_attachments {}",
            limits.max_file_bytes, limits.max_attachments
        ),
    );

    let text = "Grüße aus Zürich 👋\nline two\n".as_bytes();
    let response = http::request(
        &cx,
        "POST",
        &format!("/files?name={}", percent("notes ü.txt")),
        Some(&ada_user.access_token),
        &[("Content-Type", "image/png")],
        HttpBody::Bytes(text),
    )
    .await?;
    cx.check(
        "FILE-3",
        response.status == 201 && response.header("content-type").is_some_and(|t| t.starts_with("application/json")),
        format!("201 with application/json: {} {:?}", response.status, response.header("content-type")),
    );
    let info = file_info(&response)
        .ok_or_else(|| Stop::Failed(format!("expected a FileInfo in JSON, got {}", response.brief())))?;
    cx.check(
        "FILE-1",
        is_file_id(&info.file_id)
            && info.name == "notes ü.txt"
            && info.size == text.len() as u64
            && info.sha256 == sha256_hex(text)
            && plausible_time(info.uploaded_at_ms)
            && info.owner.as_ref().is_some_and(|u| u.user_id == ada_user.id),
        format!(
            "32 hex digits of id, the name, size {}, SHA-256 {}, now, owner ada; got {info:?}",
            text.len(),
            sha256_hex(text)
        ),
    );
    cx.check(
        "FILE-2",
        info.content_type.starts_with("text/plain") && info.width == 0 && info.thumbnail_file_id.is_empty(),
        format!("UTF-8 text is text/plain whatever the uploader claimed (image/png): {:?}", info.content_type),
    );
    let again = upload(&cx, &ada_user.access_token, "notes ü.txt", text).await?;
    cx.check(
        "FILE-1",
        again.file_id != info.file_id,
        format!("the same content uploaded again gets another id: {}", again.file_id),
    );

    let binary: Vec<u8> = (0..=255u8).rev().cycle().take(3000).collect();
    let info_bin = upload(&cx, &ada_user.access_token, "blob.bin", &binary).await?;
    cx.check(
        "FILE-2",
        info_bin.content_type == "application/octet-stream",
        format!(
            "bytes that are not UTF-8 and no known format: application/octet-stream; got {:?}",
            info_bin.content_type
        ),
    );

    let image = png(480, 360);
    let info_png = upload(&cx, &ada_user.access_token, "gradient.png", &image).await?;
    cx.check(
        "FILE-2",
        info_png.content_type == "image/png"
            && (info_png.width, info_png.height) == (480, 360)
            && is_file_id(&info_png.thumbnail_file_id)
            && info_png.thumbnail_file_id != info_png.file_id,
        format!("a 480×360 PNG: image/png, its size, and a thumbnail of its own; got {info_png:?}"),
    );
    if is_file_id(&info_png.thumbnail_file_id) {
        let response =
            get(&cx, Some(&ada_user.access_token), &format!("/files/{}/thumbnail", info_png.file_id)).await?;
        let kind = response.header("content-type").unwrap_or_default().to_owned();
        let size = png_size(&response.body);
        let small = match size {
            Some((w, h)) => w <= 320 && h <= 320 && w > 0,
            None => kind == "image/jpeg" && response.body.starts_with(&[0xff, 0xd8]),
        };
        cx.check(
            "FILE-2",
            response.status == 200 && (kind == "image/png" || kind == "image/jpeg") && small,
            format!("the thumbnail is a PNG or JPEG within 320×320: {} {kind} {size:?}", response.status),
        );
        let thumb = ada.request(get_file(&info_png.thumbnail_file_id)).await?;
        cx.check(
            "FILE-2",
            matches!(&thumb, Ok(Body::File(f)) if f.file_id == info_png.thumbnail_file_id),
            format!("the thumbnail has a FileInfo of its own: {}", brief(&thumb)),
        );
    }
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend_from_slice(b"this is not an image at all");
    let info_broken = upload(&cx, &ada_user.access_token, "broken.png", &broken).await?;
    cx.check(
        "FILE-2",
        info_broken.width == 0 && info_broken.height == 0 && info_broken.thumbnail_file_id.is_empty(),
        format!("an image that does not decode is kept without dimensions or thumbnail: {info_broken:?}"),
    );

    let reply = ada.request(get_file(&info.file_id)).await?;
    cx.check(
        "FILE-11",
        matches!(&reply, Ok(Body::File(f)) if *f == info),
        format!("GetFile by the owner answers the upload's FileInfo: {}", brief(&reply)),
    );
    let reply = bob.request(get_file(&info.file_id)).await?;
    cx.check_refused("FILE-11", "GetFile of another user's unposted file", &reply, v1::ErrorCode::FileNotFound);
    let reply = bob.request(get_file("0123456789abcdef0123456789abcdef")).await?;
    cx.check_refused("FILE-11", "GetFile of an unknown id", &reply, v1::ErrorCode::FileNotFound);
    let reply = bob.request(get_file("../../etc/passwd")).await?;
    cx.check_refused("FILE-11", "GetFile of a malformed id", &reply, v1::ErrorCode::FileNotFound);
    Ok(())
}

async fn upload_refused(cx: Ctx) -> CaseResult {
    let (ada, ada_user) = cx.user("ada").await?;
    let max = stated_max(&cx, &ada)?;
    let token = ada_user.access_token.clone();
    let small = b"small".as_slice();
    let path = format!("/files?name={}", percent("a.txt"));

    let response = http::request(&cx, "POST", &path, None, &[], HttpBody::Bytes(small)).await?;
    cx.check(
        "FILE-4",
        response.is_error(401, "TOKEN_INVALID"),
        format!("no token: 401 TOKEN_INVALID; got {}", response.brief()),
    );
    let response = http::request(&cx, "POST", &path, Some("not.a.token"), &[], HttpBody::Bytes(small)).await?;
    cx.check(
        "FILE-4",
        response.is_error(401, "TOKEN_INVALID"),
        format!("a malformed token: 401 TOKEN_INVALID; got {}", response.brief()),
    );
    let response = http::request(&cx, "POST", "/files", Some(&token), &[], HttpBody::Bytes(small)).await?;
    cx.check(
        "FILE-4",
        response.is_error(400, "INVALID_ARGUMENT"),
        format!("no name: 400 INVALID_ARGUMENT; got {}", response.brief()),
    );
    let long = format!("/files?name={}", "n".repeat(256));
    let response = http::request(&cx, "POST", &long, Some(&token), &[], HttpBody::Bytes(small)).await?;
    cx.check(
        "FILE-4",
        response.is_error(400, "INVALID_ARGUMENT"),
        format!("a 256-byte name: 400 INVALID_ARGUMENT; got {}", response.brief()),
    );
    let response = http::request(&cx, "POST", &path, Some(&token), &[], HttpBody::Announce(max + 1)).await?;
    cx.check(
        "FILE-4",
        response.is_error(413, "FILE_TOO_LARGE"),
        format!(
            "Content-Length {} (max_file_bytes + 1), refused before the body: 413 FILE_TOO_LARGE; got {}",
            max + 1,
            response.brief()
        ),
    );
    if max <= 8 * 1024 * 1024 {
        let over = vec![b'x'; max as usize + 1];
        let response = http::request(&cx, "POST", &path, Some(&token), &[], HttpBody::Chunked(&over)).await?;
        cx.check(
            "FILE-4",
            response.is_error(413, "FILE_TOO_LARGE"),
            format!("a chunked body of {} bytes: 413 FILE_TOO_LARGE; got {}", max + 1, response.brief()),
        );
    }
    let response = http::request(&cx, "PUT", &path, Some(&token), &[], HttpBody::Bytes(small)).await?;
    cx.check("FILE-4", response.status == 405, format!("PUT /files: 405; got {}", response.brief()));

    let mut guest = cx.open("guest").await?;
    let auth = guest.guest(&cx.name("guest")).await?;
    let response = post(&cx, &auth.access_token, "a.txt", small).await?;
    cx.check(
        "FILE-4",
        response.is_error(403, "FORBIDDEN"),
        format!("a guest: 403 FORBIDDEN; got {}", response.brief()),
    );

    // The quota: uploads of the largest size until the server says 507, when
    // that takes a reasonable amount of data.
    if max <= 4 * 1024 * 1024 {
        let big = vec![b'q'; max as usize];
        let mut refused = None;
        for i in 0..8 {
            let response = post(&cx, &token, &format!("big-{i}.txt"), &big).await?;
            if response.status != 201 {
                refused = Some(response);
                break;
            }
        }
        match refused {
            Some(response) => {
                cx.check(
                    "FILE-4",
                    response.is_error(507, "QUOTA_EXCEEDED"),
                    format!("over the storage quota: 507 QUOTA_EXCEEDED; got {}", response.brief()),
                );
            }
            None => {
                cx.note(format!("eight uploads of {max} bytes did not reach the quota: QUOTA_EXCEEDED not checked"))
            }
        }
    } else {
        cx.note(format!("max_file_bytes is {max}: the quota is not tried"));
    }
    Ok(())
}

/// Checks the headers of a download of `info` (FILE-6).
fn check_download(cx: &Ctx, response: &Response, info: &v1::FileInfo, content: &[u8], inline: bool) {
    cx.check(
        "FILE-6",
        response.status == 200 && response.body == content,
        format!("GET {}: 200 with the exact content; got {}", info.name, response.brief()),
    );
    let disposition = response.header("content-disposition").unwrap_or_default();
    let expected_kind = if inline { "inline" } else { "attachment" };
    let checks = [
        ("Content-Type", response.header("content-type") == Some(info.content_type.as_str())),
        ("Content-Length", response.header("content-length") == Some(content.len().to_string().as_str())),
        (
            "Content-Disposition",
            disposition.starts_with(expected_kind)
                && disposition.contains(&format!("filename*=UTF-8''{}", percent(&info.name))),
        ),
        ("X-Content-Type-Options", response.header("x-content-type-options") == Some("nosniff")),
        ("Content-Security-Policy", response.header("content-security-policy") == Some("sandbox")),
        ("Cache-Control", response.header("cache-control") == Some("private, max-age=31536000, immutable")),
    ];
    for (name, held) in checks {
        cx.check(
            "FILE-6",
            held,
            format!("{name} of {:?} ({}, {expected_kind}): {:?}", info.name, info.content_type, response.header(name)),
        );
    }
}

async fn download(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let (_cy, cy_user) = cx.user("cy").await?;
    let text = "a shopping list: 🍎, 🥖, ☕\n".as_bytes();
    let doc = upload(&cx, &ada_user.access_token, "liste d'achats.txt", text).await?;
    let image = png(64, 48);
    let pic = upload(&cx, &ada_user.access_token, "tiny.png", &image).await?;

    let response = get(&cx, Some(&ada_user.access_token), &format!("/files/{}", doc.file_id)).await?;
    check_download(&cx, &response, &doc, text, false);
    let response = get(&cx, Some(&ada_user.access_token), &format!("/files/{}", pic.file_id)).await?;
    check_download(&cx, &response, &pic, &image, true);

    let response = get(&cx, None, &format!("/files/{}", doc.file_id)).await?;
    cx.check(
        "FILE-5",
        response.is_error(401, "TOKEN_INVALID"),
        format!("no token: 401 TOKEN_INVALID; got {}", response.brief()),
    );
    let response = get(&cx, Some(&bob_user.access_token), &format!("/files/{}", doc.file_id)).await?;
    cx.check(
        "FILE-5",
        response.is_error(404, "FILE_NOT_FOUND"),
        format!("another user, before it is posted: 404 FILE_NOT_FOUND; got {}", response.brief()),
    );
    let response = get(&cx, Some(&bob_user.access_token), "/files/0123456789abcdef0123456789abcdef").await?;
    cx.check(
        "FILE-5",
        response.is_error(404, "FILE_NOT_FOUND"),
        format!("an unknown id: 404 FILE_NOT_FOUND; got {}", response.brief()),
    );
    let response = get(&cx, Some(&ada_user.access_token), &format!("/files/{}/thumbnail", doc.file_id)).await?;
    cx.check(
        "FILE-5",
        response.is_error(404, "FILE_NOT_FOUND"),
        format!("the thumbnail of a text file: 404 FILE_NOT_FOUND; got {}", response.brief()),
    );

    let private = cx.new_room(&mut ada, v1::RoomKind::Private).await?;
    ada.invite(by_id(private.room_id), &bob_user.name).await?;
    let result = calls::sent(
        &mut ada,
        send(v1::SendMessage {
            attachment_ids: vec![doc.file_id.clone(), pic.file_id.clone()],
            ..message(private.room_id, "", "dl-1")
        }),
    )
    .await?;
    let stored = message_at(&mut ada, private.room_id, result.seq).await?;
    let ids: Vec<String> =
        stored.as_ref().map(|m| m.attachments.iter().map(|f| f.file_id.clone()).collect()).unwrap_or_default();
    cx.check(
        "FILE-10",
        ids == [doc.file_id.clone(), pic.file_id.clone()] && stored.as_ref().is_some_and(|m| m.attachments[0] == doc),
        format!("the message carries the FileInfos in the order given: {ids:?}"),
    );
    let response = get(&cx, Some(&bob_user.access_token), &format!("/files/{}", doc.file_id)).await?;
    cx.check(
        "FILE-5",
        response.status == 404,
        format!("an invitee who has not joined cannot read the room: 404; got {}", response.brief()),
    );
    bob.join(by_id(private.room_id)).await?;
    let response = get(&cx, Some(&bob_user.access_token), &format!("/files/{}", doc.file_id)).await?;
    cx.check(
        "FILE-5",
        response.status == 200 && response.body == text,
        format!("a member downloads it: {}", response.brief()),
    );
    let response = get(&cx, Some(&bob_user.access_token), &format!("/files/{}/thumbnail", pic.file_id)).await?;
    cx.check("FILE-5", response.status == 200, format!("and the image's thumbnail: {}", response.brief()));
    let reply = bob.request(get_file(&doc.file_id)).await?;
    cx.check(
        "FILE-11",
        matches!(&reply, Ok(Body::File(f)) if f.file_id == doc.file_id),
        format!("GetFile by a member of a room it was posted in: {}", brief(&reply)),
    );
    let response = get(&cx, Some(&cy_user.access_token), &format!("/files/{}", doc.file_id)).await?;
    cx.check(
        "FILE-5",
        response.status == 404,
        format!("a user outside the private room: 404; got {}", response.brief()),
    );

    let public = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let open = upload(&cx, &ada_user.access_token, "open.txt", b"for all").await?;
    calls::sent(
        &mut ada,
        send(v1::SendMessage { attachment_ids: vec![open.file_id.clone()], ..message(public.room_id, "see", "dl-2") }),
    )
    .await?;
    let response = get(&cx, Some(&cy_user.access_token), &format!("/files/{}", open.file_id)).await?;
    cx.check(
        "FILE-5",
        response.status == 200 && response.body == b"for all",
        format!("posted in a PUBLIC room, any authenticated user downloads it: {}", response.brief()),
    );
    Ok(())
}

async fn attach_refused(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (mut bob, bob_user) = cx.user("bob").await?;
    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let room_id = room.room_id;
    bob.join(by_id(room_id)).await?;
    let max = ada.limits().max_attachments.max(1) as usize;
    let mine = upload(&cx, &ada_user.access_token, "mine.txt", b"mine").await?;
    let image = upload(&cx, &ada_user.access_token, "pic.png", &png(40, 30)).await?;
    let bobs = upload(&cx, &bob_user.access_token, "bobs.txt", b"bob's").await?;
    let before = calls::head(&mut ada, room_id).await?;

    let attach =
        |ids: Vec<String>, txn: &str| send(v1::SendMessage { attachment_ids: ids, ..message(room_id, "look", txn) });
    let reply = ada.request(attach(vec![mine.file_id.clone(); max + 1], "ar-1")).await?;
    cx.check_refused(
        "FILE-10",
        format!("{} attachments (max_attachments {max})", max + 1),
        &reply,
        v1::ErrorCode::InvalidArgument,
    );
    let reply = ada.request(attach(vec![bobs.file_id.clone()], "ar-2")).await?;
    cx.check_refused("FILE-10", "another user's file", &reply, v1::ErrorCode::FileNotFound);
    if !image.thumbnail_file_id.is_empty() {
        let reply = ada.request(attach(vec![image.thumbnail_file_id.clone()], "ar-3")).await?;
        cx.check_refused("FILE-10", "a thumbnail", &reply, v1::ErrorCode::FileNotFound);
    }
    let reply = ada.request(attach(vec!["0123456789abcdef0123456789abcdef".into()], "ar-4")).await?;
    cx.check_refused("FILE-10", "an unknown id", &reply, v1::ErrorCode::FileNotFound);
    let after = calls::head(&mut ada, room_id).await?;
    cx.check("ERR-3", after == before, format!("the refused messages appended nothing: head {before} then {after}"));

    let reply = ada
        .request(send(v1::SendMessage { attachment_ids: vec![mine.file_id.clone()], ..message(room_id, " ", "ar-5") }))
        .await?;
    let seq = calls::sent_of(&reply).map(|s| s.seq);
    cx.check("SEND-1", seq.is_some(), format!("an attachment with blank text is accepted: {}", brief(&reply)));
    if let Some(seq) = seq {
        calls::sent(&mut ada, delete(room_id, seq)).await?;
        let stored = message_at(&mut bob, room_id, seq).await?;
        cx.check(
            "DEL-3",
            stored.as_ref().is_some_and(|m| m.attachments.is_empty() && m.deleted.is_some()),
            format!("a deleted message lists no attachments: {stored:?}"),
        );
    }
    Ok(())
}

async fn avatars(cx: Ctx) -> CaseResult {
    let (mut ada, ada_user) = cx.user("ada").await?;
    let (_bob, bob_user) = cx.user("bob").await?;
    let (_cy, cy_user) = cx.user("cy").await?;
    let face = upload(&cx, &ada_user.access_token, "face.png", &png(96, 96)).await?;
    let note = upload(&cx, &ada_user.access_token, "note.txt", b"not an image").await?;
    let bobs = upload(&cx, &bob_user.access_token, "bob.png", &png(32, 32)).await?;

    let set_avatar = |id: &str| set_profile(v1::SetProfile { avatar_file_id: Some(id.into()), ..Default::default() });
    let reply = ada.request(set_avatar(&note.file_id)).await?;
    cx.check_refused("FILE-9", "a text file as avatar", &reply, v1::ErrorCode::InvalidArgument);
    let reply = ada.request(set_avatar(&bobs.file_id)).await?;
    cx.check_refused("FILE-9", "another user's image as avatar", &reply, v1::ErrorCode::FileNotFound);
    let set = profile(&mut ada, set_avatar(&face.file_id)).await?;
    cx.check(
        "PROFILE-2",
        set.avatar_file_id == face.file_id && set.user.as_ref().is_some_and(|u| u.avatar_file_id == face.file_id),
        format!("the profile and its User carry the avatar: {set:?}"),
    );
    let response = get(&cx, Some(&cy_user.access_token), &format!("/files/{}", face.file_id)).await?;
    cx.check(
        "FILE-9",
        response.status == 200,
        format!("an avatar is public: a user sharing no room downloads it: {}", response.brief()),
    );

    let room = cx.new_room(&mut ada, v1::RoomKind::Public).await?;
    let with =
        |id: &str| Command::UpdateRoom(v1::UpdateRoom { avatar_file_id: Some(id.into()), ..update_room(room.room_id) });
    let reply = ada.request(with(&note.file_id)).await?;
    cx.check_refused("UPDATE-2", "a text file as room avatar", &reply, v1::ErrorCode::InvalidArgument);
    let info = room_info(&mut ada, with(&face.file_id)).await?;
    cx.check(
        "UPDATE-2",
        info.avatar_file_id == face.file_id,
        format!("the room's avatar is set: {:?}", info.avatar_file_id),
    );
    let info = room_info(&mut ada, with("")).await?;
    cx.check("UPDATE-2", info.avatar_file_id.is_empty(), format!("\"\" removes it: {:?}", info.avatar_file_id));
    let cleared = profile(&mut ada, set_avatar("")).await?;
    cx.check("PROFILE-2", cleared.avatar_file_id.is_empty(), format!("\"\" removes the profile's avatar: {cleared:?}"));
    Ok(())
}

// --- QUIC upload streams ---

/// Opens an upload stream on `connection`, writes `header` and `content`
/// (finishing the stream when `finish`), and reads the one `ServerFrame`
/// the server answers on it.
async fn quic_upload(
    cx: &Ctx,
    connection: &quinn::Connection,
    header: &v1::UploadFile,
    content: &[u8],
    finish: bool,
) -> CaseResult<v1::ServerFrame> {
    let wait = cx.target().reply_timeout;
    let (mut send, mut recv) = tokio::time::timeout(wait, connection.open_bi())
        .await
        .map_err(|_| Stop::Failed("could not open an upload stream in time".into()))?
        .map_err(|e| Stop::Failed(format!("could not open an upload stream: {e}")))?;
    let mut frame = BytesMut::new();
    codec::put_length_prefix(header.encoded_len(), &mut frame);
    frame.extend_from_slice(&header.encode_to_vec());
    let shown = v1::UploadFile {
        access_token: if header.access_token.is_empty() { String::new() } else { "<token>".into() },
        ..header.clone()
    };
    cx.log().event(
        "upload",
        &format!(
            "-> {} then {} bytes{}",
            serde_json::to_string(&shown).unwrap_or_default(),
            content.len(),
            if finish { ", finished" } else { "" }
        ),
    );
    let written = async {
        send.write_all(&frame).await?;
        send.write_all(content).await?;
        if finish {
            send.finish()?;
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    if let Err(error) = tokio::time::timeout(wait, written).await.unwrap_or(Ok(())) {
        cx.log().event("upload", &format!("writing stopped: {error}"));
    }
    let answer = tokio::time::timeout(wait, recv.read_to_end(1 << 20))
        .await
        .map_err(|_| Stop::Failed(format!("no answer on the upload stream within {wait:?}")))?
        .map_err(|e| Stop::Failed(format!("reading the upload stream's answer: {e}")))?;
    cx.log().bytes("upload", Direction::Received, "upload answer", &answer);
    let mut length: u64 = 0;
    let mut at = 0;
    for (i, byte) in answer.iter().enumerate().take(10) {
        length |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            at = i + 1;
            break;
        }
    }
    let payload =
        answer.get(at..at + length as usize).filter(|_| at > 0 && at + length as usize == answer.len()).ok_or_else(
            || Stop::Failed(format!("the upload answer is not one length-prefixed frame ({} bytes)", answer.len())),
        )?;
    let frame = v1::ServerFrame::decode(payload)
        .map_err(|e| Stop::Failed(format!("the upload answer does not decode: {e}")))?;
    cx.log().frame("upload", Direction::Received, &frame);
    Ok(frame)
}

fn upload_error(frame: &v1::ServerFrame, code: v1::ErrorCode) -> bool {
    frame.request_id == 0 && matches!(&frame.body, Some(Body::Error(e)) if e.code == code as i32)
}

async fn upload_quic(cx: Ctx) -> CaseResult {
    let (ada, ada_user) = cx.user_on(Wire::QUIC, "ada").await?;
    let max = stated_max(&cx, &ada)?;
    let mut hand = Hand::quic(&cx, "uploader", None).await?;
    hand.request(Command::Hello(super::conn::hello())).await?;
    let connection = hand.quic_connection().cloned().ok_or_else(|| Stop::Failed("not a QUIC connection".into()))?;

    let content = png(100, 80);
    let header = v1::UploadFile {
        name: "über.png".into(),
        size: content.len() as u64,
        access_token: ada_user.access_token.clone(),
    };
    let frame = quic_upload(&cx, &connection, &header, &content, true).await?;
    let info = match &frame.body {
        Some(Body::File(info)) if frame.request_id == 0 => Some(info.clone()),
        _ => None,
    };
    cx.check(
        "FILE-7",
        info.as_ref().is_some_and(|f| {
            f.sha256 == sha256_hex(&content)
                && f.size == content.len() as u64
                && f.name == "über.png"
                && f.content_type == "image/png"
                && f.owner.as_ref().is_some_and(|u| u.user_id == ada_user.id)
        }),
        format!(
            "on a connection whose command stream did not log in, the upload (authenticated by its own token) answers one ServerFrame with the FileInfo: {}",
            show_frame(&frame)
        ),
    );
    if let Some(info) = &info {
        let response = get(&cx, Some(&ada_user.access_token), &format!("/files/{}", info.file_id)).await;
        if let Ok(response) = response {
            cx.check(
                "FILE-7",
                response.status == 200 && response.body == content,
                format!("it downloads over HTTP: {}", response.brief()),
            );
        }
    }

    let cases: Vec<(&str, v1::UploadFile, Vec<u8>, bool, v1::ErrorCode)> = vec![
        (
            "a malformed token",
            v1::UploadFile { name: "a.txt".into(), size: 3, access_token: "not.a.token".into() },
            b"abc".to_vec(),
            true,
            v1::ErrorCode::TokenInvalid,
        ),
        (
            "a size over max_file_bytes, no content sent",
            v1::UploadFile { name: "big.bin".into(), size: max + 1, access_token: ada_user.access_token.clone() },
            Vec::new(),
            false,
            v1::ErrorCode::FileTooLarge,
        ),
        (
            "a stream ending before size bytes",
            v1::UploadFile { name: "short.txt".into(), size: 100, access_token: ada_user.access_token.clone() },
            vec![b's'; 50],
            true,
            v1::ErrorCode::InvalidArgument,
        ),
        (
            "a stream carrying more than size bytes",
            v1::UploadFile { name: "long.txt".into(), size: 10, access_token: ada_user.access_token.clone() },
            vec![b'l'; 20],
            true,
            v1::ErrorCode::InvalidArgument,
        ),
        (
            "an empty name",
            v1::UploadFile { name: String::new(), size: 3, access_token: ada_user.access_token.clone() },
            b"abc".to_vec(),
            true,
            v1::ErrorCode::InvalidArgument,
        ),
    ];
    for (what, header, content, finish, code) in cases {
        let frame = quic_upload(&cx, &connection, &header, &content, finish).await?;
        cx.check(
            "FILE-8",
            upload_error(&frame, code),
            format!("{what}: an Error {} (request id 0); got {}", code.as_str_name(), show_frame(&frame)),
        );
    }
    let mut guest = cx.open("guest").await?;
    let token = guest.guest(&cx.name("guest")).await?.access_token;
    let frame = quic_upload(
        &cx,
        &connection,
        &v1::UploadFile { name: "g.txt".into(), size: 2, access_token: token },
        b"hi",
        true,
    )
    .await?;
    cx.check(
        "FILE-8",
        upload_error(&frame, v1::ErrorCode::Forbidden),
        format!("a guest's token: FORBIDDEN; got {}", show_frame(&frame)),
    );

    let request_id = hand.command(Command::Ping(v1::Ping {})).await?;
    let pong = hand.reply(request_id).await?;
    cx.check(
        "QUIC-3",
        matches!(pong.body, Some(Body::Pong(_))),
        format!("after the upload streams, the command stream still answers Ping: {}", show_frame(&pong)),
    );
    hand.close().await;
    Ok(())
}
