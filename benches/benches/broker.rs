//! End-to-end throughput through a real Mosquitto on loopback, with the
//! `mqseal-rumqttc` adapter: messages per second from one publisher to one
//! subscriber, sealed (ChaCha20-Poly1305, sealed by the publisher, opened
//! and verified by the subscriber) against plain rumqttc, QoS 0 and QoS 1,
//! 64-byte payloads, all in the same run, alternating plain and sealed.
//!
//! ```sh
//! cargo bench -p mqseal-benches --bench broker -- --messages 20000 --rounds 5 [--qos 0|1]
//! ```
//!
//! Per QoS it prints the median rates, the median of the per-round ratio
//! sealed / plain with a 95 % confidence interval of that median, and the
//! median ratio of CPU time per message (broker and clients, Linux only).
//!
//! Starts Debian's `mosquitto` on a free loopback port with its own config
//! in a temp dir, and stops it at the end. Bounded: every measurement has a
//! deadline. Without `--bench` (`cargo test --benches`) it runs one short
//! round as a check that the pipeline works. Results also go to the JSON
//! file named by `MQSEAL_E2E_JSON`, for `scripts/bench.sh`.

use core::time::Duration;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use mqseal::{FleetOpener, Key, Keyring, MemoryCounterStore, Sealer, Suite};
use mqseal_benches::{payload, KEY_BYTES};
use mqseal_rumqttc::rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, QoS};
use mqseal_rumqttc::{Protection, SealedClient, SealedEvent, SealedEventLoop};
use tokio::sync::oneshot;

type BoxError = Box<dyn core::error::Error + Send + Sync>;

const PAYLOAD_LEN: usize = 64;
const DEADLINE: Duration = Duration::from_secs(60);

struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn mosquitto_path() -> Result<PathBuf, BoxError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .ok_or_else(|| "`mosquitto` not found: install Debian's mosquitto (scripts/bench.sh does)".into())
}

impl Broker {
    fn start() -> Result<Broker, BoxError> {
        let bin = mosquitto_path()?;
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.path().join("mosquitto.conf");
        // No persistence, no limits that would drop or throttle messages
        // differently for the two sides of the comparison.
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n"
            ),
        )?;
        let mut child = Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if child.try_wait()?.is_some() || start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                return Err("mosquitto did not start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Broker { child, port, _dir: dir })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    o
}

fn key() -> Key {
    Key::from_bytes(1, KEY_BYTES)
}

/// Polls a plain event loop: signals the connection ack on `connected`,
/// the subscription ack on `subscribed`, counts incoming publishes and
/// reports the instant the `n`th arrived.
async fn poll_plain(
    mut el: EventLoop,
    n: usize,
    connected: oneshot::Sender<()>,
    subscribed: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Sender<Instant>>,
) -> Result<(), String> {
    let (mut connected, mut subscribed, mut done) = (Some(connected), subscribed, done);
    let mut count = 0;
    loop {
        match el.poll().await.map_err(|e| e.to_string())? {
            Event::Incoming(Incoming::ConnAck(_)) => {
                connected.take().map(|c| c.send(()));
            }
            Event::Incoming(Incoming::SubAck(_)) => {
                subscribed.take().map(|c| c.send(()));
            }
            Event::Incoming(Incoming::Publish(p)) => {
                if p.payload.len() != PAYLOAD_LEN {
                    return Err("plain payload of the wrong length".into());
                }
                count += 1;
                if count == n {
                    done.take().map(|d| d.send(Instant::now()));
                }
            }
            _ => {}
        }
    }
}

/// As [`poll_plain`], through the sealed event loop: every message must
/// verify.
async fn poll_sealed(
    mut el: SealedEventLoop,
    n: usize,
    connected: oneshot::Sender<()>,
    subscribed: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Sender<Instant>>,
) -> Result<(), String> {
    let (mut connected, mut subscribed, mut done) = (Some(connected), subscribed, done);
    let mut count = 0;
    loop {
        match el.poll().await.map_err(|e| e.to_string())? {
            SealedEvent::Other(Event::Incoming(Incoming::ConnAck(_))) => {
                connected.take().map(|c| c.send(()));
            }
            SealedEvent::Other(Event::Incoming(Incoming::SubAck(_))) => {
                subscribed.take().map(|c| c.send(()));
            }
            SealedEvent::Verified(m) => {
                if m.payload.len() != PAYLOAD_LEN {
                    return Err("verified payload of the wrong length".into());
                }
                count += 1;
                if count == n {
                    done.take().map(|d| d.send(Instant::now()));
                }
            }
            SealedEvent::Rejected(r) => return Err(format!("message rejected: {:?}", r.reason)),
            _ => {}
        }
    }
}

