//! `mqseal pub` and `mqseal sub`.

use core::time::Duration;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use mqseal::{FileCounterStore, Opener, Sealer, SenderSnapshot, Suite};
use mqseal_rumqttc::{v5, Protection, Reject, SealedClient, SealedEvent, SealedEventLoop, Stats};
use rumqttc::{Event, Incoming, NetworkOptions, Outgoing};
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;

use crate::connect::{self, Target};
use crate::Common;

/// Exit code of `sub` when -W expires (as mosquitto_sub).
const EXIT_TIMEOUT: u8 = 27;

/// `mqseal pub`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct PubArgs {
    #[command(flatten)]
    common: Common,
    /// Topic to publish on.
    #[arg(short = 't', long)]
    topic: String,
    /// QoS: 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long)]
    retain: bool,
    /// The message.
    #[arg(short = 'm', long, group = "source")]
    message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long, group = "source", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Read the message from stdin (all of it, one message).
    #[arg(short = 's', long, group = "source")]
    stdin_file: bool,
    /// Read stdin line by line; each line is one message.
    #[arg(short = 'l', long, group = "source")]
    stdin_line: bool,
    /// This publisher's sender id (unique per publisher and key).
    #[arg(long, env = "MQSEAL_SENDER_ID")]
    sender_id: Option<u32>,
    /// File that persists the message counter (the nonce) across runs.
    /// Default: $XDG_STATE_HOME/mqseal/counter-k<key id>-s<sender id>
    /// (or ~/.local/state/mqseal/...).
    #[arg(long, env = "MQSEAL_COUNTER_FILE", value_name = "FILE")]
    counter_file: Option<PathBuf>,
    /// chacha20poly1305 (confidential) or hmac-sha256 (integrity only).
    #[arg(long, default_value = "chacha20poly1305")]
    suite: String,
    /// Add an authenticated timestamp to each message.
    #[arg(long)]
    timestamps: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// `mqseal sub`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct SubArgs {
    #[command(flatten)]
    common: Common,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic", required = true)]
    topics: Vec<String>,
    /// QoS for the subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Print the topic before each payload.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Print sender id, key id, counter, timestamp and flags before each payload.
    #[arg(long)]
    meta: bool,
    /// Exit after this many verified (or allowlisted plain) messages.
    #[arg(short = 'C', long, value_name = "COUNT")]
    count: Option<u64>,
    /// Exit with code 27 after this many seconds.
    #[arg(short = 'W', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Keep the session (clean session off): messages queued while away are
    /// delivered on reconnect. Needs a fixed --id.
    #[arg(short = 'c', long = "disable-clean-session", requires = "client_id")]
    persistent: bool,
    /// Topics (filters) where plain, unsealed payloads are accepted.
    #[arg(long = "plain-topic", value_name = "FILTER")]
    plain_topics: Vec<String>,
    /// Replay window width (1..=256).
    #[arg(long, default_value_t = 128)]
    window: u32,
    /// Reject messages older than this many seconds (requires timestamps).
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
    /// File that keeps the replay windows across runs, so a message this
    /// subscriber already accepted is rejected after a restart too.
    #[arg(long, env = "MQSEAL_REPLAY_STATE", value_name = "FILE")]
    replay_state: Option<PathBuf>,
    /// Print counters of accepted and rejected messages on exit (stderr).
    #[arg(long)]
    stats: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// One event, whatever the MQTT version.
enum Ev {
    Verified(Verified),
    Plain {
        topic: String,
        payload: Vec<u8>,
    },
    Rejected {
        topic: String,
        reason: Reject,
    },
    ConnAck {
        session_present: bool,
    },
    /// A publish of ours is complete (QoS 0 written, 1 acked, 2 completed).
    PublishDone,
    Disconnected,
    Other,
}

struct Verified {
    topic: String,
    sender_id: u32,
    key_id: u32,
    counter: u64,
    timestamp: Option<u64>,
    retain: bool,
    dup: bool,
    payload: Vec<u8>,
}

enum Client {
    V4(SealedClient),
    V5(v5::SealedClient),
}

enum Loop {
    V4(Box<SealedEventLoop>),
    V5(Box<v5::SealedEventLoop>),
}

