//! The MQTT sink: one message per frame on the pipeline's topic, in frame order, the same JSON
//! as the JSON Lines sink ([`super::sink`]); QoS 0, 1 or 2.
//!
//! The broker is not the pipeline: when it is down at the start or goes away, frames go on, the
//! other sinks go on, the client reconnects with backoff (0.1 s doubling to 5 s, said once on
//! stderr each time the link changes), messages wait in a bounded queue while it is away and go
//! out when it is back, and what could not be delivered is counted: a message that found the
//! queue full, and at the end one never acknowledged (QoS 1/2) or never sent (QoS 0) within
//! the linger time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framebus_platform::core::SkipCause;
use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};

use super::reader::Sink;
use super::sink::{result_line, skipped_line};
use crate::Res;

/// Messages that may wait for the broker (about 40 s of 25 fps video).
pub const QUEUE: usize = 1024;
/// How long the end of the stream waits for the last messages to be delivered.
pub const LINGER: Duration = Duration::from_secs(5);

/// Where and how to publish.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// broker host
    pub host: String,
    /// broker port
    #[serde(default = "default_port")]
    pub port: u16,
    /// topic of every message
    pub topic: String,
    /// 0, 1 or 2
    #[serde(default = "default_qos")]
    pub qos: u8,
}

fn default_port() -> u16 {
    1883
}
fn default_qos() -> u8 {
    1
}

impl Target {
    /// `HOST[:PORT]` and a topic, QoS 1.
    ///
    /// # Errors
    /// A port that is not a number.
    pub fn parse(addr: &str, topic: &str, qos: u8) -> Result<Self, String> {
        let (host, port) = match addr.rsplit_once(':') {
            Some((h, p)) => {
                (h, p.parse().map_err(|_| format!("--mqtt {addr}: the port must be a number (HOST:PORT)"))?)
            }
            None => (addr, default_port()),
        };
        Ok(Target { host: host.to_string(), port, topic: topic.to_string(), qos })
    }

    fn qos(&self) -> Result<QoS, String> {
        match self.qos {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            q => Err(format!("MQTT qos {q}: use 0, 1 or 2")),
        }
    }
}

#[derive(Default)]
struct Counters {
    /// acknowledged (QoS 1, 2) or written to the socket (QoS 0)
    delivered: AtomicU64,
    connected: AtomicBool,
    stop: AtomicBool,
}

/// What the sink did, for the run's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MqttCounts {
    /// messages handed to the client, one per frame
    pub published: u64,
    /// delivered to the broker (acknowledged for QoS 1 and 2)
    pub delivered: u64,
    /// not delivered: the queue was full while the broker was away, or no acknowledgement came
    /// before the end
    pub lost: u64,
}

/// Publishes the ordered results to an MQTT broker.
pub struct Mqtt {
    client: Client,
    target: Target,
    qos: QoS,
    counters: Arc<Counters>,
    published: u64,
    refused: u64,
    driver: Option<std::thread::JoinHandle<()>>,
    /// the counts, once the stream ended
    pub counts: Option<MqttCounts>,
}

impl Mqtt {
    /// Connects (in the background: a broker that is down is not an error) as client `id`.
    ///
    /// # Errors
    /// A bad QoS.
    pub fn new(target: Target, id: &str) -> Res<Self> {
        let qos = target.qos()?;
        let mut opts = MqttOptions::new(id, target.host.clone(), target.port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut connection) = Client::new(opts, QUEUE);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let (host, port) = (target.host.clone(), target.port);
        let driver = std::thread::spawn(move || {
            let mut backoff = Duration::from_millis(100);
            let mut said_down = false;
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        c.connected.store(true, Ordering::SeqCst);
                        if said_down {
                            eprintln!("framebus run: MQTT broker {host}:{port} is back");
                        }
                        (backoff, said_down) = (Duration::from_millis(100), false);
                    }
                    Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) if qos != QoS::AtMostOnce => {
                        c.delivered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                        c.delivered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        c.connected.store(false, Ordering::SeqCst);
                        if c.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if !said_down {
                            eprintln!(
                                "framebus run: MQTT broker {host}:{port} unreachable ({e}); the pipeline goes on, \
                                 messages wait (up to {QUEUE}) and the client retries with backoff"
                            );
                            said_down = true;
                        }
                        // Sleep the backoff in slices, so the end of the stream does not wait it out.
                        let until = Instant::now() + backoff;
                        while Instant::now() < until && !c.stop.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        Ok(Mqtt { client, target, qos, counters, published: 0, refused: 0, driver: Some(driver), counts: None })
    }

    fn send(&mut self, line: &serde_json::Value) {
        self.published += 1;
        if self.client.try_publish(&self.target.topic, self.qos, false, line.to_string().into_bytes()).is_err() {
            // The queue is full (the broker has been away a while): this message is lost.
            self.refused += 1;
        }
    }
}

impl Sink for Mqtt {
    fn result(&mut self, seq: u64, epoch: u64, bytes: &[u8], _now_ns: u64) -> Res<()> {
        self.send(&result_line(seq, epoch, bytes));
        Ok(())
    }
    fn skipped(&mut self, seq: u64, cause: SkipCause, _now_ns: u64) -> Res<()> {
        self.send(&skipped_line(seq, cause));
        Ok(())
    }
    fn end(&mut self, _seq: u64) -> Res<()> {
        // Give the last messages up to LINGER to reach a broker that is up, and a broker that is
        // away one second to come back.
        let want = self.published - self.refused;
        let start = Instant::now();
        while self.counters.delivered.load(Ordering::SeqCst) < want && start.elapsed() < LINGER {
            if !self.counters.connected.load(Ordering::SeqCst) && start.elapsed() > Duration::from_secs(1) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.counters.stop.store(true, Ordering::SeqCst);
        let _ = self.client.disconnect();
        if let Some(d) = self.driver.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !d.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if d.is_finished() {
                let _ = d.join();
            }
        }
        let delivered = self.counters.delivered.load(Ordering::SeqCst).min(self.published);
        self.counts = Some(MqttCounts { published: self.published, delivered, lost: self.published - delivered });
        Ok(())
    }
}
