//! Taking ownership of a file descriptor inherited across `exec` (an IPCP's control socket,
//! handed down by the IRMd and named in an environment variable).

use crate::ShmError;
use rustix::fd::{BorrowedFd, FromRawFd, OwnedFd};

/// Take ownership of inherited fd `raw`, after checking that it is open, and mark it
/// close-on-exec so it is not passed on further. Call at most once per fd.
pub fn inherited_fd(raw: i32) -> Result<OwnedFd, ShmError> {
    if raw < 3 {
        return Err(ShmError::BadRegion(format!(
            "fd {raw} is a standard stream, not an inherited socket"
        )));
    }
    // SAFETY: `raw` is only borrowed for the duration of the fcntl call, which checks that
    // it names an open file descriptor (EBADF otherwise); no ownership is assumed yet.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    rustix::io::fcntl_getfd(borrowed).map_err(std::io::Error::from)?;
    // SAFETY: the fd is open (checked above) and was inherited across exec for this process
    // to own; nothing else in the process has taken it, as the caller takes it once.
    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC).map_err(std::io::Error::from)?;
    Ok(owned)
}
