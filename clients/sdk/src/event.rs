//! What a [`crate::Client`] reports besides replies: room events, the
//! pushes around them (read state, receipts, typing, presence,
//! notifications), resets, connection state changes and the server's close.

use std::time::Duration;

use confab_protocol::{Epoch, RoomId, Seq, v1};

use crate::{Error, Tokens};

/// One item of the client's event stream ([`crate::Client::next_event`]).
///
/// Room events arrive in log order per room, each exactly once, across
/// reconnects. The other pushes (read state, receipts, typing, presence,
/// notifications) are not replayed after a reconnect, and are dropped when
/// the application has fallen [`crate::ClientOptions::event_buffer`] events
/// behind. Match with a `_` arm: later versions may add variants.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A new entry of a room's log (a message, an edit, a deletion, a
    /// reaction, a join, ...). A message arrives as it was sent; later
    /// events (`message_edited`, `message_deleted`, `reaction_added`,
    /// `reaction_removed`) change it: apply them on top of what
    /// [`crate::Client::history`] showed (applying one twice is harmless).
    Room(v1::RoomEvent),
    /// The user's read marker in a room moved (on another of the user's
    /// sessions, or by sending there): the unread and mention counts after
    /// it. Between these, count yourself: every `message` event after
    /// `read_seq` from someone else adds one unread (and one mention when it
    /// mentions the user or `@room`).
    ReadState(v1::ReadState),
    /// A member's read or delivered receipt in a room the user follows moved.
    Receipt(v1::Receipt),
    /// Someone started or stopped typing in a room; a start lasts
    /// `expires_in_ms` unless renewed. Clear it yourself when their message
    /// arrives.
    Typing(v1::Typing),
    /// A user who shares a room with the user (or the user) changed their
    /// presence or status text.
    Presence(v1::Presence),
    /// A message the user may want to be told about, per their notification
    /// level for the room.
    Notification(v1::Notification),
    /// The events missed in this room while disconnected cannot be replayed
    /// (too many, or the log's epoch changed, as the server said on
    /// `Resume` or as a live event of a new epoch shows). Reload the room
    /// with [`crate::Client::history`]; live events continue after
    /// `head_seq`.
    RoomReset { room: RoomId, epoch: Epoch, head_seq: Seq },
    /// The connection is up: the handshake is done and, when logged in, the
    /// session is authenticated and resumed. Sent for the first connection
    /// and after every successful reconnect.
    Connected { session_id: u64 },
    /// The connection was lost; attempt number `attempt` (from 1) to
    /// reconnect starts after `delay`.
    Reconnecting { attempt: u32, delay: Duration, error: Error },
    /// The client stopped for good: a stop-range close code, reconnect
    /// attempts exhausted, or authentication refused on reconnect. No events
    /// follow. ([`crate::Client::close`] ends the stream without this event.)
    Disconnected { reason: Error },
    /// The server sent `Close`. Whether a reconnect follows is decided by
    /// the close code the transport carries (4000-4499: reconnect,
    /// 4500-4999: stop), which wins over this one when they differ; an
    /// unknown code in the JSON encoding reads as 0 here.
    ServerClosed { code: i32, reason: String },
    /// An error the server sent that answers no request (it could not
    /// decode one of our frames).
    ServerError(v1::Error),
    /// The client renewed its tokens with the refresh token (the old refresh
    /// token is now dead): store these.
    TokensRefreshed(Tokens),
}
