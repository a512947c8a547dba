//! The typed requests of protocol feature level 2 on [`Client`]: rich sends,
//! edits, deletions, reactions, threads, room settings and groups, read
//! state and receipts, typing, presence, profiles and search.

use confab_protocol::{
    Seq,
    v1::{self, client_frame::Command, server_frame::Body},
};

use super::{Client, new_txn_id};
use crate::{Error, ProfileUpdate, RoomRef, RoomUpdate, SendOptions};

impl Client {
    // ---- messages -----------------------------------------------------

    /// Sends a message with [`SendOptions`]: a reply, a thread message,
    /// attachments, a location. `text` may be empty when the message carries
    /// attachments or a location. Like [`Client::send`], it is applied
    /// exactly once across reconnects: a retry carries the same transaction
    /// id and the same content.
    pub async fn send_with(
        &self,
        room: impl Into<RoomRef>,
        text: &str,
        options: SendOptions,
    ) -> Result<v1::SendResult, Error> {
        let command = Command::SendMessage(options.command(room.into(), text, new_txn_id));
        expect!(self.request(command).await?, Sent)
    }

    /// Sends `text` as a reply to message `to` (quoted by the server).
    pub async fn reply(&self, room: impl Into<RoomRef>, to: Seq, text: &str) -> Result<v1::SendResult, Error> {
        self.send_with(room, text, SendOptions::new().reply_to(to)).await
    }

    /// Replaces the text of one's own message `seq`. Answers with the
    /// position of the `message_edited` event. Not resent after a lost
    /// connection (each edit appends an event): it fails with
    /// [`Error::ConnectionLost`] then.
    pub async fn edit(&self, room: impl Into<RoomRef>, seq: Seq, text: &str) -> Result<v1::SendResult, Error> {
        let command =
            Command::EditMessage(v1::EditMessage { room: Some(room.into().into()), seq: seq.0, text: text.into() });
        expect!(self.request(command).await?, Sent)
    }

    /// Deletes message `seq` (one's own, or anyone's as a moderator or
    /// above); its content is erased on the server. Answers with the
    /// position of the `message_deleted` event.
    pub async fn delete_message(&self, room: impl Into<RoomRef>, seq: Seq) -> Result<v1::SendResult, Error> {
        let command = Command::DeleteMessage(v1::DeleteMessage { room: Some(room.into().into()), seq: seq.0 });
        expect!(self.request(command).await?, Sent)
    }

    /// Adds the user's `emoji` reaction to message `seq`. When it was there
    /// already, nothing changes: `seq` 0 and `duplicate` true.
    pub async fn react(&self, room: impl Into<RoomRef>, seq: Seq, emoji: &str) -> Result<v1::SendResult, Error> {
        self.react_or_not(room.into(), seq, emoji, false).await
    }

    /// Withdraws the user's `emoji` reaction to message `seq` (`duplicate`
    /// true when there was none).
    pub async fn unreact(&self, room: impl Into<RoomRef>, seq: Seq, emoji: &str) -> Result<v1::SendResult, Error> {
        self.react_or_not(room.into(), seq, emoji, true).await
    }

    async fn react_or_not(&self, room: RoomRef, seq: Seq, emoji: &str, remove: bool) -> Result<v1::SendResult, Error> {
        let command = Command::React(v1::React { room: Some(room.into()), seq: seq.0, emoji: emoji.into(), remove });
        expect!(self.request(command).await?, Sent)
    }

    /// A page of the thread under message `root`, paged like
    /// [`Client::history`] over the thread's messages; `thread_root` holds
    /// the root in its current state.
    pub async fn thread(
        &self,
        room: impl Into<RoomRef>,
        root: Seq,
        direction: v1::HistoryDirection,
        anchor: Seq,
        limit: u32,
    ) -> Result<v1::HistoryPage, Error> {
        let command = Command::GetThread(v1::GetThread {
            room: Some(room.into().into()),
            root_seq: root.0,
            direction: direction as i32,
            anchor_seq: anchor.0,
            limit,
        });
        expect!(self.request(command).await?, History)
    }

    // ---- rooms --------------------------------------------------------

    /// Creates a room (`kind` PUBLIC or PRIVATE) with a topic and joins it
    /// as owner.
    pub async fn create_room_with_topic(
        &self,
        name: &str,
        kind: v1::RoomKind,
        topic: &str,
    ) -> Result<v1::RoomInfo, Error> {
        let command = Command::CreateRoom(v1::CreateRoom {
            name: name.into(),
            kind: kind as i32,
            topic: topic.into(),
            members: Vec::new(),
        });
        expect!(self.request(command).await?, Room)
    }

    /// Creates a group: a private room whose `members` (registered users,
    /// by name) are joined at once. `name` may be empty (an unnamed group,
    /// reached by its id).
    pub async fn create_group<S: Into<String>>(
        &self,
        name: &str,
        members: impl IntoIterator<Item = S>,
        topic: &str,
    ) -> Result<v1::RoomInfo, Error> {
        let command = Command::CreateRoom(v1::CreateRoom {
            name: name.into(),
            kind: v1::RoomKind::Private as i32,
            members: members.into_iter().map(Into::into).collect(),
            topic: topic.into(),
        });
        expect!(self.request(command).await?, Room)
    }

