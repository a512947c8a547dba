//! [`RoomRef`]: a room named by id or by name, accepted by every SDK call
//! that targets a room.

use std::fmt;

use confab_protocol::{RoomId, v1};

/// A room, by id or by name (names are taken verbatim: no `#` is stripped).
///
/// ```
/// use confab_sdk::{RoomRef, protocol::RoomId};
/// assert_eq!(RoomRef::from("general"), RoomRef::Name("general".into()));
/// assert_eq!(RoomRef::from(RoomId(7)), RoomRef::Id(RoomId(7)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RoomRef {
    Id(RoomId),
    Name(String),
}

impl From<&str> for RoomRef {
    fn from(name: &str) -> Self {
        RoomRef::Name(name.to_owned())
    }
}

impl From<String> for RoomRef {
    fn from(name: String) -> Self {
        RoomRef::Name(name)
    }
}

impl From<&String> for RoomRef {
    fn from(name: &String) -> Self {
        RoomRef::Name(name.clone())
    }
}

impl From<RoomId> for RoomRef {
    fn from(id: RoomId) -> Self {
        RoomRef::Id(id)
    }
}

impl From<&v1::RoomInfo> for RoomRef {
    /// The room by its id.
    fn from(room: &v1::RoomInfo) -> Self {
        RoomRef::Id(RoomId(room.room_id))
    }
}

impl From<RoomRef> for v1::RoomRef {
    fn from(room: RoomRef) -> Self {
        match room {
            RoomRef::Id(id) => v1::RoomRef::id(id),
            RoomRef::Name(name) => v1::RoomRef::name(name),
        }
    }
}

impl fmt::Display for RoomRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomRef::Id(id) => write!(f, "room {id}"),
            RoomRef::Name(name) => write!(f, "#{name}"),
        }
    }
}
