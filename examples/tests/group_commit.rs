//! `mqseal sub --replay-state` with group commit, against a real Mosquitto
//! and real processes: killed with SIGKILL at random points, restarted, and
//! everything published again after each restart. No message is ever
//! printed twice (a kill between a save and the printing of the messages it
//! covers loses them: at most once).
//!
//! Tests that need Mosquitto start it with `mosquitto_or_skip!` (or `require_mosquitto!`)
//! (mqseal-test-support): skipped when it is not installed, a failure under CI.
// Helpers outside #[test] fns fail loudly too; std paths are fine in tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mqseal::{Key, MemoryCounterStore, Sealer, Suite};
use mqseal_test_support::cli::{interleaved_envelopes, line_reader, mqseal, write_key_file};

const SENDERS: u32 = 20;
const PER_SENDER: u64 = 100;

fn key() -> Key {
    Key::from_bytes(4, [0x42; 32])
}

/// Sealed envelopes (topic, bytes): `SENDERS` senders, `PER_SENDER` each,
/// interleaved; payload `s<sender>-c<counter>`.
fn envelopes() -> Vec<(String, Vec<u8>)> {
    interleaved_envelopes(&key(), 0, SENDERS, PER_SENDER, "gc", |s, c| format!("s{s}-c{c}"))
}

/// A client id of its own for each publisher run (a kept session of an
/// earlier run must not receive its acknowledgements).
fn gc_publisher_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("gc-pub-{}-{nanos:x}", std::process::id())
}

struct Sub {
    child: Child,
    lines: Receiver<String>,
}

fn start_sub(dir: &Path, port: u16, key: &str, state: Option<&Path>, count: Option<usize>) -> Sub {
    let mut cmd = mqseal(dir);
    cmd.args(["sub", "-t", "gc/#", "-q", "1", "-v", "-h", "127.0.0.1", "-p", &port.to_string(), "--key-file", key]);
    if let Some(s) = state {
        cmd.arg("--replay-state").arg(s);
    }
    if let Some(c) = count {
        cmd.args(["-C", &c.to_string()]);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    Sub { child, lines }
}

/// Publishes fresh probe messages until the subscriber prints one: its
/// subscription is then live. Returns the data lines printed meanwhile.
fn wait_ready(sub: &Sub, port: u16, probe: &mut Sealer<MemoryCounterStore>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut data = Vec::new();
    while Instant::now() < deadline {
        let env = probe.seal_to_vec("gc/probe", b"probe").unwrap();
        mqseal_test_support::cli::publish_all(port, &gc_publisher_id(), vec![("gc/probe".into(), env)]);
        while let Ok(line) = sub.lines.recv_timeout(Duration::from_millis(200)) {
            if line == "gc/probe probe" {
                return data;
            }
            data.push(line);
        }
    }
    panic!("the subscriber never printed a probe");
}

/// A xorshift generator: the test's random kill points (seed printed).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn record(delivered: &mut HashMap<String, usize>, line: &str) {
    if line == "gc/probe probe" {
        return;
    }
    let payload = line.split_once(' ').map_or(line, |(_, p)| p).to_string();
    let n = delivered.entry(payload).or_insert(0);
    *n += 1;
    assert_eq!(*n, 1, "{line} was delivered twice");
}

#[test]
fn kill_9_at_random_points_never_delivers_twice() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let key_path = write_key_file(dir.path(), &key());
    let state = dir.path().join("replay.state");
    let envs = envelopes();
    let total = envs.len();
    let mut probe = Sealer::new(&key(), 9999, Suite::HmacSha256, MemoryCounterStore::new()).unwrap();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill points seed {seed}");
    let mut rng = Rng(seed);
    let mut delivered: HashMap<String, usize> = HashMap::new();

    for cycle in 0..11 {
        let mut sub = start_sub(dir.path(), m.tcp, &key_path, Some(&state), None);
        for line in wait_ready(&sub, m.tcp, &mut probe) {
            record(&mut delivered, &line);
        }
        let port = m.tcp;
        let batch = envs.clone();
        let publisher =
            std::thread::spawn(move || mqseal_test_support::cli::publish_all(port, &gc_publisher_id(), batch));
        let remaining = (total - delivered.len()) as u64;
        // Cycles 0..10 are killed after a random number of printed lines
        // (the last one runs until everything is delivered).
        let kill_after = if cycle < 10 { rng.below(remaining / 2 + 1) } else { remaining };
        let mut seen = 0u64;
        // Until the kill point, or 3 s without a line (everything the
        // subscriber will print has been printed).
        while seen < kill_after {
            let Ok(line) = sub.lines.recv_timeout(Duration::from_secs(3)) else { break };
            record(&mut delivered, &line);
            seen += 1;
        }
        if cycle < 10 {
            // And a random moment beyond that (also while it is rejecting
            // the re-published duplicates).
            std::thread::sleep(Duration::from_millis(rng.below(150)));
        }
        sub.child.kill().unwrap(); // SIGKILL
        sub.child.wait().unwrap();
        // Whatever it printed before dying.
        for line in sub.lines.iter() {
            record(&mut delivered, &line);
        }
        publisher.join().unwrap();
        eprintln!("cycle {cycle}: killed after {seen} lines, {} of {total} delivered", delivered.len());
    }
    // A kill between a save and the printing of what it covers loses those
    // messages (they are recorded as accepted): at most once, never twice.
    eprintln!("delivered once: {}, lost to kills: {}", delivered.len(), total - delivered.len());
    assert!(delivered.len() <= total);
}

/// Messages per second through `mqseal sub` with and without
/// `--replay-state`, in the same run (reported, not asserted: the machine
/// is shared; BENCHMARKS.md has the figures).
#[test]
fn group_commit_throughput_is_reported() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let key_path = write_key_file(dir.path(), &key());
    let envs = envelopes();
    let total = envs.len();
    let mut probe = Sealer::new(&key(), 9999, Suite::HmacSha256, MemoryCounterStore::new()).unwrap();
    let mut rates = Vec::new();
    for (name, state) in [("memory", None), ("replay-state", Some(dir.path().join("replay.state")))] {
        let mut sub = start_sub(dir.path(), m.tcp, &key_path, state.as_deref(), None);
        assert!(wait_ready(&sub, m.tcp, &mut probe).is_empty());
        let start = Instant::now();
        let port = m.tcp;
        let batch = envs.clone();
        let publisher =
            std::thread::spawn(move || mqseal_test_support::cli::publish_all(port, &gc_publisher_id(), batch));
        let mut n = 0;
        while n < total {
            sub.lines.recv_timeout(Duration::from_secs(30)).expect("subscriber stalled");
            n += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        publisher.join().unwrap();
        sub.child.kill().unwrap();
        sub.child.wait().unwrap();
        rates.push(total as f64 / secs);
        eprintln!("mqseal sub ({name}): {total} messages in {secs:.3} s = {:.0} msg/s", total as f64 / secs);
    }
    eprintln!("replay-state / memory throughput ratio: {:.2}", rates[1] / rates[0]);
}
