//! Supervision of a pipeline's processes: starting each one and waiting until it is ready (a
//! `ready` line from this binary's roles; for a user's command, its registration in the
//! segment), watching them (exit, Ctrl-C, memory), restarting one that dies with backoff and
//! stopping the pipeline on a crash loop, handing out an anonymous segment's descriptor, and
//! cleaning up — children killed and the scratch directory removed on every way out.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framebus_platform::core::{ConsumerKind, EntryStatus};
use framebus_platform::SharedSegment;
use serde::Deserialize;

use crate::sim::private_rss_bytes;
use crate::Res;

/// A process that lived less than this after its start and died counts towards a crash loop.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(2);
/// Deaths in a row, each within [`HEALTHY_AFTER`] of its start, that stop the run.
pub const CRASH_LOOP: u32 = 4;
/// The first restart's delay; each quick death in a row doubles it, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest delay before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How a process tells the supervisor it is up.
#[derive(Clone)]
pub enum Ready {
    /// It prints `ready` as its first line on stdout (this binary's roles); the rest of its
    /// stdout is discarded.
    Line,
    /// It registers in `segment`'s consumer table as `kind` (a user's worker; its stdout is
    /// passed through to ours as its stderr is).
    Registered {
        /// the pipeline's frames segment
        segment: Arc<SharedSegment>,
        /// the kind it registers as
        kind: ConsumerKind,
    },
    /// It attaches to `segment` as its producer (a user's source).
    Attached {
        /// the pipeline's frames segment
        segment: Arc<SharedSegment>,
    },
}

/// How to start a process (again): the program, its arguments and environment, and how it
/// says it is ready.
#[derive(Clone)]
pub struct Launch {
    /// the program (a path, or a name looked up in `PATH`)
    pub program: PathBuf,
    /// its arguments
    pub args: Vec<String>,
    /// variables added to its environment
    pub env: Vec<(String, String)>,
    /// how it says it is ready
    pub ready: Ready,
}

