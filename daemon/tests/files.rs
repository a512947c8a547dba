//! Files through the real daemon: uploads over HTTP and QUIC upload streams,
//! downloads, content types from the bytes, image dimensions and thumbnails,
//! the size limit, quotas, upload rates, tokens, and who may see a file.
//! HTTP is spoken by hand over a TcpStream, as the simplest client would.

mod support;

use std::{net::SocketAddr, path::Path, sync::Arc};

use bytes::{Buf as _, BytesMut};
use confab_sdk::{
    Client, Trust,
    protocol::codec,
    v1::{self, ErrorCode, client_frame::Command, server_frame::Body},
};
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use support::{TestDaemon, Wire, code, within};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An HTTP response, read to the end of the connection.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// The error code of a JSON error answer.
    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    fn file_info(&self) -> v1::FileInfo {
        assert_eq!(self.status, 201, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_slice(&self.body).expect("a FileInfo in canonical JSON")
    }
}

/// What a request sends after its head.
enum Payload<'a> {
    Nothing,
    /// With Content-Length.
    Bytes(&'a [u8]),
    /// With Transfer-Encoding: chunked (no length known in advance).
    Chunked(&'a [u8]),
    /// Announce this Content-Length but send no body.
    AnnounceOnly(u64),
}

/// One request on a fresh connection (`Connection: close`). The body is
/// written while the answer is read, as a server may answer early.
async fn http(addr: SocketAddr, method: &str, target: &str, token: Option<&str>, payload: Payload<'_>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let (mut read, mut write) = stream.into_split();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: confab.test\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    // Claims the client would make, which the server must not believe.
    head.push_str("Content-Type: text/plain\r\n");
    let (body, chunked) = match payload {
        Payload::Nothing => (Vec::new(), false),
        Payload::Bytes(bytes) => {
            head.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
            (bytes.to_vec(), false)
        }
        Payload::Chunked(bytes) => {
            head.push_str("Transfer-Encoding: chunked\r\n");
            (bytes.to_vec(), true)
        }
        Payload::AnnounceOnly(length) => {
            head.push_str(&format!("Content-Length: {length}\r\n"));
            (Vec::new(), false)
        }
    };
    head.push_str("\r\n");
    let writer = tokio::spawn(async move {
        let result: std::io::Result<()> = async {
            write.write_all(head.as_bytes()).await?;
            for piece in body.chunks(64 * 1024) {
                if chunked {
                    write.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
                    write.write_all(piece).await?;
                    write.write_all(b"\r\n").await?;
                } else {
                    write.write_all(piece).await?;
                }
            }
            if chunked {
                write.write_all(b"0\r\n\r\n").await?;
            }
            Ok(())
        }
        .await;
        // Keep the write side open (no FIN) until the answer is read.
        (write, result)
    });
    let mut response = Vec::new();
    within("an HTTP answer", async {
        // On the heap: debug builds give each awaited future its own stack slot.
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match read.read(&mut buffer).await {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buffer[..n]),
                // A reset after the answer (the server closed with our
                // unread body in its buffer): what arrived is the answer.
                Err(_) => break,
            }
        }
    })
    .await;
    let _ = writer.await;
    parse(&response)
}

