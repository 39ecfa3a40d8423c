//! SPSC ring, MPMC queue and reorder window: sequential models, threads, hostile indices.
use std::collections::VecDeque;
use std::thread;

use framebus_core::mpmc::Mpmc;
use framebus_core::reorder::{Rejected, Released, ReorderWindow, SkipReason};
use framebus_core::spsc::{RingError, SpscLayout};
use framebus_core::HeapRegion;
use proptest::prelude::*;

fn iters(n: u64) -> u64 {
    if cfg!(miri) {
        n.min(200)
    } else {
        n
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 1000 }, ..ProptestConfig::default() })]

    #[test]
    fn spsc_matches_vecdeque(ops in proptest::collection::vec(any::<bool>(), 1..200)) {
        let heap = HeapRegion::zeroed(8192);
        let ring = SpscLayout { base: 128, capacity: 4, record_words: 3 };
        ring.init(&heap.region()).unwrap();
        let mut tx = ring.producer(heap.region()).unwrap();
        let mut rx = ring.consumer(heap.region()).unwrap();
        let mut model = VecDeque::new();
        let mut next = 0u64;
        for push in ops {
            if push {
                let r = tx.push(&[next, !next, next * 3]);
                if model.len() < 4 { prop_assert_eq!(r, Ok(())); model.push_back(next); } else { prop_assert_eq!(r, Err(RingError::Full)); }
                next += 1;
            } else {
                let mut out = [0; 3];
                match model.pop_front() {
                    Some(v) => { prop_assert_eq!(rx.pop(&mut out), Ok(())); prop_assert_eq!(out, [v, !v, v * 3]); }
                    None => prop_assert_eq!(rx.pop(&mut out), Err(RingError::Empty)),
                }
            }
        }
    }

    #[test]
    fn mpmc_matches_vecdeque(ops in proptest::collection::vec(any::<bool>(), 1..200), cap in 2u32..6) {
        let heap = HeapRegion::zeroed(4096);
        let q = Mpmc::at(heap.region(), 0, cap).unwrap();
        q.init();
        let mut model = VecDeque::new();
        for (i, push) in ops.into_iter().enumerate() {
            if push {
                let r = q.push(i as u64);
                if model.len() < cap as usize { prop_assert_eq!(r, Ok(())); model.push_back(i as u64); } else { prop_assert_eq!(r, Err(RingError::Full)); }
            } else {
                prop_assert_eq!(q.pop().ok(), model.pop_front());
            }
        }
    }

    /// Whatever order results arrive in, the output is every seq once, increasing.
    #[test]
    fn reorder_outputs_every_seq_once_in_order(perm in Just((0u64..40).collect::<Vec<_>>()).prop_shuffle(), missing in proptest::collection::btree_set(0u64..40, 0..5)) {
        let mut w: ReorderWindow<u64, 16> = ReorderWindow::new(0, 1_000);
        let mut out = Vec::new();
        let mut now = 0;
        for seq in perm {
            now += 10;
            if missing.contains(&seq) { continue; }
            w.insert(seq, seq * 2, now, |r| out.push(r)).map_err(|_| TestCaseError::fail("rejected")).ok();
        }
        w.poll(now + 10_000, |r| out.push(r));
        while w.waiting() > 0 { w.force_head(|r| out.push(r)); }
        let seqs: Vec<u64> = out.iter().map(|r| match r { Released::Frame(s, v) => { assert_eq!(*v, s * 2); *s } Released::Skipped(s, _) => *s }).collect();
        prop_assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "strictly consecutive");
        for r in &out {
            if let Released::Frame(s, _) = r { prop_assert!(!missing.contains(s)); }
        }
    }
}

#[test]
fn spsc_detects_corrupt_indices() {
    let heap = HeapRegion::zeroed(4096);
    let ring = SpscLayout { base: 0, capacity: 2, record_words: 1 };
    ring.init(&heap.region()).unwrap();
    let mut tx = ring.producer(heap.region()).unwrap();
    tx.push(&[1]).unwrap();
    tx.push(&[2]).unwrap();
    let tail = heap.region().base().as_ptr().wrapping_add(128) as *mut u64;
    // SAFETY: 8-aligned word inside the live allocation; no other thread runs.
    unsafe { tail.write_volatile(1000) };
    let mut rx = ring.consumer(heap.region()).unwrap();
    assert_eq!(rx.pop(&mut [0]), Err(RingError::Corrupt));
    assert_eq!(
        SpscLayout { base: 4000, capacity: 2, record_words: 1 }.init(&heap.region()),
        Err(RingError::BadGeometry)
    );
    assert_eq!(tx.push(&[1, 2]), Err(RingError::BadRecord));
}

