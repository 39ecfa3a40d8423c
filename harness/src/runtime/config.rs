//! `framebus run`: the pipeline file (TOML), the flags that override it or stand in for it, and
//! their validation into a [`super::Pipeline`].
//!
//! ```toml
//! name = "faces"                      # segment name [default: run<pid>]
//!
//! [source]
//! video = "harness/media/bbb-720p25.mp4"   # MP4 (H.264) or Y4M, decoded by the runtime
//! # external = { width = 1280, height = 720 }   # or: your own producer writes the segment
//! fps = 25.0                          # [default: the file's]
//! frames = 300                        # [default: the file once; loop = true: until Ctrl-C]
//! format = "bgr24"                    # pixel format of the slots
//! slots = 6                           # [default: workers + 3]
//! policy = "drop-oldest"              # what the source does when every slot is busy
//!
//! [workers]
//! count = 2
//! command = ["python3", "{dir}/detector.py"]   # {dir} {segment} {index} {workers} are replaced
//! # profile = "aip"                   # instead: the built-in stub (SNPE-shaped) runtime
//! env = { OMP_NUM_THREADS = "1" }
//! result_max = 4096                   # bytes a result may have
//! deadline_ms = 5000                  # a frame without an outcome this long is given up
//! on_death = "redeliver"              # a dead worker's frame: "redeliver" (once) or "lost"
//!
//! [output]
//! jsonl = "-"                         # one line per frame, in order ("-": stdout)
//! mqtt = { host = "127.0.0.1", port = 1883, topic = "cameras/door/faces", qos = 1 }
//! metrics = "127.0.0.1:9464"          # Prometheus text exposition at /metrics
//! ```
//!
//! A worker command is told the pipeline through its environment too: `FRAMEBUS_SEGMENT` (what
//! `framebus.open` takes), `FRAMEBUS_WORKER` (its index), `FRAMEBUS_WORKERS`,
//! `FRAMEBUS_RESULT_MAX`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use framebus_platform::core::{FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec, Vocabulary};
use serde::Deserialize;

use super::supervise::{Launch, Ready};
use super::{Ctx, Pipeline};
use crate::sim::profile::Profile;
use crate::sim::roles::{producer, to_argv, worker};
use crate::video;
use crate::vocab::{self, BackingArg};
use crate::Res;

/// The pipeline file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// segment name
    pub name: Option<String>,
    /// `[source]`
    #[serde(default)]
    pub source: SourceFile,
    /// `[workers]`
    #[serde(default)]
    pub workers: WorkersFile,
    /// `[output]`
    #[serde(default)]
    pub output: OutputFile,
}

/// `[source]` of the pipeline file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// a video file the runtime decodes
    pub video: Option<PathBuf>,
    /// instead: the user's own producer writes the segment, of this size
    pub external: Option<External>,
    /// frames per second
    pub fps: Option<f64>,
    /// frames to produce
    pub frames: Option<u64>,
    /// loop the file until Ctrl-C
    #[serde(rename = "loop", default)]
    pub loop_: bool,
    /// pixel format of the slots
    pub format: Option<String>,
    /// slots
    pub slots: Option<u32>,
    /// overflow policy
    pub policy: Option<String>,
}

/// The frame size of an external source.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct External {
    /// pixels
    pub width: u32,
    /// pixels
    pub height: u32,
}

/// `[workers]` of the pipeline file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersFile {
    /// processes
    pub count: Option<u32>,
    /// the user's worker command (argv)
    pub command: Option<Vec<String>>,
    /// instead: the stub runtime with this profile
    pub profile: Option<String>,
    /// added to each worker's environment
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// bytes a result may have
    pub result_max: Option<u32>,
    /// give a silent frame up after this long
    pub deadline_ms: Option<u64>,
    /// what happens to the frame a worker held when it died: `redeliver` (once, to another
    /// worker; the default) or `lost` (reported `worker-died`)
    pub on_death: Option<String>,
}

/// `[output]` of the pipeline file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// JSON Lines: a path, or `-` for stdout
    pub jsonl: Option<String>,
    /// MQTT: a message per frame
    pub mqtt: Option<super::mqtt::Target>,
    /// Prometheus: serve `/metrics` on this HOST:PORT
    pub metrics: Option<String>,
}

