//! Multi-threaded stress over a heap region: every frame's contents checked, zero torn, zero
//! lost (Block), drops only as counted (DropOldest). Frame counts shrink under Miri; set
//! FRAMEBUS_STRESS_FRAMES to run longer.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use crate::util::{pattern, segment, spec};
use framebus_core::segment::{ClaimError, FrameMeta};
use framebus_core::*;

const LEN: usize = 256;

fn frames() -> u64 {
    if cfg!(miri) {
        return 60;
    }
    std::env::var("FRAMEBUS_STRESS_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(if cfg!(debug_assertions) {
        200_000
    } else {
        2_000_000
    })
}

/// Writes only the first and last 8 bytes plus a stripe in the middle; enough to catch a torn
/// frame (the producer rewrites all three for every frame) without making memcpy the test.
fn fill(slot: &mut WriteSlot<'_, '_>, seq: u64) {
    let mut buf = [0u8; LEN];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(seq, i);
    }
    slot.write(0, &buf);
}

fn verify(c: &Consumer<'_>, f: &Frame) {
    let mut buf = [0u8; LEN];
    c.read(f, 0, &mut buf).unwrap();
    for (i, b) in buf.iter().enumerate() {
        assert_eq!(*b, pattern(f.seq, i), "torn frame seq {} at byte {i}", f.seq);
    }
}

fn produce(seg: Segment<'static>, total: u64, done: &AtomicBool) -> (u64, u64) {
    let mut p = seg.attach_producer(1).unwrap();
    let mut seq = 0;
    let mut full_spins = 0u64;
    while seq < total {
        match p.begin() {
            Ok(mut slot) => {
                fill(&mut slot, seq);
                let published = slot.publish(FrameMeta { payload_len: LEN as u64, ..FrameMeta::default() });
                assert_eq!(published.seq, seq);
                seq += 1;
            }
            Err(BeginError::Full) => {
                full_spins += 1;
                thread::yield_now();
            }
            Err(BeginError::DroppedNewest { seq: s }) => {
                assert_eq!(s, seq);
                seq += 1;
            }
            Err(e) => panic!("producer: {e}"),
        }
    }
    done.store(true, Ordering::Release);
    (seq, full_spins)
}

#[test]
fn work_queue_block_three_workers_lose_nothing() {
    let total = frames();
    let (_mem, seg) = segment(spec(8, LEN as u32));
    let done = Arc::new(AtomicBool::new(false));
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..total.div_ceil(64)).map(|_| AtomicU64::new(0)).collect());
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let (done, seen) = (done.clone(), seen.clone());
            thread::spawn(move || {
                let mut w = seg.register(ConsumerKind::Worker, 10 + i).unwrap();
                let mut last = None;
                let mut n = 0u64;
                loop {
                    // Read `done` before claiming: Empty after seeing it means the stream is drained.
                    let finished = done.load(Ordering::Acquire);
                    match w.claim() {
                        Ok(f) => {
                            verify(&w, &f);
                            assert!(last.is_none_or(|l| l < f.seq), "worker saw frames out of order");
                            last = Some(f.seq);
                            let prev = seen[(f.seq / 64) as usize].fetch_or(1 << (f.seq % 64), Ordering::Relaxed);
                            assert_eq!(prev & (1 << (f.seq % 64)), 0, "frame {} delivered twice", f.seq);
                            w.release(f).unwrap();
                            n += 1;
                        }
                        Err(ClaimError::Empty) if finished => return n,
                        Err(ClaimError::Empty) => thread::yield_now(),
                        Err(e) => panic!("worker: {e}"),
                    }
                }
            })
        })
        .collect();
    let (published, _) = produce(seg, total, &done);
    let delivered: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(published, total);
    assert_eq!(delivered, total, "Block loses nothing");
    for i in 0..total {
        assert_ne!(seen[(i / 64) as usize].load(Ordering::Relaxed) & (1 << (i % 64)), 0, "frame {i} lost");
    }
    assert_eq!(seg.census().free, 8);
}

#[test]
fn work_queue_drop_oldest_drops_only_what_it_counts() {
    let total = frames();
    let (_mem, seg) = segment(spec(4, LEN as u32).with_policy(OverflowPolicy::DropOldest));
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let done = done.clone();
            thread::spawn(move || {
                let mut w = seg.register(ConsumerKind::Worker, 10 + i).unwrap();
                let mut got = Vec::new();
                loop {
                    // Read `done` before claiming: Empty after seeing it means the stream is drained.
                    let finished = done.load(Ordering::Acquire);
                    match w.claim() {
                        Ok(f) => {
                            verify(&w, &f);
                            got.push(f.seq);
                            w.release(f).unwrap();
                        }
                        Err(ClaimError::Empty) if finished => return got,
                        Err(ClaimError::Empty) => std::hint::spin_loop(),
                        Err(e) => panic!("worker: {e}"),
                    }
                }
            })
        })
        .collect();
    produce(seg, total, &done);
    let mut all: Vec<u64> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let n = all.len() as u64;
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len() as u64, n, "no frame delivered twice");
    let s = seg.stats();
    assert_eq!(s.next_seq, total);
    assert_eq!(n + s.dropped_oldest + s.dropped_newest, total, "published = delivered + dropped");
}

#[test]
fn broadcast_block_every_subscriber_sees_every_frame_in_order() {
    let total = frames() / 2;
    let (_mem, seg) = segment(spec(6, LEN as u32).with_pattern(Pattern::Broadcast));
    let done = Arc::new(AtomicBool::new(false));
    // Register before producing so that every subscriber starts at frame 0.
    let subs: Vec<_> = (0..2).map(|i| seg.register(ConsumerKind::Subscriber, 10 + i).unwrap()).collect();
    let handles: Vec<_> = subs
        .into_iter()
        .map(|mut s| {
            let done = done.clone();
            thread::spawn(move || {
                let mut expect = 0u64;
                loop {
                    // Read `done` before claiming: Empty after seeing it means the stream is drained.
                    let finished = done.load(Ordering::Acquire);
                    match s.claim() {
                        Ok(f) => {
                            assert_eq!(f.seq, expect, "broadcast under Block delivers every frame in order");
                            verify(&s, &f);
                            s.release(f).unwrap();
                            expect += 1;
                        }
                        Err(ClaimError::Empty) if finished => return (expect, s.counts()),
                        Err(ClaimError::Empty) => thread::yield_now(),
                        Err(e) => panic!("subscriber: {e}"),
                    }
                }
            })
        })
        .collect();
    produce(seg, total, &done);
    for h in handles {
        let (n, (delivered, skipped)) = h.join().unwrap();
        assert_eq!((n, delivered, skipped), (total, total, 0));
    }
}
