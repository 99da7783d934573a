//! One control message per `SOCK_SEQPACKET` datagram, postcard-encoded, with file descriptors
//! as `SCM_RIGHTS` ancillary data. The one codec of every local control message.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;

/// Largest control datagram.
pub const MAX_MSG: usize = 64 * 1024;
/// Most file descriptors in one control datagram.
pub const MAX_FDS: usize = 8;

/// Errors of the control transport.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed control message: {0}")]
    Decode(#[from] postcard::Error),
    #[error("control message truncated")]
    Truncated,
    #[error("too many file descriptors in a control message")]
    TooManyFds,
}

impl From<rustix::io::Errno> for WireError {
    fn from(e: rustix::io::Errno) -> Self {
        WireError::Io(e.into())
    }
}

/// A connected pair of control sockets (`SOCK_SEQPACKET`, close-on-exec): a connection
/// between two parts of one system, e.g. the IRMd and an IPCP it starts.
pub fn pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    Ok(socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Send `msg` with `fds` attached as one datagram.
pub fn send<T: Serialize>(
    sock: BorrowedFd<'_>,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), WireError> {
    send_with(sock, msg, fds, SendFlags::NOSIGNAL)
}

/// As [`send`], but fail (`WouldBlock`) rather than wait when the peer's queue is full: for
/// answers sent by a thread that serves others too (a peer that does not read its answers
/// must not stall it).
pub fn send_nowait<T: Serialize>(
    sock: BorrowedFd<'_>,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), WireError> {
    send_with(sock, msg, fds, SendFlags::NOSIGNAL | SendFlags::DONTWAIT)
}

fn send_with<T: Serialize>(
    sock: BorrowedFd<'_>,
    msg: &T,
    fds: &[BorrowedFd<'_>],
    flags: SendFlags,
) -> Result<(), WireError> {
    if fds.len() > MAX_FDS {
        return Err(WireError::TooManyFds);
    }
    let bytes = postcard::to_stdvec(msg)?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !anc.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(WireError::TooManyFds);
    }
    loop {
        match sendmsg(sock, &[IoSlice::new(&bytes)], &mut anc, flags) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receive one datagram: `Ok(None)` when the peer closed the connection. Received fds are
/// owned (and closed on drop) even when the payload fails to decode.
pub fn recv<T: DeserializeOwned>(
    sock: BorrowedFd<'_>,
) -> Result<Option<(T, Vec<OwnedFd>)>, WireError> {
    // The next datagram's length first (waiting for one): a buffer of that size, not of the
    // largest message (zeroing 64 KiB per message cost more than handling a small one).
    let len = loop {
        match rustix::net::recv(
            sock,
            &mut [0u8; 0][..],
            rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::TRUNC,
        ) {
            Ok((_, len)) => break len,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    let mut buf = vec![0u8; len.clamp(1, MAX_MSG)];
    let Some((n, fds)) = recv_raw(sock, &mut buf)? else {
        return Ok(None);
    };
    let msg = postcard::from_bytes(&buf[..n])?;
    Ok(Some((msg, fds)))
}

/// Receive one datagram if one is queued, into `buf` (of [`MAX_MSG`] bytes: no message is
/// larger): one system call, for a thread that serves many sockets and keeps one buffer.
/// `Ok(None)` when the peer closed the connection; `WouldBlock` (as [`WireError::Io`]) when
/// nothing is queued.
pub fn recv_nowait<T: DeserializeOwned>(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<Option<(T, Vec<OwnedFd>)>, WireError> {
    let Some((n, fds)) = recv_with(sock, buf, RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT)?
    else {
        return Ok(None);
    };
    let msg = postcard::from_bytes(&buf[..n])?;
    Ok(Some((msg, fds)))
}

/// Receive one datagram's raw bytes and fds; `Ok(None)` on orderly close.
pub fn recv_raw(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<Option<(usize, Vec<OwnedFd>)>, WireError> {
    recv_with(sock, buf, RecvFlags::CMSG_CLOEXEC)
}

fn recv_with(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: RecvFlags,
) -> Result<Option<(usize, Vec<OwnedFd>)>, WireError> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let r = loop {
        match recvmsg(sock, &mut [IoSliceMut::new(buf)], &mut anc, flags) {
            Ok(r) => break r,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    if r.flags.contains(rustix::net::ReturnFlags::TRUNC)
        || r.flags.contains(rustix::net::ReturnFlags::CTRUNC)
    {
        return Err(WireError::Truncated);
    }
    if r.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some((r.bytes, fds)))
}

/// Borrow a slice of owned fds.
pub fn borrow_all(fds: &[OwnedFd]) -> Vec<BorrowedFd<'_>> {
    fds.iter().map(|f| f.as_fd()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctrl::msg::{IrmReq, IrmResp};

    fn pair() -> (OwnedFd, OwnedFd) {
        super::pair().expect("socketpair")
    }

    #[test]
    fn round_trip_with_fds() {
        let (a, b) = pair();
        let (x, _y) = pair();
        let req = IrmReq::NameCreate {
            name: "oping.server".into(),
            lb: Default::default(),
        };
        send(a.as_fd(), &req, &[x.as_fd()]).expect("send");
        let (got, fds): (IrmReq, _) = recv(b.as_fd()).expect("recv").expect("msg");
        assert_eq!(got, req);
        assert_eq!(fds.len(), 1);
    }

    #[test]
    fn recv_nowait_takes_what_is_queued_and_does_not_wait() {
        let (a, b) = pair();
        let mut buf = vec![0u8; MAX_MSG];
        let r: Result<Option<(IrmReq, _)>, _> = recv_nowait(b.as_fd(), &mut buf);
        assert!(
            matches!(&r, Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{r:?}"
        );
        let (x, _y) = pair();
        let req = IrmReq::FlowRelease { flow_id: 7 };
        send(a.as_fd(), &req, &[x.as_fd()]).expect("send");
        let (got, fds): (IrmReq, _) = recv_nowait(b.as_fd(), &mut buf)
            .expect("recv")
            .expect("msg");
        assert_eq!((got, fds.len()), (req, 1));
        drop(a);
        let r: Option<(IrmReq, _)> = recv_nowait(b.as_fd(), &mut buf).expect("closed");
        assert!(r.is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (a, b) = pair();
        rustix::io::write(&a, &[0xff, 0xff, 0xff, 0xff, 0x01]).expect("write");
        let r: Result<Option<(IrmResp, _)>, _> = recv(b.as_fd());
        assert!(r.is_err());
        drop(a);
        let r: Option<(IrmResp, _)> = recv(b.as_fd()).expect("eof");
        assert!(r.is_none());
    }
}

#[cfg(test)]
mod props {
    use crate::ctrl::msg::{IpcpFrame, IrmReq, IrmResp};
    use proptest::prelude::*;

    proptest! {
        /// The decoder of bytes from another process never panics.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = postcard::from_bytes::<IrmReq>(&data);
            let _ = postcard::from_bytes::<IrmResp>(&data);
            let _ = postcard::from_bytes::<IpcpFrame>(&data);
        }

        #[test]
        fn alloc_round_trip(name in "[a-z.]{1,40}", t in proptest::option::of(any::<u32>())) {
            let m = IrmReq::FlowAlloc { name, qos: o7s_proto::QosSpec::DATA, timeout_ms: t };
            let b = postcard::to_stdvec(&m).expect("encode");
            prop_assert_eq!(postcard::from_bytes::<IrmReq>(&b).ok(), Some(m));
        }
    }
}
