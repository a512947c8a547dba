//! Test vectors: generates `testdata/frames.json` (only with `CONFAB_BLESS=1`),
//! checks the committed file is current, that every vector decodes from hex
//! and from JSON to the same frame and re-encodes exactly, that the vectors
//! cover every command, reply, push and oneof member, and that the worked
//! examples in PROTOCOL.md are these very bytes.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::PathBuf,
};

use bytes::BytesMut;
use confab_protocol::{
    Encoding, codec,
    v1::{self, ClientFrame, ServerFrame, client_frame::Command, room_event::Kind, room_ref::Room, server_frame::Body},
};
use prost::Message as _;
use serde_json::Value;

/// One test vector as generated here.
struct Vector {
    name: &'static str,
    frame: Frame,
    /// Non-canonical JSON spellings a receiver must also accept as this frame.
    also_accepted: &'static [&'static str],
}

enum Frame {
    Client(ClientFrame),
    Server(ServerFrame),
    /// The first frame of a QUIC upload stream (PROTOCOL.md, FILE-7).
    Upload(v1::UploadFile),
}

/// Vectors PROTOCOL.md shows as worked examples, in both encodings.
const DOC_EXAMPLES: &[&str] = &[
    "client/hello",
    "server/welcome",
    "client/login",
    "server/auth-login",
    "client/send-message",
    "server/sent",
    "server/event-message",
    "server/error-wrong-state",
    "server/error-bad-frame",
    "client/hello-level-2",
    "server/welcome-level-2",
    "client/send-message-reply-in-thread",
    "server/event-message-reply-in-thread",
    "upload/upload-file",
    "server/upload-file",
];

// Realistic values shared by the vectors.
const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
/// A room id above 2^53: JSON numbers would lose it, so JSON carries a string.
const LOUNGE: u64 = 9_007_199_254_740_993;
const DIRECT: u64 = 9_007_199_254_740_994;
const ADA: u64 = 42;
const GRACE: u64 = 43;
const ACCESS: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsIm5hbWUiOiJhZGEiLCJmYW0iOjcsImV4cCI6MTc2NzIyNjUwMH0.Zm9yLWV4YW1wbGUtb25seS1ub3QtYS1zaWduYXR1cmU";
const REFRESH: &str = "rt_q8Xn2YbJ4kE7wP0sVd1LmA9cTf3HgR6u";

fn ada() -> Option<v1::User> {
    Some(v1::User { user_id: ADA, name: "ada".into(), guest: false, ..Default::default() })
}

fn grace() -> Option<v1::User> {
    Some(v1::User { user_id: GRACE, name: "grace".into(), guest: false, ..Default::default() })
}

fn lounge() -> Option<v1::RoomRef> {
    Some(v1::RoomRef { room: Some(Room::Name("lounge".into())) })
}

fn client(name: &'static str, request_id: u64, command: Option<Command>) -> Vector {
    Vector { name, frame: Frame::Client(ClientFrame { request_id, command }), also_accepted: &[] }
}

fn server(name: &'static str, request_id: u64, body: Body) -> Vector {
    Vector { name, frame: Frame::Server(ServerFrame { request_id, body: Some(body) }), also_accepted: &[] }
}

fn event(seq: u64, sender: Option<v1::User>, kind: Kind) -> v1::RoomEvent {
    v1::RoomEvent { room_id: LOUNGE, epoch: 1, seq, server_time_ms: T0 + seq * 1_000, sender, kind: Some(kind) }
}

fn error(code: v1::ErrorCode, message: &str) -> Body {
    Body::Error(v1::Error::new(code, message))
}

