//! One direction of a flow: a single-producer single-consumer ring of length-prefixed records.
//!
//! Positions (`head`, `tail`) are monotonically increasing byte counters; a record starts at an
//! 8-byte aligned position with an 8-byte header (payload length, kind), then `headroom` bytes,
//! then the payload, padded to 8 bytes. A record that does not fit before the end of the buffer
//! is preceded by a wrap marker and starts at offset 0.
//!
//! Each side keeps its own position privately (the producer its tail, the consumer its head) and
//! only *stores* it to shared memory; what it *loads* is the peer's position, which is untrusted
//! and checked before use. This module never sleeps nor makes a system call: it reports
//! "would block" and "the peer must be woken" to [`crate::duplex`].

use crate::layout::{align8, REC_HDR};
use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};
use crate::ShmError;

const KIND_PKT: u32 = 0x4b50_3737; // "77PK"
const KIND_WRAP: u32 = 0x5257_3737; // "77WR"

/// Keeps a field on its own pair of cache lines (adjacent-line prefetch pulls 128 bytes).
#[repr(C, align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// The shared control block of one ring. `#[repr(C)]` of atomics, so an all-zero byte image (a
/// fresh memfd) is a valid, empty ring.
#[repr(C)]
pub(crate) struct RingCtl {
    /// Producer position: bytes ever written.
    pub(crate) tail: Padded<AtomicU64>,
    /// Consumer position: bytes ever released.
    pub(crate) head: Padded<AtomicU64>,
    /// Set by a consumer about to sleep waiting for data; cleared by whoever wakes it.
    pub(crate) consumer_sleeping: AtomicU32,
    /// Set by a producer about to sleep waiting for space; cleared by whoever wakes it.
    pub(crate) producer_waiting: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RingCtl>() == 384);

/// Producer-private state (behind the write mutex).
#[derive(Debug)]
pub(crate) struct TxState {
    pub(crate) tail: u64,
    head_cache: u64,
    pub(crate) count: u32,
}

/// Consumer-private state (behind the read mutex).
#[derive(Debug)]
pub(crate) struct RxState {
    head: u64,
}

impl TxState {
    pub(crate) fn new(tail: u64) -> TxState {
        TxState {
            tail,
            head_cache: tail,
            count: 0,
        }
    }
}

impl RxState {
    pub(crate) fn new(head: u64) -> RxState {
        RxState { head }
    }
}

pub(crate) use crate::data::Data;

/// One side's view of one ring.
pub(crate) struct Ring {
    ctl: crate::data::CtlRef,
    data: Data,
    cap: u64,
    headroom: usize,
    max_packet: usize,
}

fn corrupt(what: String) -> ShmError {
    ShmError::Corrupt(what)
}

impl Ring {
    pub(crate) fn new(ctl: crate::data::CtlRef, data: Data, headroom: usize) -> Ring {
        let cap = data.len();
        Ring {
            ctl,
            data,
            cap: cap as u64,
            headroom,
            max_packet: cap / 4 - REC_HDR - headroom,
        }
    }

    pub(crate) fn ctl(&self) -> &RingCtl {
        self.ctl.get()
    }

    pub(crate) fn max_packet(&self) -> usize {
        self.max_packet
    }

    pub(crate) fn headroom(&self) -> usize {
        self.headroom
    }

    fn rec_size(&self, len: usize) -> u64 {
        align8(REC_HDR + self.headroom + len) as u64
    }

    /// Bytes a record of `len` needs at `tail`, counting the skip to the buffer start.
    fn need(&self, tail: u64, len: usize) -> u64 {
        let rec = self.rec_size(len);
        let off = tail & (self.cap - 1);
        if off + rec > self.cap {
            self.cap - off + rec
        } else {
            rec
        }
    }

    /// Bytes written and not yet consumed (records with their headers), at most the ring's
    /// capacity whatever the peer wrote into the consumer position.
    pub(crate) fn queued(&self, st: &TxState) -> u64 {
        let head = self.ctl().head.0.load(Ordering::Acquire);
        st.tail.wrapping_sub(head).min(self.cap)
    }

    /// Is there room for a record of `len` bytes? Refreshes the cached consumer position.
    pub(crate) fn tx_fits(&self, st: &mut TxState, len: usize) -> Result<bool, ShmError> {
        let need = self.need(st.tail, len);
        if self.cap - st.tail.wrapping_sub(st.head_cache) >= need {
            return Ok(true);
        }
        let head = self.ctl().head.0.load(Ordering::Acquire);
        let used = st.tail.wrapping_sub(head);
        if used > self.cap || !head.is_multiple_of(8) {
            return Err(corrupt(format!(
                "consumer position {head} inconsistent with producer position {}",
                st.tail
            )));
        }
        st.head_cache = head;
        Ok(self.cap - used >= need)
    }