enum Publisher {
    Plain(AsyncClient),
    Sealed(SealedClient),
}

impl Publisher {
    async fn publish(&self, topic: &str, qos: QoS, msg: &[u8]) -> Result<(), String> {
        match self {
            Publisher::Plain(c) => c.publish(topic, qos, false, msg.to_vec()).await.map_err(|e| e.to_string()),
            Publisher::Sealed(c) => c.publish(topic, qos, false, msg).await.map_err(|e| e.to_string()),
        }
    }
}

/// One measurement: `n` messages of 64 bytes from a publisher to a
/// subscriber through the broker. Returns messages per second, from the
/// first publish call to the arrival of the last message.
async fn measure(port: u16, sealed: bool, qos: QoS, n: usize, tag: &str) -> Result<f64, BoxError> {
    let topic = format!("bench/{tag}");
    let msg = payload(PAYLOAD_LEN);
    let (sub_conn_tx, sub_conn) = oneshot::channel();
    let (sub_ack_tx, sub_ack) = oneshot::channel();
    let (done_tx, done) = oneshot::channel();
    let (pub_conn_tx, pub_conn) = oneshot::channel();

    let sub_opts = options(&format!("{tag}-sub"), port);
    let pub_opts = options(&format!("{tag}-pub"), port);
    let (sub_task, pub_task, publisher) = if sealed {
        let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key())?);
        let (sub, el) = SealedClient::new(sub_opts, 1000, Protection::receive_only(opener));
        let sub_task = tokio::spawn(poll_sealed(el, n, sub_conn_tx, Some(sub_ack_tx), Some(done_tx)));
        sub_conn.await?;
        sub.subscribe(topic.clone(), qos).await?;
        let sealer = Sealer::new(&key(), 7, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
        let (publ, el) = SealedClient::new(pub_opts, 1000, Protection::publish_only(sealer));
        let pub_task = tokio::spawn(poll_sealed(el, usize::MAX, pub_conn_tx, None, None));
        (sub_task, pub_task, Publisher::Sealed(publ))
    } else {
        let (sub, el) = AsyncClient::new(sub_opts, 1000);
        let sub_task = tokio::spawn(poll_plain(el, n, sub_conn_tx, Some(sub_ack_tx), Some(done_tx)));
        sub_conn.await?;
        sub.subscribe(topic.clone(), qos).await?;
        let (publ, el) = AsyncClient::new(pub_opts, 1000);
        let pub_task = tokio::spawn(poll_plain(el, usize::MAX, pub_conn_tx, None, None));
        (sub_task, pub_task, Publisher::Plain(publ))
    };
    let ready = async {
        sub_ack.await?;
        pub_conn.await
    };
    tokio::time::timeout(Duration::from_secs(10), ready).await.map_err(|_| "connect/subscribe timed out")??;

    let start = Instant::now();
    let run = async {
        for _ in 0..n {
            publisher.publish(&topic, qos, &msg).await?;
        }
        done.await.map_err(|_| "subscriber stopped".to_owned())
    };
    let outcome = tokio::time::timeout(DEADLINE, run).await;
    let end = match outcome {
        Ok(Ok(end)) => end,
        Ok(Err(e)) => {
            let why = if sub_task.is_finished() { format!("{:?}", sub_task.await) } else { String::new() };
            pub_task.abort();
            return Err(format!("{tag}: {e} {why}").into());
        }
        Err(_) => {
            sub_task.abort();
            pub_task.abort();
            return Err(format!("{tag}: not all {n} messages arrived within {DEADLINE:?}").into());
        }
    };
    sub_task.abort();
    pub_task.abort();
    Ok(n as f64 / end.duration_since(start).as_secs_f64())
}

/// CPU time (user + system, in clock ticks) used so far by process `pid`,
/// from `/proc/<pid>/stat` (Linux); `None` elsewhere.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses:
    // state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of this process and the broker together.
fn pipeline_ticks(broker: u32) -> Option<u64> {
    Some(cpu_ticks(std::process::id())? + cpu_ticks(broker)?)
}