fn parse(response: &[u8]) -> Reply {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(response)));
    let head = std::str::from_utf8(&response[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    let body = response[end + 4..].to_vec();
    let reply = Reply { status, headers, body };
    if let Some(length) = reply.header("content-length") {
        assert_eq!(reply.body.len().to_string(), length, "the whole body arrived");
    }
    reply
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'.' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn http_addr(td: &TestDaemon) -> SocketAddr {
    td.daemon.as_ref().expect("running").http_addr
}

fn quic_addr(td: &TestDaemon) -> SocketAddr {
    td.daemon.as_ref().expect("running").quic_addr
}

fn token(client: &Client) -> String {
    client.tokens().expect("logged in").access_token
}

async fn upload(td: &TestDaemon, token: Option<&str>, name: &str, bytes: &[u8]) -> Reply {
    let target = format!("/files?name={}", percent_encode(name));
    http(http_addr(td), "POST", &target, token, Payload::Bytes(bytes)).await
}

async fn download(td: &TestDaemon, token: &str, path: &str) -> Reply {
    http(http_addr(td), "GET", path, Some(token), Payload::Nothing).await
}

/// Bytes that are no known format and not UTF-8.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    bytes[..4].copy_from_slice(&[0x00, 0x9f, 0xfe, 0x81]);
    bytes
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("encodes");
    out.into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Files left in the files directory by uploads in progress.
fn partial_uploads(data_dir: &Path) -> Vec<String> {
    std::fs::read_dir(data_dir.join("files"))
        .expect("files directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".part"))
        .collect()
}

async fn get_file(client: &Client, file_id: &str) -> Result<v1::FileInfo, confab_sdk::Error> {
    match client.request(Command::GetFile(v1::GetFile { file_id: file_id.into() })).await? {
        Body::File(info) => Ok(info),
        other => panic!("expected a FileInfo, got {other:?}"),
    }
}

/// Posts `file_id` in `room`; returns the message's seq.
async fn post_with_attachment(client: &Client, room: &str, file_id: &str) -> u64 {
    let send = v1::SendMessage {
        room: Some(v1::RoomRef::name(room)),
        text: "see attached".into(),
        client_txn_id: format!("attach-{}", rand_suffix()),
        attachment_ids: vec![file_id.into()],
        ..Default::default()
    };
    match client.request(Command::SendMessage(send)).await.expect("sends with an attachment") {
        Body::Sent(sent) => sent.seq,
        other => panic!("expected SendResult, got {other:?}"),
    }
}

/// A distinct client transaction id suffix for each send of a test run.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn a_multi_megabyte_file_goes_up_and_comes_back_whole() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let bytes = noise(3 * 1024 * 1024 + 17, 7);
    let name = "report (final) é.bin";

    let info = upload(&td, Some(&token(&alice)), name, &bytes).await.file_info();
    assert_eq!(info.file_id.len(), 32);
    assert!(info.file_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(info.name, name);
    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(info.sha256, sha256_hex(&bytes));
    assert_eq!(info.content_type, "application/octet-stream", "not the client's text/plain");
    assert_eq!((info.width, info.height, info.thumbnail_file_id.as_str()), (0, 0, ""));
    assert_eq!(info.owner.as_ref().map(|u| u.name.as_str()), Some("alice"));
    assert!(info.uploaded_at_ms > 0);

    let got = download(&td, &token(&alice), &format!("/files/{}", info.file_id)).await;
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), info.sha256);
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert_eq!(got.header("content-length"), Some(bytes.len().to_string().as_str()));
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename*=UTF-8''report%20%28final%29%20%C3%A9.bin")
    );
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(got.header("content-security-policy"), Some("sandbox"));
    assert_eq!(got.header("cache-control"), Some("private, max-age=31536000, immutable"));

    // Chunked, without a length announced, works the same.
    let chunked = http(http_addr(&td), "POST", "/files?name=again", Some(&token(&alice)), Payload::Chunked(&bytes))
        .await
        .file_info();
    assert_eq!((chunked.size, chunked.sha256.as_str()), (info.size, info.sha256.as_str()));
    assert_ne!(chunked.file_id, info.file_id);

    // GetFile describes it to its owner.
    assert_eq!(get_file(&alice, &info.file_id).await.unwrap(), info);
    assert!(partial_uploads(td.dir.path()).is_empty());
}

