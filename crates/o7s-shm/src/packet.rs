//! Raw Ethernet (`AF_PACKET`) sockets bound to one interface, for the eth-dix and eth-llc
//! IPCPs. Binding needs a `sockaddr_ll`, which `rustix` does not offer, so it lives here with
//! the project's other `unsafe` code. Sending and receiving go through `rustix` on the fd.

use crate::ShmError;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::net::{AddressFamily, Protocol, SocketFlags, SocketType};

/// `ETH_P_802_2`: 802.3 frames carrying an LLC header.
pub const ETH_P_802_2: u16 = 0x0004;

/// A raw socket on `ifname` receiving frames of `proto` (an ethertype, or [`ETH_P_802_2`]).
/// Frames are sent and received whole, Ethernet header included.
pub fn packet_socket(ifname: &str, proto: u16) -> Result<(OwnedFd, u32), ShmError> {
    let raw = std::num::NonZeroU32::new(u32::from(proto.to_be()))
        .ok_or_else(|| ShmError::BadRegion("protocol 0".into()))?;
    let fd = rustix::net::socket_with(
        AddressFamily::PACKET,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(Protocol::from_raw(raw)),
    )?;
    let index = rustix::net::netdevice::name_to_index(&fd, ifname)?;
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: proto.to_be(),
        sll_ifindex: index as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a fully initialised `sockaddr_ll` that lives across the call, and the
    // length passed is its size; `fd` is an open socket owned by this function.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(ShmError::Io(std::io::Error::last_os_error()));
    }
    Ok((fd, index))
}

/// The MAC address and MTU of `ifname` (from sysfs).
pub fn link_info(ifname: &str) -> Result<([u8; 6], u32), ShmError> {
    let bad = |what: &str| ShmError::BadRegion(format!("interface {ifname}: {what}"));
    if ifname.is_empty() || ifname.contains('/') || ifname.contains("..") {
        return Err(bad("not an interface name"));
    }
    let base = std::path::Path::new("/sys/class/net").join(ifname);
    let addr =
        std::fs::read_to_string(base.join("address")).map_err(|_| bad("no such interface"))?;
    let mut mac = [0u8; 6];
    let mut parts = addr.trim().split(':');
    for b in &mut mac {
        let p = parts.next().ok_or_else(|| bad("bad MAC address"))?;
        *b = u8::from_str_radix(p, 16).map_err(|_| bad("bad MAC address"))?;
    }
    let mtu = std::fs::read_to_string(base.join("mtu"))
        .ok()
        .and_then(|m| m.trim().parse().ok())
        .ok_or_else(|| bad("unknown MTU"))?;
    Ok((mac, mtu))
}

/// Receives up to `n` datagrams or frames with one system call (`recvmmsg`): it waits for
/// the first and takes whatever else is already queued, so a busy receiver makes one call
/// per batch instead of one per frame.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
}

impl RecvBatch {
    /// `n` buffers of `size` bytes each.
    pub fn new(n: usize, size: usize) -> RecvBatch {
        RecvBatch {
            bufs: (0..n.max(1)).map(|_| vec![0u8; size]).collect(),
            lens: vec![0; n.max(1)],
        }
    }

    /// Wait for at least one message on `fd`; returns how many arrived.
    pub fn recv(&mut self, fd: &OwnedFd) -> Result<usize, ShmError> {
        let mut iov: Vec<libc::iovec> = self
            .bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: an all-zero `mmsghdr` is valid (null name and control, no flags).
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // SAFETY: every header points at one iovec of `iov`, each covering a live buffer of
        // `self.bufs` with its true length; `hdrs`, `iov` and `self.bufs` outlive the call and
        // are not otherwise touched during it; the count passed is `hdrs.len()`.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                hdrs.len() as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(ShmError::Io(std::io::Error::last_os_error()));
        }
        let n = n as usize;
        for (len, h) in self.lens.iter_mut().zip(&hdrs).take(n) {
            *len = h.msg_len as usize;
        }
        Ok(n)
    }

    /// Message `i` of the last batch (truncated to the buffer size).
    pub fn get(&self, i: usize) -> &[u8] {
        let b = &self.bufs[i];
        &b[..self.lens[i].min(b.len())]
    }
}

/// Frames queued to go out with one system call (`sendmmsg`) on a connected or bound socket.
pub struct SendBatch {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    used: usize,
}

impl SendBatch {
    /// Room for `n` frames of up to `size` bytes.
    pub fn new(n: usize, size: usize) -> SendBatch {
        SendBatch {
            bufs: (0..n.max(1)).map(|_| vec![0u8; size]).collect(),
            lens: vec![0; n.max(1)],
            used: 0,
        }
    }

    /// Is there room for another frame?
    pub fn is_full(&self) -> bool {
        self.used == self.bufs.len()
    }

    /// Is nothing queued?
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Queue a frame: `fill` writes it into the slot given and returns its length (0 drops
    /// it). Returns false when the batch is full; flush first.
    pub fn push(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> bool {
        if self.is_full() {
            return false;
        }
        let slot = &mut self.bufs[self.used];
        let n = fill(slot).min(slot.len());
        if n > 0 {
            self.lens[self.used] = n;
            self.used += 1;
        }
        true
    }

    /// Send every queued frame on `fd`; returns how many the kernel took (the rest are
    /// dropped, as a full NIC queue would).
    pub fn flush(&mut self, fd: &OwnedFd) -> usize {
        let mut sent = 0;
        while sent < self.used {
            let mut iov: Vec<libc::iovec> = self.bufs[sent..self.used]
                .iter_mut()
                .zip(&self.lens[sent..self.used])
                .map(|(b, &len)| libc::iovec {
                    iov_base: b.as_mut_ptr().cast(),
                    iov_len: len,
                })
                .collect();
            let mut hdrs: Vec<libc::mmsghdr> = iov
                .iter_mut()
                .map(|v| {
                    // SAFETY: an all-zero `mmsghdr` is valid (null name and control, no flags).
                    let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    h.msg_hdr.msg_iov = v;
                    h.msg_hdr.msg_iovlen = 1;
                    h
                })
                .collect();
            // SAFETY: every header points at one iovec of `iov`, each covering the first
            // `len` bytes of a live buffer of `self.bufs`; all outlive the call, which only
            // reads them; the count passed is `hdrs.len()`.
            let n = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    hdrs.len() as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            sent += n as usize;
        }
        self.used = 0;
        sent
    }
}
