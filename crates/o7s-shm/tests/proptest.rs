//! Random sequences of writes and reads in one process preserve content and order, against a
//! queue model, including full-ring backpressure and wrap-around.
#![cfg(not(loom))]
#![allow(clippy::unwrap_used)]

use o7s_shm::*;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    Write(usize),
    WriteWith(usize),
    Read(usize),
    ReadWith,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..300).prop_map(Op::Write),
        1 => (0usize..300).prop_map(Op::WriteWith),
        2 => (0usize..320).prop_map(Op::Read),
        1 => Just(Op::ReadWith),
    ]
}

fn content(seq: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 131 + i) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn ops_match_queue_model(
        cap_shift in 10u32..13,
        headroom in prop_oneof![Just(0u16), 1u16..24],
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        let mem = create_flow_mem(&RingConfig { capacity: 1 << cap_shift, headroom }).unwrap();
        let (la, lb) = liveness_pair().unwrap();
        let (ea, eb) = (new_eventfd().unwrap(), new_eventfd().unwrap());
        let a = Endpoint::new(mem.try_clone().unwrap(), Side::A, ea.try_clone().unwrap(), eb.try_clone().unwrap(), la).unwrap();
        let b = Endpoint::new(mem, Side::B, eb, ea, lb).unwrap();
        let hr = usize::from(headroom);
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seq = 0u32;
        for op in ops {
            match op {
                Op::Write(len) | Op::WriteWith(len) => {
                    let p = content(seq, len);
                    let r = if matches!(op, Op::Write(_)) {
                        a.try_write(&p)
                    } else {
                        a.try_write_with(len, |buf| {
                            assert_eq!(buf.len(), hr + len);
                            buf[hr..].copy_from_slice(&p);
                        })
                    };
                    match r {
                        Ok(()) => { model.push_back(p); seq += 1; }
                        Err(ShmError::TooBig { .. }) => prop_assert!(len > a.max_packet()),
                        Err(ShmError::WouldBlock) => prop_assert!(!model.is_empty()),
                        Err(e) => prop_assert!(false, "write: {e}"),
                    }
                }
                Op::Read(size) => {
                    let mut buf = vec![0u8; size];
                    match b.try_read(&mut buf) {
                        Ok(n) => {
                            let want = model.pop_front().unwrap();
                            prop_assert_eq!(&buf[..n], &want[..]);
                        }
                        Err(ShmError::BufferTooSmall { needed }) => {
                            prop_assert_eq!(needed, model.front().unwrap().len());
                            prop_assert!(needed > size);
                        }
                        Err(ShmError::WouldBlock) => prop_assert!(model.is_empty()),
                        Err(e) => prop_assert!(false, "read: {e}"),
                    }
                }
                Op::ReadWith => match b.try_read_with(|buf, off| buf[off..].to_vec()) {
                    Ok(got) => prop_assert_eq!(got, model.pop_front().unwrap()),
                    Err(ShmError::WouldBlock) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "read_with: {e}"),
                },
            }
            prop_assert_eq!(b.rx_ready(), !model.is_empty());
        }
    }
}
