//! The messages of the link-state protocol on a management flow: the prototype's 24-byte
//! update ([`LsuRepr`]) and o7s's 25-byte withdrawal, the same update followed by
//! [`WITHDRAW_TAG`]. A prototype node reads management packets with partial reads disabled
//! into a 24-byte buffer, so it drops the longer withdrawal unseen: the extension is
//! wire-compatible. Tabled in `docs/wire-unicast.md`, "Withdrawal (o7s extension)".

use crate::wire::lsu::{LsuPacket, LsuRepr, LSU_LEN};
use crate::wire::WireError;

/// Length of a withdrawal: an update and one tag byte.
pub const WITHDRAW_LEN: usize = LSU_LEN + 1;

/// The byte after the update that makes it a withdrawal ("this adjacency is gone").
pub const WITHDRAW_TAG: u8 = 0x01;

/// One message of the link-state protocol.
///
/// ```
/// use o7s_proto::routing::LsMsg;
/// use o7s_proto::wire::lsu::LsuRepr;
///
/// let lsu = LsuRepr { d_addr: 0x0506_0708, s_addr: 0x0102_0304, seqno: 43 };
/// let bytes = LsMsg::Withdraw(lsu).to_bytes();
/// assert_eq!(bytes.len(), 25);
/// assert_eq!(LsMsg::parse(&bytes), Ok(LsMsg::Withdraw(lsu)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LsMsg {
    /// `s_addr` has an adjacency to `d_addr` (24 bytes, the prototype's message).
    Update(LsuRepr),
    /// `s_addr` no longer has an adjacency to `d_addr` (25 bytes, o7s only). Its `seqno` is
    /// one above the last update of the adjacency, so it supersedes every copy of that.
    Withdraw(LsuRepr),
}

impl LsMsg {
    /// Decode a management packet: exactly 24 bytes is an update, exactly 25 bytes ending in
    /// [`WITHDRAW_TAG`] a withdrawal; anything else is an error.
    pub fn parse(bytes: &[u8]) -> Result<LsMsg, WireError> {
        match bytes.len() {
            LSU_LEN => Ok(LsMsg::Update(LsuRepr::parse(&LsuPacket::new_checked(
                bytes,
            )?)?)),
            WITHDRAW_LEN => {
                let (lsu, tag) = bytes.split_at(LSU_LEN);
                if tag != [WITHDRAW_TAG] {
                    return Err(WireError::UnknownCode(tag[0]));
                }
                Ok(LsMsg::Withdraw(LsuRepr::parse(&LsuPacket::new_checked(
                    lsu,
                )?)?))
            }
            n if n < LSU_LEN => Err(WireError::Truncated {
                need: LSU_LEN,
                have: n,
            }),
            n => Err(WireError::BadLength {
                field: "link-state message length",
                value: n,
            }),
        }
    }

    /// The update inside the message.
    pub fn lsu(&self) -> LsuRepr {
        match *self {
            LsMsg::Update(l) | LsMsg::Withdraw(l) => l,
        }
    }

    /// Whether this is a withdrawal.
    pub fn is_withdraw(&self) -> bool {
        matches!(self, LsMsg::Withdraw(_))
    }

    /// 24 bytes for an update, 25 for a withdrawal.
    pub fn buffer_len(&self) -> usize {
        match self {
            LsMsg::Update(_) => LSU_LEN,
            LsMsg::Withdraw(_) => WITHDRAW_LEN,
        }
    }

    /// The bytes to send.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        // The buffer is exactly as long as the update needs, so this cannot fail.
        let _ = self.lsu().emit(&mut buf);
        if self.is_withdraw() {
            buf[LSU_LEN] = WITHDRAW_TAG;
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::testing::hex;
    use proptest::prelude::*;

    // The update vector of docs/wire-unicast.md with seqno 43, then the tag.
    const WITHDRAW: &str = "0000000005060708 0000000001020304 000000000000002b 01";

    #[test]
    fn withdraw_vector() {
        let bytes = hex(WITHDRAW);
        let m = LsMsg::Withdraw(LsuRepr {
            d_addr: 0x0506_0708,
            s_addr: 0x0102_0304,
            seqno: 43,
        });
        assert_eq!(m.to_bytes(), bytes);
        assert_eq!(LsMsg::parse(&bytes), Ok(m));
        // The first 24 bytes alone are the update with the same seqno.
        assert_eq!(LsMsg::parse(&bytes[..LSU_LEN]), Ok(LsMsg::Update(m.lsu())));
        for n in 0..LSU_LEN {
            assert!(matches!(
                LsMsg::parse(&bytes[..n]),
                Err(WireError::Truncated { .. })
            ));
        }
        let mut bad = bytes.clone();
        for tag in [0x00, 0x02, 0xff] {
            bad[LSU_LEN] = tag;
            assert_eq!(LsMsg::parse(&bad), Err(WireError::UnknownCode(tag)));
        }
        bad.push(0);
        assert!(matches!(
            LsMsg::parse(&bad),
            Err(WireError::BadLength { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(d_addr: u64, s_addr: u64, seqno: u64, w: bool) {
            let l = LsuRepr { d_addr, s_addr, seqno };
            let m = if w { LsMsg::Withdraw(l) } else { LsMsg::Update(l) };
            prop_assert_eq!(LsMsg::parse(&m.to_bytes()), Ok(m));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(m) = LsMsg::parse(&bytes) {
                prop_assert_eq!(m.to_bytes(), bytes);
            }
        }
    }
}