#[test]
fn mpmc_refuses_a_single_cell() {
    let heap = HeapRegion::zeroed(4096);
    assert_eq!(Mpmc::at(heap.region(), 0, 1).err(), Some(RingError::BadGeometry));
}

#[test]
fn spsc_threads_deliver_every_record_intact() {
    let heap = std::sync::Arc::new(HeapRegion::zeroed(1 << 16));
    let ring = SpscLayout { base: 0, capacity: 64, record_words: 4 };
    ring.init(&heap.region()).unwrap();
    let n = iters(500_000);
    let h2 = heap.clone();
    let producer = thread::spawn(move || {
        let mut tx = ring.producer(h2.region()).unwrap();
        let mut i = 0;
        while i < n {
            if tx.push(&[i, i ^ 0xAAAA, i.wrapping_mul(7), !i]).is_ok() {
                i += 1;
            } else {
                thread::yield_now();
            }
        }
    });
    let mut rx = ring.consumer(heap.region()).unwrap();
    let mut out = [0; 4];
    let mut i = 0;
    while i < n {
        match rx.pop(&mut out) {
            Ok(()) => {
                assert_eq!(out, [i, i ^ 0xAAAA, i.wrapping_mul(7), !i], "torn record");
                i += 1;
            }
            Err(RingError::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
    producer.join().unwrap();
}

#[test]
fn mpmc_threads_deliver_every_value_once() {
    let heap = std::sync::Arc::new(HeapRegion::zeroed(1 << 16));
    let q = Mpmc::at(heap.region(), 0, 16).unwrap();
    q.init();
    let per = iters(100_000);
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let heap = heap.clone();
            thread::spawn(move || {
                let q = Mpmc::at(heap.region(), 0, 16).unwrap();
                for i in 0..per {
                    while q.push(p << 32 | i).is_err() {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let heap = heap.clone();
            thread::spawn(move || {
                let q = Mpmc::at(heap.region(), 0, 16).unwrap();
                let mut got = Vec::new();
                let mut last = [None::<u64>; 2];
                while (got.len() as u64) < per {
                    match q.pop() {
                        Ok(v) => {
                            let (p, i) = ((v >> 32) as usize, v & 0xFFFF_FFFF);
                            assert!(last[p].is_none_or(|l| l < i), "per-producer FIFO order");
                            last[p] = Some(i);
                            got.push(v);
                        }
                        Err(_) => thread::yield_now(),
                    }
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<u64> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    all.sort_unstable();
    let expect: Vec<u64> = (0..2u64).flat_map(|p| (0..per).map(move |i| p << 32 | i)).collect();
    assert_eq!(all, expect);
}

#[test]
fn reorder_rejects_late_and_duplicate_and_makes_room_on_overflow() {
    let mut w: ReorderWindow<u32, 4> = ReorderWindow::new(10, 100);
    let mut out = Vec::new();
    assert_eq!(w.insert(9, 1, 0, |r| out.push(r)), Err(Rejected::Late(9, 1)));
    w.insert(12, 2, 0, |r| out.push(r)).unwrap();
    assert_eq!(w.insert(12, 3, 0, |r| out.push(r)), Err(Rejected::Duplicate(12, 3)));
    w.insert(15, 4, 0, |r| out.push(r)).unwrap(); // 15 >= 10 + 4: 10 and 11 are forced out
    assert_eq!(
        out,
        [
            Released::Skipped(10, SkipReason::Overflow),
            Released::Skipped(11, SkipReason::Overflow),
            Released::Frame(12, 2)
        ]
    );
    out.clear();
    w.skip(13, 0, |r| out.push(r));
    assert_eq!(out, [Released::Skipped(13, SkipReason::Marked)]);
    out.clear();
    w.poll(50, |r| out.push(r));
    assert!(out.is_empty(), "14 is missing but 15 has waited only 50 of 100 ns");
    w.poll(100, |r| out.push(r));
    assert_eq!(out, [Released::Skipped(14, SkipReason::Deadline), Released::Frame(15, 4)]);
    let s = w.stats();
    assert_eq!((s.released, s.skipped_overflow, s.skipped_marked, s.skipped_deadline, s.late), (2, 2, 1, 1, 1));
}