#[tokio::test]
async fn the_content_type_comes_from_the_bytes_not_the_client() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsJson, "alice").await;
    let token = token(&alice);
    // Every upload below claims Content-Type: text/plain.
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("picture.txt", png(4, 4), "image/png"),
        ("notes.exe", "plain words, ünïcode ✓\n".repeat(5000).into_bytes(), "text/plain; charset=utf-8"),
        ("data.txt", noise(1000, 3), "application/octet-stream"),
        (
            "archive.txt",
            {
                let mut zip = b"PK\x03\x04".to_vec();
                zip.extend_from_slice(&[0u8; 60]);
                zip
            },
            "application/zip",
        ),
    ];
    for (name, bytes, expected) in cases {
        let info = upload(&td, Some(&token), name, &bytes).await.file_info();
        assert_eq!(info.content_type, expected, "{name}");
        let got = download(&td, &token, &format!("/files/{}", info.file_id)).await;
        assert_eq!(got.header("content-type"), Some(expected), "{name}");
    }
}

#[tokio::test]
async fn images_get_dimensions_and_a_thumbnail() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::Quic, "alice").await;
    let token = token(&alice);
    let info = upload(&td, Some(&token), "photo.png", &png(800, 600)).await.file_info();
    assert_eq!(info.content_type, "image/png");
    assert_eq!((info.width, info.height), (800, 600));
    assert!(!info.thumbnail_file_id.is_empty());

    let thumbnail = download(&td, &token, &format!("/files/{}/thumbnail", info.file_id)).await;
    assert_eq!(thumbnail.status, 200);
    assert_eq!(thumbnail.header("content-type"), Some("image/png"));
    assert!(thumbnail.header("content-disposition").is_some_and(|d| d.starts_with("inline;")));
    let decoded = image::load_from_memory(&thumbnail.body).expect("the thumbnail decodes");
    assert_eq!((decoded.width(), decoded.height()), (320, 240));

    // The thumbnail is a file of its own, described as such.
    let described = get_file(&alice, &info.thumbnail_file_id).await.unwrap();
    assert_eq!((described.width, described.height, described.content_type.as_str()), (320, 240, "image/png"));
    assert_eq!(described.sha256, sha256_hex(&thumbnail.body));
    let same = download(&td, &token, &format!("/files/{}", info.thumbnail_file_id)).await;
    assert_eq!(same.body, thumbnail.body);

    // A file that says PNG but does not decode is kept as a plain file.
    let mut broken = png(50, 50);
    broken.truncate(40);
    broken.extend_from_slice(&noise(200, 9));
    let info = upload(&td, Some(&token), "broken.png", &broken).await.file_info();
    assert_eq!(info.content_type, "image/png");
    assert_eq!((info.width, info.height, info.thumbnail_file_id.as_str()), (0, 0, ""));
    let none = download(&td, &token, &format!("/files/{}/thumbnail", info.file_id)).await;
    assert_eq!((none.status, none.code().as_str()), (404, "FILE_NOT_FOUND"));

    // A JPEG's thumbnail is a JPEG.
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(640, 1280, |x, y| image::Rgb([(x / 3) as u8, (y / 5) as u8, 30]))
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    let info = upload(&td, Some(&token), "tall.jpg", jpeg.get_ref()).await.file_info();
    assert_eq!((info.content_type.as_str(), info.width, info.height), ("image/jpeg", 640, 1280));
    let thumbnail = download(&td, &token, &format!("/files/{}/thumbnail", info.file_id)).await;
    assert_eq!(thumbnail.header("content-type"), Some("image/jpeg"));
    let decoded = image::load_from_memory(&thumbnail.body).expect("the thumbnail decodes");
    assert_eq!((decoded.width(), decoded.height()), (160, 320));
}

