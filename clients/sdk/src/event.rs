//! What a [`crate::Client`] reports besides replies: room events, resets,
//! connection state changes and the server's close.

use std::time::Duration;

use confab_protocol::{Epoch, RoomId, Seq, v1};

use crate::{Error, Tokens};

/// One item of the client's event stream ([`crate::Client::next_event`]).
///
/// Room events arrive in log order per room, each exactly once, across
/// reconnects. Match with a `_` arm: later versions may add variants.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A new entry of a room's log (a message, a join, ...).
    Room(v1::RoomEvent),
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
