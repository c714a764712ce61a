//! A real redis-server (Debian's `redis-server`) on a free loopback port,
//! with its own config and data directory in a temp dir (AOF on,
//! `appendfsync always`, no RDB snapshots; or no persistence,
//! [`Redis::start_volatile`]); stopped on drop.

use std::fs;
use std::path::PathBuf;
use std::process::Child;

use crate::free_port;
use crate::mosquitto::spawn_listening;
use crate::server::{self, Server};

/// A running redis-server; killed on drop.
pub struct Redis {
    child: Option<Child>,
    /// Its config, AOF and log.
    pub dir: tempfile::TempDir,
    conf: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The persistence lines of its config.
    persistence: String,
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
        Redis::start_in_temp_dir("redis.conf", |dir, conf| Redis {
            child: None,
            conf,
            port: 0,
            persistence: persistence.to_owned(),
            dir,
        })
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
        server::kill(&mut self.child);
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.restart_on_same_ports(100);
    }
}

impl Server for Redis {
    const PROGRAM: &'static str = "redis-server";

    fn configure(&mut self) {
        self.port = free_port();
        let d = self.dir.path().display();
        let text = format!(
            "# written by the mqseal test harness\n\
             bind 127.0.0.1\nport {port}\nprotected-mode yes\n\
             dir {d}\nsave \"\"\n{persistence}\
             logfile {d}/redis.log\ndaemonize no\n",
            port = self.port,
            persistence = self.persistence,
        );
        fs::write(&self.conf, text).unwrap();
    }

    fn spawn(&mut self) -> bool {
        self.child = spawn_listening(Self::PROGRAM, &[self.conf.as_ref()], &[self.port]);
        self.child.is_some()
    }

    fn log(&self) -> String {
        Redis::log(self)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
