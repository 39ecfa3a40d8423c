//! Proptest state machine of the results protocol (layout v3): random publish / claim / post /
//! release / worker death / death mid-post / deadline skip / read / finish, run against the real
//! segment and against a sequential model of every frame's fate, checking after every step that
//! both agree on every outcome: results come out strictly in frame order, each seq exactly once,
//! with the bytes posted or the cause the model predicts, late posts counted, and the end seen.
use std::collections::BTreeMap;

use crate::util::{cases, check, publish, segment, spec};
use framebus_core::segment::{Next, PostError, Posted, Reclaim};
use framebus_core::*;
use proptest::prelude::*;

const LEN: usize = 8;
const WORKERS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Publish,
    Claim(usize),
    Post(usize, usize),
    Release(usize, usize),
    /// Worker w dies (its reclaim as dead).
    Kill(usize),
    /// Worker w dies in the middle of posting its i-th held frame.
    KillMidPost(usize, usize),
    /// The reader's deadline for its head passes.
    SkipHead,
    Read,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => Just(Op::Publish),
        4 => (0..WORKERS).prop_map(Op::Claim),
        4 => (0..WORKERS, 0..4usize).prop_map(|(w, i)| Op::Post(w, i)),
        3 => (0..WORKERS, 0..4usize).prop_map(|(w, i)| Op::Release(w, i)),
        1 => (0..WORKERS).prop_map(Op::Kill),
        1 => (0..WORKERS, 0..4usize).prop_map(|(w, i)| Op::KillMidPost(w, i)),
        1 => Just(Op::SkipHead),
        5 => Just(Op::Read),
    ];
    proptest::collection::vec(op, 1..120)
}

/// What the model knows of one seq.
#[derive(Clone, Debug, PartialEq)]
enum Fate {
    /// Issued, no fate yet (in a slot, or about to be).
    Pending,
    /// A result was posted.
    Result(Vec<u8>),
    /// Skipped with this cause.
    Skipped(SkipCause),
    /// Left its slot while its cell was a window behind: nobody could mark it (overflow).
    Unmarked,
    /// A poster died mid-copy: pending until its reclaim.
    Writing,
}

struct Results {
    cells: u64,
    head: u64,
    fates: BTreeMap<u64, Fate>,
    late: u64,
}

impl Results {
    fn open(&self, seq: u64) -> bool {
        seq < self.head + self.cells
    }

    /// Frame `seq` leaves its slot with `cause` (marked if its cell is open for it).
    fn leave(&mut self, seq: u64, cause: SkipCause) {
        let open = self.open(seq);
        let f = self.fates.get_mut(&seq).expect("issued");
        if *f == Fate::Pending {
            *f = if open { Fate::Skipped(cause) } else { Fate::Unmarked };
        }
    }
}

fn bytes_for(seq: u64) -> Vec<u8> {
    (0..(seq % 5 + 1) as u8).map(|i| i.wrapping_mul(17).wrapping_add(seq as u8)).collect()
}