/// Every vector, in the order of the file.
fn corpus() -> Vec<Vector> {
    let welcome = v1::Welcome {
        version: 1,
        feature_level: 1,
        capabilities: vec!["resume".into()],
        server_name: "confab".into(),
        server_version: "0.1.0".into(),
        ping_interval_ms: 20_000,
        idle_timeout_ms: 60_000,
        limits: Some(v1::Limits {
            max_frame_bytes_unauthenticated: 16_384,
            max_frame_bytes: 262_144,
            max_message_bytes: 16_384,
            max_history_page: 100,
            max_outbound_queue_bytes: 1_048_576,
            max_resume_events: 1_000,
            ..Default::default()
        }),
        session_id: 12_345_678_901_234_567_890,
        ..Default::default()
    };
    let lounge_info = v1::RoomInfo {
        room_id: LOUNGE,
        name: "lounge".into(),
        kind: v1::RoomKind::Public as i32,
        epoch: 1,
        head_seq: 2,
        member_count: 1,
        membership: v1::Membership::Joined as i32,
        created_at_ms: T0 + 1_000,
        peer: None,
        ..Default::default()
    };
    let direct_info = v1::RoomInfo {
        room_id: DIRECT,
        name: String::new(),
        kind: v1::RoomKind::Direct as i32,
        epoch: 1,
        head_seq: 3,
        member_count: 2,
        membership: v1::Membership::Joined as i32,
        created_at_ms: T0 + 5_000,
        peer: grace(),
        ..Default::default()
    };
    let greeting = "Grüße aus Zürich 👋 — 你好，世界";

    let commands = vec![
        // Commands, in field-number order.
        Vector {
            also_accepted: &[
                // Original proto field names and a 64-bit integer as a JSON number.
                r#"{"request_id":1,"hello":{"versions":[1],"feature_level":1,"capabilities":["resume"],"client_name":"confab-cli/0.1.0"}}"#,
                // Unknown fields are ignored.
                r#"{"requestId":"1","hello":{"versions":[1],"featureLevel":1,"capabilities":["resume"],"clientName":"confab-cli/0.1.0","futureField":{"x":[1,2]}},"alsoFuture":true}"#,
            ],
            ..client(
                "client/hello",
                1,
                Some(Command::Hello(v1::Hello {
                    versions: vec![1],
                    feature_level: 1,
                    capabilities: vec!["resume".into()],
                    client_name: "confab-cli/0.1.0".into(),
                })),
            )
        },
        client("client/ping", 9, Some(Command::Ping(v1::Ping {}))),
        client(
            "client/register",
            2,
            Some(Command::Register(v1::Register {
                username: "ada".into(),
                password: "correct horse battery staple".into(),
                device_name: "Ada’s laptop 💻".into(),
            })),
        ),
        client(
            "client/login",
            2,
            Some(Command::Login(v1::Login {
                username: "ada".into(),
                password: "correct horse battery staple".into(),
                device_name: "cli".into(),
            })),
        ),
        client("client/refresh", 3, Some(Command::Refresh(v1::Refresh { refresh_token: REFRESH.into() }))),
        client("client/logout", 99, Some(Command::Logout(v1::Logout {}))),
        client("client/authenticate", 2, Some(Command::Authenticate(v1::Authenticate { access_token: ACCESS.into() }))),
        client(
            "client/guest-login",
            2,
            Some(Command::GuestLogin(v1::GuestLogin { display_name: "visitor.zoe".into() })),
        ),
        client(
            "client/create-room",
            4,
            Some(Command::CreateRoom(v1::CreateRoom {
                name: "lounge".into(),
                kind: v1::RoomKind::Public as i32,
                ..Default::default()
            })),
        ),
        client(
            "client/create-room-private",
            5,
            Some(Command::CreateRoom(v1::CreateRoom {
                name: "core-team".into(),
                kind: v1::RoomKind::Private as i32,
                ..Default::default()
            })),
        ),
        client("client/join-room-by-name", 6, Some(Command::JoinRoom(v1::JoinRoom { room: lounge() }))),
        client(
            "client/join-room-by-id",
            7,
            Some(Command::JoinRoom(v1::JoinRoom { room: Some(v1::RoomRef { room: Some(Room::Id(LOUNGE)) }) })),
        ),
        client("client/leave-room", 8, Some(Command::LeaveRoom(v1::LeaveRoom { room: lounge() }))),
        client(
            "client/invite-to-room",
            10,
            Some(Command::InviteToRoom(v1::InviteToRoom { room: lounge(), username: "grace".into() })),
        ),
        // MINE is the zero value, so the JSON of its ListRooms is empty.
        client(
            "client/list-rooms-mine",
            11,
            Some(Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Mine as i32, ..Default::default() })),
        ),
        Vector {
            // An enum may also be given by number.
            also_accepted: &[r#"{"requestId":"12","listRooms":{"scope":1}}"#],
            ..client(
                "client/list-rooms-directory",
                12,
                Some(Command::ListRooms(v1::ListRooms {
                    scope: v1::RoomScope::Directory as i32,
                    ..Default::default()
                })),
            )
        },
        client("client/list-members", 13, Some(Command::ListMembers(v1::ListMembers { room: lounge() }))),
        client("client/open-direct", 14, Some(Command::OpenDirect(v1::OpenDirect { username: "grace".into() }))),
        client(
            "client/send-message",
            15,
            Some(Command::SendMessage(v1::SendMessage {
                room: lounge(),
                text: greeting.into(),
                client_txn_id: "m-0001".into(),
                ..Default::default()
            })),
        ),
        client(
            "client/get-history-backward",
            16,
            Some(Command::GetHistory(v1::GetHistory {
                room: lounge(),
                direction: v1::HistoryDirection::Backward as i32,
                anchor_seq: 0,
                limit: 50,
            })),
        ),
        client(
            "client/get-history-forward",
            17,
            Some(Command::GetHistory(v1::GetHistory {
                room: Some(v1::RoomRef { room: Some(Room::Id(LOUNGE)) }),
                direction: v1::HistoryDirection::Forward as i32,
                anchor_seq: 2,
                limit: 0,
            })),
        ),
        client(
            "client/resume",
            18,
            Some(Command::Resume(v1::Resume {
                positions: vec![
                    v1::RoomPosition { room_id: LOUNGE, epoch: 1, seq: 2 },
                    v1::RoomPosition { room_id: DIRECT, epoch: 1, seq: 3 },
                ],
            })),
        ),
        // A command this version does not know decodes to "no command"; the
        // server answers UNKNOWN_COMMAND.
        client("client/no-command", 19, None),
    ];
    let replies = vec![
        // Replies, in field-number order.
        server("server/welcome", 1, Body::Welcome(welcome)),
        server("server/pong", 9, Body::Pong(v1::Pong {})),
        server(
            "server/auth-login",
            2,
            Body::Auth(v1::AuthResult {
                user: ada(),
                access_token: ACCESS.into(),
                access_expires_at_ms: T0 + 900_000,
                refresh_token: REFRESH.into(),
                refresh_expires_at_ms: T0 + 2_592_000_000,
            }),
        ),
        server(
            "server/auth-guest",
            2,
            Body::Auth(v1::AuthResult {
                user: Some(v1::User {
                    user_id: 9_007_199_254_741_000,
                    name: "visitor.zoe".into(),
                    guest: true,
                    ..Default::default()
                }),
                access_token: ACCESS.into(),
                access_expires_at_ms: T0 + 900_000,
                refresh_token: String::new(),
                refresh_expires_at_ms: 0,
            }),
        ),
        server("server/auth-authenticate", 2, Body::Auth(v1::AuthResult { user: ada(), ..Default::default() })),
        server("server/done", 8, Body::Done(v1::Done {})),
        server("server/room", 4, Body::Room(lounge_info.clone())),
        server("server/room-direct", 14, Body::Room(direct_info.clone())),
        server(
            "server/rooms",
            11,
            Body::Rooms(v1::RoomList {
                rooms: vec![
                    v1::RoomInfo { head_seq: 7, member_count: 2, ..lounge_info.clone() },
                    direct_info,
                    v1::RoomInfo {
                        room_id: 7,
                        name: "core-team".into(),
                        kind: v1::RoomKind::Private as i32,
                        epoch: 1,
                        head_seq: 3,
                        member_count: 1,
                        membership: v1::Membership::Invited as i32,
                        created_at_ms: T0 + 2_000,
                        peer: None,
                        ..Default::default()
                    },
                ],
            }),
        ),
        server(
            "server/members",
            13,
            Body::Members(v1::MemberList {
                room_id: LOUNGE,
                members: vec![
                    v1::Member { user: ada(), membership: v1::Membership::Joined as i32, role: v1::Role::Owner as i32 },
                    v1::Member {
                        user: grace(),
                        membership: v1::Membership::Invited as i32,
                        role: v1::Role::Member as i32,
                    },
                ],
            }),
        ),
        server(
            "server/sent",
            15,
            Body::Sent(v1::SendResult {
                room_id: LOUNGE,
                epoch: 1,
                seq: 3,
                server_time_ms: T0 + 3_000,
                duplicate: false,
            }),
        ),
        server(
            "server/sent-duplicate",
            21,
            Body::Sent(v1::SendResult {
                room_id: LOUNGE,
                epoch: 1,
                seq: 3,
                server_time_ms: T0 + 3_000,
                duplicate: true,
            }),
        ),
        server(
            "server/history",
            16,
            Body::History(v1::HistoryPage {
                room_id: LOUNGE,
                epoch: 1,
                events: vec![
                    event(
                        1,
                        ada(),
                        Kind::RoomCreated(v1::RoomCreated { name: "lounge".into(), kind: v1::RoomKind::Public as i32 }),
                    ),
                    event(2, ada(), Kind::MemberJoined(v1::MemberJoined {})),
                    event(
                        3,
                        ada(),
                        Kind::Message(v1::Message {
                            text: greeting.into(),
                            client_txn_id: "m-0001".into(),
                            ..Default::default()
                        }),
                    ),
                ],
                has_more: false,
                head_seq: 3,
                ..Default::default()
            }),
        ),
        server(
            "server/resumed",
            18,
            Body::Resumed(v1::ResumeResult {
                rooms: vec![
                    v1::RoomResumeStatus {
                        room_id: LOUNGE,
                        epoch: 1,
                        head_seq: 5,
                        outcome: v1::ResumeOutcome::Replayed as i32,
                        replayed: 3,
                    },
                    v1::RoomResumeStatus {
                        room_id: DIRECT,
                        epoch: 2,
                        head_seq: 1_500,
                        outcome: v1::ResumeOutcome::Reset as i32,
                        replayed: 0,
                    },
                    v1::RoomResumeStatus {
                        room_id: 7,
                        epoch: 1,
                        head_seq: 12,
                        outcome: v1::ResumeOutcome::Live as i32,
                        replayed: 0,
                    },
                    v1::RoomResumeStatus {
                        room_id: 8,
                        epoch: 0,
                        head_seq: 0,
                        outcome: v1::ResumeOutcome::Gone as i32,
                        replayed: 0,
                    },
                ],
            }),
        ),
        server(
            "server/error-wrong-state",
            15,
            error(v1::ErrorCode::WrongState, "log in first (Register, Login, Authenticate or GuestLogin)"),
        ),
        server(
            "server/error-invalid-credentials",
            2,
            error(v1::ErrorCode::InvalidCredentials, "wrong username or password"),
        ),
        server(
            "server/error-rate-limited",
            2,
            Body::Error(v1::Error::temporary(
                v1::ErrorCode::RateLimited,
                "too many login attempts; retry in 1500 ms",
                1_500,
            )),
        ),
        server(
            "server/error-txn-conflict",
            22,
            error(v1::ErrorCode::TxnConflict, "client_txn_id m-0001 was used for another message"),
        ),
        server(
            "server/error-unknown-command",
            19,
            error(v1::ErrorCode::UnknownCommand, "the frame carries no command this server knows"),
        ),
    ];
    let pushes = vec![
        // Pushes (request_id 0).
        server("server/error-bad-frame", 0, error(v1::ErrorCode::BadFrame, "undecodable frame")),
        server(
            "server/event-room-created",
            0,
            Body::Event(event(
                1,
                ada(),
                Kind::RoomCreated(v1::RoomCreated { name: "lounge".into(), kind: v1::RoomKind::Public as i32 }),
            )),
        ),
        server("server/event-member-joined", 0, Body::Event(event(2, ada(), Kind::MemberJoined(v1::MemberJoined {})))),
        server(
            "server/event-message",
            0,
            Body::Event(event(
                3,
                ada(),
                Kind::Message(v1::Message {
                    text: greeting.into(),
                    client_txn_id: "m-0001".into(),
                    ..Default::default()
                }),
            )),
        ),
        server(
            "server/event-member-invited",
            0,
            Body::Event(event(4, ada(), Kind::MemberInvited(v1::MemberInvited { invitee: grace() }))),
        ),
        server("server/event-member-left", 0, Body::Event(event(5, grace(), Kind::MemberLeft(v1::MemberLeft {})))),
        Vector {
            // An event of a kind added after this version (here a
            // hypothetical `pollStarted`) reaches an older receiver as an event
            // with no kind: it skips the content but still advances its
            // position.
            also_accepted: &[
                r#"{"event":{"roomId":"9007199254740993","epoch":"1","seq":"6","serverTimeMs":"1767225606000","sender":{"userId":"42","name":"ada"},"pollStarted":{"question":"Tea or coffee? ☕"}}}"#,
            ],
            ..server(
                "server/event-kind-unknown",
                0,
                Body::Event(v1::RoomEvent {
                    room_id: LOUNGE,
                    epoch: 1,
                    seq: 6,
                    server_time_ms: T0 + 6_000,
                    sender: ada(),
                    kind: None,
                }),
            )
        },
        server("server/ping", 0, Body::Ping(v1::Ping {})),
        server(
            "server/close",
            0,
            Body::Close(v1::Close {
                code: v1::CloseCode::ServerShutdown as i32,
                reason: "the server is shutting down; reconnect shortly".into(),
            }),
        ),
        server(
            "server/close-slow-consumer",
            0,
            Body::Close(v1::Close {
                code: v1::CloseCode::SlowConsumer as i32,
                reason: "you fell behind; reconnect and resume".into(),
            }),
        ),
    ];
    [commands, level_2_commands(), replies, level_2_replies(greeting), pushes, level_2_pushes(), uploads()]
        .into_iter()
        .flatten()
        .collect()
}

