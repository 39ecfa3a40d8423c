//! The other backings: a sealed memfd passed to another process over a Unix socket, and a
//! file at a path.
use std::os::unix::net::UnixListener;

use framebus_platform::{Backing, CreateOptions, Error, SharedSegment};

use crate::util::*;

#[test]
fn a_memfd_segment_passed_by_descriptor_serves_another_process() {
    let shared = SharedSegment::create_memfd("memfd-test", &spec(4)).unwrap();
    assert_eq!(shared.backing(), &Backing::Memfd);
    assert!(shared.sealed(), "sealed against shrinking: no peer can truncate it into a SIGBUS");
    let seg = shared.segment();
    let sock = std::env::temp_dir().join(unique("sock"));
    let listener = UnixListener::bind(&sock).unwrap();
    let worker = Peer::spawn(&["worker-fd", sock.to_str().unwrap()]);
    let (stream, _) = listener.accept().unwrap();
    shared.send_fd(&stream).unwrap();
    let mut p = shared.attach_producer().unwrap();
    produce(&mut p, &seg, 10_000);
    end(&mut p, &seg, 1);
    let (count, sum, _, _) = worker.summary();
    assert_eq!((count, sum), (10_000, 10_000 * 9_999 / 2));
    std::fs::remove_file(&sock).unwrap();
}

#[test]
fn a_sealed_memfd_cannot_be_truncated() {
    let shared = SharedSegment::create_memfd("seal-test", &spec(2)).unwrap();
    // Reach the descriptor the way a hostile peer would: through /proc.
    let me = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok().map(|t| (e.file_name(), t)))
        .find(|(_, t)| t.to_string_lossy().contains("framebus.seal-test"))
        .expect("memfd visible in /proc/self/fd");
    let f = std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{}", me.0.to_string_lossy())).unwrap();
    assert!(f.set_len(4096).is_err(), "shrinking a sealed memfd must fail");
    assert_eq!(shared.segment().stats().write_pos, 0, "segment intact");
}

#[test]
fn a_file_backed_segment_serves_another_process_and_is_removed_on_drop() {
    let path = std::env::temp_dir().join(unique("file"));
    let shared = SharedSegment::create_at(&path, &spec(4), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let worker = Peer::spawn(&["worker-at", path.to_str().unwrap()]);
    let mut p = shared.attach_producer().unwrap();
    produce(&mut p, &seg, 5_000);
    end(&mut p, &seg, 1);
    assert_eq!(worker.summary().0, 5_000);
    assert!(matches!(
        SharedSegment::create_at(&path, &spec(4), CreateOptions::default()),
        Err(Error::AlreadyExists { .. })
    ));
    drop(p);
    drop(shared);
    assert!(!path.exists(), "unlink_on_drop removes the file");
    assert!(matches!(SharedSegment::open_at(&path), Err(Error::NotFound { .. })));
}

/// A dma-buf backing where the device exists: frames written and read through `cpu_access`
/// (with the sync ioctls) survive a round trip, and the fd is a dma-buf. Where it does not:
/// the error names the device and says what to do, and the test says it skipped the rest.
fn dmabuf_backing(make: fn() -> Result<SharedSegment, Error>, device: &str) {
    match make() {
        Ok(shared) => {
            let seg = shared.segment();
            let mut p = shared.attach_producer().unwrap();
            let mut w = shared.register(framebus_platform::core::ConsumerKind::Worker).unwrap();
            let mut slot = p.begin().unwrap();
            shared.cpu_access(framebus_platform::Access::Write, || slot.write(0, &[7u8; 64])).unwrap();
            framebus_platform::wait::publish(slot, Default::default(), &seg);
            let f = framebus_platform::wait::claim(&mut w, std::time::Duration::from_secs(1)).unwrap();
            let mut buf = [0u8; 64];
            shared.cpu_access(framebus_platform::Access::Read, || w.read(&f, 0, &mut buf)).unwrap().unwrap();
            assert_eq!(buf, [7u8; 64]);
            framebus_platform::wait::release(&mut w, f).unwrap();
        }
        Err(e @ Error::PermissionDenied { .. }) => {
            println!("skipped the {device} round trip: it exists but this user may not open it ({e})");
        }
        Err(e @ Error::DeviceMissing { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(device) && msg.contains("--backing memfd"), "{msg}");
            println!("skipped the {device} round trip: {msg}");
        }
        Err(e) => panic!("{device}: {e}"),
    }
}

#[test]
fn a_dma_heap_segment_round_trips_or_names_the_missing_heap() {
    dmabuf_backing(|| SharedSegment::create_dmabuf("system", "dmaheap-test", &spec(2)), "/dev/dma_heap/system");
}

#[test]
fn a_udmabuf_segment_round_trips_or_names_the_missing_device() {
    dmabuf_backing(|| SharedSegment::create_udmabuf("udmabuf-test", &spec(2)), "/dev/udmabuf");
}

#[test]
fn cpu_access_on_an_ordinary_segment_just_runs_the_body() {
    let shared = SharedSegment::create_memfd("cpu-access", &spec(2)).unwrap();
    assert_eq!(shared.cpu_access(framebus_platform::Access::Write, || 5).unwrap(), 5);
}