impl Launch {
    /// One of this binary's roles: `exe ROLE ARGS`, ready when it prints `ready`.
    pub fn role(exe: &Path, role: &str, args: Vec<String>) -> Self {
        let mut all = vec![role.to_string()];
        all.extend(args);
        Launch { program: exe.to_path_buf(), args: all, env: Vec::new(), ready: Ready::Line }
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// One supervised process: how to start it again, and its history.
struct Proc {
    key: String,
    launch: Launch,
    /// None once it exited successfully or while it waits for its restart.
    child: Option<Child>,
    started: Instant,
    /// Restarts so far.
    restarts: u32,
    /// Stopped on purpose (the pipeline drains): not restarted, its exit not a failure.
    retired: bool,
    /// Deaths in a row, each soon after its start.
    quick_deaths: u32,
    /// When the next start is due (it died).
    restart_at: Option<Instant>,
}

/// A process that died (signal or non-zero exit), as [`Procs::watch`] found it.
#[derive(Clone, Debug)]
pub struct Death {
    /// its report key (`worker-2`, `producer`)
    pub key: String,
    /// how it ended
    pub status: String,
}

/// The pipeline's processes, each under its key (`producer`, `worker-0`, …); killed when this
/// guard goes (error, panic or Ctrl-C).
#[derive(Default)]
pub struct Procs {
    list: Vec<Proc>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.list.iter_mut().filter_map(|p| p.child.as_mut()) {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// The run's scratch directory (reports, the model file, the descriptor socket), removed at
/// the end.
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    /// Creates `framebus-WHAT-ID` under the temp directory, private to this user: it holds the
    /// socket that hands out the segment's descriptor, so one someone else made first is
    /// refused.
    ///
    /// # Errors
    /// It cannot be made, or made private, or belongs to another user.
    pub fn create(what: &str, id: u32) -> Res<Self> {
        let dir = WorkDir(std::env::temp_dir().join(format!("framebus-{what}-{id}")));
        std::fs::create_dir_all(&dir.0)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot make {} private: {e}", dir.0.display()))?;
            if std::fs::metadata(&dir.0)?.uid() != rustix::process::getuid().as_raw() {
                return Err(format!("{} belongs to another user: remove it and run again", dir.0.display()).into());
            }
        }
        Ok(dir)
    }

    /// Where the role with report key `who` writes its report.
    pub fn report(&self, who: &str) -> PathBuf {
        self.0.join(format!("{who}.json"))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Procs {
    /// No processes yet.
    pub fn new() -> Self {
        Procs::default()
    }

    /// Starts `launch` under key `key` (so it is killed on any error from here on) and waits
    /// until it is ready, at most [`STARTUP`], watching Ctrl-C and the child's own exit. A
    /// process that dies later is started again the same way ([`Procs::restart_due`]).
    ///
    /// # Errors
    /// It cannot be started, exits or is not ready in time, or Ctrl-C.
    pub fn spawn(&mut self, key: &str, launch: Launch, stop: &AtomicBool) -> Res<()> {
        let child = spawn(key, &launch, stop)?;
        self.list.push(Proc {
            key: key.to_string(),
            launch,
            child: Some(child),
            started: Instant::now(),
            restarts: 0,
            quick_deaths: 0,
            restart_at: None,
            retired: false,
        });
        Ok(())
    }

    /// Looks at every process: one that exited successfully is done; one that died is
    /// scheduled for a restart with backoff and returned (the caller reaps its consumer entry
    /// at once: it knows the process is gone).
    ///
    /// # Errors
    /// Ctrl-C; a crash loop — the same process dying [`CRASH_LOOP`] times in a row, each within
    /// [`HEALTHY_AFTER`] of its start — named with its command and how it last ended.
    pub fn watch(&mut self, stop: &AtomicBool) -> Res<Vec<Death>> {
        let mut deaths = Vec::new();
        for p in &mut self.list {
            let Some(child) = p.child.as_mut() else { continue };
            let Some(status) = child.try_wait()? else { continue };
            p.child = None;
            if status.success() || p.retired {
                continue;
            }
            if stop.load(Ordering::SeqCst) {
                // Draining: what dies now is not restarted (the stream is ending).
                continue;
            }
            let lived = p.started.elapsed();
            p.quick_deaths = if lived < HEALTHY_AFTER { p.quick_deaths + 1 } else { 1 };
            let status = describe(status);
            if p.quick_deaths >= CRASH_LOOP && lived < HEALTHY_AFTER {
                return Err(crash_loop(&p.key, p.quick_deaths, &status, &p.launch).into());
            }
            let backoff = FIRST_BACKOFF.saturating_mul(1 << (p.quick_deaths - 1).min(5)).min(MAX_BACKOFF);
            eprintln!(
                "framebus: {} died ({status}) after {:.1} s; restarting it in {} ms",
                p.key,
                lived.as_secs_f64(),
                backoff.as_millis()
            );
            p.restart_at = Some(Instant::now() + backoff);
            deaths.push(Death { key: p.key.clone(), status });
        }
        Ok(deaths)
    }

    /// Starts again every dead process whose backoff has passed; returns their keys.
    ///
    /// # Errors
    /// As [`Procs::spawn`]; a restart that fails to become ready counts as a quick death, so a
    /// process that cannot start at all ends in the crash-loop error.
    pub fn restart_due(&mut self, stop: &AtomicBool) -> Res<Vec<String>> {
        let mut started = Vec::new();
        for p in &mut self.list {
            if p.restart_at.is_none_or(|t| Instant::now() < t) {
                continue;
            }
            p.restart_at = None;
            p.restarts += 1;
            p.started = Instant::now();
            match spawn(&p.key, &p.launch, stop) {
                Ok(child) => {
                    p.child = Some(child);
                    eprintln!("framebus: {} restarted (restart {})", p.key, p.restarts);
                    started.push(p.key.clone());
                }
                Err(e) if stop.load(Ordering::SeqCst) => return Err(e),
                Err(e) => {
                    p.quick_deaths += 1;
                    if p.quick_deaths >= CRASH_LOOP {
                        return Err(
                            crash_loop(&p.key, p.quick_deaths, &format!("it failed to start: {e}"), &p.launch).into()
                        );
                    }
                    eprintln!("framebus: restarting {} failed ({e}); trying again", p.key);
                    p.restart_at = Some(Instant::now() + MAX_BACKOFF);
                }
            }
        }
        Ok(started)
    }

    /// Stops the process under `key` for good (killed, never restarted).
    pub fn retire(&mut self, key: &str) {
        for p in self.list.iter_mut().filter(|p| p.key == key) {
            p.retired = true;
            p.restart_at = None;
            if let Some(c) = p.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            p.child = None;
        }
    }

    /// Restarts so far, by report key (only those restarted).
    pub fn restarts(&self) -> BTreeMap<String, u64> {
        self.list.iter().filter(|p| p.restarts > 0).map(|p| (p.key.clone(), u64::from(p.restarts))).collect()
    }

    /// The process under `key` has exited successfully (and is not waiting for a restart).
    pub fn finished(&self, key: &str) -> bool {
        self.list.iter().any(|p| p.key == key && p.child.is_none() && p.restart_at.is_none())
    }

    /// Appends each live process's private memory now to its series, at `t` seconds.
    pub fn sample_memory(&self, t: f64, samples: &mut BTreeMap<String, Vec<(f64, u64)>>) {
        for p in &self.list {
            let Some(child) = &p.child else { continue };
            let rss = private_rss_bytes(child.id());
            if rss > 0 {
                samples.entry(p.key.clone()).or_default().push((t, rss));
            }
        }
    }

    /// Every live process: (key, pid).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.list.iter().filter_map(|p| Some((p.key.clone(), p.child.as_ref()?.id()))).collect()
    }

    /// The pid of the live process under `key`.
    pub fn pid(&self, key: &str) -> Option<u32> {
        self.list.iter().find(|p| p.key == key)?.child.as_ref().map(Child::id)
    }

    /// Waits for every process still running to exit successfully, at most `within`; pending
    /// restarts are dropped (the stream is over).
    ///
    /// # Errors
    /// One failed, or is still running after `within`.
    pub fn wait_all(&mut self, within: Duration) -> Res<()> {
        let give_up = Instant::now() + within;
        for p in &mut self.list {
            p.restart_at = None;
            let Some(child) = p.child.as_mut() else { continue };
            loop {
                match child.try_wait()? {
                    Some(s) if s.success() => break,
                    Some(s) => {
                        return Err(format!("{} failed at the end ({}); its error is above", p.key, describe(s)).into())
                    }
                    None if Instant::now() > give_up => {
                        return Err(format!(
                            "{} did not exit {} s after the end of the stream",
                            p.key,
                            within.as_secs()
                        )
                        .into())
                    }
                    None => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            p.child = None;
        }
        Ok(())
    }
}

/// The error that stops a pipeline whose process `key` keeps dying.
fn crash_loop(key: &str, deaths: u32, last: &str, launch: &Launch) -> String {
    format!(
        "{key} keeps dying: {deaths} times in a row within {} s of starting (last: {last}); stopping the pipeline. \
         Its command: {} (its error, if any, is above)",
        HEALTHY_AFTER.as_secs(),
        launch.command_line()
    )
}

/// How a process ended, in words (std's: `signal: 9 (SIGKILL)`, `exit status: 3`).
fn describe(s: ExitStatus) -> String {
    s.to_string()
}

/// How long a process may take to become ready.
pub const STARTUP: Duration = Duration::from_secs(60);

/// The process with `pid` has an ALIVE entry of `kind` in `seg`'s consumer table.
fn registered(seg: &SharedSegment, kind: ConsumerKind, pid: u32) -> bool {
    let s = seg.segment();
    (0..s.layout().spec.max_consumers).any(|i| {
        let e = s.entry_state(i);
        e.status == EntryStatus::Alive && e.kind == Some(kind) && s.entry_owner(i).0 as u32 == pid
    })
}

fn spawn(key: &str, l: &Launch, stop: &AtomicBool) -> Res<Child> {
    let mut cmd = Command::new(&l.program);
    cmd.args(&l.args).envs(l.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).stderr(Stdio::inherit());
    // Its own process group: the terminal's Ctrl-C reaches the runtime alone, which drains the
    // pipeline (the children leave at the end of the stream); the roles die with the runtime.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // And it dies with the runtime, even one killed outright (no chance to stop it).
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the child between fork and exec and only makes one prctl
    // system call (async-signal-safe); it touches no memory of the parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    cmd.stdout(if matches!(l.ready, Ready::Line) { Stdio::piped() } else { Stdio::inherit() });
    let mut child = cmd.spawn().map_err(|e| {
        let hint =
            if e.kind() == std::io::ErrorKind::NotFound { ": no such program (check the path and PATH)" } else { "" };
        format!("cannot start {key} ({}): {e}{hint}", l.command_line())
    })?;
    // This binary's roles print "ready" once they have opened their segments and registered; a
    // thread reads it (and then drains the pipe, so the child never blocks on it).
    let line = child.stdout.take().map(|out| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            let ok = reader.read_line(&mut line).is_ok() && line.trim() == "ready";
            let _ = tx.send(ok);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        rx
    });
    let t = Instant::now();
    let fail = |mut child: Child, e: String| -> Res<Child> {
        let _ = child.kill();
        let _ = child.wait();
        Err(e.into())
    };
    loop {
        let ready = match (&l.ready, &line) {
            (Ready::Line, Some(rx)) => match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(true) => true,
                Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return fail(child, format!("{key} failed to start; its error is above"))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
            },
            (Ready::Registered { segment, kind }, _) => registered(segment, *kind, child.id()),
            (Ready::Attached { segment }, _) => segment.segment().producer_token() as u32 == child.id(),
            (Ready::Line, None) => unreachable!("a Line launch pipes stdout"),
        };
        if ready {
            return Ok(child);
        }
        if !matches!(l.ready, Ready::Line) {
            if let Some(status) = child.try_wait()? {
                return fail(
                    child,
                    format!(
                        "{key} exited ({status}) before it {}; its command: {}",
                        if matches!(l.ready, Ready::Attached { .. }) {
                            "attached to the segment as its producer"
                        } else {
                            "registered in the segment"
                        },
                        l.command_line()
                    ),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if stop.load(Ordering::SeqCst) {
            return fail(child, INTERRUPTED.into());
        }
        if t.elapsed() > STARTUP {
            return fail(
                child,
                format!("{key} did not become ready in {} s; its command: {}", STARTUP.as_secs(), l.command_line()),
            );
        }
    }
}

/// The error of a run stopped by Ctrl-C.
pub const INTERRUPTED: &str = "interrupted (Ctrl-C): every process was stopped and every segment removed";

/// Signals (Ctrl-C, SIGTERM) received so far: the first drains, the second stops at once.
pub static SIGNALS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Reads the report a role wrote at `path`.
///
/// # Errors
/// None was written (the role failed: its error is above), or it does not parse.
pub fn read_report<T: for<'de> Deserialize<'de>>(path: &Path, who: &str) -> Res<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{who} wrote no report ({e}): it failed, see above"))?;
    Ok(serde_json::from_str(&text)?)
}

/// Set by the Ctrl-C handler; the run stops, kills its processes and cleans up.
pub fn interrupted() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        let g = f.clone();
        // If a handler is already installed (tests running several simulations), keep it.
        let _ = ctrlc::set_handler(move || {
            SIGNALS.fetch_add(1, Ordering::SeqCst);
            g.store(true, Ordering::SeqCst);
        });
        f
    })
    .clone()
}

/// Sends the segment's descriptor to every process that connects to a Unix socket at `path`
/// (a thread for the rest of the run); returns the `--segment` argument that names it.
#[cfg(target_os = "linux")]
///
/// # Errors
/// The socket cannot be made.
pub fn serve_descriptor(seg: &Arc<SharedSegment>, path: &Path, clients: u32) -> Res<String> {
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {} to pass the segment's descriptor: {e}", path.display()))?;
    let seg = seg.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(clients as usize) {
            match stream.map_err(|e| e.to_string()).and_then(|s| seg.send_fd(&s).map_err(|e| e.to_string())) {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("framebus simulate: passing the segment's descriptor failed: {e}");
                    break;
                }
            }
        }
    });
    Ok(format!("unix:{}", path.display()))
}

#[cfg(not(target_os = "linux"))]
pub fn serve_descriptor(_: &Arc<SharedSegment>, _: &Path, _: u32) -> Res<String> {
    Err("anonymous backings are passed by descriptor, which needs Linux: use --backing posix".into())
}
