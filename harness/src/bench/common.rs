//! What the benchmarks share: the report row, the peer process (`framebus bench-peer …`), and
//! segment names.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The benchmarks' errors.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// How long a peer may take for anything.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A peer tells the parent it is set up.
pub fn ready() -> Res<()> {
    println!("ready");
    std::io::stdout().flush()?;
    Ok(())
}

/// One line of the report: every sample of every round.
pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub samples: Vec<u64>,
}

impl Row {
    /// The `q` quantile (0..=1) of the samples; call after `sort`.
    pub fn at(&self, q: f64) -> f64 {
        self.samples[((self.samples.len() - 1) as f64 * q) as usize] as f64
    }
}

/// A segment name unique to this run.
pub fn name(tag: &str) -> String {
    format!("bench-{tag}-{}", std::process::id())
}

/// A child process of this binary (`framebus bench-peer ARGS`), up once it printed `ready`.
pub struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    pub fn spawn(args: &[&str]) -> Res<Peer> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("bench-peer")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut p = Peer { child, out };
        p.expect("ready")?;
        Ok(p)
    }
    pub fn expect(&mut self, what: &str) -> Res<()> {
        let mut l = String::new();
        self.out.read_line(&mut l)?;
        if l.trim() != what {
            return Err(format!("bench peer said {l:?}, expected {what:?}").into());
        }
        Ok(())
    }
    pub fn finish(mut self) -> Res<()> {
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("bench peer failed: {status}").into());
        }
        Ok(())
    }
}