fn qos4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    match q {
        0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

impl Client {
    async fn publish(&self, topic: &str, qos: u8, retain: bool, payload: &[u8]) -> Result<()> {
        match self {
            Client::V4(c) => c.publish(topic, qos4(qos), retain, payload).await?,
            Client::V5(c) => c.publish(topic, qos5(qos), retain, payload).await?,
        }
        Ok(())
    }
    async fn subscribe(&self, filter: &str, qos: u8) -> Result<()> {
        match self {
            Client::V4(c) => c.subscribe(filter, qos4(qos)).await?,
            Client::V5(c) => c.subscribe(filter, qos5(qos)).await?,
        }
        Ok(())
    }
    async fn disconnect(&self) -> Result<()> {
        match self {
            Client::V4(c) => c.disconnect().await?,
            Client::V5(c) => c.disconnect().await?,
        }
        Ok(())
    }
    fn stats(&self) -> Stats {
        match self {
            Client::V4(c) => c.stats(),
            Client::V5(c) => c.stats(),
        }
    }
}

impl Loop {
    fn opener(&self) -> &Opener {
        match self {
            Loop::V4(l) => l.opener(),
            Loop::V5(l) => l.opener(),
        }
    }

    async fn poll(&mut self) -> Result<Ev, String> {
        match self {
            Loop::V4(l) => Ok(match l.poll().await.map_err(|e| e.to_string())? {
                SealedEvent::Verified(m) => Ev::Verified(Verified {
                    topic: m.topic,
                    sender_id: m.sender_id,
                    key_id: m.key_id,
                    counter: m.counter,
                    timestamp: m.timestamp,
                    retain: m.retain,
                    dup: m.dup,
                    payload: m.payload.to_vec(),
                }),
                SealedEvent::Plain(p) => Ev::Plain { topic: p.topic, payload: p.payload.to_vec() },
                SealedEvent::Rejected(r) => Ev::Rejected { topic: r.publish.topic, reason: r.reason },
                SealedEvent::Other(Event::Incoming(Incoming::ConnAck(c))) => {
                    Ev::ConnAck { session_present: c.session_present }
                }
                SealedEvent::Other(
                    Event::Incoming(Incoming::PubAck(_) | Incoming::PubComp(_)) | Event::Outgoing(Outgoing::Publish(0)),
                ) => Ev::PublishDone,
                SealedEvent::Other(Event::Outgoing(Outgoing::Disconnect)) => Ev::Disconnected,
                _ => Ev::Other,
            }),
            Loop::V5(l) => {
                use rumqttc::v5::mqttbytes::v5::Packet;
                Ok(match l.poll().await.map_err(|e| e.to_string())? {
                    v5::SealedEvent::Verified(m) => Ev::Verified(Verified {
                        topic: m.topic,
                        sender_id: m.sender_id,
                        key_id: m.key_id,
                        counter: m.counter,
                        timestamp: m.timestamp,
                        retain: m.retain,
                        dup: m.dup,
                        payload: m.payload.to_vec(),
                    }),
                    v5::SealedEvent::Plain(p) => {
                        Ev::Plain { topic: String::from_utf8_lossy(&p.topic).into_owned(), payload: p.payload.to_vec() }
                    }
                    v5::SealedEvent::Rejected(r) => {
                        Ev::Rejected { topic: String::from_utf8_lossy(&r.publish.topic).into_owned(), reason: r.reason }
                    }
                    v5::SealedEvent::Other(rumqttc::v5::Event::Incoming(Packet::ConnAck(c))) => {
                        Ev::ConnAck { session_present: c.session_present }
                    }
                    v5::SealedEvent::Other(
                        rumqttc::v5::Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))
                        | rumqttc::v5::Event::Outgoing(Outgoing::Publish(0)),
                    ) => Ev::PublishDone,
                    v5::SealedEvent::Other(rumqttc::v5::Event::Outgoing(Outgoing::Disconnect)) => Ev::Disconnected,
                    _ => Ev::Other,
                })
            }
        }
    }
}

fn build(c: &Common, target: &Target, role: &str, clean: bool, protection: Protection) -> (Client, Loop) {
    let mut net = NetworkOptions::new();
    net.set_connection_timeout(c.connect_timeout.max(1));
    if connect::is_v5(c) {
        let mut o = connect::options_v5(c, target, role, clean);
        o.set_network_options(net);
        let (client, el) = v5::SealedClient::new(o, 64, protection);
        (Client::V5(client), Loop::V5(Box::new(el)))
    } else {
        let o = connect::options_v4(c, target, role, clean);
        let (client, mut el) = SealedClient::new(o, 64, protection);
        el.eventloop.set_network_options(net);
        (Client::V4(client), Loop::V4(Box::new(el)))
    }
}