#[tokio::test]
async fn oversized_uploads_are_refused_early_and_leave_nothing() {
    let td = TestDaemon::start_with(|config| {
        config.files.max_file_bytes = 1024 * 1024;
        config.files.quota_bytes_per_user = 1024 * 1024;
    })
    .await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let token = token(&alice);
    let big = noise(1024 * 1024 + 1, 5);

    // Announced too large: refused from the head, no body read.
    let refused = http(http_addr(&td), "POST", "/files?name=big", Some(&token), Payload::AnnounceOnly(50 << 30)).await;
    assert_eq!((refused.status, refused.code().as_str()), (413, "FILE_TOO_LARGE"));

    // Not announced: refused once the bytes pass the limit.
    let refused = http(http_addr(&td), "POST", "/files?name=big", Some(&token), Payload::Chunked(&big)).await;
    assert_eq!((refused.status, refused.code().as_str()), (413, "FILE_TOO_LARGE"));
    assert!(partial_uploads(td.dir.path()).is_empty(), "{:?}", partial_uploads(td.dir.path()));

    // Exactly the limit is fine, and the refusals took no quota.
    let info = upload(&td, Some(&token), "just right", &big[..1024 * 1024]).await.file_info();
    assert_eq!(info.size, 1024 * 1024);
}

#[tokio::test]
async fn the_quota_counts_every_file_of_a_user() {
    let td = TestDaemon::start_with(|config| {
        config.files.max_file_bytes = 1000;
        config.files.quota_bytes_per_user = 2500;
    })
    .await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let bob = td.user(Wire::WsProto, "bob").await;
    for n in 0..2 {
        upload(&td, Some(&token(&alice)), &format!("part{n}"), &noise(1000, n)).await.file_info();
    }
    let over = upload(&td, Some(&token(&alice)), "part2", &noise(1000, 2)).await;
    assert_eq!((over.status, over.code().as_str()), (507, "QUOTA_EXCEEDED"));
    let over =
        http(http_addr(&td), "POST", "/files?name=x", Some(&token(&alice)), Payload::Chunked(&noise(600, 1))).await;
    assert_eq!((over.status, over.code().as_str()), (507, "QUOTA_EXCEEDED"), "also when no length is announced");
    // What is left still fits, and thumbnails do not count.
    let small = upload(&td, Some(&token(&alice)), "dot.png", &png(400, 1)).await.file_info();
    assert!(!small.thumbnail_file_id.is_empty());
    assert!(small.size <= 500);
    // Quotas are per user.
    upload(&td, Some(&token(&bob)), "bob's", &noise(1000, 4)).await.file_info();
    assert!(partial_uploads(td.dir.path()).is_empty());
}

#[tokio::test]
async fn uploads_and_downloads_need_a_valid_token_and_an_account() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let info = upload(&td, Some(&token(&alice)), "mine", b"hello").await.file_info();
    let path = format!("/files/{}", info.file_id);

    let missing = upload(&td, None, "x", b"hello").await;
    assert_eq!((missing.status, missing.code().as_str()), (401, "TOKEN_INVALID"));
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    let bad = upload(&td, Some("not.a.token"), "x", b"hello").await;
    assert_eq!((bad.status, bad.code().as_str()), (401, "TOKEN_INVALID"));
    let missing = http(http_addr(&td), "GET", &path, None, Payload::Nothing).await;
    assert_eq!((missing.status, missing.code().as_str()), (401, "TOKEN_INVALID"));
    let bad = download(&td, "not.a.token", &path).await;
    assert_eq!((bad.status, bad.code().as_str()), (401, "TOKEN_INVALID"));

    // A token of a login that was logged out is no good.
    let gone = td.user(Wire::WsProto, "gone").await;
    let gone_token = token(&gone);
    gone.logout().await.unwrap();
    let revoked = upload(&td, Some(&gone_token), "x", b"hello").await;
    assert_eq!((revoked.status, revoked.code().as_str()), (401, "TOKEN_INVALID"));

    // Guests may not upload.
    let guest = td.client(Wire::WsProto).await;
    guest.guest("visitor").await.unwrap();
    let refused = upload(&td, Some(&token(&guest)), "x", b"hello").await;
    assert_eq!((refused.status, refused.code().as_str()), (403, "FORBIDDEN"));

    // Names: given, not too long, no control characters.
    let unnamed = http(http_addr(&td), "POST", "/files", Some(&token(&alice)), Payload::Bytes(b"x")).await;
    assert_eq!((unnamed.status, unnamed.code().as_str()), (400, "INVALID_ARGUMENT"));
    let long = upload(&td, Some(&token(&alice)), &"n".repeat(256), b"x").await;
    assert_eq!((long.status, long.code().as_str()), (400, "INVALID_ARGUMENT"));
    let control = http(http_addr(&td), "POST", "/files?name=a%0Ab", Some(&token(&alice)), Payload::Bytes(b"x")).await;
    assert_eq!((control.status, control.code().as_str()), (400, "INVALID_ARGUMENT"));

    // Other methods and paths.
    let wrong = http(http_addr(&td), "GET", "/files", Some(&token(&alice)), Payload::Nothing).await;
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("POST")));
    let wrong = http(http_addr(&td), "DELETE", &path, Some(&token(&alice)), Payload::Nothing).await;
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("GET")));
    for bad_id in
        ["/files/nonsense", "/files/../confab.redb", &format!("{path}/other"), &format!("/files/{}", "0".repeat(32))]
    {
        let reply = download(&td, &token(&alice), bad_id).await;
        assert_eq!(reply.status, 404, "{bad_id}");
    }
}

