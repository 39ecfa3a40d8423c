//! Sequences of API calls (structure-aware) against the in-process backend, with processes
//! dying anywhere inside `register` and `unregister`. After every call: every slot is in
//! exactly one state, nothing is delivered twice to workers or out of order to anyone, every
//! held frame still reads as the frame it was (no torn frame), for the work queue published =
//! delivered + dropped + waiting, every table entry is free, a live reader's (naming its
//! process) or left by a dead one, and after a reap only the live readers' remain.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use framebus_core::segment::fault::{REGISTER_STEPS, UNREGISTER_STEPS};
use framebus_core::segment::{ClaimError, EntryStatus, Reclaim};
use framebus_core::*;
use framebus_fuzz::{pattern, publish, Config, Heap};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Publish { len: u8 },
    Abandon,
    Claim(u8),
    Release(u8, u8),
    Register(u8),
    Unregister(u8),
    Kill(u8),
    Takeover,
    Read(u8, u8),
    /// A new process dies inside `register`, after step (n mod steps) + 1.
    KillInRegister(u8, u8),
    /// Reader i releases everything, then dies inside `unregister`.
    KillInUnregister(u8, u8),
    /// The platform's reap, with the real liveness of the readers.
    Reap,
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: Config,
    ops: Vec<Op>,
}

struct Held {
    frame: Frame,
}

struct Reader<'a> {
    c: Consumer<'a>,
    token: u64,
    held: Vec<Held>,
    last_seq: Option<u64>,
}

fuzz_target!(|input: Input| {
    let heap = Heap::new(&input.config.spec());
    let spec = heap.layout().spec; // normalised: the payload size resolved
    let seg = heap.segment();
    let cap = spec.slot_payload_size as usize;
    let mut token = 100u64; // consumers' process tokens
    let mut producer_token = 1u64;
    let mut producer = Some(seg.attach_producer(producer_token).unwrap());
    let mut readers: Vec<Reader<'_>> = Vec::new();
    let mut claimed_by_workers: BTreeSet<u64> = BTreeSet::new();
    let mut lens: BTreeMap<u64, usize> = BTreeMap::new();
    // Entries left by processes that died inside the table protocol, until a reap.
    let mut zombies = 0u32;
    for op in input.ops.into_iter().take(200) {
        match op {
            Op::Publish { len } => {
                let p = producer.as_mut().unwrap();
                let len = usize::from(len) % cap + 1;
                if let Ok(seq) = publish(p, len) {
                    lens.insert(seq, len.min(cap));
                }
            }
            Op::Abandon => {
                // Begin and give the slot back unpublished.
                let _ = producer.as_mut().unwrap().begin();
            }
            Op::Claim(i) => {
                let n = readers.len();
                if n == 0 {
                    continue;
                }
                let r = &mut readers[usize::from(i) % n];
                match r.c.claim() {
                    Ok(frame) => {
                        assert!(frame.slot < spec.slot_count);
                        if let Some(last) = r.last_seq {
                            assert!(frame.seq > last, "consumer saw {} after {last}", frame.seq);
                        }
                        r.last_seq = Some(frame.seq);
                        if r.c.kind() == ConsumerKind::Worker {
                            assert!(claimed_by_workers.insert(frame.seq), "seq {} delivered twice", frame.seq);
                        }
                        r.held.push(Held { frame });
                    }
                    Err(ClaimError::Empty) => {
                        // A work queue never strands a frame: a READY slot nobody holds is the
                        // next thing any worker claims.
                        if spec.pattern == Pattern::WorkQueue {
                            let c = seg.census();
                            assert_eq!(c.ready_unheld, 0, "Empty while a frame waits: {c:?} {:?}", seg.stats());
                        }
                    }
                    // Killed or unregistered readers leave `readers`: nobody here is evicted.
                    Err(e) => panic!("an honest segment gave {e:?}"),
                }
            }
            Op::Release(i, k) => {
                let n = readers.len();
                if n == 0 {
                    continue;
                }
                let r = &mut readers[usize::from(i) % n];
                if r.held.is_empty() {
                    continue;
                }
                let h = r.held.remove(usize::from(k) % r.held.len());
                if let Err(e) = r.c.release(h.frame) {
                    panic!("releasing a held frame gave {e:?}");
                }
            }
            Op::Read(i, k) => {
                let n = readers.len();
                if n == 0 {
                    continue;
                }
                let r = &readers[usize::from(i) % n];
                if r.held.is_empty() {
                    continue;
                }
                let f = &r.held[usize::from(k) % r.held.len()].frame;
                let len = lens[&f.seq];
                let mut buf = vec![0u8; len];
                r.c.read(f, 0, &mut buf).unwrap_or_else(|e| panic!("reading a held frame gave {e:?}"));
                for (j, b) in buf.iter().enumerate() {
                    assert_eq!(*b, pattern(f.seq, j), "torn frame {} at byte {j}", f.seq);
                }
            }
            Op::Register(kind) => {
                let kind = kind_for(&spec, kind);
                token += 1;
                let live = live(&readers);
                if let Ok(c) = seg.register_with(kind, token, |t| live.contains(&t)) {
                    readers.push(Reader { c, token, held: Vec::new(), last_seq: None });
                }
            }
            Op::Unregister(i) => {
                let n = readers.len();
                if n == 0 {
                    continue;
                }
                let r = readers.remove(usize::from(i) % n);
                if !r.held.is_empty() {
                    // Holding: refused, the reader stays.
                    let (idx, gen) = (r.c.index(), r.c.generation());
                    assert!(seg.reclaim(idx, gen, Reclaim::Idle).is_err());
                    readers.push(r);
                } else {
                    let _ = r.c.unregister();
                }
            }
            Op::Kill(i) => {
                // The process died: the platform force-reclaims its entry; its holds vanish.
                let n = readers.len();
                if n == 0 {
                    continue;
                }
                let r = readers.remove(usize::from(i) % n);
                let done = seg.reclaim(r.c.index(), r.c.generation(), Reclaim::Dead { owner: r.token });
                assert!(done.is_ok(), "reclaiming a dead reader's entry: {done:?}");
                drop(r.held); // stale handles now: the entry has a new generation
            }
            Op::Takeover => {
                // The producer died; a new one takes over.
                let old = producer.take().unwrap();
                std::mem::forget(old); // no clean detach: it crashed
                let dead = producer_token;
                producer_token += 1;
                producer = Some(seg.take_over_producer(producer_token, dead).unwrap());
            }
            Op::KillInRegister(kind, step) => {
                let kind = kind_for(&spec, kind);
                token += 1;
                let live = live(&readers);
                let step = u32::from(step) % REGISTER_STEPS + 1;
                if let Ok(died) = seg.register_dying(kind, token, |t| live.contains(&t), step) {
                    assert!(died);
                    zombies += u32::from(step >= 2);
                }
            }
            Op::KillInUnregister(i, step) => {
                let n = readers.len();
                if n == 0 {
                    continue;
                }
                let mut r = readers.remove(usize::from(i) % n);
                for h in r.held.drain(..) {
                    r.c.release(h.frame).unwrap_or_else(|e| panic!("releasing a held frame gave {e:?}"));
                }
                let step = u32::from(step) % UNREGISTER_STEPS + 1;
                assert_eq!(r.c.unregister_dying(step), Ok(true));
                zombies += 1;
            }
            Op::Reap => {
                let live = live(&readers);
                let freed = seg.reap(|t| live.contains(&t), |_, _| {});
                assert_eq!(freed, zombies, "reap frees exactly the entries of dead processes");
                zombies = 0;
            }
        }
        check(&seg, &spec, &readers);
        let used = (0..spec.max_consumers).filter(|&i| seg.entry_state(i).status != EntryStatus::Free).count();
        assert_eq!(used, readers.len() + zombies as usize, "table entries: readers and dead processes' only");
        for r in &readers {
            let e = seg.entry_state(r.c.index());
            assert_eq!((e.status, e.gen), (EntryStatus::Alive, r.c.generation()), "a live reader lost its entry");
            assert_eq!(seg.entry_owner(r.c.index()).0, r.token, "a live reader's entry names another process");
        }
    }
});

