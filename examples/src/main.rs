//! `mqseal`: sealed MQTT from the command line.
//!
//! * `mqseal demo`: an embedded broker, a sealed publisher and subscriber, a
//!   plain eavesdropper, and three attacks, each rejected.
//! * `mqseal keygen`: group keys and X25519 key pairs in the core's text form.
//! * `mqseal pub` / `mqseal sub`: in the spirit of `mosquitto_pub` /
//!   `mosquitto_sub`, with payloads sealed and verified by the mqseal core.
#![forbid(unsafe_code)]

mod connect;
mod demo;
mod keys;
mod pubsub;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Sealed MQTT payloads from the command line: keys, publish, subscribe, demo.
#[derive(Parser, Debug)]
#[command(name = "mqseal", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a self-contained demo: embedded broker, sealed pub/sub, an
    /// eavesdropper, and replayed / forged / moved messages being rejected.
    Demo(demo::DemoArgs),
    /// Generate keys (group keys, X25519 key pairs) into files with mode 0600.
    Keygen(keys::KeygenArgs),
    /// Seal and publish messages (like mosquitto_pub).
    #[command(name = "pub")]
    Pub(pubsub::PubArgs),
    /// Subscribe, print verified messages, report rejected ones on stderr
    /// (like mosquitto_sub).
    Sub(pubsub::SubArgs),
}

/// Options shared by `pub` and `sub`: broker, credentials, keys.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Broker URL: mqtt://host[:port], mqtts://, ws://host[:port]/path, wss://.
    /// Overrides -h/-p.
    #[arg(short = 'L', long, value_name = "URL")]
    pub url: Option<String>,
    /// Broker host (mqtt:// unless --url says otherwise).
    #[arg(short = 'h', long, default_value = "localhost")]
    pub host: String,
    /// Broker port (default 1883, 8883 for mqtts, 80/443 for ws/wss).
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Username.
    #[arg(short = 'u', long, env = "MQSEAL_USERNAME")]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long, env = "MQSEAL_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// MQTT client id (random by default).
    #[arg(short = 'i', long = "id")]
    pub client_id: Option<String>,
    /// MQTT protocol version: 311 or 5.
    #[arg(short = 'V', long = "protocol-version", default_value = "311", value_parser = ["311", "mqttv311", "5", "mqttv5"])]
    pub protocol: String,
    /// Keep-alive in seconds.
    #[arg(short = 'k', long, default_value_t = 60)]
    pub keepalive: u64,
    /// Seconds to wait for the broker to accept the connection.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,
    /// CA certificate file (PEM) for mqtts:// and wss:// (default: the
    /// system's CA bundle).
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM) for TLS client authentication.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for TLS client authentication.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    #[allow(missing_docs)] // a doc comment here would replace the first flattened option's help
    #[command(flatten)]
    pub keys: keys::KeyArgs,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Name where a bad key text came from: the flag or the environment.
    if let (
        Some((_, sub)),
        Command::Pub(pubsub::PubArgs { common, .. }) | Command::Sub(pubsub::SubArgs { common, .. }),
    ) = (matches.subcommand(), &mut cli.command)
    {
        if sub.value_source("key_text") == Some(ValueSource::EnvVariable) {
            common.keys.key_text_origin = Some("MQSEAL_KEY (environment variable)");
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mqseal: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Keygen(args) => keys::keygen(&args).map(|()| ExitCode::SUCCESS),
            Command::Pub(args) => pubsub::run_pub(args).await,
            Command::Sub(args) => pubsub::run_sub(args).await,
        }
    });
    // Do not wait for background tasks (reconnecting event loops, the
    // embedded broker's threads).
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mqseal: {e:#}");
            ExitCode::FAILURE
        }
    }
}