/// Options of `framebus run` (each wins over the file's).
// The field docs are clap's --help, where `[default: …]` is the convention; rustdoc would read
// it as a link and `<pid>` as a tag.
#[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RunArgs {
    /// The pipeline file (TOML; see below). Without one, the flags describe the pipeline.
    #[arg(value_name = "PIPELINE.toml")]
    pub file: Option<PathBuf>,
    /// Segment name [default: run<pid>].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Video file to decode (MP4 with H.264, or Y4M).
    #[arg(long, value_name = "PATH")]
    pub video: Option<PathBuf>,
    /// Frames per second [default: the file's].
    #[arg(long, value_name = "F")]
    pub fps: Option<f64>,
    /// Frames to produce [default: the file once].
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// What the source does when every slot is busy [default: drop-oldest].
    #[arg(long, value_name = "POLICY", value_parser = vocab::parser::<OverflowPolicy>())]
    pub policy: Option<OverflowPolicy>,
    /// Worker processes [default: 1].
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// The built-in stub runtime with this profile as the workers (instead of a command).
    #[arg(long, value_name = "P", conflicts_with = "command")]
    pub profile: Option<String>,
    /// Write the results as JSON Lines here (`-`: stdout) [default: stdout].
    #[arg(long, value_name = "PATH")]
    pub jsonl: Option<String>,
    /// Also publish each frame's line to this MQTT broker (a broker that is down or goes away
    /// does not stop the pipeline: the client reconnects, losses are counted).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub mqtt: Option<String>,
    /// The MQTT topic [default: framebus/NAME].
    #[arg(long, value_name = "TOPIC", requires = "mqtt")]
    pub mqtt_topic: Option<String>,
    /// The MQTT QoS: 0, 1 or 2 [default: 1].
    #[arg(long, value_name = "N", requires = "mqtt")]
    pub mqtt_qos: Option<u8>,
    /// Serve the pipeline's counters for Prometheus at http://ADDR/metrics while it runs.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<String>,
    /// The worker command and its arguments, after `--`: `framebus run --video clip.mp4 --
    /// python3 detector.py`. `{segment}`, `{index}` and `{workers}` are replaced (and `{dir}`:
    /// the pipeline file's directory).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The text after `framebus run --help`'s options.
pub fn help() -> String {
    let doc = include_str!("config.rs");
    let example: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| l.strip_prefix("//! ").unwrap_or(""))
        .collect();
    format!(
        "A pipeline file:\n{}\n\nA worker reads FRAMEBUS_SEGMENT, FRAMEBUS_WORKER, FRAMEBUS_WORKERS and FRAMEBUS_RESULT_MAX from its \
         environment, claims frames until the end of the stream, posts one result per frame and releases it \
         (examples/python/face_worker.py).\n\nExamples:\n  framebus run examples/pipelines/faces.toml\n  \
         framebus run --video clip.mp4 --workers 2 --jsonl out.jsonl -- python3 detector.py\n  \
         framebus run --video clip.mp4 --workers 4 --profile aip\n",
        example.join("\n")
    )
}

/// A bad value in the pipeline file: says where (file, line, key) and what is accepted.
fn at(file: Option<&Path>, text: &str, section: &str, key: &str, what: String) -> String {
    match file {
        None => what,
        Some(f) => match line_of(text, section, key) {
            Some(n) => format!("{}:{n}: [{section}] {key}: {what}", f.display()),
            None => format!("{}: [{section}] {key}: {what}", f.display()),
        },
    }
}

/// The line (1-based) of `key = …` in table `[section]` of `text`.
fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(s) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            current = s.trim().to_string();
        } else if current == section && t.split('=').next().is_some_and(|k| k.trim() == key) {
            return Some(i + 1);
        }
    }
    None
}

/// The default number of result cells: enough for the reader to fall a few thousand frames
/// behind the source.
pub const RESULT_CELLS: u32 = 4096;

