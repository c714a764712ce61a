//! `mqseal`: sealed MQTT from the command line.
//!
//! * `mqseal demo`: an embedded broker, a sealed publisher and subscriber, a
//!   plain eavesdropper, and three attacks, each rejected.
//! * `mqseal keygen`: group keys and X25519 key pairs in the core's text form.
//! * `mqseal pub` / `mqseal sub`: in the spirit of `mosquitto_pub` /
//!   `mosquitto_sub`, with payloads sealed and verified by the mqseal core.
#![forbid(unsafe_code)]

mod authority;
mod connect;
mod demo;
mod keys;
mod member;
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
    /// A member of key distribution: `init` (enrol), `status`.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// The key authority of a fleet: registry, enrolment, rotation,
    /// revocation, and `serve` to hand out sealed key states.
    Authority(authority::AuthorityArgs),
}

/// Options shared by `pub` and `sub`: broker, credentials, keys.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Broker URL: mqtt://host[:port], mqtts://, ws://host[:port]/path, wss://.
    /// Overrides -h/-p.
    #[arg(short = 'L', long, value_name = "URL")]
    pub url: Option<String>,
    /// Broker host [default: localhost] (mqtt://, or mqtts:// with a TLS
    /// option, unless --url says otherwise).
    #[arg(short = 'h', long, default_value = "localhost", hide_default_value = true)]
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
    /// Seconds to wait for the broker to accept the connection (at least 1).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: u64,
    /// CA certificate file (PEM). Any TLS option means TLS, as with
    /// mosquitto_pub: without --url, mqtts:// on port 8883 (default CAs: the
    /// system's bundle).
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Directory of PEM CA certificates (as mosquitto's --capath).
    #[arg(long, value_name = "DIR")]
    pub capath: Option<PathBuf>,
    /// Client certificate (PEM, X.509 v3) for TLS client authentication.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for TLS client authentication.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// INSECURE: do not check that the broker's certificate names the host
    /// (its chain is still verified). Anyone with a certificate from the same
    /// CA can then impersonate the broker. For tests only.
    #[arg(long)]
    pub insecure: bool,
    /// TLS version: tlsv1.3 or tlsv1.2 (default: either).
    #[arg(long, value_name = "VERSION")]
    pub tls_version: Option<String>,
    /// Largest MQTT packet to send or accept, in bytes (default: the MQTT
    /// maximum, 268435460; with MQTT 5 also the broker's CONNACK limit for
    /// sending). A larger incoming message is rejected once, reported,
    /// counted (--stats: oversized) and acknowledged, never redelivered.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(16..=268_435_460))]
    pub max_packet_size: Option<u32>,
    /// MQTT 5 session expiry interval in seconds (as mosquitto's -x;
    /// 4294967295: never). Needs -V 5.
    #[arg(short = 'x', long = "session-expiry-interval", value_name = "SECONDS")]
    pub session_expiry: Option<u32>,
    /// Debug: print the connection steps and every MQTT packet (stderr).
    #[arg(short = 'd', long)]
    pub debug: bool,
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
            Command::Member(cmd) => member::run(&cmd).map(|()| ExitCode::SUCCESS),
            Command::Authority(args) => authority::run(args).await,
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
