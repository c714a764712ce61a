//! A real redis-server (Debian's `redis-server`) on a free loopback port,
//! with its own config and data directory in a temp dir (AOF on,
//! `appendfsync always`, no RDB snapshots; or no persistence,
//! [`Redis::start_volatile`]); stopped on drop.

use std::fs;
use std::path::PathBuf;
use std::process::Child;

use crate::mosquitto::spawn_listening;
use crate::{free_port, retry};

/// A running redis-server; killed on drop.
pub struct Redis {
    child: Option<Child>,
    /// Its config, AOF and log.
    pub dir: tempfile::TempDir,
    conf: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Redis {
    /// Starts redis-server on a free loopback port.
    pub fn start() -> Redis {
        Redis::start_with("appendonly yes\nappendfsync always\n")
    }

    /// As [`Redis::start`] but with no persistence at all (no AOF, no RDB):
    /// for benchmarks, which measure the store, not the disk.
    pub fn start_volatile() -> Redis {
        Redis::start_with("appendonly no\n")
    }

    fn start_with(persistence: &str) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("redis.conf");
        let mut r = Redis { child: None, conf, port: 0, dir };
        for _ in 0..5 {
            r.port = free_port();
            let d = r.dir.path().display();
            let text = format!(
                "# written by the mqseal test harness\n\
                 bind 127.0.0.1\nport {port}\nprotected-mode yes\n\
                 dir {d}\nsave \"\"\n{persistence}\
                 logfile {d}/redis.log\ndaemonize no\n",
                port = r.port
            );
            fs::write(&r.conf, text).unwrap();
            if r.spawn() {
                return r;
            }
        }
        panic!("redis-server did not start: {}", r.log());
    }

    fn spawn(&mut self) -> bool {
        self.child = spawn_listening("redis-server", &[self.conf.as_ref()], &[self.port]);
        self.child.is_some()
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// SIGKILL (the AOF, fsynced at every write, keeps what it acknowledged).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        if !retry(100, || self.spawn()) {
            panic!("redis-server did not restart: {}", self.log());
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