/// Reads the file (if any) and the flags into a pipeline; `dir` is the run's scratch directory.
///
/// # Errors
/// The file cannot be read or parsed (file, line and key in the message), or a value is out
/// of range; a video that cannot be opened; no workers to run.
pub fn resolve(a: &RunArgs, dir: &Path) -> Res<(Pipeline, OutputFile)> {
    let (f, text) = match &a.file {
        None => (File::default(), String::new()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the pipeline file {}: {e}", path.display()))?;
            let f: File = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            (f, text)
        }
    };
    let file = a.file.as_deref();
    let bad = |section: &str, key: &str, what: String| at(file, &text, section, key, what);
    let name = a.name.clone().or(f.name.clone()).unwrap_or_else(|| format!("run{}", std::process::id()));
    let s = &f.source;
    let video = a.video.clone().or(s.video.clone()).map(|v| match file.and_then(Path::parent) {
        // A relative path in a file is relative to the file.
        Some(d) if a.video.is_none() && v.is_relative() => d.join(v),
        _ => v,
    });
    let format = match &s.format {
        None => PixelFormat::Bgr24,
        Some(n) => PixelFormat::from_name(n).map_err(|e| bad("source", "format", e.to_string()))?,
    };
    let policy = match (a.policy, &s.policy) {
        (Some(p), _) => p,
        (None, None) => OverflowPolicy::DropOldest,
        (None, Some(n)) => OverflowPolicy::from_name(n).map_err(|e| bad("source", "policy", e.to_string()))?,
    };
    let w = &f.workers;
    let workers = a.workers.or(w.count).unwrap_or(1);
    if !(1..=14).contains(&workers) {
        return Err(
            bad("workers", "count", format!("{workers}: use 1 to 14 (a segment serves at most 16 consumers)")).into()
        );
    }
    let slots = s.slots.unwrap_or(workers + 3);
    if !(2..=1024).contains(&slots) {
        return Err(bad("source", "slots", format!("{slots}: use 2 to 1024")).into());
    }
    let result_max = w.result_max.unwrap_or(4096);
    if !(1..=1 << 20).contains(&result_max) {
        return Err(bad("workers", "result_max", format!("{result_max}: use 1 to 1048576 bytes")).into());
    }
    let deadline = Duration::from_millis(w.deadline_ms.unwrap_or(5000));
    let lost_on_death = match w.on_death.as_deref() {
        None | Some("redeliver") => false,
        Some("lost") => true,
        Some(o) => return Err(bad("workers", "on_death", format!("{o:?}: use \"redeliver\" or \"lost\"")).into()),
    };
    // The source: a file the runtime decodes, or an external producer.
    let (geometry, source_args) = match (&video, &s.external) {
        (Some(_), Some(_)) => {
            return Err(bad("source", "external", "give either video or external, not both".into()).into());
        }
        (None, None) => {
            return Err(match file {
                Some(f) => format!(
                    "{}: [source] needs video = \"PATH\" or external = {{ width = W, height = H }}",
                    f.display()
                ),
                None => "no source: give --video PATH or a pipeline file".into(),
            }
            .into())
        }
        (None, Some(e)) => (FrameGeometry::new(e.width, e.height, format), None),
        (Some(v), None) => {
            let info = video::open(v)?.info();
            let fps = a.fps.or(s.fps).unwrap_or(info.fps);
            if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
                return Err(bad("source", "fps", format!("{fps}: use a rate between 0 and 1000")).into());
            }
            let frames = match a.frames.or(s.frames) {
                Some(0) => return Err(bad("source", "frames", "0: nothing to do".into()).into()),
                Some(n) => Some(n),
                None if s.loop_ => None,
                None => Some(u64::from(info.frames.max(1))),
            };
            (FrameGeometry::new(info.width, info.height, format), Some((v.clone(), fps, frames)))
        }
    };
    geometry.planes().map_err(|e| bad("source", "format", e.to_string()))?;
    let spec = SegmentSpec::new(geometry, slots)
        .with_policy(policy)
        .with_pattern(Pattern::WorkQueue)
        .with_max_consumers(workers + 2)
        .with_results(RESULT_CELLS, result_max)
        .with_lost_on_death(lost_on_death);
    framebus_platform::core::Layout::compute(&spec).map_err(|e| format!("the pipeline's segment: {e}"))?;
    let exe = std::env::current_exe()?;
    let report_dir = dir.to_path_buf();
    let source: Option<Box<super::SourceLaunch>> = source_args.map(|(video, fps, frames)| {
        let (exe, report_dir) = (exe.clone(), report_dir.clone());
        Box::new(move |c: &Ctx<'_>| {
            let args = producer::Args {
                segment: c.segment_arg.to_string(),
                create: false,
                format: None,
                slots: None,
                policy: None,
                broadcast: false,
                start_ns: None,
                video: video.clone(),
                fps: Some(fps),
                frames,
                max_speed: false,
                report: Some(report_dir.join("producer.json")),
            };
            Launch::role(&exe, "producer", to_argv(&args))
        }) as Box<super::SourceLaunch>
    });
    // The flags win over the file; the file may not give both.
    if w.command.is_some() && w.profile.is_some() && a.command.is_empty() && a.profile.is_none() {
        return Err(bad("workers", "profile", "give either command or profile, not both".into()).into());
    }
    let (command, profile) = match (&a.command, &a.profile) {
        (c, _) if !c.is_empty() => (c.clone(), None),
        (_, Some(p)) => (Vec::new(), Some(p.clone())),
        _ => (w.command.clone().unwrap_or_default(), w.profile.clone()),
    };
    if w.command.as_ref().is_some_and(Vec::is_empty) && a.command.is_empty() {
        return Err(bad("workers", "command", "an empty command: give the program and its arguments".into()).into());
    }
    let worker: Box<super::WorkerLaunch> = match (command.is_empty(), profile) {
        (false, _) => {
            let env: Vec<(String, String)> = w.env.clone().into_iter().collect();
            let file_dir = file
                .and_then(Path::parent)
                .map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d })
                .unwrap_or(Path::new("."))
                .display()
                .to_string();
            Box::new(move |c: &Ctx<'_>, k: u32| {
                let sub = |s: &str| {
                    s.replace("{segment}", c.segment_arg)
                        .replace("{index}", &k.to_string())
                        .replace("{workers}", &workers.to_string())
                        .replace("{dir}", &file_dir)
                };
                let mut env = env.clone();
                env.extend([
                    ("FRAMEBUS_SEGMENT".to_string(), c.segment_arg.to_string()),
                    ("FRAMEBUS_WORKER".to_string(), k.to_string()),
                    ("FRAMEBUS_WORKERS".to_string(), workers.to_string()),
                    ("FRAMEBUS_RESULT_MAX".to_string(), result_max.to_string()),
                ]);
                Launch {
                    program: PathBuf::from(sub(&command[0])),
                    args: command[1..].iter().map(|a| sub(a)).collect(),
                    env,
                    ready: Ready::Registered { segment: c.segment.clone(), kind: framebus_platform::core::ConsumerKind::Worker },
                }
            })
        }
        (true, Some(p)) => {
            let profile = Profile::parse(&p).map_err(|e| bad("workers", "profile", e.to_string()))?;
            let channels = match format {
                PixelFormat::Bgr24 | PixelFormat::Rgb24 => 3,
                PixelFormat::Gray8 => 1,
                f => return Err(bad("source", "format", format!("the stub runtime takes bgr24, rgb24 or gray8, not {}", f.name())).into()),
            };
            let dlc = dir.join("model.dlc");
            profile.write_dlc(&dlc, geometry.height, geometry.width, channels, 1.0, &dir.join("stub.shared"))?;
            let report_dir = report_dir.clone();
            Box::new(move |c: &Ctx<'_>, k: u32| {
                let args = worker::Args {
                    segment: c.segment_arg.to_string(),
                    index: k,
                    dlc: dlc.clone(),
                    profile: profile.clone(),
                    overhead: 0.0,
                    no_register: false,
                    report: Some(report_dir.join(format!("worker-{k}.json"))),
                };
                Launch::role(&exe, "worker", to_argv(&args))
            })
        }
        (true, None) => {
            return Err(match file {
                Some(f) => format!("{}: [workers] needs command = [\"PROGRAM\", \"ARG\", …] or profile = \"NAME\"", f.display()),
                None => "no workers: give the worker command after `--` (framebus run --video clip.mp4 -- python3 detector.py) or --profile NAME".into(),
            }
            .into())
        }
    };
    let mqtt = match (&a.mqtt, &f.output.mqtt) {
        (Some(addr), file) => Some(super::mqtt::Target::parse(
            addr,
            &a.mqtt_topic.clone().or(file.as_ref().map(|t| t.topic.clone())).unwrap_or(format!("framebus/{name}")),
            a.mqtt_qos.or(file.as_ref().map(|t| t.qos)).unwrap_or(1),
        )?),
        (None, Some(t)) => Some(super::mqtt::Target { qos: a.mqtt_qos.unwrap_or(t.qos), ..t.clone() }),
        (None, None) => None,
    };
    if let Some(t) = &mqtt {
        if t.qos > 2 {
            return Err(bad("output", "mqtt", format!("qos {}: use 0, 1 or 2", t.qos)).into());
        }
    }
    let output = OutputFile {
        jsonl: a.jsonl.clone().or(f.output.jsonl.clone()),
        mqtt,
        metrics: a.metrics.clone().or(f.output.metrics.clone()),
    };
    Ok((
        Pipeline {
            name,
            spec,
            backing: BackingArg::Posix,
            workers,
            worker,
            source,
            deadline,
            budget: None,
            dir: dir.to_path_buf(),
        },
        output,
    ))
}