// --- feature level 2 ---

/// An image ada uploaded, and its thumbnail.
const PHOTO: &str = "3f6c0a9e1b2d4c5f8a7e6d5c4b3a2910";
const PHOTO_THUMB: &str = "a41c9e0d7b6f5e4d3c2b1a0f9e8d7c6b";

fn lounge_id() -> Option<v1::RoomRef> {
    Some(v1::RoomRef { room: Some(Room::Id(LOUNGE)) })
}

fn ada_styled() -> Option<v1::User> {
    Some(v1::User { display_name: "Ada Lovelace".into(), avatar_file_id: PHOTO.into(), ..ada().unwrap_or_default() })
}

fn photo() -> v1::FileInfo {
    v1::FileInfo {
        file_id: PHOTO.into(),
        name: "Zürich-see 🌅.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 2_483_117,
        width: 4032,
        height: 3024,
        thumbnail_file_id: PHOTO_THUMB.into(),
        uploaded_at_ms: T0 + 7_000,
        owner: ada(),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
    }
}

fn sydney() -> Option<v1::Location> {
    Some(v1::Location { latitude: -33.8568, longitude: 151.2153, label: "Sydney Opera House 🎭".into() })
}

/// The commands of feature level 2, in field-number order.
fn level_2_commands() -> Vec<Vector> {
    vec![
        client(
            "client/hello-level-2",
            1,
            Some(Command::Hello(v1::Hello {
                versions: vec![1],
                feature_level: 2,
                capabilities: vec!["resume".into()],
                client_name: "confab-cli/0.2.0".into(),
            })),
        ),
        client(
            "client/create-room-group",
            23,
            Some(Command::CreateRoom(v1::CreateRoom {
                name: String::new(),
                kind: v1::RoomKind::Private as i32,
                members: vec!["grace".into(), "linus".into()],
                topic: "Planning the 🚀 launch".into(),
            })),
        ),
        client(
            "client/list-rooms-directory-query",
            24,
            Some(Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Directory as i32, query: "zürich".into() })),
        ),
        // Optional fields: present even when empty or false ("" removes
        // the avatar; archived false un-archives), absent when not changed.
        client(
            "client/update-room",
            25,
            Some(Command::UpdateRoom(v1::UpdateRoom {
                room: lounge(),
                name: None,
                topic: Some("Tea ☕ and talk".into()),
                avatar_file_id: Some(String::new()),
                archived: Some(false),
            })),
        ),
        client(
            "client/set-notification-level",
            26,
            Some(Command::SetNotificationLevel(v1::SetNotificationLevel {
                room: lounge(),
                level: v1::NotificationLevel::NotifyMentions as i32,
            })),
        ),
        client(
            "client/send-message-reply-in-thread",
            27,
            Some(Command::SendMessage(v1::SendMessage {
                room: lounge(),
                text: "@grace **agreed** — see `main.rs`".into(),
                client_txn_id: "m-0002".into(),
                reply_to_seq: 3,
                thread_root_seq: 3,
                ..Default::default()
            })),
        ),
        // Attachments and a location: the text may be empty.
        client(
            "client/send-message-attachment",
            28,
            Some(Command::SendMessage(v1::SendMessage {
                room: lounge(),
                client_txn_id: "m-0003".into(),
                attachment_ids: vec![PHOTO.into()],
                ..Default::default()
            })),
        ),
        client(
            "client/send-message-location",
            29,
            Some(Command::SendMessage(v1::SendMessage {
                room: lounge(),
                text: "meet here".into(),
                client_txn_id: "m-0004".into(),
                location: sydney(),
                ..Default::default()
            })),
        ),
        client(
            "client/edit-message",
            30,
            Some(Command::EditMessage(v1::EditMessage {
                room: lounge(),
                seq: 3,
                text: "Grüße aus Zürich 👋 — 你好，世界 (@grace)".into(),
            })),
        ),
        client("client/delete-message", 31, Some(Command::DeleteMessage(v1::DeleteMessage { room: lounge(), seq: 3 }))),
        // A ZWJ sequence is one emoji.
        client(
            "client/react",
            32,
            Some(Command::React(v1::React { room: lounge(), seq: 3, emoji: "🏳️‍🌈".into(), remove: false })),
        ),
        client(
            "client/react-remove",
            33,
            Some(Command::React(v1::React { room: lounge(), seq: 3, emoji: "👍🏽".into(), remove: true })),
        ),
        client(
            "client/get-thread",
            34,
            Some(Command::GetThread(v1::GetThread {
                room: lounge(),
                root_seq: 3,
                direction: v1::HistoryDirection::Forward as i32,
                anchor_seq: 0,
                limit: 50,
            })),
        ),
        client("client/mark-read", 35, Some(Command::MarkRead(v1::MarkRead { room: lounge_id(), seq: 9 }))),
        client(
            "client/mark-delivered",
            36,
            Some(Command::MarkDelivered(v1::MarkDelivered { room: lounge_id(), seq: 10 })),
        ),
        client("client/get-receipts", 37, Some(Command::GetReceipts(v1::GetReceipts { room: lounge() }))),
        client("client/set-typing", 38, Some(Command::SetTyping(v1::SetTyping { room: lounge_id(), typing: true }))),
        client(
            "client/set-presence",
            39,
            Some(Command::SetPresence(v1::SetPresence {
                state: v1::PresenceState::Away as i32,
                status_text: Some("In a meeting 📅".into()),
                this_device_only: false,
            })),
        ),
        client(
            "client/set-presence-this-device",
            40,
            Some(Command::SetPresence(v1::SetPresence {
                state: v1::PresenceState::Away as i32,
                status_text: None,
                this_device_only: true,
            })),
        ),
        client("client/get-profile", 41, Some(Command::GetProfile(v1::GetProfile { username: "grace".into() }))),
        client(
            "client/set-profile",
            42,
            Some(Command::SetProfile(v1::SetProfile {
                display_name: Some("Ada Lovelace".into()),
                avatar_file_id: Some(PHOTO.into()),
                status_text: None,
                share_receipts: Some(false),
            })),
        ),
        client(
            "client/search-users",
            43,
            Some(Command::SearchUsers(v1::SearchUsers { prefix: "gr".into(), limit: 10 })),
        ),
        client("client/get-file", 44, Some(Command::GetFile(v1::GetFile { file_id: PHOTO.into() }))),
    ]
}