/// Polls until the broker accepts the connection.
async fn connect(el: &mut Loop, target: &Target, timeout: u64) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(timeout.max(1) + 1);
    loop {
        let ev = tokio::time::timeout_at(deadline, el.poll())
            .await
            .map_err(|_| anyhow!("cannot connect to broker at {}: timed out after {timeout} s", target.display))?;
        match ev {
            Ok(Ev::ConnAck { session_present }) => return Ok(session_present),
            Ok(_) => {}
            Err(e) => bail!("cannot connect to broker at {}: {e}", target.display),
        }
    }
}

fn counter_path(arg: Option<PathBuf>, key_id: u32, sender_id: u32) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .ok_or_else(|| anyhow!("no --counter-file given and neither XDG_STATE_HOME nor HOME is set"))?;
    let dir = base.join("mqseal");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join(format!("counter-k{key_id}-s{sender_id}")))
}

/// `mqseal pub`.
pub async fn run_pub(args: PubArgs) -> Result<ExitCode> {
    let keys = args.common.keys.load()?;
    let key = keys.seal_key.ok_or_else(|| anyhow!("the key file has no key to seal with (set \"primary\")"))?;
    let sender_id = args
        .sender_id
        .ok_or_else(|| anyhow!("missing --sender-id (or MQSEAL_SENDER_ID): every publisher needs its own sender id"))?;
    let suite: Suite =
        args.suite.parse().map_err(|_| anyhow!("unknown suite {:?} (chacha20poly1305 or hmac-sha256)", args.suite))?;
    let target = connect::target(&args.common)?;
    let counter_file = counter_path(args.counter_file.clone(), key.id(), sender_id)?;

    // Read a single message before connecting; -l streams after.
    let single: Option<Vec<u8>> = if let Some(m) = &args.message {
        Some(m.clone().into_bytes())
    } else if let Some(f) = &args.file {
        Some(std::fs::read(f).map_err(|e| anyhow!("cannot read {}: {e}", f.display()))?)
    } else if args.stdin_file {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("cannot read stdin")?;
        Some(buf)
    } else if args.stdin_line {
        None
    } else {
        bail!("nothing to publish: give -m MESSAGE, -f FILE, -s or -l");
    };

    // Reserve counters per run in small blocks: the file is rewritten (and
    // fsynced) once per block, and a crash skips at most one block.
    let block = if single.is_some() { 1 } else { 256 };
    let store = FileCounterStore::new(&counter_file);
    let mut sealer = Sealer::new(&key, sender_id, suite, store)
        .map_err(|e| anyhow!("counter file {}: {e}", counter_file.display()))?
        .with_reservation_block(block)?;
    if args.timestamps {
        sealer = sealer.with_timestamps(mqseal::system_clock);
    }
    let (client, mut el) = build(&args.common, &target, "pub", true, Protection::publish_only(sealer));
    connect(&mut el, &target, args.common.connect_timeout).await?;

    let (topic, qos, retain) = (args.topic.clone(), args.qos, args.retain);
    let producer_client = match &client {
        Client::V4(c) => Client::V4(c.clone()),
        Client::V5(c) => Client::V5(c.clone()),
    };
    let producer = tokio::spawn(async move {
        let mut sent = 0u64;
        if let Some(m) = single {
            producer_client.publish(&topic, qos, retain, &m).await?;
            sent += 1;
        } else {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines.next_line().await.context("cannot read stdin")? {
                producer_client.publish(&topic, qos, retain, line.as_bytes()).await?;
                sent += 1;
            }
        }
        Ok::<u64, anyhow::Error>(sent)
    });
    tokio::pin!(producer);

    let mut done = 0u64;
    let mut total: Option<u64> = None;
    loop {
        if total == Some(done) {
            break;
        }
        tokio::select! {
            r = &mut producer, if total.is_none() => {
                let n = r.map_err(|e| anyhow!("publisher task failed: {e}"))??;
                total = Some(n);
            }
            ev = el.poll() => match ev {
                Ok(Ev::PublishDone) => done += 1,
                Ok(_) => {}
                Err(e) => bail!("connection to {} lost: {e}", target.display),
            }
        }
    }
    client.disconnect().await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(ev) = el.poll().await {
            if matches!(ev, Ev::Disconnected) {
                break;
            }
        }
    })
    .await;
    let _ = client.stats();
    Ok(ExitCode::SUCCESS)
}

