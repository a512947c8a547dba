//! The arguments of the requests that take more than a few values:
//! [`SendOptions`] (replies, threads, attachments, locations), [`RoomUpdate`]
//! and [`ProfileUpdate`]; each turns into its wire command here.

use confab_protocol::{Seq, v1};

use crate::RoomRef;

/// What a message carries besides its text, for [`crate::Client::send_with`].
/// Start from `SendOptions::new()` (or `Default`) and add what you need:
///
/// ```
/// use confab_sdk::{SendOptions, Seq};
/// let options = SendOptions::new().reply_to(Seq(12)).attach("3f2a...").location(52.52, 13.40, "Berlin");
/// assert_eq!(options.attachments.len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendOptions {
    /// The message this one answers (same room).
    pub reply_to: Option<Seq>,
    /// The root of the thread to post into (same room; threads do not nest).
    pub thread_root: Option<Seq>,
    /// Ids of files the user uploaded ([`crate::Client::upload_file`]).
    pub attachments: Vec<String>,
    pub location: Option<v1::Location>,
    /// The transaction id (1 to 64 bytes, unique per user); `None`: a fresh
    /// random one. Sending again with the same id and content returns the
    /// first result with `duplicate: true`.
    pub client_txn_id: Option<String>,
}

impl SendOptions {
    pub fn new() -> Self {
        SendOptions::default()
    }

    pub fn reply_to(mut self, seq: Seq) -> Self {
        self.reply_to = Some(seq);
        self
    }

    pub fn in_thread(mut self, root: Seq) -> Self {
        self.thread_root = Some(root);
        self
    }

    pub fn attach(mut self, file_id: impl Into<String>) -> Self {
        self.attachments.push(file_id.into());
        self
    }

    /// A point on Earth: latitude -90 to 90, longitude -180 to 180 (degrees),
    /// and an optional label (at most 256 bytes; "" for none).
    pub fn location(mut self, latitude: f64, longitude: f64, label: impl Into<String>) -> Self {
        self.location = Some(v1::Location { latitude, longitude, label: label.into() });
        self
    }

    pub fn txn_id(mut self, client_txn_id: impl Into<String>) -> Self {
        self.client_txn_id = Some(client_txn_id.into());
        self
    }

    /// The `SendMessage` command, with `txn_id` when no id was chosen.
    pub(crate) fn command(self, room: RoomRef, text: &str, txn_id: impl FnOnce() -> String) -> v1::SendMessage {
        v1::SendMessage {
            room: Some(room.into()),
            text: text.into(),
            client_txn_id: self.client_txn_id.unwrap_or_else(txn_id),
            reply_to_seq: self.reply_to.map_or(0, |seq| seq.0),
            thread_root_seq: self.thread_root.map_or(0, |seq| seq.0),
            attachment_ids: self.attachments,
            location: self.location,
        }
    }
}

/// Changes to a room's settings, for [`crate::Client::update_room`]: only
/// the fields that are `Some` change. The topic needs the MODERATOR role or
/// above; the name, avatar and archiving ADMIN or above.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomUpdate {
    pub name: Option<String>,
    /// At most 512 bytes; "" removes it.
    pub topic: Option<String>,
    /// An image the user uploaded; "" removes the avatar.
    pub avatar_file_id: Option<String>,
    /// An archived room can be read, not written to.
    pub archived: Option<bool>,
}

impl RoomUpdate {
    pub(crate) fn command(self, room: RoomRef) -> v1::UpdateRoom {
        v1::UpdateRoom {
            room: Some(room.into()),
            name: self.name,
            topic: self.topic,
            avatar_file_id: self.avatar_file_id,
            archived: self.archived,
        }
    }
}

/// Changes to the user's own profile, for [`crate::Client::set_profile`]:
/// only the fields that are `Some` change. Guests may change only the status
/// text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// Shown instead of the name, at most 64 bytes; "" removes it.
    pub display_name: Option<String>,
    /// An image the user uploaded; "" removes the avatar.
    pub avatar_file_id: Option<String>,
    /// At most 140 bytes; "" removes it.
    pub status_text: Option<String>,
    /// Whether other members see the user's read and delivered receipts.
    pub share_receipts: Option<bool>,
}

impl ProfileUpdate {
    pub(crate) fn command(self) -> v1::SetProfile {
        v1::SetProfile {
            display_name: self.display_name,
            avatar_file_id: self.avatar_file_id,
            status_text: self.status_text,
            share_receipts: self.share_receipts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_options_fill_every_field_of_the_command() {
        let plain = SendOptions::new().command(RoomRef::Name("general".into()), "hi", || "fresh".into());
        assert_eq!((plain.client_txn_id.as_str(), plain.reply_to_seq, plain.thread_root_seq), ("fresh", 0, 0));
        assert!(plain.attachment_ids.is_empty() && plain.location.is_none());

        let rich = SendOptions::new()
            .reply_to(Seq(4))
            .in_thread(Seq(2))
            .attach("f1")
            .attach("f2")
            .location(-33.9, 151.2, "Sydney")
            .txn_id("t-1")
            .command(RoomRef::Name("general".into()), "", || unreachable!("an id was chosen"));
        assert_eq!(rich.client_txn_id, "t-1");
        assert_eq!((rich.reply_to_seq, rich.thread_root_seq), (4, 2));
        assert_eq!(rich.attachment_ids, ["f1", "f2"]);
        assert_eq!(rich.location, Some(v1::Location { latitude: -33.9, longitude: 151.2, label: "Sydney".into() }));
        assert_eq!(rich.text, "");
    }

    #[test]
    fn updates_change_only_what_is_given() {
        let update = RoomUpdate { topic: Some("news".into()), ..Default::default() }.command(RoomRef::Name("g".into()));
        assert_eq!((update.topic.as_deref(), update.name, update.archived), (Some("news"), None, None));
        let profile = ProfileUpdate { share_receipts: Some(false), ..Default::default() }.command();
        assert_eq!((profile.share_receipts, profile.status_text), (Some(false), None));
    }
}