/// A message as GetHistory shows it after edits, reactions and a thread.
fn message_current_state(greeting: &str) -> v1::Message {
    v1::Message {
        text: format!("{greeting} (@grace)"),
        client_txn_id: "m-0001".into(),
        mentions: vec![grace().unwrap_or_default()],
        edited_at_ms: T0 + 12_000,
        reactions: vec![
            v1::Reaction {
                emoji: "🏳️‍🌈".into(),
                count: 2,
                users: vec![grace().unwrap_or_default(), ada().unwrap_or_default()],
            },
            v1::Reaction { emoji: "👍🏽".into(), count: 1, users: vec![grace().unwrap_or_default()] },
        ],
        thread: Some(v1::ThreadSummary {
            reply_count: 2,
            last_reply_seq: 11,
            last_reply_at_ms: T0 + 11_000,
            participants: vec![grace().unwrap_or_default(), ada().unwrap_or_default()],
        }),
        ..Default::default()
    }
}

/// The replies of feature level 2, in field-number order.
fn level_2_replies(greeting: &str) -> Vec<Vector> {
    let welcome = v1::Welcome {
        version: 1,
        feature_level: 2,
        capabilities: vec!["resume".into()],
        server_name: "confab".into(),
        server_version: "0.2.0".into(),
        ping_interval_ms: 20_000,
        idle_timeout_ms: 60_000,
        limits: Some(v1::Limits {
            max_frame_bytes_unauthenticated: 16_384,
            max_frame_bytes: 262_144,
            max_message_bytes: 16_384,
            max_history_page: 100,
            max_outbound_queue_bytes: 1_048_576,
            max_resume_events: 1_000,
            max_file_bytes: 26_214_400,
            max_attachments: 10,
        }),
        session_id: 12_345_678_901_234_567_890,
        ..Default::default()
    };
    let thread_reply = |seq: u64, sender: Option<v1::User>, text: &str, txn: &str| {
        event(
            seq,
            sender,
            Kind::Message(v1::Message {
                text: text.into(),
                client_txn_id: txn.into(),
                thread_root_seq: 3,
                ..Default::default()
            }),
        )
    };
    vec![
        server("server/welcome-level-2", 1, Body::Welcome(welcome)),
        server(
            "server/room-level-2",
            25,
            Body::Room(v1::RoomInfo {
                room_id: LOUNGE,
                name: "lounge".into(),
                kind: v1::RoomKind::Public as i32,
                epoch: 1,
                head_seq: 14,
                member_count: 2,
                membership: v1::Membership::Joined as i32,
                created_at_ms: T0 + 1_000,
                peer: None,
                topic: "Tea ☕ and talk".into(),
                avatar_file_id: String::new(),
                archived: false,
                read_seq: 9,
                unread_count: 4,
                mention_count: 1,
                notification_level: v1::NotificationLevel::NotifyMentions as i32,
                role: v1::Role::Owner as i32,
            }),
        ),
        server(
            "server/room-group",
            23,
            Body::Room(v1::RoomInfo {
                room_id: 9_007_199_254_740_995,
                name: String::new(),
                kind: v1::RoomKind::Private as i32,
                epoch: 1,
                head_seq: 4,
                member_count: 3,
                membership: v1::Membership::Joined as i32,
                created_at_ms: T0 + 20_000,
                topic: "Planning the 🚀 launch".into(),
                read_seq: 2,
                role: v1::Role::Owner as i32,
                ..Default::default()
            }),
        ),
        // React with nothing to change: no event, seq 0, duplicate.
        server(
            "server/sent-reaction-unchanged",
            32,
            Body::Sent(v1::SendResult { room_id: LOUNGE, epoch: 1, seq: 0, server_time_ms: 0, duplicate: true }),
        ),
        server(
            "server/history-thread",
            34,
            Body::History(v1::HistoryPage {
                room_id: LOUNGE,
                epoch: 1,
                events: vec![
                    thread_reply(10, grace(), "Same here 🙌", "g-17"),
                    thread_reply(11, ada(), "Let’s meet at 5", "m-0005"),
                ],
                has_more: false,
                head_seq: 14,
                thread_root: Some(event(3, ada(), Kind::Message(message_current_state(greeting)))),
            }),
        ),
        server(
            "server/read-state",
            35,
            Body::ReadState(v1::ReadState { room_id: LOUNGE, read_seq: 9, unread_count: 4, mention_count: 1 }),
        ),
        server(
            "server/receipts",
            37,
            Body::Receipts(v1::ReceiptList {
                room_id: LOUNGE,
                receipts: vec![
                    v1::Receipt {
                        room_id: LOUNGE,
                        user: ada(),
                        delivered_seq: 14,
                        read_seq: 14,
                        updated_at_ms: T0 + 14_000,
                    },
                    v1::Receipt {
                        room_id: LOUNGE,
                        user: grace(),
                        delivered_seq: 12,
                        read_seq: 9,
                        updated_at_ms: T0 + 13_500,
                    },
                ],
            }),
        ),
        server(
            "server/profile",
            42,
            Body::Profile(v1::Profile {
                user: ada_styled(),
                display_name: "Ada Lovelace".into(),
                avatar_file_id: PHOTO.into(),
                status_text: "In a meeting 📅".into(),
                presence: v1::PresenceState::Away as i32,
                last_seen_ms: 0,
                created_at_ms: T0 - 86_400_000,
                share_receipts: false,
            }),
        ),
        server(
            "server/profiles",
            43,
            Body::Profiles(v1::ProfileList {
                profiles: vec![v1::Profile {
                    user: grace(),
                    presence: v1::PresenceState::Offline as i32,
                    last_seen_ms: T0 - 3_600_000,
                    created_at_ms: T0 - 172_800_000,
                    ..Default::default()
                }],
            }),
        ),
        server("server/file", 44, Body::File(photo())),
        server(
            "server/error-message-not-found",
            31,
            error(v1::ErrorCode::MessageNotFound, "no message at seq 3 in room 9007199254740993 (it was deleted)"),
        ),
        server(
            "server/error-room-archived",
            27,
            error(v1::ErrorCode::RoomArchived, "the room lounge is archived: it can be read, not written to"),
        ),
        server(
            "server/error-file-not-found",
            28,
            error(v1::ErrorCode::FileNotFound, "no file 3f6c0a9e1b2d4c5f8a7e6d5c4b3a2910 of yours"),
        ),
    ]
}

