//! `mqseal pub --sender-lease` against a real redis-server and Mosquitto:
//! several publishers of one service lease distinct sender ids and every
//! (sender id, counter) reaching `mqseal sub` is distinct; a publisher
//! paused (SIGSTOP) past its lease TTL is fenced: the instance that takes
//! its id starts above its block, and after SIGCONT it stops sealing with
//! `leaseLost`.
//!
//! Tests that need Mosquitto and redis-server start them with `mosquitto_or_skip!`/`redis_or_skip!`
//! (mqseal-test-support): skipped when not installed, a failure under CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mqseal::Key;
use mqseal_test_support::assert_distinct;
use mqseal_test_support::cli::{connect_with_key, line_reader, mqseal, spawn_fed, spawn_reading};
use mqseal_test_support::redis::Redis;
use mqseal_test_support::Mosquitto;

fn key() -> Key {
    Key::from_bytes(12, [0x6b; 32])
}

struct Sub {
    child: Child,
    out: Receiver<String>,
    lines: Vec<String>,
}

impl Sub {
    fn start(dir: &Path, port: u16) -> Sub {
        let mut child = spawn_reading(
            mqseal(dir)
                .args(["sub", "-t", "svc/#", "-q", "1", "-F", "%S %C", "-d"])
                .args(connect_with_key(port, &key())),
        );
        let out = line_reader(child.stdout.take().unwrap());
        let err = line_reader(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "the subscriber never subscribed");
            if err.recv_timeout(Duration::from_millis(50)).is_ok_and(|l| l.contains("SubAck")) {
                break;
            }
        }
        // Keep its stderr drained.
        std::thread::spawn(move || while err.recv().is_ok() {});
        Sub { child, out, lines: Vec::new() }
    }

    fn wait_for(&mut self, n: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.lines.len() < n {
            assert!(Instant::now() < deadline, "{what}: {} of {n} lines: {:?}", self.lines.len(), self.lines);
            if let Ok(l) = self.out.recv_timeout(Duration::from_millis(50)) {
                self.lines.push(l);
            }
        }
    }

    fn pairs(&self) -> Vec<(u32, u64)> {
        self.lines
            .iter()
            .map(|l| {
                let (s, c) = l.split_once(' ').unwrap();
                (s.parse().unwrap(), c.parse().unwrap())
            })
            .collect()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service's setting: a temp dir, the broker, the lease store, and the
/// subscriber on `svc/#` that records (sender id, counter) of every
/// message reaching it.
struct Service<'a> {
    sub: Sub,
    dir: tempfile::TempDir,
    m: &'a Mosquitto,
    redis: &'a Redis,
}

impl<'a> Service<'a> {
    /// Returns once the subscriber is subscribed.
    fn subscribed(m: &'a Mosquitto, redis: &'a Redis) -> Service<'a> {
        let dir = tempfile::tempdir().unwrap();
        let sub = Sub::start(dir.path(), m.tcp);
        Service { sub, dir, m, redis }
    }

    /// A `mqseal pub --sender-lease` of the service on `svc/out`, leasing
    /// a sender id of `ids`.
    fn publisher(&self, ids: &str, extra: &[&str]) -> Command {
        let mut cmd = mqseal(self.dir.path());
        cmd.args(["pub", "-t", "svc/out", "-q", "1"])
            .args(connect_with_key(self.m.tcp, &key()))
            .args(["--sender-lease", &self.redis.url(), "--lease-ids", ids])
            .args(extra);
        cmd
    }
}

/// Writes the lines `<prefix><i>` for each `i` of `range` to a `pub -l`'s
/// stdin.
fn feed(stdin: &mut ChildStdin, prefix: &str, range: std::ops::Range<u32>) {
    for i in range {
        writeln!(stdin, "{prefix}{i}").unwrap();
    }
    stdin.flush().unwrap();
}

/// Asserts that no (sender id, counter) was delivered twice.
fn all_distinct(pairs: &[(u32, u64)]) {
    assert_distinct(pairs, "delivered (sender id, counter)");
}

