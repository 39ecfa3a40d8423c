//! Liveness across PID namespaces: a consumer in a container that shares `/dev/shm` but not the
//! PID namespace (`unshare --pid --fork`, util-linux) is never reaped while it lives — its pid
//! means nothing here, or names another process — and always reaped once it is dead: its
//! liveness lock (`/dev/shm/framebus-live.TOKEN`) is what the kernel drops at its death.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use framebus_platform::core::EntryStatus;
use framebus_platform::{is_alive, CreateOptions, SharedSegment};

use crate::util::{peer_argv, spec, unique};

/// Whether this machine lets us make PID namespaces; outside CI a missing `unshare` or the
/// missing privilege skips (naming what is needed), under `CI=true` it fails.
fn can_unshare() -> bool {
    let ok =
        Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "unshare --pid --fork --mount-proc failed: install util-linux and run as root (or with CAP_SYS_ADMIN)"
        );
        eprintln!("SKIPPED: unshare --pid --fork --mount-proc does not work here (util-linux; needs root)");
    }
    ok
}

/// A child killed when the test ends, also by a failed assertion (it would hold the test's
/// output open).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_worker_in_another_pid_namespace_is_reaped_only_once_dead() {
    if !can_unshare() || std::env::var("FRAMEBUS_PEER_RUNNER").is_ok() {
        return;
    }
    // With its own /proc (a container), and without (the host's /proc seen from inside).
    for mount_proc in [true, false] {
        let name = unique("pidns");
        let shared = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
        let mut p = shared.attach_producer().unwrap();
        crate::util::produce(&mut p, &shared.segment(), 1);
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--kill-child"]);
        if mount_proc {
            cmd.arg("--mount-proc");
        }
        let mut child =
            Killed(cmd.args(peer_argv()).args(["hold", &name, "1"]).stdout(Stdio::piped()).spawn().unwrap());
        let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line.trim(), "held 1", "mount_proc {mount_proc}");
        let seg = shared.segment();
        let entry = (0..seg.layout().spec.max_consumers)
            .find(|&i| seg.entry_state(i).status == EntryStatus::Alive)
            .expect("the namespaced worker registered");
        let (token, _) = seg.entry_owner(entry);
        if mount_proc {
            assert_ne!(token as u32, child.0.id(), "its pid is its namespace's, not ours");
        }
        // Alive: every reaper, however often, leaves it and its frame alone.
        for _ in 0..20 {
            assert!(is_alive(token), "mount_proc {mount_proc}: a live worker judged dead");
            assert!(shared.reap().is_empty(), "mount_proc {mount_proc}: a live worker was reaped");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(seg.entry_state(entry).holds, 1);
        // Dead (SIGKILL to unshare; --kill-child takes the worker with it): reaped.
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let t = Instant::now();
        while seg.entry_state(entry).status != EntryStatus::Free {
            shared.reap();
            assert!(t.elapsed() < Duration::from_secs(10), "mount_proc {mount_proc}: a dead worker was never reaped");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!is_alive(token), "mount_proc {mount_proc}: still judged alive once dead");
        assert_eq!(seg.census().free, 2, "its frame came back");
        assert!(
            !std::path::Path::new(&format!("/dev/shm/framebus-live.{token:016x}")).exists(),
            "the dead worker's liveness file was removed"
        );
    }
}