/// The pushes and events of feature level 2.
fn level_2_pushes() -> Vec<Vector> {
    vec![
        server(
            "server/read-state-push",
            0,
            Body::ReadState(v1::ReadState { room_id: LOUNGE, read_seq: 14, unread_count: 0, mention_count: 0 }),
        ),
        server(
            "server/receipt",
            0,
            Body::Receipt(v1::Receipt {
                room_id: LOUNGE,
                user: grace(),
                delivered_seq: 14,
                read_seq: 14,
                updated_at_ms: T0 + 15_000,
            }),
        ),
        server(
            "server/typing",
            0,
            Body::Typing(v1::Typing { room_id: LOUNGE, user: grace(), typing: true, expires_in_ms: 6_000 }),
        ),
        server(
            "server/presence",
            0,
            Body::Presence(v1::Presence {
                user: ada_styled(),
                state: v1::PresenceState::Away as i32,
                status_text: "In a meeting 📅".into(),
                last_seen_ms: 0,
            }),
        ),
        server(
            "server/notification",
            0,
            Body::Notification(v1::Notification {
                room_id: LOUNGE,
                seq: 9,
                sender: grace(),
                reason: v1::NotificationReason::ReasonMention as i32,
                excerpt: "@ada **agreed** — see `main.rs`".into(),
                room_name: "lounge".into(),
            }),
        ),
        // The answer on a QUIC upload stream (FILE-7), and a refusal.
        server("server/upload-file", 0, Body::File(photo())),
        server(
            "server/upload-error-too-large",
            0,
            error(v1::ErrorCode::FileTooLarge, "the file is 31457280 bytes; the limit is 26214400"),
        ),
        server(
            "server/event-message-reply-in-thread",
            0,
            Body::Event(event(
                9,
                grace(),
                Kind::Message(v1::Message {
                    text: "@ada **agreed** — see `main.rs`".into(),
                    client_txn_id: "g-16".into(),
                    reply_to: Some(v1::ReplyTo {
                        seq: 3,
                        sender: ada(),
                        quote: "Grüße aus Zürich 👋 — 你好，世界".into(),
                        deleted: false,
                    }),
                    thread_root_seq: 3,
                    mentions: vec![ada().unwrap_or_default()],
                    mentions_room: false,
                    ..Default::default()
                }),
            )),
        ),
        server(
            "server/event-message-attachment",
            0,
            Body::Event(event(
                12,
                ada(),
                Kind::Message(v1::Message {
                    text: "@room photos from the lake".into(),
                    client_txn_id: "m-0003".into(),
                    mentions_room: true,
                    attachments: vec![photo()],
                    location: sydney(),
                    ..Default::default()
                }),
            )),
        ),
        // A deleted message as history shows it: a tombstone.
        server(
            "server/event-message-deleted-state",
            0,
            Body::Event(event(
                4,
                grace(),
                Kind::Message(v1::Message {
                    client_txn_id: "g-15".into(),
                    deleted: Some(v1::Deletion { by: ada(), at_ms: T0 + 13_000 }),
                    ..Default::default()
                }),
            )),
        ),
        server(
            "server/event-message-edited",
            0,
            Body::Event(event(
                13,
                ada(),
                Kind::MessageEdited(v1::MessageEdited {
                    target_seq: 3,
                    text: "Grüße aus Zürich 👋 — 你好，世界 (@grace)".into(),
                    mentions: vec![grace().unwrap_or_default()],
                    mentions_room: false,
                }),
            )),
        ),
        server(
            "server/event-message-deleted",
            0,
            Body::Event(event(14, ada(), Kind::MessageDeleted(v1::MessageDeleted { target_seq: 4 }))),
        ),
        server(
            "server/event-reaction-added",
            0,
            Body::Event(event(
                15,
                grace(),
                Kind::ReactionAdded(v1::ReactionAdded { target_seq: 3, emoji: "🏳️‍🌈".into() }),
            )),
        ),
        server(
            "server/event-reaction-removed",
            0,
            Body::Event(event(
                16,
                grace(),
                Kind::ReactionRemoved(v1::ReactionRemoved { target_seq: 3, emoji: "👍🏽".into() }),
            )),
        ),
        // Only the fields that changed are present; archived false is a change.
        server(
            "server/event-room-updated",
            0,
            Body::Event(event(
                17,
                ada(),
                Kind::RoomUpdated(v1::RoomUpdated {
                    name: None,
                    topic: Some("Tea ☕ and talk".into()),
                    avatar_file_id: Some(String::new()),
                    archived: Some(false),
                }),
            )),
        ),
    ]
}

