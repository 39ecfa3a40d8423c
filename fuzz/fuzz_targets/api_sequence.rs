//! Sequences of API calls (structure-aware) against the in-process backend. After every call:
//! every slot is in exactly one state, nothing is delivered twice to workers or out of order to
//! anyone, every held frame still reads as the frame it was (no torn frame), and for the work
//! queue published = delivered + dropped + waiting.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use framebus_core::segment::ClaimError;
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
                let kind = match (spec.pattern, kind % 2) {
                    (Pattern::WorkQueue, _) => ConsumerKind::Worker,
                    (Pattern::Broadcast, 0) => ConsumerKind::Subscriber,
                    (Pattern::Broadcast, _) => ConsumerKind::Latest,
                };
                token += 1;
                if let Ok(c) = seg.register(kind, token) {
                    readers.push(Reader { c, held: Vec::new(), last_seq: None });
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
                    assert!(seg.reclaim(idx, gen, false).is_err());
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
                let _ = seg.reclaim(r.c.index(), r.c.generation(), true);
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
        }
        check(&seg, &spec, &readers);
    }
});

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