    /// Public rooms whose name or topic contains `query` (case-insensitive;
    /// "" lists the whole directory).
    pub async fn search_rooms(&self, query: &str) -> Result<Vec<v1::RoomInfo>, Error> {
        let command = Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Directory as i32, query: query.into() });
        expect!(self.request(command).await?, Rooms).map(|list| list.rooms)
    }

    /// Changes a room's settings (only the fields given); answers with the
    /// room as it is now.
    pub async fn update_room(&self, room: impl Into<RoomRef>, update: RoomUpdate) -> Result<v1::RoomInfo, Error> {
        let command = Command::UpdateRoom(update.command(room.into()));
        expect!(self.request(command).await?, Room)
    }

    /// How much the user wants to hear about a joined room.
    pub async fn set_notification_level(
        &self,
        room: impl Into<RoomRef>,
        level: v1::NotificationLevel,
    ) -> Result<v1::RoomInfo, Error> {
        let command = Command::SetNotificationLevel(v1::SetNotificationLevel {
            room: Some(room.into().into()),
            level: level as i32,
        });
        expect!(self.request(command).await?, Room)
    }

    // ---- read state, receipts, typing, presence -----------------------

    /// Moves the user's read marker in a joined room forward to `seq`
    /// (never back); answers with the marker and the counts after it.
    pub async fn mark_read(&self, room: impl Into<RoomRef>, seq: Seq) -> Result<v1::ReadState, Error> {
        let command = Command::MarkRead(v1::MarkRead { room: Some(room.into().into()), seq: seq.0 });
        expect!(self.request(command).await?, ReadState)
    }

    /// Says this device received the room's events up to `seq`.
    pub async fn mark_delivered(&self, room: impl Into<RoomRef>, seq: Seq) -> Result<(), Error> {
        let command = Command::MarkDelivered(v1::MarkDelivered { room: Some(room.into().into()), seq: seq.0 });
        expect!(self.request(command).await?, Done).map(|_| ())
    }

    /// The read and delivered receipts of a room's members (those who share
    /// them).
    pub async fn receipts(&self, room: impl Into<RoomRef>) -> Result<v1::ReceiptList, Error> {
        let command = Command::GetReceipts(v1::GetReceipts { room: Some(room.into().into()) });
        expect!(self.request(command).await?, Receipts)
    }

    /// Starts (`true`) or stops typing in a joined room. A start lasts a few
    /// seconds (the `expires_in_ms` others are told): renew it while typing.
    pub async fn set_typing(&self, room: impl Into<RoomRef>, typing: bool) -> Result<(), Error> {
        let command = Command::SetTyping(v1::SetTyping { room: Some(room.into().into()), typing });
        expect!(self.request(command).await?, Done).map(|_| ())
    }

    /// Sets the user's presence, `ONLINE` or `AWAY`, and with `status_text`
    /// their status (`Some("")` clears it). With `this_device_only`, only
    /// this session is away (or back); the user shows AWAY once all their
    /// sessions are.
    pub async fn set_presence(
        &self,
        state: v1::PresenceState,
        status_text: Option<&str>,
        this_device_only: bool,
    ) -> Result<(), Error> {
        let command = Command::SetPresence(v1::SetPresence {
            state: state as i32,
            status_text: status_text.map(str::to_owned),
            this_device_only,
        });
        expect!(self.request(command).await?, Done).map(|_| ())
    }

    // ---- profiles -----------------------------------------------------

    /// A user's profile (registered users, and guests while connected).
    pub async fn profile(&self, username: &str) -> Result<v1::Profile, Error> {
        let command = Command::GetProfile(v1::GetProfile { username: username.into() });
        expect!(self.request(command).await?, Profile)
    }

    /// Changes the user's own profile (only the fields given); answers with
    /// the new profile.
    pub async fn set_profile(&self, update: ProfileUpdate) -> Result<v1::Profile, Error> {
        expect!(self.request(Command::SetProfile(update.command())).await?, Profile)
    }

    /// Registered users whose name starts with `prefix` (case-insensitive),
    /// by name; `limit` 1 to 50, 0 for the server's default (20).
    pub async fn search_users(&self, prefix: &str, limit: u32) -> Result<Vec<v1::Profile>, Error> {
        let command = Command::SearchUsers(v1::SearchUsers { prefix: prefix.into(), limit });
        expect!(self.request(command).await?, Profiles).map(|list| list.profiles)
    }

    // ---- files --------------------------------------------------------

    /// What the server knows of a file the user may see (its name, type,
    /// size, dimensions and thumbnail).
    pub async fn file_info(&self, file_id: &str) -> Result<v1::FileInfo, Error> {
        expect!(self.request(Command::GetFile(v1::GetFile { file_id: file_id.into() })).await?, File)
    }
}
