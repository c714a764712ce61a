//! Test harness: a real redis-server (Debian's `redis-server`) on a free
//! loopback port, with its own config and data directory in a temp dir
//! (AOF on, `appendfsync always`, no RDB snapshots); stopped on drop. Shared
//! by the mqseal-rumqttc and CLI tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    conf: PathBuf,
    pub port: u16,
}

fn redis_server() -> PathBuf {
    ["/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`redis-server` not found: install Debian's redis-server (scripts/test-parts/10-rust.sh does)")
        })
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("redis.conf");
        let mut r = Redis { child: None, conf, port: 0, dir };
        for _ in 0..5 {
            r.port = super::free_port();
            let d = r.dir.path().display();
            let text = format!(
                "# written by the mqseal test harness\n\
                 bind 127.0.0.1\nport {port}\nprotected-mode yes\n\
                 dir {d}\nsave \"\"\nappendonly yes\nappendfsync always\n\
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
        let mut child = Command::new(redis_server())
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

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
        if !super::retry(100, || self.spawn()) {
            panic!("redis-server did not restart: {}", self.log());
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