/// `framebus run`: resolves the pipeline, runs it to the end of its stream with the JSON Lines
/// sink, and prints a summary on stderr.
///
/// # Errors
/// As [`resolve`] and [`super::run`]; frames unaccounted for.
pub fn main(a: &RunArgs) -> Res<()> {
    let dir = super::supervise::WorkDir::create("run", std::process::id())?;
    let (p, out) = resolve(a, &dir.0)?;
    let stop = super::supervise::interrupted();
    let jsonl = out.jsonl.unwrap_or_else(|| "-".into());
    let mut sink: Box<dyn super::reader::Sink> = if jsonl == "-" {
        Box::new(super::sink::Jsonl::new(std::io::stdout(), "stdout"))
    } else {
        let f = std::fs::File::create(&jsonl).map_err(|e| format!("cannot create {jsonl}: {e}"))?;
        Box::new(super::sink::Jsonl::new(std::io::BufWriter::new(f), &jsonl))
    };
    let mut mqtt = out.mqtt.clone().map(|t| super::mqtt::Mqtt::new(t, &format!("framebus-{}", p.name))).transpose()?;
    eprintln!(
        "framebus run: pipeline {} ({} worker(s)); results to {}{}",
        p.name,
        p.workers,
        if jsonl == "-" { "stdout" } else { &jsonl },
        out.mqtt.as_ref().map_or(String::new(), |t| format!(" and MQTT {}:{} topic {}", t.host, t.port, t.topic))
    );
    let mut sinks: Vec<&mut dyn super::reader::Sink> = vec![sink.as_mut()];
    if let Some(m) = &mut mqtt {
        sinks.push(m);
    }
    let metrics = super::metrics::Metrics::default();
    let mut counting = super::metrics::Counting(metrics.clone());
    let stop_server = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = match &out.metrics {
        Some(addr) => {
            let h = super::metrics::serve(addr, metrics.clone(), stop_server.clone())?;
            eprintln!("framebus run: metrics at http://{addr}/metrics");
            sinks.push(&mut counting);
            Some(h)
        }
        None => None,
    };
    // The metrics follow the pipeline whether or not they are served (a few loads a tick).
    let mut watch = metrics.clone();
    let run = super::run(&p, &mut sinks, &mut watch, &stop);
    stop_server.store(1, std::sync::atomic::Ordering::SeqCst);
    if let Some(h) = server {
        let _ = h.join();
    }
    let s = run?;
    let c = &s.counts;
    eprintln!(
        "framebus run: {} frames in, {} results out, {} skipped {:?}, {} late; restarts {:?}, {} frame(s) redelivered; {:.1} s",
        c.frames_in,
        c.frames_out,
        c.skipped.values().sum::<u64>(),
        c.skipped,
        s.late_results,
        s.restarts,
        s.stats.redelivered,
        s.wall.as_secs_f64()
    );
    if let Some(m) = mqtt.as_ref().and_then(|m| m.counts.as_ref()) {
        eprintln!("framebus run: MQTT {} messages, {} delivered, {} lost", m.published, m.delivered, m.lost);
    }
    if !c.accounted() {
        return Err("frames are unaccounted for (in != out + skipped): a bug, please report it".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_is_named_by_file_line_and_key() {
        let text = "name = \"x\"\n[source]\nvideo = \"a.mp4\"\npolicy = \"drop-sometimes\"\n";
        let m = at(Some(Path::new("p.toml")), text, "source", "policy", "unknown".into());
        assert_eq!(m, "p.toml:4: [source] policy: unknown");
        assert_eq!(line_of(text, "workers", "policy"), None);
    }
}
