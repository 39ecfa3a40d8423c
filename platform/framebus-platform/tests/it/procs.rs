//! Producers and consumers in separate processes, counting and checking every frame.
use framebus_core::{ConsumerKind, OverflowPolicy, Pattern};
use framebus_platform::{wait, CreateOptions, SharedSegment};

use crate::util::*;

const FRAMES: u64 = 100_000;

/// Sum and sum of squares of 0..n, to check that the workers together saw each seq once.
fn sums(n: u64) -> (u128, u128) {
    let n = u128::from(n);
    (n * (n - 1) / 2, (n - 1) * n * (2 * n - 1) / 6)
}

fn work_queue(workers: usize) {
    let name = unique("wq");
    let shared = SharedSegment::create(&name, &spec(8), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    let peers: Vec<Peer> = (0..workers).map(|_| Peer::spawn(&["worker", &name])).collect();
    assert_eq!(produce(&mut p, &seg, FRAMES), 0, "Block drops nothing");
    end(&mut p, &seg, workers);
    let mut total = (0u64, 0u128, 0u128);
    for peer in peers {
        let (c, s, q, _) = peer.summary();
        total = (total.0 + c, total.1 + s, total.2 + q);
    }
    let (s, q) = sums(FRAMES);
    assert_eq!(total, (FRAMES, s, q), "every frame exactly once across {workers} worker processes");
    assert_eq!(seg.stats().dropped_oldest + seg.stats().dropped_newest, 0);
}

#[test]
fn one_worker_process_gets_100k_frames_intact() {
    work_queue(1);
}

#[test]
fn four_worker_processes_share_100k_frames_exactly_once() {
    work_queue(4);
}

#[test]
fn drop_oldest_across_processes_drops_only_what_it_counts() {
    let name = unique("do");
    let shared =
        SharedSegment::create(&name, &spec(4).with_policy(OverflowPolicy::DropOldest), CreateOptions::default())
            .unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    let mut peer = Peer::spawn(&["worker", &name]);
    assert_eq!(peer.line(), "ready");
    let dropped_newest = produce(&mut p, &seg, FRAMES);
    // END is the newest frame: DropOldest may displace an unclaimed data frame for it (counted
    // below), never END itself; `end` panics if END were dropped.
    end(&mut p, &seg, 1);
    let (count, _, _, _) = peer.summary();
    let s = seg.stats();
    assert_eq!(count + s.dropped_oldest + dropped_newest, FRAMES, "published = delivered + dropped");
    assert_eq!(s.dropped_newest, dropped_newest);
}

#[test]
fn broadcast_reaches_three_subscriber_processes() {
    let name = unique("bc");
    let shared =
        SharedSegment::create(&name, &spec(8).with_pattern(Pattern::Broadcast), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    let mut peers: Vec<Peer> = (0..3).map(|_| Peer::spawn(&["subscriber", &name])).collect();
    for peer in &mut peers {
        assert_eq!(peer.line(), "ready", "subscribers start at the next frame");
    }
    let n = FRAMES / 2;
    produce(&mut p, &seg, n);
    end(&mut p, &seg, 1);
    let (s, q) = sums(n);
    for peer in peers {
        let (count, sum, sumsq, skipped) = peer.summary();
        assert_eq!(skipped, 0, "Block: nothing skipped");
        assert_eq!((count, sum, sumsq), (n, s, q), "every frame, once, to every subscriber");
    }
}

#[test]
fn a_killed_worker_loses_its_slots_and_the_pipeline_goes_on() {
    let name = unique("kill");
    let shared = SharedSegment::create(&name, &spec(4), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    produce(&mut p, &seg, 4);
    let mut holder = Peer::spawn(&["hold", &name, "3"]);
    assert_eq!(holder.line(), "held 3");
    assert_eq!(seg.census().taken, 3);
    holder.child.kill().unwrap(); // SIGKILL: no destructor, no release
    holder.child.wait().unwrap();
    // The reaper finds the dead process (pid + start time) and reclaims its three slots.
    let reaped = shared.reap();
    assert_eq!(reaped.len(), 1);
    assert_eq!(reaped[0].1.cleared, 3);
    assert_eq!(seg.census().taken, 0);
    // The pipeline goes on: a new worker gets the rest.
    let worker = Peer::spawn(&["worker", &name]);
    produce(&mut p, &seg, 100);
    end(&mut p, &seg, 1);
    let (count, _, _, _) = worker.summary();
    assert_eq!(count, 1 + 100, "the unclaimed 4th frame and the 100 new ones");
}

#[test]
fn a_killed_producer_is_replaced_and_consumers_carry_on() {
    let name = unique("prod");
    let shared = SharedSegment::create(&name, &spec(8), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut worker = shared.register(ConsumerKind::Worker).unwrap();
    let mut producer = Peer::spawn(&["producer", &name, "5"]);
    assert_eq!(producer.line(), "published 5");
    producer.child.kill().unwrap();
    producer.child.wait().unwrap();
    for seq in 0..5 {
        let f = wait::claim(&mut worker, SECOND).unwrap();
        assert_eq!((f.seq, f.epoch), (seq, 1));
        wait::release(&mut worker, f).unwrap();
    }
    // A new producer takes over from the dead one (liveness says so); the epoch moves.
    let mut p = shared.attach_producer().unwrap();
    assert_eq!(p.epoch(), 2);
    produce(&mut p, &seg, 1);
    let f = wait::claim(&mut worker, SECOND).unwrap();
    assert_eq!((f.seq, f.epoch), (5, 2), "same consumer, no restart, sees the new producer");
    wait::release(&mut worker, f).unwrap();
}

#[test]
fn a_sleeping_consumer_is_woken_by_a_publish_from_another_process() {
    use framebus_platform::core::sync::Ordering;
    let name = unique("wake");
    let shared = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
    let mut worker = shared.register(ConsumerKind::Worker).unwrap();
    let (wake, waiters) = shared.segment().frame_wake_words();
    let f = std::thread::scope(|s| {
        let sleeper = s.spawn(|| wait::claim(&mut worker, std::time::Duration::from_secs(30)));
        // Start the producer only once the consumer has announced itself as a sleeper.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while waiters.load(Ordering::Acquire) & 0xFFFF == 0 {
            assert!(std::time::Instant::now() < deadline, "consumer never went to sleep");
            std::thread::yield_now();
        }
        let _producer = Peer::spawn(&["producer", &name, "1"]);
        let f = sleeper.join().unwrap().unwrap();
        assert_eq!(f.seq, 0);
        // The producer saw the sleeper and bumped the wake word (the only way the claim could
        // end before its 30 s timeout without polling).
        assert!(wake.load(Ordering::Acquire) >= 1, "the publish woke the sleeper");
        assert_eq!(waiters.load(Ordering::Acquire) & 0xFFFF, 0, "the sleeper withdrew its announcement (mask bits)");
        f
    });
    wait::release(&mut worker, f).unwrap();
}