/// What a client writes first on a QUIC upload stream (FILE-7).
fn uploads() -> Vec<Vector> {
    vec![Vector {
        name: "upload/upload-file",
        frame: Frame::Upload(v1::UploadFile {
            name: "Zürich-see 🌅.jpg".into(),
            size: 2_483_117,
            access_token: ACCESS.into(),
        }),
        also_accepted: &[],
    }]
}

impl Frame {
    fn direction(&self) -> &'static str {
        match self {
            Frame::Client(_) => "client",
            Frame::Server(_) => "server",
            Frame::Upload(_) => "upload",
        }
    }

    fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match self {
            Frame::Client(frame) => codec::encode(frame, encoding).to_vec(),
            Frame::Server(frame) => codec::encode(frame, encoding).to_vec(),
            Frame::Upload(frame) => codec::encode(frame, encoding).to_vec(),
        }
    }
}

/// Renders the vectors file. The JSON of each frame is kept exactly as the
/// codec writes it (fields in declaration order), one vector per block.
fn render(vectors: &[Vector]) -> String {
    let mut out = String::from("[\n");
    for (i, vector) in vectors.iter().enumerate() {
        let json = String::from_utf8(vector.frame.encode(Encoding::Json)).expect("JSON is UTF-8");
        let quoted = |s: &str| serde_json::to_string(s).expect("strings serialize");
        write!(
            out,
            "  {{\n    \"name\": {},\n    \"direction\": {},\n    \"hex\": {},\n    \"json\": {}",
            quoted(vector.name),
            quoted(vector.frame.direction()),
            quoted(&hex::encode(vector.frame.encode(Encoding::Proto))),
            json,
        )
        .expect("writing to a String");
        if !vector.also_accepted.is_empty() {
            out.push_str(",\n    \"also_accepted\": [\n");
            let items: Vec<String> = vector.also_accepted.iter().map(|a| format!("      {a}")).collect();
            out.push_str(&items.join(",\n"));
            out.push_str("\n    ]");
        }
        out.push_str(if i + 1 == vectors.len() { "\n  }\n" } else { "\n  },\n" });
    }
    out.push_str("]\n");
    out
}

