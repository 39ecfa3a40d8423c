//! Opening things that are not valid segments: each gives a typed error whose message says
//! what to do.
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;

use framebus_core::layout::hdr;
use framebus_core::{FrameGeometry, HeaderError, PixelFormat, SegmentSpec};
use framebus_platform::{CreateOptions, Error, SharedSegment};

use crate::util::*;

fn path(name: &str) -> String {
    format!("/dev/shm/framebus.{name}")
}

#[test]
fn missing_name() {
    let e = SharedSegment::open(&unique("missing")).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("framebus ls"));
}

#[test]
fn bad_names_are_refused_before_touching_the_os() {
    for bad in ["", "a/b", "../x", "..", "x y", &"n".repeat(65)] {
        let e = SharedSegment::open(bad).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{bad:?}: {e}");
    }
}

#[test]
fn truncated_segment() {
    let name = unique("trunc");
    let s = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
    let len = s.segment().layout().total_size;
    OpenOptions::new().write(true).open(path(&name)).unwrap().set_len(len - 4096).unwrap();
    let e = SharedSegment::open(&name).unwrap_err();
    assert!(matches!(e, Error::Header { error: HeaderError::SizeMismatch { .. }, .. }), "{e}");
    assert!(e.to_string().contains("truncated"));
    OpenOptions::new().write(true).open(path(&name)).unwrap().set_len(100).unwrap();
    let e = SharedSegment::open(&name).unwrap_err();
    assert!(matches!(e, Error::Header { error: HeaderError::TooSmall { .. }, .. }), "{e}");
}

#[test]
fn garbage_header() {
    let name = unique("junk");
    let mut f = std::fs::File::create(path(&name)).unwrap();
    f.write_all(&[0xA5; 8192]).unwrap();
    let e = SharedSegment::open(&name).unwrap_err();
    assert!(matches!(e, Error::Header { error: HeaderError::BadMagic { .. }, .. }), "{e}");
    std::fs::remove_file(path(&name)).unwrap();
}

#[test]
fn wrong_version() {
    let name = unique("ver");
    let _s = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
    let mut f = OpenOptions::new().write(true).open(path(&name)).unwrap();
    f.seek(SeekFrom::Start(hdr::VERSION as u64)).unwrap();
    f.write_all(&7u32.to_le_bytes()).unwrap();
    let e = SharedSegment::open(&name).unwrap_err();
    assert!(matches!(e, Error::Header { error: HeaderError::UnsupportedVersion { found: 7 }, .. }), "{e}");
}

#[test]
fn segments_are_owner_only_unless_asked() {
    let name = unique("mode");
    let _s = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
    assert_eq!(std::fs::metadata(path(&name)).unwrap().permissions().mode() & 0o777, 0o600);
    let wide = unique("mode");
    let _w = SharedSegment::create(&wide, &spec(2), CreateOptions { mode: 0o660, ..CreateOptions::default() }).unwrap();
    assert_eq!(std::fs::metadata(path(&wide)).unwrap().permissions().mode() & 0o777, 0o660);
}

#[test]
fn a_segment_too_big_for_dev_shm_is_refused_at_creation_with_the_fix() {
    // 1024 slots of 256 MiB: far more than this machine's /dev/shm, but a valid spec.
    let spec = SegmentSpec::new(FrameGeometry::new(16384, 16384, PixelFormat::Gray8), 1024);
    let e = SharedSegment::create(&unique("big"), &spec, CreateOptions::default()).unwrap_err();
    assert!(matches!(e, Error::NoSpace { .. }), "{e}");
    assert!(e.to_string().contains("--shm-size"), "{e}");
}

#[test]
fn an_existing_live_segment_is_not_replaced() {
    let name = unique("dup");
    let _s = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
    let e = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
}

