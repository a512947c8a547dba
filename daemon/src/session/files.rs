//! File metadata over the protocol: GetFile. (The bytes travel over HTTP
//! and QUIC upload streams, see `crate::files`.)

use confab_protocol::v1::{self, ErrorCode, server_frame::Body};

use super::{Session, internal};

/// An avatar given by id (UpdateRoom, SetProfile): "" removes it; anything
/// not shaped like a file id names no file (the writer checks the rest).
pub(super) fn check_avatar_id(avatar: Option<&str>) -> Result<(), v1::Error> {
    match avatar {
        Some(id) if !id.is_empty() && !crate::files::is_file_id(id) => {
            Err(v1::Error::new(ErrorCode::FileNotFound, format!("no file {id:?} of yours")))
        }
        _ => Ok(()),
    }
}

impl Session {
    /// A file the user may see (owner, public, or posted in a room they may
    /// read); FILE_NOT_FOUND otherwise, as for an unknown id.
    pub(super) fn get_file(&mut self, command: v1::GetFile) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let record = crate::files::visible(&self.ctx, identity.user, &command.file_id)?;
        let info = crate::files::file_info(&self.ctx, &command.file_id, &record).map_err(internal)?;
        Ok(Body::File(info))
    }
}