#[tokio::test]
async fn uploads_are_rate_limited_per_user() {
    let td = TestDaemon::start_with(|config| {
        config.rate_limits.uploads_per_user = confabd::config::Rate { per_second: 0.001, burst: 2 };
    })
    .await;
    let alice = td.user(Wire::WsProto, "alice").await;
    for n in 0..2 {
        upload(&td, Some(&token(&alice)), &format!("f{n}"), b"x").await.file_info();
    }
    let limited = upload(&td, Some(&token(&alice)), "f2", b"x").await;
    assert_eq!((limited.status, limited.code().as_str()), (429, "RATE_LIMITED"));
    assert!(limited.header("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1));
}

#[tokio::test]
async fn files_posted_in_a_room_are_visible_to_its_readers_only() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let bob = td.user(Wire::WsJson, "bob").await;
    let carol = td.user(Wire::Quic, "carol").await;
    alice.create_room("secret", v1::RoomKind::Private).await.unwrap();
    alice.invite("secret", "carol").await.unwrap();
    carol.join("secret").await.unwrap();

    let info = upload(&td, Some(&token(&alice)), "plan.png", &png(400, 400)).await.file_info();
    let path = format!("/files/{}", info.file_id);
    let thumbnail_path = format!("{path}/thumbnail");

    // Not posted anywhere yet: only its owner sees it.
    for client in [&bob, &carol] {
        assert_eq!(download(&td, &token(client), &path).await.status, 404);
        assert_eq!(code(get_file(client, &info.file_id).await), ErrorCode::FileNotFound);
    }

    post_with_attachment(&alice, "secret", &info.file_id).await;
    let got = download(&td, &token(&carol), &path).await;
    assert_eq!((got.status, sha256_hex(&got.body)), (200, info.sha256.clone()));
    assert_eq!(download(&td, &token(&carol), &thumbnail_path).await.status, 200);
    assert_eq!(get_file(&carol, &info.file_id).await.unwrap().file_id, info.file_id);
    // Bob is not in the room: to him the file does not exist.
    let hidden = download(&td, &token(&bob), &path).await;
    assert_eq!((hidden.status, hidden.code().as_str()), (404, "FILE_NOT_FOUND"));
    assert_eq!(download(&td, &token(&bob), &thumbnail_path).await.status, 404);
    assert_eq!(download(&td, &token(&bob), &format!("/files/{}", info.thumbnail_file_id)).await.status, 404);
    assert_eq!(code(get_file(&bob, &info.file_id).await), ErrorCode::FileNotFound);

    // In a public room, any signed-in user may read it, members or not.
    alice.create_room("lobby", v1::RoomKind::Public).await.unwrap();
    let open = upload(&td, Some(&token(&alice)), "notes.txt", b"for everyone").await.file_info();
    post_with_attachment(&alice, "lobby", &open.file_id).await;
    let got = download(&td, &token(&bob), &format!("/files/{}", open.file_id)).await;
    assert_eq!((got.status, got.body.as_slice()), (200, b"for everyone".as_slice()));

    // Leaving the private room ends carol's access.
    carol.leave("secret").await.unwrap();
    assert_eq!(download(&td, &token(&carol), &path).await.status, 404);
}

#[tokio::test]
async fn deleting_a_message_withdraws_its_attachments_from_the_room() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let carol = td.user(Wire::Quic, "carol").await;
    alice.create_room("secret", v1::RoomKind::Private).await.unwrap();
    alice.invite("secret", "carol").await.unwrap();
    carol.join("secret").await.unwrap();

    let info = upload(&td, Some(&token(&alice)), "plan.png", &png(400, 400)).await.file_info();
    let path = format!("/files/{}", info.file_id);
    let thumbnail_path = format!("{path}/thumbnail");
    let seq = post_with_attachment(&alice, "secret", &info.file_id).await;
    assert_eq!(download(&td, &token(&carol), &path).await.status, 200);
    assert_eq!(download(&td, &token(&carol), &thumbnail_path).await.status, 200);

    alice.delete_message("secret", confab_sdk::Seq(seq)).await.unwrap();
    let gone = download(&td, &token(&carol), &path).await;
    assert_eq!((gone.status, gone.code().as_str()), (404, "FILE_NOT_FOUND"));
    assert_eq!(download(&td, &token(&carol), &thumbnail_path).await.status, 404);
    assert_eq!(code(get_file(&carol, &info.file_id).await), ErrorCode::FileNotFound);
    // The owner keeps it.
    let own = download(&td, &token(&alice), &path).await;
    assert_eq!((own.status, sha256_hex(&own.body)), (200, info.sha256.clone()));

    // Posted twice, it stays visible while one of the messages lives.
    let first = post_with_attachment(&alice, "secret", &info.file_id).await;
    post_with_attachment(&alice, "secret", &info.file_id).await;
    alice.delete_message("secret", confab_sdk::Seq(first)).await.unwrap();
    assert_eq!(download(&td, &token(&carol), &path).await.status, 200);
}