fn crate_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn blessing() -> bool {
    std::env::var_os("CONFAB_BLESS").is_some_and(|v| v == "1")
}

/// The text of the vectors file: as committed, or while blessing, as it is
/// being rewritten (tests run in parallel with the one that writes it).
fn stored_text() -> String {
    if blessing() {
        return render(&corpus());
    }
    std::fs::read_to_string(crate_path("testdata/frames.json")).expect("testdata/frames.json exists")
}

/// The vectors as stored in the committed file.
fn stored() -> Vec<Value> {
    match serde_json::from_str(&stored_text()).expect("frames.json is JSON") {
        Value::Array(vectors) => vectors,
        other => panic!("frames.json must be an array, found {other}"),
    }
}

#[test]
fn frames_json_is_current() {
    let path = crate_path("testdata/frames.json");
    let fresh = render(&corpus());
    if blessing() {
        std::fs::create_dir_all(crate_path("testdata")).expect("create testdata/");
        std::fs::write(&path, &fresh).expect("write frames.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "testdata/frames.json is out of date with tests/vectors.rs; \
         run `CONFAB_BLESS=1 cargo test -p confab-protocol --test vectors` and review the diff"
    );
}

#[test]
fn vector_names_are_unique() {
    let mut seen = BTreeSet::new();
    for vector in corpus() {
        assert!(seen.insert(vector.name), "duplicate vector name {}", vector.name);
    }
}

/// Decodes `hex` and `json` as `M`, checks they agree, and re-encodes both.
fn check_vector<M>(name: &str, hex_text: &str, json: &Value, also_accepted: &[Value])
where
    M: prost::Message + Default + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let bytes = hex::decode(hex_text).unwrap_or_else(|e| panic!("{name}: bad hex: {e}"));
    let from_proto: M = codec::decode(&bytes, Encoding::Proto).unwrap_or_else(|e| panic!("{name}: hex: {e}"));
    let json_text = serde_json::to_vec(json).expect("a Value serializes");
    let from_json: M = codec::decode(&json_text, Encoding::Json).unwrap_or_else(|e| panic!("{name}: json: {e}"));
    assert_eq!(from_proto, from_json, "{name}: hex and json decode to different frames");

    assert_eq!(hex::encode(codec::encode(&from_proto, Encoding::Proto)), hex_text, "{name}: hex does not re-encode");
    assert_eq!(
        hex::encode(codec::encode(&from_json, Encoding::Proto)),
        hex_text,
        "{name}: json re-encodes to other bytes"
    );
    let rejson: Value =
        serde_json::from_slice(&codec::encode(&from_proto, Encoding::Json)).expect("the codec writes JSON");
    assert_eq!(&rejson, json, "{name}: json does not re-encode to an equal value");

    for (i, alternative) in also_accepted.iter().enumerate() {
        let text = serde_json::to_vec(alternative).expect("a Value serializes");
        let decoded: M =
            codec::decode(&text, Encoding::Json).unwrap_or_else(|e| panic!("{name}: also_accepted[{i}]: {e}"));
        assert_eq!(decoded, from_proto, "{name}: also_accepted[{i}] decodes to another frame");
    }
}