#[test]
fn stale_segments_are_listed_and_collected() {
    let name = unique("stale");
    // A creator that is gone: write a valid segment, then forge a dead creator id into it.
    let s = SharedSegment::create(&name, &spec(2), CreateOptions { unlink_on_drop: false, ..CreateOptions::default() })
        .unwrap();
    let layout = *s.segment().layout();
    drop(s);
    let dead = framebus_core::Creator { id: u64::from(u32::MAX - 1), created_ns: 0 }; // no such pid
    let mut f = OpenOptions::new().write(true).open(path(&name)).unwrap();
    f.write_all(&layout.encode_header(&dead)).unwrap();
    drop(f);
    let info = SharedSegment::list().unwrap().into_iter().find(|i| i.name == name).expect("listed");
    assert!(info.header.is_ok() && !info.creator_alive);
    // A new creator may replace it …
    let again =
        SharedSegment::create(&name, &spec(2), CreateOptions { unlink_on_drop: false, ..CreateOptions::default() });
    assert!(again.is_ok(), "stale segment replaced");
    drop(again);
    // … and gc removes it once its creator (this test's segment object is gone, but this
    // process lives on) — forge the dead creator again and collect.
    let mut f = OpenOptions::new().write(true).open(path(&name)).unwrap();
    f.write_all(&layout.encode_header(&dead)).unwrap();
    drop(f);
    let removed = SharedSegment::gc().unwrap();
    assert!(removed.contains(&name), "{removed:?}");
    assert!(matches!(SharedSegment::open(&name), Err(Error::NotFound { .. })));
}

/// `framebus-peer`, copied where user `nobody` can run it: the checkout may live under a
/// directory only its owner may enter (a fresh clone under a 0700 `mktemp -d`), and then
/// `nobody` could not even start the peer, let alone be refused the segment.
fn peer_for_nobody() -> (std::path::PathBuf, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("framebus-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.join("framebus-peer");
    std::fs::copy(env!("CARGO_BIN_EXE_framebus-peer"), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut argv = peer_argv();
    *argv.last_mut().unwrap() = exe.to_string_lossy().into_owned();
    (dir, argv)
}

/// Runs `argv ARGS` as user and group 65534 (`nobody`); `(status, stdout, stderr)`.
fn as_nobody(argv: &[String], args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(argv)
        .args(args)
        .output()
        .unwrap();
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn another_user_is_refused_an_owner_only_segment() {
    // Needs root (to switch to `nobody`) and setpriv (util-linux); say so instead of pretending.
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    let setpriv = std::process::Command::new("setpriv").arg("--version").output().is_ok();
    if !(root && setpriv) {
        assert!(std::env::var("CI").ok().as_deref() != Some("true"), "CI runs as root with util-linux");
        eprintln!("SKIPPED permission test: needs root and setpriv to act as another user");
        return;
    }
    let (dir, argv) = peer_for_nobody();
    // First: can `nobody` run the peer at all? (Without arguments it prints its usage.)
    let (status, _, err) = as_nobody(&argv, &[]);
    if !err.contains("usage: framebus-peer") {
        let _ = std::fs::remove_dir_all(&dir);
        panic!(
            "user nobody cannot run {argv:?} (status {status}, stderr: {err:?}): the test cannot tell a refused \
             segment from a peer that never started; is {} mounted noexec?",
            std::env::temp_dir().display()
        );
    }
    let name = unique("perm");
    let _s = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
    let (status, out, err) = as_nobody(&argv, &["worker", &name]);
    let _ = std::fs::remove_dir_all(&dir);
    let what = format!("nobody ran {argv:?} worker {name}: status {status}, stdout {out:?}, stderr {err:?}");
    assert!(!status.success(), "nobody must not open a 0600 segment, but did: {what}");
    assert!(err.contains("permission denied") && err.contains("owner-only"), "refused for another reason: {what}");
}

#[test]
fn a_replaced_creator_does_not_remove_its_successor() {
    let name = unique("succ");
    let first = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
    // The name is removed (as gc would after declaring the first creator dead) and reused.
    SharedSegment::remove(&name).unwrap();
    let second = SharedSegment::create(&name, &spec(3), CreateOptions::default()).unwrap();
    drop(first); // unlink_on_drop: must not take the successor's name with it
    let opened = SharedSegment::open(&name).expect("the successor survives its predecessor's drop");
    assert_eq!(opened.segment().layout().spec.slot_count, 3);
    drop(opened);
    drop(second);
    assert!(matches!(SharedSegment::open(&name), Err(Error::NotFound { .. })), "the successor removes its own name");
}