/// A QUIC connection made by hand: a session on the first stream, uploads
/// on others.
struct Quic {
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    buffer: BytesMut,
}

impl Quic {
    async fn connect(td: &TestDaemon) -> Self {
        let trust = Trust::Fingerprint(td.fingerprint().parse().unwrap());
        let setup = confab_sdk::TlsSetup::new(&trust, &[confab_sdk::protocol::ALPN], true).unwrap();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(setup.config.clone()).unwrap();
        let config = quinn::ClientConfig::new(Arc::new(crypto));
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let connection = endpoint.connect_with(config, quic_addr(td), "localhost").unwrap().await.unwrap();
        let (send, recv) = connection.open_bi().await.unwrap();
        let mut quic = Quic { _endpoint: endpoint, connection, send, recv, buffer: BytesMut::new() };
        let hello = v1::Hello {
            versions: vec![confab_sdk::protocol::PROTOCOL_VERSION],
            feature_level: confab_sdk::protocol::FEATURE_LEVEL,
            capabilities: vec![],
            client_name: "files test".into(),
        };
        assert!(matches!(quic.request(1, Command::Hello(hello)).await, Body::Welcome(_)));
        quic
    }

    async fn request(&mut self, request_id: u64, command: Command) -> Body {
        let frame = v1::ClientFrame { request_id, command: Some(command) }.encode_to_vec();
        let mut out = BytesMut::new();
        codec::put_length_prefix(frame.len(), &mut out);
        out.extend_from_slice(&frame);
        self.send.write_all(&out).await.unwrap();
        within("a reply on the command stream", async {
            loop {
                if let Some((prefix, len)) = codec::split_frame(&self.buffer, 1 << 20).unwrap() {
                    self.buffer.advance(prefix);
                    let frame = v1::ServerFrame::decode(self.buffer.split_to(len).freeze()).unwrap();
                    if frame.request_id == request_id {
                        return frame.body.expect("a body");
                    }
                    continue;
                }
                let chunk = self.recv.read_chunk(64 * 1024, true).await.unwrap().expect("stream open");
                self.buffer.extend_from_slice(&chunk.bytes);
            }
        })
        .await
    }