#[test]
fn every_vector_round_trips_in_both_encodings() {
    let vectors = stored();
    assert!(!vectors.is_empty());
    for vector in &vectors {
        let field = |key: &str| vector.get(key).unwrap_or_else(|| panic!("vector without {key}: {vector}"));
        let name = field("name").as_str().expect("name is a string");
        let hex_text = field("hex").as_str().expect("hex is a string");
        assert_eq!(hex_text, hex_text.to_lowercase(), "{name}: hex must be lowercase");
        let json = field("json");
        assert!(json.is_object(), "{name}: json must be an object");
        let also: Vec<Value> = vector
            .get("also_accepted")
            .map(|a| a.as_array().expect("also_accepted is an array").clone())
            .unwrap_or_default();
        match field("direction").as_str() {
            Some("client") => check_vector::<ClientFrame>(name, hex_text, json, &also),
            Some("server") => check_vector::<ServerFrame>(name, hex_text, json, &also),
            Some("upload") => check_vector::<v1::UploadFile>(name, hex_text, json, &also),
            other => panic!("{name}: direction must be client, server or upload, found {other:?}"),
        }
    }
}

/// Messages of the descriptor set by full name (`.confab.v1.ClientFrame`).
fn messages(set: &prost_types::FileDescriptorSet) -> BTreeMap<String, &prost_types::DescriptorProto> {
    let mut by_name = BTreeMap::new();
    for file in &set.file {
        for message in &file.message_type {
            by_name.insert(format!(".{}.{}", file.package(), message.name()), message);
        }
    }
    by_name
}

/// Records `Message.field` for every field set in `value`, a JSON object of
/// message type `type_name`, and recurses into nested messages.
fn mark_set_fields(
    by_name: &BTreeMap<String, &prost_types::DescriptorProto>,
    type_name: &str,
    value: &Value,
    seen: &mut BTreeSet<String>,
) {
    let (Some(message), Value::Object(map)) = (by_name.get(type_name), value) else {
        return;
    };
    for (key, inner) in map {
        let Some(field) = message.field.iter().find(|f| f.json_name() == key) else {
            continue;
        };
        seen.insert(format!("{}.{}", message.name(), field.name()));
        if field.r#type() == prost_types::field_descriptor_proto::Type::Message {
            let items = match inner {
                Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            for item in items {
                mark_set_fields(by_name, field.type_name(), item, seen);
            }
        }
    }
}

#[test]
fn vectors_cover_every_command_reply_push_and_oneof_member() {
    let set = prost_types::FileDescriptorSet::decode(confab_protocol::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let by_name = messages(&set);
    let mut seen = BTreeSet::new();
    for vector in stored() {
        let root = match vector["direction"].as_str() {
            Some("client") => ".confab.v1.ClientFrame",
            Some("upload") => ".confab.v1.UploadFile",
            _ => ".confab.v1.ServerFrame",
        };
        mark_set_fields(&by_name, root, &vector["json"], &mut seen);
    }
    let mut missing = Vec::new();
    for message in by_name.values() {
        for field in message.field.iter().filter(|f| f.oneof_index.is_some() && f.proto3_optional != Some(true)) {
            let name = format!("{}.{}", message.name(), field.name());
            if !seen.contains(&name) {
                missing.push(name);
            }
        }
    }
    assert!(missing.is_empty(), "no vector sets these oneof members: {missing:?}");
}

#[test]
fn vectors_show_the_hard_cases() {
    let text = stored_text();
    // A 64-bit id above 2^53 travels as a JSON string.
    assert!(text.contains(&format!("\"{LOUNGE}\"")));
    // Non-ASCII text, including characters outside the BMP.
    assert!(text.contains('👋') && text.contains('你'));
}

#[test]
fn protocol_md_examples_are_these_bytes() {
    let doc = std::fs::read_to_string(crate_path("PROTOCOL.md")).expect("PROTOCOL.md exists");
    let corpus = corpus();
    for name in DOC_EXAMPLES {
        let vector = corpus.iter().find(|v| v.name == *name).unwrap_or_else(|| panic!("no vector {name}"));
        let payload = vector.frame.encode(Encoding::Proto);
        let mut prefix = BytesMut::new();
        codec::put_length_prefix(payload.len(), &mut prefix);
        let quic = format!("{} {}", hex::encode(&prefix), hex::encode(&payload));
        let json = String::from_utf8(vector.frame.encode(Encoding::Json)).expect("JSON is UTF-8");
        for (what, shown) in [("QUIC bytes", quic), ("JSON text", json)] {
            assert!(
                doc.contains(&shown),
                "PROTOCOL.md does not show the {what} of vector {name}; it should contain:\n{shown}"
            );
        }
    }
}