#[test]
fn several_leased_publishers_never_share_a_sender_id_and_counter() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let redis = mqseal_test_support::redis_or_skip!();
    let mut svc = Service::subscribed(&m, &redis);
    const PUBS: usize = 4;
    const EACH: usize = 40;
    // Two waves of four concurrent publishers over four ids: the second
    // wave takes the ids the first released, and continues their counters.
    // Each publisher (`-l`) holds its lease until all four have leased, so
    // that each wave really holds the four ids at once (a publisher that
    // finished early would free its id for the next one of its wave, and
    // the second wave would then find an id with no counter).
    for wave in 0..2 {
        let extra: &[&str] = if wave == 0 {
            &["--new-lease-counters", "--reservation-block", "8", "-l"]
        } else {
            &["--reservation-block", "8", "-l"]
        };
        let mut children: Vec<(Child, Receiver<String>)> = (0..PUBS)
            .map(|_| {
                let mut child = spawn_fed(&mut svc.publisher("20-23", extra));
                let err = line_reader(child.stderr.take().unwrap());
                (child, err)
            })
            .collect();
        let mut ids = Vec::new();
        for (_, err) in &children {
            let line = err.recv_timeout(Duration::from_secs(20)).expect("no lease line");
            assert!(line.contains("mqseal: leased sender id 2"), "{line}");
            ids.push(line);
        }
        for (child, _) in &mut children {
            let mut stdin = child.stdin.take().unwrap();
            feed(&mut stdin, "hello", 0..EACH as u32);
        }
        for (mut child, err) in children {
            let status = child.wait().unwrap();
            let rest: Vec<String> = err.try_iter().collect();
            assert!(status.success(), "publisher failed: {rest:?} (after {ids:?})");
        }
        svc.sub.wait_for((wave + 1) * PUBS * EACH, "leased publishers");
    }
    let pairs = svc.sub.pairs();
    assert_eq!(pairs.len(), 2 * PUBS * EACH);
    assert!(pairs.iter().all(|(s, _)| (20..=23).contains(s)), "{pairs:?}");
    all_distinct(&pairs);
}

#[test]
fn a_publisher_paused_past_its_lease_is_fenced() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let redis = mqseal_test_support::redis_or_skip!();
    let mut svc = Service::subscribed(&m, &redis);
    let opts = ["--lease-ttl", "1", "--reservation-block", "20", "-l"];
    let mut a = spawn_fed(&mut svc.publisher("7-7", &[&opts[..], &["--new-lease-counters"]].concat()));
    let a_err = line_reader(a.stderr.take().unwrap());
    let mut a_in = a.stdin.take().unwrap();
    feed(&mut a_in, "a", 0..5);
    svc.sub.wait_for(5, "A before the pause");
    // Pause A; wait until its lease is gone from Redis.
    assert!(Command::new("kill").args(["-STOP", &a.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "EXISTS", &mqseal::lease_key(mqseal_rumqttc::DEFAULT_PREFIX, 12, 7)])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "0" {
            break;
        }
        assert!(Instant::now() < deadline, "A's lease never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    // B takes id 7 and starts above A's block (0..20).
    let mut b = spawn_fed(&mut svc.publisher("7-7", &opts));
    let mut b_in = b.stdin.take().unwrap();
    feed(&mut b_in, "b", 0..5);
    svc.sub.wait_for(10, "B");
    let b_pairs: Vec<_> = svc.sub.pairs()[5..].to_vec();
    assert!(b_pairs.iter().all(|&(s, c)| s == 7 && c >= 20), "{b_pairs:?}");
    // Resume A: it may finish its block (counters below 20), then its next
    // grant is refused and it stops.
    assert!(Command::new("kill").args(["-CONT", &a.id().to_string()]).status().unwrap().success());
    for i in 5..40 {
        if writeln!(a_in, "a{i}").is_err() {
            break;
        }
    }
    let _ = a_in.flush();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = a.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "A kept sealing after losing its lease");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let a_stderr: Vec<String> = a_err.try_iter().collect();
    assert!(a_stderr.iter().any(|l| l.contains("lease was lost")), "{a_stderr:?}");
    drop(b_in);
    assert!(b.wait().unwrap().success());
    // Whatever reached the subscriber: A's counters all below 20, none
    // repeated with B's.
    while let Ok(l) = svc.sub.out.recv_timeout(Duration::from_millis(300)) {
        svc.sub.lines.push(l);
    }
    let pairs = svc.sub.pairs();
    assert!(pairs.iter().filter(|(_, c)| *c < 20).count() <= 20);
    all_distinct(&pairs);
}