    /// One upload stream: the UploadFile frame announcing `size`, then
    /// `bytes` (which may differ from `size`), then the answer.
    async fn upload(&self, token: &str, name: &str, size: u64, bytes: &[u8]) -> Body {
        let (mut send, mut recv) = self.connection.open_bi().await.unwrap();
        let header = v1::UploadFile { name: name.into(), size, access_token: token.into() }.encode_to_vec();
        let mut out = BytesMut::new();
        codec::put_length_prefix(header.len(), &mut out);
        out.extend_from_slice(&header);
        let bytes = bytes.to_vec();
        let writer = tokio::spawn(async move {
            // The server may refuse before the end and stop reading.
            if send.write_all(&out).await.is_ok() && send.write_all(&bytes).await.is_ok() {
                let _ = send.finish();
            }
            send
        });
        let answer = within("the upload's answer", recv.read_to_end(1 << 20)).await.expect("an answer");
        let _ = writer.await;
        let mut answer = BytesMut::from(answer.as_slice());
        let (prefix, len) = codec::split_frame(&answer, 1 << 20).unwrap().expect("one whole frame");
        answer.advance(prefix);
        assert_eq!(answer.len(), len, "exactly one frame");
        let frame = v1::ServerFrame::decode(answer.freeze()).unwrap();
        assert_eq!(frame.request_id, 0);
        frame.body.expect("a body")
    }
}