/// The consumer kind a registration asks for: workers on a work queue, subscribers or latest
/// readers on a broadcast segment.
fn kind_for(spec: &SegmentSpec, k: u8) -> ConsumerKind {
    match (spec.pattern, k % 2) {
        (Pattern::WorkQueue, _) => ConsumerKind::Worker,
        (Pattern::Broadcast, 0) => ConsumerKind::Subscriber,
        (Pattern::Broadcast, _) => ConsumerKind::Latest,
    }
}

/// The processes alive in this run: the readers' (everyone else registered here died).
fn live(readers: &[Reader<'_>]) -> BTreeSet<u64> {
    readers.iter().map(|r| r.token).collect()
}

fn check(seg: &Segment<'_>, spec: &SegmentSpec, readers: &[Reader<'_>]) {
    let c = seg.census();
    assert_eq!(c.free + c.writing + c.ready + c.taken, spec.slot_count, "every slot in exactly one state: {c:?}");
    assert_eq!(c.writing, 0, "no slot stays WRITING between calls");
    for r in readers {
        assert_eq!(c.held_by[r.c.index() as usize], r.held.len() as u32, "holds of consumer {}", r.c.index());
    }
    let s = seg.stats();
    assert_eq!(s.next_seq, s.write_pos + s.dropped_newest, "every sequence number published or dropped: {s:?}");
    if spec.pattern == Pattern::Broadcast && spec.policy == OverflowPolicy::Block {
        // Under Block a frame is recycled only after every subscriber passed it: none skips.
        for r in readers.iter().filter(|r| r.c.kind() == ConsumerKind::Subscriber) {
            let (delivered, skipped, cursor, joined) = seg.entry_counters(r.c.index());
            assert_eq!(
                skipped, 0,
                "a Block subscriber skipped frames ({delivered} delivered, cursor {cursor}, joined {joined})"
            );
        }
    }
    if spec.pattern == Pattern::WorkQueue {
        // Published frames are delivered, dropped, or still waiting in a READY slot.
        assert_eq!(s.write_pos, s.delivered + s.dropped_oldest + u64::from(c.ready), "{s:?} {c:?}");
    }
}
