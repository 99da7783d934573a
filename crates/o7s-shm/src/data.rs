//! Access to a ring's bytes and control block: raw pointers into the shared mapping, or (under
//! `--cfg loom`) heap cells that loom tracks for unsynchronised access.

use crate::ring::RingCtl;

#[cfg(loom)]
pub(crate) use model::{CtlRef, Data};
#[cfg(not(loom))]
pub(crate) use real::{CtlRef, Data};

#[cfg(not(loom))]
mod real {
    use super::RingCtl;
    use std::ptr::NonNull;

    /// Pointer to a control block inside a live mapping.
    pub(crate) struct CtlRef(NonNull<RingCtl>);

    impl CtlRef {
        /// # Safety
        /// `p` must point to a 128-byte aligned, `size_of::<RingCtl>()` bytes region of a
        /// shared mapping that stays mapped for the life of the returned value.
        pub(crate) unsafe fn new(p: NonNull<RingCtl>) -> CtlRef {
            CtlRef(p)
        }

        pub(crate) fn get(&self) -> &RingCtl {
            // SAFETY: by `new`'s contract the pointer is aligned and mapped while `self` lives.
            // `RingCtl` holds only atomics (same layout as integers, every bit pattern valid),
            // so concurrent access from the peer process is atomic access, not a data race.
            unsafe { self.0.as_ref() }
        }
    }

    /// A ring's data area inside a live mapping.
    pub(crate) struct Data {
        ptr: NonNull<u8>,
        len: usize,
    }

    impl Data {
        /// # Safety
        /// `ptr..ptr+len` must be a writable, 8-byte aligned part of a shared mapping that stays
        /// mapped for the life of the returned value and that no other `Data` of this process
        /// covers.
        pub(crate) unsafe fn new(ptr: NonNull<u8>, len: usize) -> Data {
            Data { ptr, len }
        }

        pub(crate) fn len(&self) -> usize {
            self.len
        }

        fn at(&self, off: usize, len: usize) -> *mut u8 {
            assert!(
                off <= self.len && len <= self.len - off,
                "ring access out of bounds"
            );
            // SAFETY: just checked that `off + len <= self.len`, inside the mapping.
            unsafe { self.ptr.as_ptr().add(off) }
        }

        /// Read a record header with one volatile load, so it is fetched exactly once and the
        /// caller validates the very value it then uses (no double fetch from shared memory).
        pub(crate) fn read_hdr(&self, off: usize) -> (u32, u32) {
            debug_assert!(off.is_multiple_of(8));
            let p = self.at(off, 8).cast::<u64>();
            // SAFETY: `at` checked the bounds; `off` is 8-aligned within an 8-aligned area. The
            // peer may be writing this word concurrently if it is buggy or hostile; any u64 is a
            // valid value and the caller validates it, so a torn or garbage read is harmless.
            let w = u64::from_le(unsafe { p.read_volatile() });
            (w as u32, (w >> 32) as u32)
        }

        pub(crate) fn write_hdr(&self, off: usize, len: u32, kind: u32) {
            debug_assert!(off.is_multiple_of(8));
            let p = self.at(off, 8).cast::<u64>();
            let w = u64::from(len) | (u64::from(kind) << 32);
            // SAFETY: bounds checked by `at`, aligned as above; this range belongs to the
            // producer (between its tail and the consumer's head), which is us.
            unsafe { p.write_volatile(w.to_le()) }
        }

        /// Copy payload bytes out of shared memory.
        pub(crate) fn copy_out(&self, off: usize, dst: &mut [u8]) {
            let src = self.at(off, dst.len());
            // SAFETY: `at` checked the source bounds, `dst` is a distinct local buffer. The
            // record is ours until we publish the new head; a hostile peer could still scribble
            // on it concurrently, which at worst yields garbage bytes (u8 has no invalid
            // values) — the copy is a plain memcpy with no reasoning based on the contents.
            unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) }
        }

        /// Give `f` a mutable view of `len` bytes at `off`.
        pub(crate) fn with_mut<R>(
            &self,
            off: usize,
            len: usize,
            f: impl FnOnce(&mut [u8]) -> R,
        ) -> R {
            let p = self.at(off, len);
            // SAFETY: bounds checked by `at`. The range is inside a record this side owns (the
            // caller holds the direction's mutex and the ring protocol keeps the peer off the
            // range until we publish a new position), so no other reference of this process
            // aliases it. A hostile peer process could write it concurrently; the slice is of
            // u8 (no invalid values) and we document to callers that contents from a peer are
            // untrusted bytes — the same assumption every shared-memory IPC makes.
            let s = unsafe { std::slice::from_raw_parts_mut(p, len) };
            f(s)
        }
    }
}

#[cfg(loom)]
mod model {
    use super::RingCtl;
    use loom::cell::UnsafeCell;
    use std::sync::Arc;

    /// Shared control block on the heap.
    #[derive(Clone)]
    pub(crate) struct CtlRef(pub(crate) Arc<RingCtl>);

    impl CtlRef {
        pub(crate) fn get(&self) -> &RingCtl {
            &self.0
        }
    }

    /// Data area as 8-byte cells, so loom reports any access not ordered by the ring protocol.
    #[derive(Clone)]
    pub(crate) struct Data(pub(crate) Arc<[UnsafeCell<u64>]>);

    impl Data {
        pub(crate) fn new(len: usize) -> Data {
            Data((0..len / 8).map(|_| UnsafeCell::new(0)).collect())
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len() * 8
        }

        pub(crate) fn read_hdr(&self, off: usize) -> (u32, u32) {
            // SAFETY: loom checks this read against concurrent writes to the same cell.
            let w = self.0[off / 8].with(|p| unsafe { *p });
            (w as u32, (w >> 32) as u32)
        }

        pub(crate) fn write_hdr(&self, off: usize, len: u32, kind: u32) {
            let w = u64::from(len) | (u64::from(kind) << 32);
            // SAFETY: loom checks this write against concurrent access to the same cell.
            self.0[off / 8].with_mut(|p| unsafe { *p = w });
        }

        pub(crate) fn copy_out(&self, off: usize, dst: &mut [u8]) {
            for (i, b) in dst.iter_mut().enumerate() {
                let o = off + i;
                // SAFETY: loom checks this read against concurrent writes to the same cell.
                let w = self.0[o / 8].with(|p| unsafe { *p });
                *b = w.to_le_bytes()[o % 8];
            }
        }

        fn copy_in(&self, off: usize, src: &[u8]) {
            for (i, b) in src.iter().enumerate() {
                let o = off + i;
                self.0[o / 8].with_mut(|p| {
                    // SAFETY: loom checks this access against concurrent access to the cell.
                    let mut bytes = unsafe { *p }.to_le_bytes();
                    bytes[o % 8] = *b;
                    // SAFETY: as above.
                    unsafe { *p = u64::from_le_bytes(bytes) };
                });
            }
        }

        pub(crate) fn with_mut<R>(
            &self,
            off: usize,
            len: usize,
            f: impl FnOnce(&mut [u8]) -> R,
        ) -> R {
            let mut tmp = vec![0u8; len];
            self.copy_out(off, &mut tmp);
            let r = f(&mut tmp);
            self.copy_in(off, &tmp);
            r
        }
    }
}