fn error_code(body: &Body) -> ErrorCode {
    match body {
        Body::Error(error) => ErrorCode::try_from(error.code).unwrap(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn uploads_over_quic_streams_stand_on_their_own_token() {
    let td = TestDaemon::start_with(|config| config.files.max_file_bytes = 2 * 1024 * 1024).await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let token = token(&alice);
    let mut quic = Quic::connect(&td).await;

    // The command stream never logged in: the upload's own token counts.
    let bytes = noise(1536 * 1024, 11);
    let info = match quic.upload(&token, "over quic.bin", bytes.len() as u64, &bytes).await {
        Body::File(info) => info,
        other => panic!("expected a FileInfo, got {other:?}"),
    };
    assert_eq!(
        (info.size, info.sha256.clone(), info.name.as_str()),
        (bytes.len() as u64, sha256_hex(&bytes), "over quic.bin")
    );
    let got = download(&td, &token, &format!("/files/{}", info.file_id)).await;
    assert_eq!(sha256_hex(&got.body), info.sha256);

    // Two at once on one connection.
    let (first, second) = tokio::join!(quic.upload(&token, "a.png", 0, &[]), async {
        let image = png(500, 500);
        quic.upload(&token, "b.png", image.len() as u64, &image).await
    });
    assert!(matches!(first, Body::File(ref f) if f.size == 0 && f.content_type == "text/plain; charset=utf-8"));
    assert!(
        matches!(second, Body::File(ref f) if (f.width, f.height) == (500, 500) && !f.thumbnail_file_id.is_empty())
    );

    // Refusals: each a specific error on the stream.
    assert_eq!(error_code(&quic.upload("bogus", "x", 3, b"abc").await), ErrorCode::TokenInvalid);
    assert_eq!(error_code(&quic.upload(&token, "x", 3 << 20, &noise(64 * 1024, 1)).await), ErrorCode::FileTooLarge);
    assert_eq!(error_code(&quic.upload(&token, "x", 10, b"short").await), ErrorCode::InvalidArgument);
    assert_eq!(error_code(&quic.upload(&token, "x", 2, b"too long").await), ErrorCode::InvalidArgument);
    assert_eq!(error_code(&quic.upload(&token, "", 1, b"x").await), ErrorCode::InvalidArgument);
    let guest = td.client(Wire::WsProto).await;
    guest.guest("visitor").await.unwrap();
    assert_eq!(
        error_code(&quic.upload(&guest.tokens().unwrap().access_token, "x", 1, b"x").await),
        ErrorCode::Forbidden
    );

    // A stream that is not an upload at all.
    let (mut send, mut recv) = quic.connection.open_bi().await.unwrap();
    send.write_all(b"\x03\xff\xff\xff").await.unwrap();
    send.finish().unwrap();
    let answer = within("an answer to garbage", recv.read_to_end(1 << 20)).await.unwrap();
    let mut answer = BytesMut::from(answer.as_slice());
    let (prefix, _) = codec::split_frame(&answer, 1 << 20).unwrap().unwrap();
    answer.advance(prefix);
    assert_eq!(
        error_code(&v1::ServerFrame::decode(answer.freeze()).unwrap().body.unwrap()),
        ErrorCode::InvalidArgument
    );

    // The session on the same connection carried on through all of it.
    let authenticated = quic.request(2, Command::Authenticate(v1::Authenticate { access_token: token.clone() })).await;
    assert!(matches!(authenticated, Body::Auth(_)));
    assert!(matches!(quic.request(3, Command::Ping(v1::Ping {})).await, Body::Pong(_)));
    assert!(partial_uploads(td.dir.path()).is_empty());
}

#[tokio::test]
async fn the_daemon_serves_on_after_abandoned_and_bad_uploads() {
    let td = TestDaemon::start().await;
    let alice = td.user(Wire::WsProto, "alice").await;
    let watcher = td.user(Wire::WsJson, "watcher").await;
    let token = token(&alice);

    // An HTTP upload that stops halfway, its connection dropped.
    let mut stream = tokio::net::TcpStream::connect(http_addr(&td)).await.unwrap();
    let head = format!(
        "POST /files?name=half HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Length: 1000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&noise(300_000, 2)).await.unwrap();
    drop(stream);

    // A QUIC connection closed in the middle of an upload.
    let quic = Quic::connect(&td).await;
    let (mut send, _recv) = quic.connection.open_bi().await.unwrap();
    let header = v1::UploadFile { name: "cut".into(), size: 1_000_000, access_token: token.clone() }.encode_to_vec();
    let mut out = BytesMut::new();
    codec::put_length_prefix(header.len(), &mut out);
    out.extend_from_slice(&header);
    send.write_all(&out).await.unwrap();
    send.write_all(&noise(100_000, 3)).await.unwrap();
    quic.connection.close(0u32.into(), b"gone");

    // Garbage where HTTP should be.
    let mut stream = tokio::net::TcpStream::connect(http_addr(&td)).await.unwrap();
    stream.write_all(b"\x00\x01 not http at all\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = within("the garbage connection to close", stream.read_to_end(&mut sink)).await;

    // Everyone else is served as before.
    watcher.ping().await.unwrap();
    let info = upload(&td, Some(&token), "after", b"still here").await.file_info();
    assert_eq!(download(&td, &token, &format!("/files/{}", info.file_id)).await.body, b"still here");
    let mut quic = Quic::connect(&td).await;
    assert!(matches!(quic.request(2, Command::Ping(v1::Ping {})).await, Body::Pong(_)));
}