/// A distribution-free 95 % confidence interval for the median of `v`:
/// the k-th smallest and k-th largest values, k = floor(n/2 - 0.98 sqrt(n))
/// (the normal approximation of the binomial order-statistic interval).
/// `None` below 6 values.
fn median_ci(v: &[f64]) -> Option<(f64, f64)> {
    let v = sorted(v);
    let n = v.len();
    let k = (n as f64 / 2.0 - 0.98 * (n as f64).sqrt()).floor();
    if n < 6 || k < 1.0 {
        return None;
    }
    let k = k as usize;
    Some((v[k - 1], v[n - k]))
}

/// Sorted copy of `v`, for reporting.
fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let messages = arg(&args, "--messages").unwrap_or(if full { 20_000 } else { 500 });
    let rounds = arg(&args, "--rounds").unwrap_or(if full { 5 } else { 1 });
    let broker = Broker::start()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    let mut results = Vec::new();
    // `--qos 0` or `--qos 1` runs one QoS only (default: both).
    let only = arg(&args, "--qos");
    for (qos_name, qos) in [("qos0", QoS::AtMostOnce), ("qos1", QoS::AtLeastOnce)] {
        if only.is_some_and(|q| q != usize::from(qos == QoS::AtLeastOnce)) {
            continue;
        }
        let (mut plain, mut sealed) = (Vec::new(), Vec::new());
        // Per round: sealed rate / plain rate of the two adjacent
        // measurements (pairing cancels the machine's drift), and the CPU
        // time per message of plain / sealed (broker + both clients), which
        // other load on the machine moves far less than the wall-clock rate.
        let (mut paired, mut cpu) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate the order so that drift favours neither side.
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            let (mut rate_of, mut ticks_of) = ([0.0f64; 2], [None; 2]);
            for s in order {
                let tag = format!("{qos_name}-{}-{round}", if s { "sealed" } else { "plain" });
                let before = pipeline_ticks(broker.child.id());
                let rate = rt.block_on(measure(broker.port, s, qos, messages, &tag))?;
                let after = pipeline_ticks(broker.child.id());
                rate_of[usize::from(s)] = rate;
                ticks_of[usize::from(s)] = before.zip(after).map(|(b, a)| a.saturating_sub(b));
                if s { &mut sealed } else { &mut plain }.push(rate);
            }
            paired.push(rate_of[1] / rate_of[0]);
            if let [Some(p), Some(s)] = ticks_of {
                if s > 0 {
                    cpu.push(p as f64 / s as f64);
                }
            }
        }
        let (p, s) = (median(&mut plain), median(&mut sealed));
        let (pr, cr) = (median(&mut paired.clone()), if cpu.is_empty() { f64::NAN } else { median(&mut cpu.clone()) });
        let ci = |v: &[f64]| median_ci(v).map_or("-".to_owned(), |(lo, hi)| format!("[{lo:.3}, {hi:.3}]"));
        println!(
            "e2e {qos_name} {PAYLOAD_LEN} B, {messages} msgs x {rounds} rounds: plain {p:.0} msg/s, \
             sealed {s:.0} msg/s, sealed/plain {:.3}; paired ratio median {pr:.3}, 95 % CI {} (rounds {:.3?}); \
             CPU per message plain/sealed median {cr:.3}, 95 % CI {} (rounds {:.3?})",
            s / p,
            ci(&paired),
            sorted(&paired),
            ci(&cpu),
            sorted(&cpu),
        );
        results.push(format!(
            "{{\"qos\":\"{qos_name}\",\"payload\":{PAYLOAD_LEN},\"messages\":{messages},\"rounds\":{rounds},\
             \"plain_msgs_per_s\":{p:.1},\"sealed_msgs_per_s\":{s:.1},\"plain_all\":{plain:?},\"sealed_all\":{sealed:?},\
             \"paired_ratio\":{pr:.4},\"paired_ci\":{},\"paired_all\":{paired:?},\"cpu_ratio\":{},\"cpu_all\":{cpu:?}}}",
            median_ci(&paired).map_or("null".to_owned(), |(a, b)| format!("[{a:.4}, {b:.4}]")),
            if cr.is_nan() { "null".to_owned() } else { format!("{cr:.4}") }
        ));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(broker);
    if let Some(path) = std::env::var_os("MQSEAL_E2E_JSON") {
        std::fs::write(path, format!("[{}]\n", results.join(",")))?;
    }
    Ok(())
}
