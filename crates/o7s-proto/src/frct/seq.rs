//! Sequence number arithmetic modulo 2^32 (serial number comparison).

/// `a` comes strictly before `b`.
pub(crate) fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` comes strictly after `b`.
pub(crate) fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

/// Number of sequence numbers from `from` up to (not including) `to`; 0 if `to` is not after.
pub(crate) fn dist(from: u32, to: u32) -> u32 {
    if after(to, from) {
        to.wrapping_sub(from)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps() {
        assert!(before(0xFFFF_FFFF, 0));
        assert!(after(0, 0xFFFF_FFFF));
        assert!(!before(5, 5) && !after(5, 5));
        assert_eq!(dist(0xFFFF_FFFE, 2), 4);
        assert_eq!(dist(2, 0xFFFF_FFFE), 0);
    }
}
