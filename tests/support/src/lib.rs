//! The test harness of the mqseal workspace, shared by the integration tests
//! of `mqseal-rumqttc`, `mqseal-embedded` and the `mqseal` CLI (a
//! dev-dependency, never published):
//!
//! - [`Mosquitto`]: Debian's `mosquitto` on free loopback ports (TCP,
//!   WebSocket, TLS, WebSocket over TLS), its own config, persistence and
//!   certificates in a temporary directory; stopped on drop.
//! - [`redis::Redis`]: Debian's `redis-server` likewise (AOF,
//!   `appendfsync always`).
//! - [`cli`]: the `mqseal` binary with a clean environment, output checks, a
//!   raw MQTT subscriber that records envelopes.
//!
//! # Tests that need a broker
//!
//! A test starts its broker with [`mosquitto_or_skip!`] or
//! [`redis_or_skip!`] instead of `Mosquitto::start()` / `Redis::start()`, or
//! begins with [`require_mosquitto!`] / [`require_redis!`] when a helper
//! starts it. When the program is not installed the test prints
//! `skipped: ...` and returns, so `cargo test --workspace` passes on a
//! machine without them. Under CI (`CI` set) or with
//! `MQSEAL_REQUIRE_BROKERS` set (the scripts in `scripts/test-parts/` set
//! it) a missing program fails the test instead: nothing the test suite
//! runs is skipped there.
//!
//! The programs are looked up on `PATH` and in `/usr/sbin`, `/usr/bin`,
//! `/sbin` (Debian puts `mosquitto` in `/usr/sbin`). `MQSEAL_TEST_BIN_PATH`
//! (a `PATH`-like list) replaces that search, e.g. to check the skip.
#![forbid(unsafe_code)]
// Test-only helpers: failing loudly is what a harness should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

pub mod cli;
pub mod member;
mod mosquitto;
pub mod redis;
mod server;

pub use mosquitto::{assert_loopback_listeners, listening_sockets, Mosquitto};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where `bin` is installed, if it is: on `MQSEAL_TEST_BIN_PATH` when that
/// is set, else on `PATH` and in the Debian system directories.
pub fn which(bin: &str) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = match std::env::var_os("MQSEAL_TEST_BIN_PATH") {
        Some(list) => std::env::split_paths(&list).collect(),
        None => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()]).collect()
        }
    };
    dirs.into_iter().map(|d| d.join(bin)).find(|p| p.is_file())
}

/// Path of a Debian program the tests run (`mosquitto`, `mosquitto_pub`,
/// `redis-server`, ...); fails the test with a clear message when it is
/// missing (scripts/test-parts/10-rust.sh installs them).
pub fn tool(bin: &str) -> PathBuf {
    which(bin).unwrap_or_else(|| {
        panic!(
            "`{bin}` not found: install Debian's mosquitto, mosquitto-clients and redis-server \
             (scripts/test-parts/10-rust.sh does)"
        )
    })
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// True when a missing broker must fail a test rather than skip it: under CI
/// (`CI` set) or with `MQSEAL_REQUIRE_BROKERS` set.
pub fn brokers_required() -> bool {
    env_flag("CI") || env_flag("MQSEAL_REQUIRE_BROKERS")
}

/// True when every program of `bins` is installed. Otherwise: panics when
/// [`brokers_required`], else prints `skipped: <test>: ... not installed`
/// and returns false. Called by [`require_mosquitto!`] and [`require_redis!`].
pub fn installed(test: &str, package: &str, bins: &[&str]) -> bool {
    let missing: Vec<&str> = bins.iter().copied().filter(|b| which(b).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    if brokers_required() {
        panic!(
            "{test}: {missing} not installed, and CI or MQSEAL_REQUIRE_BROKERS is set: install Debian's \
             {package} (scripts/test-parts/10-rust.sh does)"
        );
    }
    // Straight to stderr, not eprintln!: the test harness would capture it
    // (the test passes), and a skip must be seen.
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipped: {test}: {missing} not installed (Debian's {package}; scripts/test-parts/10-rust.sh installs it)"
    );
    false
}

/// The name of the enclosing function, for skip messages.
#[doc(hidden)]
#[macro_export]
macro_rules! __test_name {
    () => {{
        fn f() {}
        let name = ::core::any::type_name_of_val(&f);
        let mut name = name.strip_suffix("::f").unwrap_or(name);
        // An async test's body is a closure.
        while let Some(outer) = name.strip_suffix("::{{closure}}") {
            name = outer;
        }
        name
    }};
}

/// First line of a test that needs Mosquitto (`mosquitto`, `mosquitto_pub`,
/// `mosquitto_sub`): returns from the test with `skipped: ...` when they are
/// not installed, fails it instead under CI or `MQSEAL_REQUIRE_BROKERS`.
#[macro_export]
macro_rules! require_mosquitto {
    () => {
        if !$crate::installed(
            $crate::__test_name!(),
            "mosquitto and mosquitto-clients",
            &["mosquitto", "mosquitto_pub", "mosquitto_sub"],
        ) {
            return;
        }
    };
}

/// First line of a test that needs `redis-server`; see [`require_mosquitto!`].
#[macro_export]
macro_rules! require_redis {
    () => {
        if !$crate::installed($crate::__test_name!(), "redis-server", &["redis-server"]) {
            return;
        }
    };
}

/// [`Mosquitto::start`] in a test that needs it: returns from the test with
/// `skipped: ...` when Mosquitto is not installed (a failure under CI or
/// `MQSEAL_REQUIRE_BROKERS`, as [`require_mosquitto!`]).
#[macro_export]
macro_rules! mosquitto_or_skip {
    () => {{
        $crate::require_mosquitto!();
        $crate::Mosquitto::start()
    }};
}

/// [`redis::Redis::start`] in a test that needs it; see [`mosquitto_or_skip!`].
#[macro_export]
macro_rules! redis_or_skip {
    () => {{
        $crate::require_redis!();
        $crate::redis::Redis::start()
    }};
}

/// Panics, naming `what` (`"round 3: counter"`), when an item of `items`
/// appears twice: a counter sealed twice, a (sender id, counter) pair
/// delivered twice.
pub fn assert_distinct<T: Eq + std::hash::Hash + std::fmt::Debug>(items: &[T], what: &str) {
    let mut seen = std::collections::HashSet::new();
    for item in items {
        assert!(seen.insert(item), "{what} {item:?} appears twice (all: {items:?})");
    }
}

/// Calls `attempt` up to `times` times, 100 ms apart, until it succeeds
/// (a server restarted on its old port may find the port still held).
pub fn retry(times: usize, mut attempt: impl FnMut() -> bool) -> bool {
    for _ in 0..times {
        if attempt() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