fn run(policy: OverflowPolicy, slots: u32, cells: u32, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (_mem, seg) =
        segment(spec(slots, LEN as u32).with_policy(policy).with_max_consumers(WORKERS as u32).with_results(cells, 8));
    let mut producer = Some(seg.attach_producer(1).unwrap());
    let mut reader = seg.attach_reader(2, 0).unwrap();
    let mut workers: Vec<Option<Consumer<'static>>> =
        (0..WORKERS).map(|w| Some(seg.register(ConsumerKind::Worker, 10 + w as u64).unwrap())).collect();
    let mut tokens: Vec<u64> = (0..WORKERS).map(|w| 10 + w as u64).collect();
    let mut next_token = 100;
    let mut held: Vec<Vec<Frame>> = (0..WORKERS).map(|_| Vec::new()).collect();
    let mut m = Results { cells: u64::from(cells), head: 0, fates: BTreeMap::new(), late: 0 };
    let mut next_seq = 0u64;
    let mut ended = false;
    // Frames a DropOldest producer could reuse: READY and unclaimed, by seq; and those put back
    // by a dead worker's reclaim (claimed before the others, in slot order), and every seq
    // that ever went back (a frame goes back once).
    let mut ready: Vec<u64> = Vec::new();
    let mut back: Vec<u64> = Vec::new();
    let mut went_back: std::collections::BTreeSet<u64> = Default::default();
    let mut free = slots as usize;

    for op in ops {
        match op {
            Op::Publish => {
                let Some(p) = producer.as_mut() else { continue };
                let r = publish(p, LEN);
                match r {
                    Ok(seq) => {
                        prop_assert_eq!(seq, next_seq);
                        if free > 0 {
                            free -= 1;
                        } else {
                            // DropOldest reused the oldest unclaimed frame's slot (a frame put
                            // back is older than every one never claimed).
                            prop_assert_eq!(policy, OverflowPolicy::DropOldest);
                            let victim = match back.iter().copied().min() {
                                Some(v) => {
                                    back.retain(|&b| b != v);
                                    v
                                }
                                None => ready.remove(0),
                            };
                            m.leave(victim, SkipCause::DroppedOldest);
                        }
                        m.fates.insert(seq, Fate::Pending);
                        ready.push(seq);
                        next_seq += 1;
                    }
                    Err(BeginError::DroppedNewest { seq }) => {
                        prop_assert_eq!(seq, next_seq);
                        m.fates.insert(seq, Fate::Pending);
                        m.leave(seq, SkipCause::DroppedNewest);
                        next_seq += 1;
                    }
                    Err(BeginError::Full) => prop_assert_eq!(policy, OverflowPolicy::Block),
                    Err(e) => prop_assert!(false, "publish: {}", e),
                }
            }
            Op::Claim(w) => {
                let Some(c) = workers[w].as_mut() else { continue };
                match c.claim() {
                    Ok(f) if f.redelivered => {
                        check(c, &f, LEN);
                        prop_assert!(back.contains(&f.seq), "{} was not put back", f.seq);
                        back.retain(|&b| b != f.seq);
                        held[w].push(f);
                    }
                    Ok(f) => {
                        check(c, &f, LEN);
                        prop_assert!(back.is_empty(), "frames put back come first");
                        prop_assert_eq!(ready.first().copied(), Some(f.seq), "work-queue claims go in order");
                        ready.remove(0);
                        held[w].push(f);
                    }
                    Err(e) => {
                        prop_assert_eq!(e, segment::ClaimError::Empty);
                        prop_assert!(ready.is_empty() && back.is_empty());
                    }
                }
            }
            Op::Post(w, i) => {
                let Some(c) = workers[w].as_mut() else { continue };
                if held[w].is_empty() {
                    continue;
                }
                let f = &held[w][i % held[w].len()];
                let bytes = bytes_for(f.seq);
                let got = c.post(f, &bytes);
                let fate = m.fates[&f.seq].clone();
                let want = match fate {
                    // The reader has passed the frame (delivered or skipped): too late, counted.
                    _ if m.head > f.seq => Ok(Posted::Late),
                    Fate::Pending if m.open(f.seq) => Ok(Posted::Ready),
                    Fate::Pending => Err(PostError::WindowFull),
                    Fate::Result(_) => Err(PostError::Duplicate),
                    Fate::Skipped(_) => Ok(Posted::Late),
                    Fate::Unmarked | Fate::Writing => unreachable!("a held frame is in its slot"),
                };
                prop_assert_eq!(got, want, "post of {}", f.seq);
                match want {
                    Ok(Posted::Ready) => {
                        m.fates.insert(f.seq, Fate::Result(bytes));
                    }
                    Ok(Posted::Late) => m.late += 1,
                    _ => {}
                }
            }
            Op::Release(w, i) => {
                let Some(c) = workers[w].as_mut() else { continue };
                if held[w].is_empty() {
                    continue;
                }
                let n = held[w].len();
                let f = held[w].remove(i % n);
                let seq = f.seq;
                c.release(f).unwrap();
                m.leave(seq, SkipCause::NoResult);
                free += 1;
            }
            Op::Kill(w) | Op::KillMidPost(w, _) => {
                let Some(mut c) = workers[w].take() else { continue };
                if let Op::KillMidPost(_, i) = op {
                    if !held[w].is_empty() {
                        let f = &held[w][i % held[w].len()];
                        if m.fates[&f.seq] == Fate::Pending && m.open(f.seq) && c.post_dying(f).is_ok() {
                            m.fates.insert(f.seq, Fate::Writing);
                        }
                    }
                }
                let r = seg.reclaim(c.index(), c.generation(), Reclaim::Dead { owner: tokens[w] }).unwrap();
                let held_n = held[w].len();
                let mut put_back = 0;
                for f in held[w].drain(..) {
                    match m.fates[&f.seq] {
                        Fate::Writing => {
                            m.fates.insert(f.seq, Fate::Skipped(SkipCause::WorkerDied));
                        }
                        // Still waiting for its result, its cell open, never put back: it goes
                        // back to the workers.
                        Fate::Pending if m.open(f.seq) && f.seq >= m.head && went_back.insert(f.seq) => {
                            back.push(f.seq);
                            put_back += 1;
                            continue;
                        }
                        _ => m.leave(f.seq, SkipCause::WorkerDied),
                    }
                    free += 1;
                }
                prop_assert_eq!(r.cleared as usize, held_n - put_back, "freed: the frames not put back");
                prop_assert_eq!(seg.stats().redelivered as usize, went_back.len(), "redeliveries counted");
                // A new process takes the dead worker's place.
                next_token += 1;
                tokens[w] = next_token;
                let live = tokens.clone();
                workers[w] = Some(seg.register_with(ConsumerKind::Worker, next_token, |t| live.contains(&t)).unwrap());
            }
            Op::SkipHead => {
                if m.head >= next_seq {
                    continue; // the platform gives up only on frames that were issued
                }
                let skipped = reader.skip_head(SkipCause::Deadline);
                let f = m.fates.get_mut(&m.head).unwrap();
                let want = matches!(f, Fate::Pending | Fate::Unmarked);
                prop_assert_eq!(skipped, want, "skip_head on {:?}", f);
                if want {
                    *f = Fate::Skipped(SkipCause::Deadline);
                }
            }
            Op::Read => {
                let mut out = [0u8; 8];
                let got = reader.next(&mut out).unwrap();
                let h = m.head;
                let want = match m.fates.get(&h) {
                    None if ended => Next::End { seq: next_seq },
                    None => Next::Pending { seq: h, offered: false },
                    Some(Fate::Pending | Fate::Writing) => Next::Pending { seq: h, offered: true },
                    Some(Fate::Result(b)) => Next::Result { seq: h, epoch: 1, len: b.len() },
                    Some(Fate::Skipped(c)) => Next::Skipped { seq: h, cause: *c },
                    Some(Fate::Unmarked) => Next::Skipped { seq: h, cause: SkipCause::Overflow },
                };
                prop_assert_eq!(got, want, "read at {}", h);
                if let (Next::Result { len, .. }, Some(Fate::Result(b))) = (got, m.fates.get(&h)) {
                    prop_assert_eq!(&out[..len], &b[..], "the bytes posted");
                }
                if matches!(got, Next::Result { .. } | Next::Skipped { .. }) {
                    m.head += 1;
                }
            }
        }
        prop_assert_eq!(reader.head(), m.head);
        prop_assert_eq!(seg.result_counts().0, m.late, "late posts counted");
    }
    // The end: finish, then the reader drains to End, every seq accounted for once.
    if let Some(p) = producer.take() {
        p.finish();
        ended = true;
    }
    for w in 0..WORKERS {
        for f in held[w].drain(..) {
            let seq = f.seq;
            workers[w].as_mut().unwrap().release(f).unwrap();
            m.leave(seq, SkipCause::NoResult);
        }
    }
    // The workers drain the queue (as they do at the end of a stream), posting nothing.
    let c = workers[0].as_mut().unwrap();
    while let Ok(f) = c.claim() {
        let seq = f.seq;
        c.release(f).unwrap();
        m.leave(seq, SkipCause::NoResult);
    }
    let mut out = [0u8; 8];
    let mut seen = 0;
    loop {
        match reader.next(&mut out).unwrap() {
            Next::End { seq } => {
                prop_assert!(ended);
                prop_assert_eq!(seq, next_seq);
                break;
            }
            Next::Pending { seq, .. } => prop_assert!(false, "frame {} pending after the end", seq),
            Next::Result { seq, .. } | Next::Skipped { seq, .. } => {
                prop_assert_eq!(seq, m.head + seen);
                seen += 1;
            }
        }
    }
    prop_assert_eq!(m.head + seen, next_seq, "every issued seq came out once");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn results_match_model(policy in 0usize..3, slots in 1u32..5, cells in 0u32..4, ops in ops()) {
        let policy = [OverflowPolicy::Block, OverflowPolicy::DropOldest, OverflowPolicy::DropNewest][policy];
        run(policy, slots, 1 << cells, ops)?;
    }
}
