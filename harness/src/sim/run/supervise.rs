//! Supervision of a run's processes: starting each role and waiting for its `ready`, watching
//! them (exit, Ctrl-C, memory), handing out an anonymous segment's descriptor, and cleaning up
//! — children killed and the scratch directory removed on every way out.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framebus_platform::SharedSegment;
use serde::Deserialize;

use crate::sim::{private_rss_bytes, Res};

/// The run's processes, each under its report key (`producer`, `worker-0`, …, `collector`);
/// killed when this guard goes (error, panic or Ctrl-C).
pub struct Procs {
    list: Vec<(String, Child)>,
    exe: PathBuf,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.list {
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
    /// Creates `framebus-sim-ID` under the temp directory, private to this user: it holds the
    /// socket that hands out the segment's descriptor, so one someone else made first is
    /// refused.
    ///
    /// # Errors
    /// It cannot be made, or made private, or belongs to another user.
    pub fn create(id: u32) -> Res<Self> {
        let dir = WorkDir(std::env::temp_dir().join(format!("framebus-sim-{id}")));
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
    /// No processes yet; roles are started as `exe ROLE ARGS`.
    pub fn new(exe: PathBuf) -> Self {
        Procs { list: Vec::new(), exe }
    }

    /// Starts `exe ROLE ARGS` under report key `key` (so it is killed on any error from here
    /// on) and waits for its `ready` line, at most `STARTUP`, watching Ctrl-C and the child's
    /// own exit.
    ///
    /// # Errors
    /// It cannot be started, exits or stays silent before `ready`, or Ctrl-C.
    pub fn spawn(&mut self, role: &str, key: &str, args: &[String], stop: &AtomicBool) -> Res<()> {
        spawn(self, role, key, args, stop)
    }

    /// Checks every process: `Ok(true)` once the one under `key` has exited successfully.
    ///
    /// # Errors
    /// A process failed (its own error is on stderr), or Ctrl-C.
    pub fn poll(&mut self, key: &str, stop: &AtomicBool) -> Res<bool> {
        let mut done = false;
        for (who, child) in &mut self.list {
            match child.try_wait()? {
                None => {}
                Some(s) if s.success() => done |= who == key,
                Some(s) => {
                    // Ctrl-C reaches every process of the terminal's group: the role may have
                    // died of it before our handler ran.
                    std::thread::sleep(Duration::from_millis(50));
                    if stop.load(Ordering::SeqCst) {
                        return Err(INTERRUPTED.into());
                    }
                    return Err(format!("the {} process failed ({s}); its error is above", role_of(who)).into());
                }
            }
        }
        Ok(done)
    }

    /// Appends each live process's private memory now to its series, at `t` seconds.
    pub fn sample_memory(&self, t: f64, samples: &mut BTreeMap<String, Vec<(f64, u64)>>) {
        for (key, child) in &self.list {
            let rss = private_rss_bytes(child.id());
            if rss > 0 {
                samples.entry(key.clone()).or_default().push((t, rss));
            }
        }
    }

    /// Waits for every process to exit successfully, at most `within`.
    ///
    /// # Errors
    /// One failed, or is still running after `within`.
    pub fn wait_all(&mut self, within: Duration) -> Res<()> {
        let give_up = Instant::now() + within;
        for (who, child) in &mut self.list {
            loop {
                match child.try_wait()? {
                    Some(s) if s.success() => break,
                    Some(s) => {
                        return Err(format!("the {} process failed ({s}); its error is above", role_of(who)).into())
                    }
                    None if Instant::now() > give_up => {
                        return Err(format!(
                            "the {} process did not exit {} s after the end",
                            role_of(who),
                            within.as_secs()
                        )
                        .into())
                    }
                    None => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        Ok(())
    }
}

/// The role a report key names (`worker-3` → `worker`).
fn role_of(key: &str) -> &str {
    key.split('-').next().unwrap_or(key)
}

fn spawn(procs: &mut Procs, role: &str, key: &str, args: &[String], stop: &AtomicBool) -> Res<()> {
    const STARTUP: Duration = Duration::from_secs(60);
    let exe = &procs.exe;
    let mut child = Command::new(exe)
        .arg(role)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {} {role}: {e}", exe.display()))?;
    let out = child.stdout.take().expect("piped stdout");
    procs.list.push((key.to_string(), child));
    // Every role prints "ready" once it has opened its segments and registered; a thread reads
    // it (and then drains the pipe, so the child never blocks on it).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        let ok = reader.read_line(&mut line).is_ok() && line.trim() == "ready";
        let _ = tx.send(ok);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let t = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(true) => return Ok(()),
            Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("{role} failed to start; its error is above").into())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if stop.load(Ordering::SeqCst) {
            return Err(INTERRUPTED.into());
        }
        if t.elapsed() > STARTUP {
            return Err(format!("{role} did not become ready in {} s", STARTUP.as_secs()).into());
        }
    }
}

/// The error of a run stopped by Ctrl-C.
pub const INTERRUPTED: &str = "interrupted (Ctrl-C): every process was stopped and every segment removed";

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
        let _ = ctrlc::set_handler(move || g.store(true, Ordering::SeqCst));
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
