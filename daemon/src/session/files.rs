//! File metadata over the protocol: GetFile. (The bytes travel over HTTP
//! and QUIC upload streams, see `crate::files`.)

use confab_protocol::v1::{self, server_frame::Body};

use super::{Session, not_yet};

impl Session {
    pub(super) fn get_file(&mut self, _command: v1::GetFile) -> Result<Body, v1::Error> {
        Err(not_yet())
    }
}
