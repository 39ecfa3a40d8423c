//! loom models of every concurrent protocol in framebus-core. Run with `cargo xtask loom`
//! (RUSTFLAGS="--cfg loom", release with debug assertions, LOOM_MAX_PREEMPTIONS=2).
//!
//! Each model asserts: no torn read (payload bytes equal what the producer wrote for that
//! sequence number, and loom's causality checker sees every payload access ordered through the
//! slot's `AccessTracker`), conservation (every slot counted in exactly one place at the end),
//! and order.
#![cfg(loom)]

use std::sync::Arc;

use framebus_core::mpmc::Mpmc;
use framebus_core::reorder::{Released, ReorderWindow};
use framebus_core::segment::{ClaimError, EntryStatus, FrameMeta, Next, PostError, Posted, Reclaim, ReclaimError};
use framebus_core::spsc::{RingError, SpscLayout};
use framebus_core::*;
use loom::thread;

const LEN: usize = 8;

/// A segment whose region lives as long as the returned `Arc`. The `'static` lifetime is a lie
/// the model keeps honest: every thread using the segment is joined before the `Arc` drops.
fn segment(spec: SegmentSpec) -> (Arc<HeapRegion>, Segment<'static>) {
    let layout = Layout::compute(&spec).unwrap();
    let heap = Arc::new(HeapRegion::for_layout(&layout));
    let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    // SAFETY: see above — callers join all threads before dropping `heap`.
    let seg: Segment<'static> = unsafe { std::mem::transmute(seg) };
    (heap, seg)
}

fn spec(slots: u32) -> SegmentSpec {
    SegmentSpec::new(FrameGeometry::new(LEN as u32, 1, PixelFormat::Gray8), slots).with_max_consumers(3)
}

fn publish(p: &mut Producer<'_>, seq: u64) -> Result<u64, BeginError> {
    let mut slot = p.begin()?;
    slot.write(0, &seq.to_le_bytes());
    Ok(slot.publish(FrameMeta { payload_len: LEN as u64, ..FrameMeta::default() }).seq)
}