fn print_message(out: &mut impl Write, args: &SubArgs, topic: &str, meta: Option<&Verified>, payload: &[u8]) {
    let mut line = Vec::with_capacity(payload.len() + 64);
    if args.verbose {
        line.extend_from_slice(topic.as_bytes());
        line.push(b' ');
    }
    if args.meta {
        let text = match meta {
            Some(m) => {
                let mut t = format!("[sender={} key={} counter={}", m.sender_id, m.key_id, m.counter);
                if let Some(ts) = m.timestamp {
                    t.push_str(&format!(" ts={ts}"));
                }
                if m.retain {
                    t.push_str(" retained");
                }
                if m.dup {
                    t.push_str(" dup");
                }
                t.push_str("] ");
                t
            }
            None => "[plain] ".to_owned(),
        };
        line.extend_from_slice(text.as_bytes());
    }
    line.extend_from_slice(payload);
    line.push(b'\n');
    // A closed stdout (e.g. `| head`) is not worth an error message.
    let _ = out.write_all(&line).and_then(|()| out.flush());
}

fn load_replay_state(opener: &mut Opener, path: &std::path::Path) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("cannot read replay state {}: {e}", path.display()),
    };
    let snaps: Vec<SenderSnapshot> =
        serde_json::from_str(&text).map_err(|e| anyhow!("replay state {} is corrupt: {e}", path.display()))?;
    for snap in &snaps {
        opener.restore(snap).map_err(|e| anyhow!("replay state {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Writes the replay windows atomically (temporary file, fsync, rename).
fn save_replay_state(opener: &Opener, path: &std::path::Path) -> Result<()> {
    let snaps: Vec<SenderSnapshot> = opener.snapshot().collect();
    let text = serde_json::to_string(&snaps)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| anyhow!("cannot save replay state {}: {e}", path.display()))
}

fn print_stats(s: &Stats) {
    eprintln!(
        "mqseal: stats: accepted={} plain={} duplicate={} replayed={} forged={} unknown_key={} unsealed={} malformed={} policy={} other={}",
        s.accepted, s.plain_accepted, s.duplicate, s.replayed, s.forged, s.unknown_key, s.unsealed, s.malformed, s.policy, s.other
    );
}

/// `mqseal sub`.
pub async fn run_sub(args: SubArgs) -> Result<ExitCode> {
    let keys = args.common.keys.load()?;
    let target = connect::target(&args.common)?;
    let mut opener: Opener =
        Opener::new(keys.ring).with_window(args.window).map_err(|_| anyhow!("--window must be 1..=256"))?;
    if let Some(age) = args.max_age {
        opener = opener.with_max_age(age).with_clock(mqseal::system_clock);
    }
    if let Some(path) = &args.replay_state {
        load_replay_state(&mut opener, path)?;
    }
    let mut protection = Protection::receive_only(opener);
    for f in &args.plain_topics {
        protection = protection.allow_plain_topic(f.clone())?;
    }
    let (client, mut el) = build(&args.common, &target, "sub", !args.persistent, protection);
    let deadline = args.timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let session_present = connect(&mut el, &target, args.common.connect_timeout).await?;
    if !session_present || !args.persistent {
        for t in &args.topics {
            client.subscribe(t, args.qos).await?;
        }
    }

    let mut stdout = std::io::stdout().lock();
    let mut received = 0u64;
    let code = loop {
        if args.count.is_some_and(|c| received >= c) {
            break ExitCode::SUCCESS;
        }
        let ev = match deadline {
            Some(d) => match tokio::time::timeout_at(d, el.poll()).await {
                Ok(ev) => ev,
                Err(_) => {
                    eprintln!("mqseal: timed out after {} s", args.timeout.unwrap_or(0));
                    break ExitCode::from(EXIT_TIMEOUT);
                }
            },
            None => el.poll().await,
        };
        match ev {
            Ok(Ev::Verified(m)) => {
                if let Some(path) = &args.replay_state {
                    // Persist before printing: a crash in between loses a
                    // message rather than accepting it twice.
                    save_replay_state(el.opener(), path)?;
                }
                print_message(&mut stdout, &args, &m.topic, Some(&m), &m.payload);
                received += 1;
            }
            Ok(Ev::Plain { topic, payload }) => {
                print_message(&mut stdout, &args, &topic, None, &payload);
                received += 1;
            }
            Ok(Ev::Rejected { topic, reason }) => {
                eprintln!("mqseal: rejected message on {topic}: {reason} ({})", reason.code());
            }
            Ok(Ev::ConnAck { session_present }) => {
                if !session_present {
                    for t in &args.topics {
                        client.subscribe(t, args.qos).await?;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("mqseal: connection to {} lost: {e}; reconnecting", target.display);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    if args.stats {
        print_stats(&client.stats());
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(ev) = el.poll().await {
            if matches!(ev, Ev::Disconnected) {
                break;
            }
        }
    })
    .await;
    Ok(code)
}