    /// Append one record. `f` fills `headroom + max_len` bytes (payload at `headroom`) and
    /// returns the payload length actually used (clamped to `max_len`), or `None` to write
    /// no record after all (the ring is left as it was: `Ok(false)`). Returns whether the
    /// peer announced it sleeps and must be woken.
    pub(crate) fn push(
        &self,
        st: &mut TxState,
        max_len: usize,
        f: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<bool, ShmError> {
        if max_len > self.max_packet {
            return Err(ShmError::TooBig {
                len: max_len,
                max: self.max_packet,
            });
        }
        if !self.tx_fits(st, max_len)? {
            return Err(ShmError::WouldBlock);
        }
        let mut tail = st.tail;
        let mut off = (tail & (self.cap - 1)) as usize;
        if off as u64 + self.rec_size(max_len) > self.cap {
            self.data.write_hdr(off, 0, KIND_WRAP);
            tail += self.cap - off as u64;
            off = 0;
        }
        // A wrap marker written above stays unpublished if `f` declines: the next record
        // writes it again.
        let Some(used) = self
            .data
            .with_mut(off + REC_HDR, self.headroom + max_len, f)
        else {
            return Ok(false);
        };
        let used = used.min(max_len);
        // `used <= max_packet < 2^30`, so it fits the u32 length field.
        self.data.write_hdr(off, used as u32, KIND_PKT);
        tail += self.rec_size(used);
        st.tail = tail;
        st.count = st.count.wrapping_add(1);
        self.ctl().tail.0.store(tail, Ordering::Release);
        // Dekker with the consumer: our tail store vs. its `consumer_sleeping` store.
        fence(Ordering::SeqCst);
        let c = &self.ctl().consumer_sleeping;
        Ok(c.load(Ordering::Relaxed) != 0 && c.swap(0, Ordering::AcqRel) != 0)
    }

    /// Take one record. `f` gets the data area, the payload offset in it, and the payload
    /// length; if it returns `Err` the record stays in the ring. On success returns `f`'s
    /// value and whether the peer announced it waits for space and must be woken.
    pub(crate) fn pop<R>(
        &self,
        st: &mut RxState,
        f: impl FnOnce(&Data, usize, usize) -> Result<R, ShmError>,
    ) -> Result<(R, bool), ShmError> {
        let mask = self.cap - 1;
        let mut head = st.head;
        let tail = self.ctl().tail.0.load(Ordering::Acquire);
        let mut avail = tail.wrapping_sub(head);
        if avail == 0 {
            return Err(ShmError::WouldBlock);
        }
        if avail > self.cap || !tail.is_multiple_of(8) {
            return Err(corrupt(format!(
                "producer position {tail} inconsistent with consumer position {head}"
            )));
        }
        let mut off = (head & mask) as usize;
        if avail < REC_HDR as u64 {
            return Err(corrupt(format!(
                "{avail} bytes published, less than a header"
            )));
        }
        let (mut len, mut kind) = self.data.read_hdr(off);
        if kind == KIND_WRAP {
            let skip = self.cap - off as u64;
            if off == 0 || avail < skip + REC_HDR as u64 {
                return Err(corrupt(format!("wrap marker at {off} with {avail} bytes")));
            }
            head += skip;
            avail -= skip;
            off = 0;
            (len, kind) = self.data.read_hdr(0);
        }
        if kind != KIND_PKT {
            return Err(corrupt(format!("record kind {kind:#x} at {off}")));
        }
        let len = len as usize;
        if len > self.max_packet {
            return Err(corrupt(format!(
                "record length {len} > {}",
                self.max_packet
            )));
        }
        let rec = self.rec_size(len);
        if off as u64 + rec > self.cap || rec > avail {
            return Err(corrupt(format!(
                "record of {rec} bytes at {off} overruns ({avail} bytes published)"
            )));
        }
        let r = f(&self.data, off + REC_HDR + self.headroom, len)?;
        head += rec;
        st.head = head;
        self.ctl().head.0.store(head, Ordering::Release);
        // Dekker with the producer: our head store vs. its `producer_waiting` store.
        fence(Ordering::SeqCst);
        let p = &self.ctl().producer_waiting;
        Ok((
            r,
            p.load(Ordering::Relaxed) != 0 && p.swap(0, Ordering::AcqRel) != 0,
        ))
    }

    /// Is something published and not yet consumed? (Racy by nature; a hint for event loops.)
    pub(crate) fn rx_ready(&self) -> bool {
        let c = self.ctl();
        c.tail.0.load(Ordering::Acquire) != c.head.0.load(Ordering::Relaxed)
    }
}