fn read_seq(c: &Consumer<'_>, f: &Frame) -> u64 {
    let mut b = [0u8; LEN];
    c.read(f, 0, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// A one-slot work queue in which worker 10 holds frame 0 (the start of the reclaim models).
fn worker_holding_frame0() -> (Arc<HeapRegion>, Segment<'static>, Producer<'static>, Consumer<'static>, Frame) {
    let (heap, seg) = segment(spec(1));
    let mut p = seg.attach_producer(1).unwrap();
    publish(&mut p, 0).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 10).unwrap();
    let f = w.claim().unwrap();
    (heap, seg, p, w, f)
}

/// Test bookkeeping outside the model (std, not loom): did some execution reach a case?
#[allow(clippy::disallowed_types)]
struct Reached(std::sync::atomic::AtomicBool);

#[allow(clippy::disallowed_types)]
impl Reached {
    const fn new() -> Self {
        Reached(std::sync::atomic::AtomicBool::new(false))
    }
    fn hit(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    /// Asserts that some execution hit the case: a model whose interesting branch is never
    /// taken proves nothing.
    fn assert(&self, what: &str) {
        assert!(self.0.load(std::sync::atomic::Ordering::Relaxed), "no execution reached: {what}");
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    b.check(f);
}

/// Processes of the consumer-table models: producer 1, consumers 10 and 11, reaper 20 are
/// alive; every other token (5, 99) names a process that has exited.
fn alive(token: u64) -> bool {
    matches!(token, 1 | 10 | 11 | 20)
}

/// A consumer table after a few crash/restart cycles (two entries): entry 1 is still ALIVE
/// for process 99, which died; process slot 0 still holds process 98, which registered,
/// unregistered and exited; entry 0 is FREE. A registrant must take over slot 0 (its process
/// is dead and no entry names it) while a reaper evicts process 99, and the stale tokens
/// must never be turned onto the registrant.
fn stale_owner_table(spec: SegmentSpec) -> (Arc<HeapRegion>, Segment<'static>) {
    let (heap, seg) = segment(spec.with_max_consumers(2));
    let kind = if spec.pattern == Pattern::Broadcast { ConsumerKind::Subscriber } else { ConsumerKind::Worker };
    let gone = seg.register(kind, 98).unwrap();
    let dead = seg.register(kind, 99).unwrap();
    gone.unregister().unwrap();
    core::mem::forget(dead);
    assert_eq!((seg.process_token(0), seg.process_token(1)), (98, 99));
    assert_eq!((seg.entry_state(0).status, seg.entry_owner(1).0), (EntryStatus::Free, 99));
    (heap, seg)
}

/// Finding 1 of the 2026-12 protocol review: a reaper that reads a dead token from an entry
/// while a live consumer is registering there must never evict that consumer. Worker 10
/// registers on the stale entry, claims frame 0 and reads it; reaper 20 reaps; the producer
/// wants the one slot for frame 1. If the reaper's forced reclaim acts on the token it read
/// during the registration window, it frees the slot under the reader and the producer
/// rewrites it while worker 10 reads: loom reports the payload race (a torn frame), and the
/// worker sees `Evicted` although its process never died.
#[test]
fn reap_never_evicts_a_consumer_registering_over_a_dead_token() {
    static READ: Reached = Reached::new();
    model(|| {
        let (heap, seg) = stale_owner_table(spec(1));
        let mut p = seg.attach_producer(1).unwrap();
        publish(&mut p, 0).unwrap();
        let reader = thread::spawn(move || {
            let mut w = seg.register_with(ConsumerKind::Worker, 10, alive).unwrap();
            if let Ok(f) = w.claim() {
                READ.hit();
                assert_eq!(read_seq(&w, &f), 0, "torn frame");
                assert_eq!(w.release(f), Ok(false), "a live worker was evicted");
            }
        });
        let reaper = thread::spawn(move || seg.reap(alive, |_, _| {}));
        for _ in 0..2 {
            match p.begin() {
                Ok(mut slot) => {
                    slot.write(0, &1u64.to_le_bytes());
                    slot.publish(FrameMeta { payload_len: LEN as u64, ..FrameMeta::default() });
                    break;
                }
                Err(BeginError::Full) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        reader.join().unwrap();
        assert_eq!(reaper.join().unwrap(), 1, "exactly the dead process 99 is reaped");
        drop(p);
        drop(heap);
    });
    READ.assert("worker 10 reading frame 0 while the reaper ran");
}

/// Finding 2: a registrant's stores must never land on the entry of the consumer that
/// registers after it. Worker 10 and worker 11 register while reaper 20 reaps a stale entry;
/// afterwards each live consumer's entry names its own process and generation.
#[test]
fn a_registrants_late_stores_never_land_on_the_next_occupant() {
    model(|| {
        let (heap, seg) = stale_owner_table(spec(1));
        let ts: Vec<_> = [10u64, 11]
            .into_iter()
            .map(|token| thread::spawn(move || (token, seg.register_with(ConsumerKind::Worker, token, alive))))
            .collect();
        let reaper = thread::spawn(move || seg.reap(alive, |_, _| {}));
        let results: Vec<_> = ts.into_iter().map(|t| t.join().unwrap()).collect();
        reaper.join().unwrap();
        // Two entries, one of them the dead process's until the reaper frees it: each
        // registrant gets one, or (the reap came too late for it) a TableFull, never a stolen one.
        let consumers: Vec<_> = results.into_iter().filter_map(|(t, r)| r.ok().map(|c| (t, c))).collect();
        assert!(!consumers.is_empty());
        for (token, c) in &consumers {
            let e = seg.entry_state(c.index());
            assert_eq!((e.status, e.gen), (EntryStatus::Alive, c.generation()), "consumer {token} was evicted");
            let (owner, _) = seg.entry_owner(c.index());
            assert_eq!(owner, *token, "live entry {} of consumer {token} names another owner", c.index());
        }
        drop(consumers);
        drop(heap);
    });
}

/// Finding 3: a registration racing a reap of the stale token it replaces leaks nothing:
/// worker 10 registers while reaper 20 reaps, the registration succeeds (no false
/// `TableFull`), names its own process, and no entry is left RECLAIMING.
#[test]
fn a_registration_racing_a_reap_leaks_no_entry() {
    model(|| {
        let (heap, seg) = stale_owner_table(spec(1));
        let reg = thread::spawn(move || seg.register_with(ConsumerKind::Worker, 10, alive));
        let reaper = thread::spawn(move || seg.reap(alive, |_, _| {}));
        let r = reg.join().unwrap();
        reaper.join().unwrap();
        let c = r.expect("a free entry and a reusable process slot: registration succeeds");
        for i in 0..2 {
            let e = seg.entry_state(i);
            assert_ne!(e.status, EntryStatus::Reclaiming, "entry {i} left RECLAIMING");
        }
        assert_eq!(seg.entry_owner(c.index()).0, 10);
        assert_eq!(seg.entry_state(1 - c.index()).status, EntryStatus::Free, "the dead process was reaped");
        drop(c);
        drop(heap);
    });
}

/// SPSC ring: records arrive complete and in order through a 2-record ring (wraps once).
#[test]
fn spsc_publish_consume() {
    model(|| {
        let heap = Arc::new(HeapRegion::for_layout(&Layout::compute(&spec(1)).unwrap()));
        let ring = SpscLayout { base: 4096, capacity: 2, record_words: 2 };
        ring.init(&heap.region()).unwrap();
        let h = heap.clone();
        let t = thread::spawn(move || {
            let mut tx = ring.producer(h.region()).unwrap();
            let mut i = 0u64;
            while i < 3 {
                match tx.push(&[i, !i]) {
                    Ok(()) => i += 1,
                    Err(RingError::Full) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let mut rx = ring.consumer(heap.region()).unwrap();
        let mut next = 0u64;
        while next < 3 {
            let mut out = [0; 2];
            match rx.pop(&mut out) {
                Ok(()) => {
                    assert_eq!(out, [next, !next], "torn or reordered record");
                    next += 1;
                }
                Err(RingError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        t.join().unwrap();
    });
}

/// MPMC queue, two producers and one consumer: each value exactly once, per-producer order.
#[test]
fn mpmc_two_producers() {
    model(|| {
        let heap = Arc::new(HeapRegion::for_layout(&Layout::compute(&spec(1)).unwrap()));
        Mpmc::at(heap.region(), 4096, 2).unwrap().init();
        let ts: Vec<_> = (0..2u64)
            .map(|p| {
                let h = heap.clone();
                thread::spawn(move || {
                    let q = Mpmc::at(h.region(), 4096, 2).unwrap();
                    while q.push(p + 1).is_err() {
                        thread::yield_now();
                    }
                })
            })
            .collect();
        let q = Mpmc::at(heap.region(), 4096, 2).unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            match q.pop() {
                Ok(v) => got.push(v),
                Err(_) => thread::yield_now(),
            }
        }
        for t in ts {
            t.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(q.pop(), Err(RingError::Empty));
    });
}

/// MPMC queue, one producer and two consumers: no value lost or duplicated.
#[test]
fn mpmc_two_consumers() {
    model(|| {
        let heap = Arc::new(HeapRegion::for_layout(&Layout::compute(&spec(1)).unwrap()));
        let q = Mpmc::at(heap.region(), 4096, 2).unwrap();
        q.init();
        q.push(10).unwrap();
        q.push(11).unwrap();
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let h = heap.clone();
                thread::spawn(move || Mpmc::at(h.region(), 4096, 2).unwrap().pop().ok())
            })
            .collect();
        let mut got: Vec<u64> = ts.into_iter().filter_map(|t| t.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [10, 11], "each value popped exactly once");
    });
}

/// Work queue, two workers racing for two frames: each frame to exactly one worker, intact,
/// and a worker never gets an older frame after a newer one.
#[test]
fn work_queue_two_workers() {
    model(|| {
        let (heap, seg) = segment(spec(2));
        let mut p = seg.attach_producer(1).unwrap();
        publish(&mut p, 0).unwrap();
        publish(&mut p, 1).unwrap();
        let ts: Vec<_> = (0..2)
            .map(|i| {
                thread::spawn(move || {
                    let mut w = seg.register(ConsumerKind::Worker, 10 + i).unwrap();
                    let mut got = Vec::new();
                    while let Ok(f) = w.claim() {
                        assert_eq!(read_seq(&w, &f), f.seq, "torn frame");
                        got.push(f.seq);
                        w.release(f).unwrap();
                    }
                    assert!(got.windows(2).all(|p| p[0] < p[1]), "order");
                    got
                })
            })
            .collect();
        let mut all: Vec<u64> = ts.into_iter().flat_map(|t| t.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, [0, 1], "each frame exactly once");
        assert_eq!(seg.census().free, 2, "every slot back");
        drop(p);
        drop(heap);
    });
}

/// The end of the stream races the last publishes: a worker that claims until `Ended` gets
/// every frame first (the end is never seen ahead of a publish before it), and then `Ended`
/// rather than a timeout.
#[test]
fn a_worker_sees_the_end_only_after_every_frame() {
    model(|| {
        let (heap, seg) = segment(spec(2));
        let mut w = seg.register(ConsumerKind::Worker, 10).unwrap();
        let t = thread::spawn(move || {
            let mut p = seg.attach_producer(1).unwrap();
            publish(&mut p, 0).unwrap();
            publish(&mut p, 1).unwrap();
            p.finish();
        });
        let mut got = Vec::new();
        loop {
            match w.claim() {
                Ok(f) => {
                    assert_eq!(read_seq(&w, &f), f.seq, "torn frame");
                    got.push(f.seq);
                    w.release(f).unwrap();
                }
                Err(ClaimError::Empty) => thread::yield_now(),
                Err(ClaimError::Ended) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, [0, 1], "every frame before the end");
        t.join().unwrap();
        drop(w);
        drop(heap);
    });
}

/// Work queue under DropOldest: the producer reclaims the oldest ready frame while a worker
/// claims it. Exactly one wins; the worker never reads a frame being rewritten; published =
/// delivered + dropped.
#[test]
fn work_queue_drop_oldest_races_claim() {
    model(|| {
        let (heap, seg) = segment(spec(2).with_policy(OverflowPolicy::DropOldest));
        let mut p = seg.attach_producer(1).unwrap();
        publish(&mut p, 0).unwrap();
        publish(&mut p, 1).unwrap();
        let worker = thread::spawn(move || {
            let mut w = seg.register(ConsumerKind::Worker, 10).unwrap();
            let mut got = Vec::new();
            for _ in 0..2 {
                match w.claim() {
                    Ok(f) => {
                        assert_eq!(read_seq(&w, &f), f.seq, "torn frame");
                        got.push(f.seq);
                        w.release(f).unwrap();
                    }
                    Err(ClaimError::Empty) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            got
        });
        // Both slots are READY: this publish must drop frame 0, unless the worker took it.
        let third = publish(&mut p, 2);
        let got = worker.join().unwrap();
        assert!(got.windows(2).all(|p| p[0] < p[1]), "order");
        let s = seg.stats();
        let census = seg.census();
        assert_eq!(census.free + census.ready + census.taken + census.writing, 2);
        assert_eq!(census.taken + census.writing, 0, "nothing left held");
        assert_eq!(s.next_seq, 3);
        assert_eq!(
            s.write_pos,
            got.len() as u64 + s.dropped_oldest + u64::from(census.ready),
            "published = delivered + dropped + ready"
        );
        if third.is_err() {
            assert_eq!(s.dropped_newest, 1);
        }
        drop(p);
        drop(heap);
    });
}

/// Broadcast with reference-counted release: one slot, two subscribers; the producer can
/// rewrite the slot only after both have read and released frame 0.
#[test]
fn broadcast_refcount_release() {
    model(|| {
        let (heap, seg) = segment(spec(1).with_pattern(Pattern::Broadcast));
        let mut p = seg.attach_producer(1).unwrap();
        let subs: Vec<_> = (0..2).map(|i| seg.register(ConsumerKind::Subscriber, 10 + i).unwrap()).collect();
        publish(&mut p, 0).unwrap();
        let ts: Vec<_> = subs
            .into_iter()
            .map(|mut s| {
                thread::spawn(move || {
                    let f = loop {
                        match s.claim() {
                            Ok(f) => break f,
                            Err(ClaimError::Empty) => thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    };
                    assert_eq!((f.seq, read_seq(&s, &f)), (0, 0), "subscriber saw frame 0 intact");
                    s.release(f).unwrap();
                })
            })
            .collect();
        // Block: the producer may take the slot back only once both subscribers are done.
        let seq = loop {
            match publish(&mut p, 1) {
                Ok(seq) => break seq,
                Err(BeginError::Full) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(seq, 1);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(seg.stats().dropped_oldest, 0);
        drop(p);
        drop(heap);
    });
}

/// A lease-expiry reclaim (not forced) racing the worker's own release: it may only take the
/// entry once the worker holds nothing, so it never takes a slot from a live reader; the slot
/// ends FREE exactly once.
#[test]
fn reclaim_races_release() {
    model(|| {
        let (heap, seg, p, mut w, f) = worker_holding_frame0();
        let (idx, gen) = (w.index(), w.generation());
        let worker = thread::spawn(move || {
            assert_eq!(read_seq(&w, &f), 0, "torn frame");
            w.release(f)
        });
        let reaper = thread::spawn(move || seg.reclaim(idx, gen, Reclaim::Idle));
        let released = worker.join().unwrap();
        let reclaimed = reaper.join().unwrap();
        match (released, reclaimed) {
            (Ok(_), Ok(r)) => assert_eq!(r.cleared, 0, "release first; reclaim found nothing held"),
            (Ok(_), Err(ReclaimError::Holding { frames: 1 } | ReclaimError::Busy)) => {}
            other => panic!("impossible outcome {other:?}"),
        }
        let c = seg.census();
        assert_eq!((c.free, c.held_by[idx as usize]), (1, 0), "slot free exactly once, no hold left");
        drop(p);
        drop(heap);
    });
}

/// A forced reclaim (the worker's process was found dead) racing a late release by that
/// worker (it was not quite dead): exactly one of them frees the slot, the other changes
/// nothing, and the slot ends FREE exactly once.
#[test]
fn forced_reclaim_races_late_release() {
    model(|| {
        let (heap, seg, p, mut w, f) = worker_holding_frame0();
        let (idx, gen) = (w.index(), w.generation());
        let late = thread::spawn(move || w.release(f));
        let reaper = thread::spawn(move || seg.reclaim(idx, gen, Reclaim::Dead { owner: 10 }));
        let released = late.join().unwrap();
        let reclaimed = reaper.join().unwrap().unwrap();
        // The release either ran first (reclaim found nothing), or lost the entry to the reclaim
        // (Evicted, whether or not its slot CAS ran before the sweep): never a second free.
        assert!(matches!(released, Ok(_) | Err(ClaimError::Evicted)), "{released:?}");
        if released.is_ok() {
            assert_eq!(reclaimed.cleared, 0);
        }
        let c = seg.census();
        assert_eq!((c.free, c.held_by[idx as usize]), (1, 0), "slot free exactly once, no hold left");
        assert_eq!(seg.stats().reclaimed, u64::from(reclaimed.cleared));
        drop(p);
        drop(heap);
    });
}

/// A forced reclaim that hits a consumer which is in fact alive and mid-claim (the platform
/// was wrong): the claim notices the eviction when it leaves its bracket and gives the frame
/// back, so no hold outlives the entry.
#[test]
fn forced_reclaim_races_claim() {
    model(|| {
        let (heap, seg) = segment(spec(1));
        let mut p = seg.attach_producer(1).unwrap();
        publish(&mut p, 0).unwrap();
        let mut w = seg.register(ConsumerKind::Worker, 10).unwrap();
        let (idx, gen) = (w.index(), w.generation());
        let worker = thread::spawn(move || {
            if let Ok(f) = w.claim() {
                // Either released normally, or refused because the reclaim swept it first.
                assert!(matches!(w.release(f), Ok(_) | Err(ClaimError::Evicted)));
            }
        });
        let reaper = thread::spawn(move || seg.reclaim(idx, gen, Reclaim::Dead { owner: 10 }));
        worker.join().unwrap();
        reaper.join().unwrap().unwrap();
        let c = seg.census();
        assert_eq!(c.held_by[idx as usize], 0, "no hold outlives the entry");
        assert_eq!((c.taken, c.writing), (0, 0));
        drop(p);
        drop(heap);
    });
}

/// The sleep handshake: a worker that finds nothing announces itself and re-checks, the
/// producer publishes and checks for sleepers. Either the re-check sees the frame or the
/// producer bumps the wake word; a sleeper left with an unchanged wake word after the producer
/// finished would sleep forever (a lost wake-up). Same for the producer sleeping for space
/// while a worker releases.
#[test]
fn sleep_handshake_loses_no_wakeup() {
    use loom::sync::atomic::{AtomicBool, Ordering};
    model(|| {
        let (heap, seg) = segment(spec(1));
        let mut p = seg.attach_producer(1).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let producer = thread::spawn(move || {
            publish(&mut p, 0).unwrap();
            d2.store(true, Ordering::Release);
            drop(p);
        });
        let mut w = seg.register(ConsumerKind::Worker, 10).unwrap();
        let (wake, _) = seg.frame_wake_words();
        let frame = 'outer: loop {
            if let Ok(f) = w.claim() {
                break f;
            }
            let seen = w.announce_sleep();
            if let Ok(f) = w.claim() {
                w.retire_sleep();
                break f;
            }
            // "Sleep": until the wake word moves. If the producer is done and it has not
            // moved, nothing will ever wake us.
            loop {
                if wake.load(framebus_core::sync::Ordering::Acquire) as u32 != seen {
                    w.retire_sleep();
                    continue 'outer;
                }
                if done.load(Ordering::Acquire) {
                    assert_ne!(wake.load(framebus_core::sync::Ordering::Acquire) as u32, seen, "lost wake-up");
                }
                thread::yield_now();
            }
        };
        assert_eq!(read_seq(&w, &frame), 0);
        w.release(frame).unwrap();
        producer.join().unwrap();
        drop(heap);
    });
}

/// A producer taking over resets the space-waiter count while the old producer, judged dead
/// but still running, sleeps and retires: in every interleaving the count ends at zero (the
/// retire saturates instead of wrapping), so no later release keeps making wake-up calls.
#[test]
fn takeover_reset_races_a_retiring_sleeper() {
    model(|| {
        let (heap, seg) = segment(spec(1));
        let old = seg.attach_producer(1).unwrap();
        core::mem::forget(old); // "dead" to the liveness check, yet its thread runs on
        let sleeper = thread::spawn(move || {
            let _ = seg.announce_space_sleeper();
            seg.retire_space_sleeper();
        });
        let p = seg.take_over_producer(2, 1).unwrap();
        sleeper.join().unwrap();
        let (_, waiters) = seg.space_wake_words();
        let left = waiters.load(framebus_core::sync::Ordering::SeqCst);
        // Whatever the order of announce, reset and retire, the count ends at zero: a retire
        // that meets a reset count stops at zero instead of wrapping.
        assert_eq!(left, 0, "waiter count after the race: {left}");
        drop(p);
        drop(heap);
    });
}

/// Two reapers reclaiming the same dead worker at once: both may sweep (finishing is safe in
/// any number of processes), the slot is freed exactly once, exactly one of them frees the
/// entry (FREE at gen + 1) and the other is told `Stale`.
#[test]
fn two_reapers_race() {
    model(|| {
        let (heap, seg, p, w, f) = worker_holding_frame0();
        std::mem::forget(f); // the worker died holding it
        let (idx, gen) = (w.index(), w.generation());
        let reapers: Vec<_> =
            (0..2).map(|_| thread::spawn(move || seg.reclaim(idx, gen, Reclaim::Dead { owner: 10 }))).collect();
        let results: Vec<_> = reapers.into_iter().map(|t| t.join().unwrap()).collect();
        let done = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(done, 1, "exactly one reaper frees the entry: {results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(_) | Err(ReclaimError::Stale))), "{results:?}");
        assert_eq!(seg.stats().reclaimed, 1, "the hold is cleared exactly once");
        let c = seg.census();
        assert_eq!((c.free, c.held_by[idx as usize]), (1, 0));
        let e = seg.entry_state(idx);
        assert_eq!((e.status, e.gen), (EntryStatus::Free, gen + 1));
        drop(p);
        drop(heap);
    });
}

/// A subscriber registering while the producer publishes and recycles (Block, one slot): the
/// first frame at or after the subscriber's starting point is never recycled unread. Without
/// the SeqCst fences in `register` and `publish` (store buffering) it could be.
#[test]
fn register_races_recycle() {
    model(|| {
        let (heap, seg) = segment(spec(1).with_pattern(Pattern::Broadcast));
        let mut p = seg.attach_producer(1).unwrap();
        publish(&mut p, 0).unwrap();
        let sub = thread::spawn(move || seg.register(ConsumerKind::Subscriber, 10).unwrap());
        // Publish frame 1 (recycling frame 0: nobody subscribed to it), then try frame 2.
        publish(&mut p, 1).unwrap();
        let third = publish(&mut p, 2);
        let mut s = sub.join().unwrap();
        let (_, _, _, joined) = seg.entry_counters(s.index());
        if joined <= 1 {
            assert!(third.is_err(), "frame 1 was recycled before the subscriber that starts at it read it");
            let f = s.claim().unwrap();
            assert_eq!((f.seq, s.counts()), (1, (1, 0)));
            s.release(f).unwrap();
        }
        drop(p);
        drop(heap);
    });
}

/// A latest reader racing a DropOldest producer that keeps recycling slots: whatever it gets
/// is intact and newer than what it got before.
#[test]
fn latest_reader_races_recycling() {
    model(|| {
        let (heap, seg) = segment(spec(2).with_policy(OverflowPolicy::DropOldest));
        let mut p = seg.attach_producer(1).unwrap();
        let mut tap = seg.register(ConsumerKind::Latest, 10).unwrap();
        publish(&mut p, 0).unwrap();
        let t = thread::spawn(move || {
            let mut last = None;
            for _ in 0..2 {
                if let Ok(f) = tap.claim() {
                    assert_eq!(read_seq(&tap, &f), f.seq, "torn frame");
                    assert!(last.is_none_or(|l| l < f.seq));
                    last = Some(f.seq);
                    tap.release(f).unwrap();
                }
            }
        });
        publish(&mut p, 1).unwrap();
        let _ = publish(&mut p, 2);
        t.join().unwrap();
        let c = seg.census();
        assert_eq!(c.writing + c.taken, 0);
        assert_eq!(c.held_by[0] + c.held_by[1] + c.held_by[2], 0);
        drop(p);
        drop(heap);
    });
}

/// Reorder window fed by two workers through their own SPSC result rings: the collector
/// outputs frames 0..3 exactly once, in order, whatever the interleaving.
#[test]
fn reorder_window_collects_in_order() {
    model(|| {
        let heap = Arc::new(HeapRegion::for_layout(&Layout::compute(&spec(1)).unwrap()));
        let rings = [
            SpscLayout { base: 4096, capacity: 2, record_words: 1 },
            SpscLayout { base: 4096 + 384, capacity: 2, record_words: 1 },
        ];
        for r in &rings {
            r.init(&heap.region()).unwrap();
        }
        // Worker 0 finishes frames 0 and 2, worker 1 frames 1 and 3.
        let ts: Vec<_> = (0..2u64)
            .map(|w| {
                let (h, ring) = (heap.clone(), rings[w as usize]);
                thread::spawn(move || {
                    let mut tx = ring.producer(h.region()).unwrap();
                    for seq in [w, w + 2] {
                        while tx.push(&[seq]).is_err() {
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut rx: Vec<_> = rings.iter().map(|r| r.consumer(heap.region()).unwrap()).collect();
        let mut window: ReorderWindow<u64, 4> = ReorderWindow::new(0, u64::MAX);
        let mut out = Vec::new();
        while out.len() < 4 {
            let mut progressed = false;
            for r in rx.iter_mut() {
                let mut rec = [0];
                if r.pop(&mut rec).is_ok() {
                    window.insert(rec[0], rec[0], 0, |x| out.push(x)).unwrap();
                    progressed = true;
                }
            }
            if !progressed {
                thread::yield_now();
            }
        }
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(out, (0..4).map(|s| Released::Frame(s, s)).collect::<Vec<_>>());
    });
}

/// Finding 6: the frame-waiter mask is attributable. Worker 99 announced that it sleeps and
/// was killed asleep; a reaper that found it dead turned its entry RECLAIMING and was killed
/// too. Two reapers now finish the job while worker 11 registers on the freed entry and
/// announces its own sleep. 99's bit leaves the mask, 11's never does: afterwards the mask is
/// exactly 11's bit (if 11 got the entry) or empty. A finisher that cleared the bit without
/// re-checking the entry could take a late CAS on 11's bit (a lost wake-up for 11).
#[test]
fn a_dead_sleepers_bit_is_cleared_by_its_reclaim_and_never_the_next_occupants() {
    static NEXT_SLEPT: Reached = Reached::new();
    model(|| {
        let (heap, seg) = segment(spec(1).with_max_consumers(1));
        let sleeper = seg.register(ConsumerKind::Worker, 99).unwrap();
        let _ = sleeper.announce_sleep();
        let (idx, gen) = (sleeper.index(), sleeper.generation());
        core::mem::forget(sleeper); // killed asleep
        assert!(seg.reclaim_dying(idx, gen, Reclaim::Dead { owner: 99 }, 1).unwrap());
        let finishers: Vec<_> = (0..2).map(|_| thread::spawn(move || seg.reap(alive, |_, _| {}))).collect();
        let next = thread::spawn(move || {
            let c = seg.register_with(ConsumerKind::Worker, 11, alive).ok()?;
            let _ = c.announce_sleep();
            Some(c)
        });
        let freed: u32 = finishers.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(freed, 1, "the entry is freed exactly once");
        let next = next.join().unwrap();
        let (_, mask) = seg.frame_wake_words();
        let mask = mask.load(framebus_core::sync::Ordering::SeqCst) & 0xFFFF;
        match &next {
            Some(c) => assert_eq!(mask, 1 << c.index(), "the live sleeper's bit survives, the dead one's is gone"),
            None => assert_eq!(mask, 0, "the dead sleeper's bit is gone"),
        }
        if let Some(c) = next {
            NEXT_SLEPT.hit();
            c.retire_sleep();
            assert_eq!(seg.frame_wake_words().1.load(framebus_core::sync::Ordering::SeqCst) & 0xFFFF, 0);
        }
        drop(heap);
    });
    NEXT_SLEPT.assert("worker 11 registering and sleeping on the freed entry");
}

/// Finishing a reclaim is safe in any number of processes at once, even late: a reclaim of
/// dead worker 99 (holding frame 0) stopped by a crash after its first step, then two reapers
/// finish it while worker 11 registers on the freed entry and claims frame 1. Neither reaper
/// ever clears 11's hold (the producer could otherwise rewrite the slot under it), frame 0's
/// slot comes back exactly once, and the entry is freed exactly once.
#[test]
fn late_finishers_never_clear_the_next_occupants_hold() {
    static NEXT_HELD: Reached = Reached::new();
    model(|| {
        let (heap, seg) = segment(spec(2).with_max_consumers(1));
        let mut p = seg.attach_producer(1).unwrap();
        publish(&mut p, 0).unwrap();
        publish(&mut p, 1).unwrap();
        let mut dead = seg.register(ConsumerKind::Worker, 99).unwrap();
        let f = dead.claim().unwrap();
        core::mem::forget(f);
        let (idx, gen) = (dead.index(), dead.generation());
        // The worker died holding a frame; a reaper's reclaim stopped dead right after turning
        // the entry RECLAIMING.
        assert!(seg.reclaim_dying(idx, gen, Reclaim::Dead { owner: 99 }, 1).unwrap());
        assert_eq!(seg.entry_state(idx).status, EntryStatus::Reclaiming);
        let finishers: Vec<_> = (0..2).map(|_| thread::spawn(move || seg.reap(alive, |_, _| {}))).collect();
        let next = thread::spawn(move || {
            let mut c = seg.register_with(ConsumerKind::Worker, 11, alive).ok()?;
            let f = c.claim().ok()?;
            assert_eq!(read_seq(&c, &f), 1, "torn frame");
            Some((c, f))
        });
        let freed: u32 = finishers.into_iter().map(|t| t.join().unwrap()).sum();
        let next = next.join().unwrap();
        assert!(freed <= 1, "the entry is freed exactly once");
        assert_eq!(seg.stats().reclaimed, 1, "frame 0's hold is cleared exactly once");
        let c = seg.census();
        match next {
            Some((mut w, f)) => {
                NEXT_HELD.hit();
                assert_eq!(freed, 1);
                assert_eq!((c.held_by[w.index() as usize], c.taken, c.free), (1, 1, 1), "{c:?}");
                assert_eq!(w.release(f), Ok(false), "the live worker's hold survived every finisher");
            }
            None => assert_eq!(c.held_by[idx as usize], 0, "{c:?}"),
        }
        drop(p);
        drop(heap);
    });
    NEXT_HELD.assert("worker 11 registering on the freed entry and holding frame 1");
}

/// Three actors on one small table: worker 10 registers, claims, releases and unregisters;
/// worker 11 registers; a reaper reaps a table that still holds dead process 99's entry.
/// Nobody alive is ever evicted, every live consumer's entry names its own process, and at
/// the end every entry is FREE or held by a live consumer.
#[test]
fn register_unregister_and_reap_on_one_table() {
    static BOTH: Reached = Reached::new();
    model(|| {
        let (heap, seg) = stale_owner_table(spec(1));
        let mut p = seg.attach_producer(1).unwrap();
        publish(&mut p, 0).unwrap();
        let a = thread::spawn(move || {
            let Ok(mut w) = seg.register_with(ConsumerKind::Worker, 10, alive) else { return };
            if let Ok(f) = w.claim() {
                assert_eq!(read_seq(&w, &f), 0, "torn frame");
                assert_eq!(w.release(f), Ok(false), "worker 10 was evicted");
            }
            w.unregister().expect("a live worker's unregister");
        });
        let b = thread::spawn(move || seg.register_with(ConsumerKind::Worker, 11, alive).ok());
        seg.reap(alive, |_, _| {});
        a.join().unwrap();
        let b = b.join().unwrap();
        if b.is_some() {
            BOTH.hit();
        }
        for i in 0..2 {
            let e = seg.entry_state(i);
            let owner = seg.entry_owner(i).0;
            match &b {
                Some(c) if c.index() == i => {
                    assert_eq!((e.status, e.gen, owner), (EntryStatus::Alive, c.generation(), 11));
                }
                _ => assert!(e.status == EntryStatus::Free || owner == 99, "entry {i}: {e:?} owner {owner}"),
            }
        }
        drop(b);
        drop(p);
        drop(heap);
    });
    BOTH.assert("worker 11 registering beside worker 10 and the reaper");
}

/// Finding 11: a producer that took over from a dead one recycles frames only past every
/// subscriber, even a subscriber registering during the takeover (SYNC POINT join: the fence at
/// the end of the takeover stands in for the one the new producer has not published through
/// yet). As `register_races_recycle`, with the recycle done by the new producer.
#[test]
fn register_races_recycle_after_takeover() {
    model(|| {
        let (heap, seg) = segment(spec(1).with_pattern(Pattern::Broadcast));
        let mut old = seg.attach_producer(1).unwrap();
        publish(&mut old, 0).unwrap();
        core::mem::forget(old); // died
        let sub = thread::spawn(move || seg.register(ConsumerKind::Subscriber, 10).unwrap());
        let mut p = seg.take_over_producer(2, 1).unwrap();
        publish(&mut p, 1).unwrap();
        let third = publish(&mut p, 2);
        let mut s = sub.join().unwrap();
        let (_, _, _, joined) = seg.entry_counters(s.index());
        if joined <= 1 {
            assert!(third.is_err(), "frame 1 was recycled before the subscriber that starts at it read it");
            let f = s.claim().unwrap();
            assert_eq!(f.seq, 1);
            s.release(f).unwrap();
        }
        drop(p);
        drop(heap);
    });
}

/// Results (step 10): a one-slot work queue with 2 result cells of `LEN` bytes, where worker 10
/// holds frame 0.
fn worker_holding_frame0_with_results(
) -> (Arc<HeapRegion>, Segment<'static>, Producer<'static>, Consumer<'static>, Frame) {
    let (heap, seg) = segment(spec(1).with_results(2, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    publish(&mut p, 0).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 10).unwrap();
    let f = w.claim().unwrap();
    (heap, seg, p, w, f)
}

/// Redelivery: worker 10 dies holding frame 0; its reclaim (another thread) puts the frame back
/// while worker 11 claims in a loop. Worker 11 gets frame 0 exactly once, intact and flagged
/// redelivered (never before the reclaim put it back: `Empty` until then), posts, and the reader
/// gets that result — the frame's cell was never marked worker-died.
#[test]
fn a_dead_workers_frame_is_redelivered_once_to_another_worker() {
    model(|| {
        let (_heap, seg, _p, w, _f) = worker_holding_frame0_with_results();
        let (idx, gen) = (w.index(), w.generation());
        std::mem::forget(w); // worker 10 dies holding frame 0
        let mut b = seg.register(ConsumerKind::Worker, 11).unwrap();
        let reaper = thread::spawn(move || seg.reclaim(idx, gen, Reclaim::Dead { owner: 10 }).unwrap());
        let f = loop {
            match b.claim() {
                Ok(f) => break f,
                Err(ClaimError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!((f.seq, f.redelivered, read_seq(&b, &f)), (0, true, 0), "frame 0, intact, redelivered");
        assert_eq!(b.post(&f, &[5u8; LEN]).unwrap(), Posted::Ready);
        b.release(f).unwrap();
        reaper.join().unwrap();
        assert_eq!(b.claim(), Err(ClaimError::Empty), "once, and the hint is cleared");
        let mut r = seg.attach_reader(2, 0).unwrap();
        let mut out = [0u8; LEN];
        assert!(matches!(r.next(&mut out).unwrap(), Next::Result { seq: 0, .. }), "its result, not a skip");
        assert_eq!(seg.stats().redelivered, 1);
        assert_eq!(seg.census().free, 1, "the slot is back");
    });
}

/// Two finishers of one dead worker's reclaim race a new worker that registers (maybe in the
/// freed entry, with the same holder bit) and claims the redelivered frame: a slow finisher
/// never takes that frame from it (the put-back frame is at the next generation, so the dead
/// worker's slot word never comes back for an ABA).
#[test]
fn a_slow_finisher_never_takes_a_redelivered_frame_from_its_new_worker() {
    model(|| {
        let (_heap, seg, _p, w, _f) = worker_holding_frame0_with_results();
        let (idx, gen) = (w.index(), w.generation());
        std::mem::forget(w);
        let slow = thread::spawn(move || {
            let _ = seg.reclaim(idx, gen, Reclaim::Dead { owner: 10 });
        });
        let _ = seg.reclaim(idx, gen, Reclaim::Dead { owner: 10 });
        // Entry 0 is free now (this finisher or the other freed it): the new worker may take it.
        let mut n = seg.register(ConsumerKind::Worker, 12).unwrap();
        let f = loop {
            match n.claim() {
                Ok(f) => break f,
                Err(ClaimError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert!(f.redelivered);
        slow.join().unwrap();
        assert_eq!(seg.census().taken, 1, "the new worker still holds the frame");
        n.release(f).expect("and releases it");
        assert_eq!(seg.census().free, 1);
    });
}

/// The second death of the same frame's worker: the redelivered frame's holder dies too; its
/// reclaim, racing the reader, skips it as worker-died (a frame goes back once), and the reader
/// gets that skip — never a wait, never an overflow.
#[test]
fn a_frame_whose_second_worker_dies_too_is_reported_lost() {
    model(|| {
        let (_heap, seg, _p, w, _f) = worker_holding_frame0_with_results();
        seg.reclaim(w.index(), w.generation(), Reclaim::Dead { owner: 10 }).unwrap();
        std::mem::forget(w);
        let mut b = seg.register(ConsumerKind::Worker, 11).unwrap();
        let f = b.claim().unwrap();
        assert!(f.redelivered);
        let (idx, gen) = (b.index(), b.generation());
        std::mem::forget(b); // worker 11 dies too
        let reaper = thread::spawn(move || seg.reclaim(idx, gen, Reclaim::Dead { owner: 11 }).unwrap());
        let mut r = seg.attach_reader(2, 0).unwrap();
        let mut out = [0u8; LEN];
        let first = r.next(&mut out).unwrap();
        reaper.join().unwrap();
        let got = match first {
            Next::Pending { seq: 0, .. } => r.next(&mut out).unwrap(),
            n => n,
        };
        assert_eq!(got, Next::Skipped { seq: 0, cause: SkipCause::WorkerDied });
        assert_eq!(seg.stats().redelivered, 1, "once");
        assert_eq!(seg.census().free, 1);
    });
}

/// A worker posts frame 0's result while the reader gives up on it (its deadline): the result
/// is delivered exactly when the post won (`Ready`), the skip exactly when it lost (`Late`,
/// counted), never both, and the bytes delivered are the ones posted (loom's causality checker
/// sees the payload copy ordered through the cell).
#[test]
fn post_races_deadline() {
    static READY: Reached = Reached::new();
    static LATE: Reached = Reached::new();
    model(|| {
        let (_heap, seg, _p, mut w, f) = worker_holding_frame0_with_results();
        let mut r = seg.attach_reader(2, 0).unwrap();
        let worker = thread::spawn(move || {
            let posted = w.post(&f, &[7u8; LEN]).unwrap();
            w.release(f).unwrap();
            posted
        });
        let skipped = r.skip_head(SkipCause::Deadline);
        let posted = worker.join().unwrap();
        let mut out = [0u8; LEN];
        match r.next(&mut out).unwrap() {
            Next::Result { seq: 0, len, .. } => {
                assert_eq!((posted, skipped), (Posted::Ready, false));
                assert_eq!(&out[..len], &[7u8; LEN]);
                READY.hit();
            }
            Next::Skipped { seq: 0, cause: SkipCause::Deadline } => {
                assert_eq!((posted, skipped), (Posted::Late, true));
                assert_eq!(seg.result_counts().0, 1, "the late result is counted");
                LATE.hit();
            }
            other => panic!("unexpected {other:?}"),
        }
    });
    READY.assert("the post won");
    LATE.assert("the deadline won");
}

/// The reader delivers frame 0's result and opens its cell for seq 2 while a worker posts
/// frame 2's result into the same cell: the new lap's bytes are written only after the old
/// lap's copy-out (SYNC POINT result-free; a torn result would be a causality violation).
#[test]
fn a_cell_is_reused_only_after_the_reader_copied_it_out() {
    model(|| {
        let (_heap, seg) = segment(spec(3).with_results(2, LEN as u32));
        let mut p = seg.attach_producer(1).unwrap();
        let mut w = seg.register(ConsumerKind::Worker, 10).unwrap();
        let mut r = seg.attach_reader(2, 0).unwrap();
        for seq in 0..3 {
            publish(&mut p, seq).unwrap();
        }
        for seq in 0..2u8 {
            let f = w.claim().unwrap();
            assert_eq!(w.post(&f, &[seq; LEN]).unwrap(), Posted::Ready);
            w.release(f).unwrap();
        }
        let f2 = w.claim().unwrap();
        let worker = thread::spawn(move || {
            // Frame 2's cell is frame 0's: the post waits (WindowFull) until the reader opened it.
            loop {
                match w.post(&f2, &[2u8; LEN]) {
                    Ok(p) => break p,
                    Err(PostError::WindowFull) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let mut out = [0u8; LEN];
        for seq in 0..3u64 {
            loop {
                match r.next(&mut out).unwrap() {
                    Next::Result { seq: s, len, .. } => {
                        assert_eq!((s, &out[..len]), (seq, &[seq as u8; LEN][..]));
                        break;
                    }
                    Next::Pending { .. } => thread::yield_now(),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(worker.join().unwrap(), Posted::Ready);
    });
}

/// DropOldest on a one-slot work queue: the producer reuses frame 0's slot for frame 1 while a
/// worker claims (frame 0, or frame 1 if 0 was already dropped) and posts, and the reader
/// waits on frame 0. Frame 0 comes out as the worker's result exactly when the worker got it,
/// and otherwise as dropped-oldest — never overflow, which would mean the drop left its slot
/// before its cell said so.
#[test]
fn drop_oldest_races_a_worker_and_the_reader_sees_the_right_cause() {
    static GOT_IT: Reached = Reached::new();
    static DROPPED: Reached = Reached::new();
    model(|| {
        let spec = spec(1).with_policy(OverflowPolicy::DropOldest).with_results(2, LEN as u32);
        let (_heap, seg) = segment(spec);
        let mut p = seg.attach_producer(1).unwrap();
        publish(&mut p, 0).unwrap();
        let mut w = seg.register(ConsumerKind::Worker, 10).unwrap();
        let mut r = seg.attach_reader(2, 0).unwrap();
        let worker = thread::spawn(move || match w.claim() {
            Ok(f) => {
                let seq = f.seq;
                let posted = w.post(&f, &[seq as u8; LEN]).unwrap();
                w.release(f).unwrap();
                Some((seq, posted))
            }
            Err(ClaimError::Empty) => None,
            Err(e) => panic!("{e}"),
        });
        let producer = thread::spawn(move || {
            let _ = publish(&mut p, 1);
        });
        // One look while the others run (the race with the drop), then one after they are done.
        let mut out = [0u8; LEN];
        let early = r.next(&mut out).unwrap();
        let got = worker.join().unwrap();
        producer.join().unwrap();
        assert!(got.is_none_or(|(_, posted)| posted == Posted::Ready), "{got:?} after the reader saw {early:?}");
        let got = got.map(|(seq, _)| seq);
        let first = match early {
            Next::Pending { .. } => r.next(&mut out).unwrap(),
            n => n,
        };
        match (first, got) {
            (Next::Result { seq: 0, len, .. }, Some(0)) => {
                assert_eq!(&out[..len], &[0u8; LEN]);
                GOT_IT.hit();
            }
            (Next::Skipped { seq: 0, cause: SkipCause::DroppedOldest }, None | Some(1)) => DROPPED.hit(),
            other => panic!("frame 0 came out as {other:?}"),
        }
    });
    GOT_IT.assert("the worker claimed frame 0 first");
    DROPPED.assert("the producer dropped frame 0 first");
}

/// The reader's sleep handshake: a worker posts frame 0's result while the reader finds its
/// head pending and goes to sleep. Either the reader's re-check sees the result, or the poster
/// sees the sleeper and bumps the wake word — never neither (a lost wake-up would leave the
/// ordered output stalled with a result in its cell).
#[test]
fn results_sleep_handshake_loses_no_wakeup() {
    use loom::sync::atomic::{AtomicBool, Ordering};
    model(|| {
        let (_heap, seg, _p, mut w, f) = worker_holding_frame0_with_results();
        let mut r = seg.attach_reader(2, 0).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let worker = thread::spawn(move || {
            w.post(&f, &[3u8; LEN]).unwrap();
            d2.store(true, Ordering::Release);
            w.release(f).unwrap();
        });
        let (wake, _) = seg.results_wake_words();
        let mut out = [0u8; LEN];
        'outer: loop {
            if let Next::Result { seq: 0, .. } = r.next(&mut out).unwrap() {
                break;
            }
            let seen = r.announce_sleep();
            if let Next::Result { seq: 0, .. } = r.next(&mut out).unwrap() {
                r.retire_sleep();
                break;
            }
            loop {
                if wake.load(framebus_core::sync::Ordering::Acquire) as u32 != seen {
                    r.retire_sleep();
                    continue 'outer;
                }
                if done.load(Ordering::Acquire) {
                    assert_ne!(wake.load(framebus_core::sync::Ordering::Acquire) as u32, seen, "lost wake-up");
                }
                thread::yield_now();
            }
        }
        assert_eq!(out, [3u8; LEN]);
        worker.join().unwrap();
    });
}
