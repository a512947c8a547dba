//! Identifier newtypes shared by every side of the protocol.

use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<u64> for $name {
            fn from(raw: u64) -> Self {
                Self(raw)
            }
        }
    };
}

id_newtype!(
    /// A room, as numbered by the server.
    RoomId
);
id_newtype!(
    /// A user account (or a guest), as numbered by the server.
    UserId
);
id_newtype!(
    /// A position in a room's log: the first event is 1, 0 means "before
    /// anything".
    Seq
);
id_newtype!(
    /// A generation of a room's log. When it changes, positions from an older
    /// epoch cannot be resumed.
    Epoch
);

impl Seq {
    /// The position after this one.
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}
