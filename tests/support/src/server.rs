//! What the harness does alike for every server program it runs
//! (Mosquitto, redis-server): start it on fresh free ports until a start
//! succeeds, start it again after a stop, kill it.

use std::path::PathBuf;
use std::process::Child;

use tempfile::TempDir;

use crate::retry;

/// A server program the harness runs from its own config file.
pub(crate) trait Server: Sized {
    /// The program, for messages.
    const PROGRAM: &'static str;

    /// Takes fresh free ports and writes the config file for them.
    fn configure(&mut self);

    /// Starts the program with its config file; false when it exited or
    /// did not listen in time.
    fn spawn(&mut self) -> bool;

    /// Its log so far.
    fn log(&self) -> String;

    /// Makes the server (`make`, given a fresh temp dir and the path of the
    /// config file in it), then configures and starts it, up to 5 times:
    /// another test may take a port between our probe and the server's bind.
    fn start_in_temp_dir(conf_file: &str, make: impl FnOnce(TempDir, PathBuf) -> Self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join(conf_file);
        let mut server = make(dir, conf);
        for attempt in 0..5 {
            server.configure();
            if server.spawn() {
                return server;
            }
            eprintln!("{} did not start (attempt {attempt}): {}", Self::PROGRAM, server.log());
        }
        panic!("{} did not start; log:\n{}", Self::PROGRAM, server.log());
    }

    /// Starts it again with the same config (ports, data directory): up to
    /// `attempts` tries, 100 ms apart, as the old process may still hold a
    /// port for a moment.
    fn restart_on_same_ports(&mut self, attempts: usize) {
        if !retry(attempts, || self.spawn()) {
            panic!("{} did not restart; log:\n{}", Self::PROGRAM, self.log());
        }
    }
}

/// Kills a server's process with SIGKILL, if it runs, and reaps it.
pub(crate) fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
