//! `mqseal pub` and `mqseal sub`.

use core::time::Duration;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use mqseal::{Eviction, FleetOpener, OpenerConfig, Sealer, StoreError, Suite};
use mqseal_rumqttc::{v5, Protection, Reject, SealedClient, SealedEvent, SealedEventLoop, Stats};
use rumqttc::{Event, Incoming, NetworkOptions, Outgoing};
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;

use crate::connect::{self, Target};
use crate::state::{self, GroupCommit, ReplayState, Start};
use crate::Common;

/// Exit code of `sub` when -W expires (as mosquitto_sub).
const EXIT_TIMEOUT: u8 = 27;

/// `mqseal pub`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct PubArgs {
    #[command(flatten)]
    pub(crate) common: Common,
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
    /// (or ~/.local/state/mqseal/...). It is locked while this process runs:
    /// a second `mqseal pub` on it fails at start-up, naming the holder's pid.
    /// A missing file is refused (a lost file would reuse counters): create
    /// it with `mqseal keygen group --sender-id`, --new-counter-file, or use
    /// --clock-floor.
    #[arg(long, env = "MQSEAL_COUNTER_FILE", value_name = "FILE")]
    counter_file: Option<PathBuf>,
    /// Create the counter file of a new sender id (starting at counter 0).
    /// Refused if the file exists. Never use it for a sender id that has
    /// sealed under this key before: that reuses counters.
    #[arg(long, conflicts_with = "clock_floor")]
    new_counter_file: bool,
    /// For deployments that cannot keep the counter file (a container
    /// without a volume): start at or above the clock floor, the Unix time
    /// in milliseconds x 1024, above any counter used before unless the
    /// clock went back or this sender averaged more than 1024 messages per
    /// millisecond. A missing counter file is then accepted (and written).
    /// Cost: the counter varint takes 8 bytes instead of 1 to 3, so each
    /// envelope grows by 5 to 7 bytes.
    #[arg(long)]
    clock_floor: bool,
    /// Counters reserved per counter-file write (each write is fsynced; a
    /// crash skips the rest of a block, never reuses a counter). Default: 1
    /// for one message, 1024 with -l.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    reservation_block: Option<u64>,
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
    pub(crate) common: Common,
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
    /// Also bounds timestamps ahead of this clock: by --max-skew, or else by
    /// min(max-age, 300) seconds.
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
    /// Reject messages whose timestamp is more than this many seconds ahead
    /// of this clock (default with --max-age: min(max-age, 300); without
    /// --max-age: no bound). Untimestamped messages still pass unless
    /// --max-age is set.
    #[arg(long, value_name = "SECONDS")]
    max_skew: Option<u64>,
    /// When the sender table (64 senders) is full: reject-new (refuse new
    /// senders, the default) or lru (forget the sender heard from least
    /// recently; needs --max-age, since that sender's old messages would
    /// open again).
    #[arg(long, default_value = "reject-new", value_parser = ["reject-new", "lru"])]
    eviction: String,
    /// File that keeps the replay windows across runs, so a message this
    /// subscriber already accepted is rejected after a restart too. Locked
    /// while this process runs; rewritten atomically (and fsynced) before
    /// each verified message is printed. A JSON file written by an older
    /// `mqseal sub` is migrated to the current format.
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
    async fn publish(&self, topic: &str, qos: u8, retain: bool, payload: &[u8]) -> Result<(), mqseal_rumqttc::Error> {
        match self {
            Client::V4(c) => c.publish(topic, qos4(qos), retain, payload).await,
            Client::V5(c) => c.publish(topic, qos5(qos), retain, payload).await,
        }
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
    fn opener(&self) -> &FleetOpener {
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

/// A publishing error; a counter-store failure names the counter file.
fn seal_error(e: mqseal_rumqttc::Error, counter_file: &std::path::Path) -> anyhow::Error {
    match e {
        mqseal_rumqttc::Error::Seal(mqseal::Error::CounterStore(kind)) => {
            let hint = if kind == StoreError::Conflict {
                " (another writer changed it: two publishers must never share a sender id)"
            } else {
                ""
            };
            anyhow!("sealing failed: counter file {}: {kind}{hint}; nothing more was sealed", counter_file.display())
        }
        e => anyhow!(e),
    }
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
    let counter_file = state::counter_path(args.counter_file.as_deref(), key.id(), sender_id)?;
    let start = match (args.new_counter_file, args.clock_floor) {
        (true, _) => Start::New,
        (false, true) => Start::ClockFloor,
        (false, false) => Start::Resume,
    };
    // The store holds the file's lock from here until the process ends (it
    // moves into the sealer, the sealer into the client): a second
    // publisher on this file fails here, before connecting or sealing.
    let store = state::open_counter(&counter_file, start)?;

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

    // The file is rewritten (and fsynced) once per block, and a crash skips
    // at most the rest of one block.
    let block = args.reservation_block.unwrap_or(if single.is_some() { 1 } else { mqseal::DEFAULT_RESERVATION_BLOCK });
    let sealer = if start == Start::ClockFloor {
        Sealer::new_with_clock_floor(&key, sender_id, suite, store, mqseal::system_clock_millis())
    } else {
        Sealer::new(&key, sender_id, suite, store)
    };
    let mut sealer =
        sealer.map_err(|e| anyhow!("counter file {}: {e}", counter_file.display()))?.with_reservation_block(block)?;
    if let Err(e) = sealer.next_counter() {
        bail!(
            "counter file {}: {e}: nothing was sealed (use another --sender-id or a new key)",
            counter_file.display()
        );
    }
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
    let store_path = counter_file.clone();
    let producer = tokio::spawn(async move {
        let mut sent = 0u64;
        if let Some(m) = single {
            producer_client.publish(&topic, qos, retain, &m).await.map_err(|e| seal_error(e, &store_path))?;
            sent += 1;
        } else {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines.next_line().await.context("cannot read stdin")? {
                producer_client
                    .publish(&topic, qos, retain, line.as_bytes())
                    .await
                    .map_err(|e| seal_error(e, &store_path))?;
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

fn print_stats(s: &Stats) {
    eprintln!(
        "mqseal: stats: accepted={} plain={} duplicate={} replayed={} forged={} unknown_key={} unsealed={} malformed={} policy={} other={}",
        s.accepted, s.plain_accepted, s.duplicate, s.replayed, s.forged, s.unknown_key, s.unsealed, s.malformed, s.policy, s.other
    );
}

/// The receiver's policy from the command line, checked as a whole by the
/// core; its refusals are worded for the flags.
fn opener_config(args: &SubArgs) -> Result<OpenerConfig> {
    let mut config = OpenerConfig::default();
    config.window = args.window;
    config.max_age = args.max_age;
    config.max_skew = args.max_skew;
    config.eviction = if args.eviction == "lru" { Eviction::LeastRecentlyUsed } else { Eviction::RejectNew };
    match config.validate() {
        Ok(()) => Ok(config),
        Err(_) if !(1..=mqseal::MAX_WINDOW).contains(&config.window) => {
            bail!("--window {} is out of range: 1..={}", config.window, mqseal::MAX_WINDOW)
        }
        Err(_) if config.eviction == Eviction::LeastRecentlyUsed && config.max_age.is_none() => bail!(
            "--eviction lru needs --max-age: an evicted sender's replay window is forgotten, so its old \
             messages would open again unless they expire (the core refuses LRU eviction without a maximum age)"
        ),
        Err(e) => bail!("invalid receiver configuration: {e}"),
    }
}

/// What the subscriber does next: an event from the broker, or a replay
/// state save that completed (with the messages it made durable).
enum Step {
    Event(Result<Ev, String>),
    Durable(Result<Vec<Verified>>),
}

/// The next [`Step`]: a completed save first, else the next event (none
/// when `take_more` is false: only the running saves are awaited).
async fn next_step(el: &mut Loop, commit: &mut Option<GroupCommit<Verified>>, take_more: bool) -> Step {
    if let Some(c) = commit.as_mut().filter(|c| !c.busy() && c.has_pending()) {
        c.start(el.opener().snapshot().collect());
    }
    match commit {
        Some(c) if c.busy() && !take_more => Step::Durable(c.durable().await),
        Some(c) if c.busy() => tokio::select! {
            biased;
            d = c.durable() => Step::Durable(d),
            ev = el.poll() => Step::Event(ev),
        },
        _ => Step::Event(el.poll().await),
    }
}

/// `mqseal sub`.
pub async fn run_sub(args: SubArgs) -> Result<ExitCode> {
    let keys = args.common.keys.load()?;
    let target = connect::target(&args.common)?;
    // A growable sender table (up to mqseal::DEFAULT_MAX_SENDERS): a
    // subscriber to `fleet/#` hears from every device of the fleet.
    let mut opener: FleetOpener = FleetOpener::with_config(keys.ring, &opener_config(&args)?)
        .map_err(|e| anyhow!("invalid receiver configuration: {e}"))?
        .with_clock(mqseal::system_clock);
    // Opened (and locked) before connecting: a second subscriber on the
    // same file, or an unreadable file, fails before any message arrives.
    let mut commit = match &args.replay_state {
        Some(path) => Some(GroupCommit::new(ReplayState::open(path, &mut opener)?)),
        None => None,
    };
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
        // Accepted messages still waiting for their save count towards
        // --count: no more are taken once the count is reached.
        let in_flight = commit.as_ref().map_or(0, GroupCommit::in_flight) as u64;
        if args.count.is_some_and(|c| received >= c) {
            break ExitCode::SUCCESS;
        }
        let take_more = args.count.is_none_or(|c| received + in_flight < c);
        let step = match deadline {
            Some(d) => match tokio::time::timeout_at(d, next_step(&mut el, &mut commit, take_more)).await {
                Ok(step) => step,
                Err(_) => {
                    eprintln!("mqseal: timed out after {} s", args.timeout.unwrap_or(0));
                    break ExitCode::from(EXIT_TIMEOUT);
                }
            },
            None => next_step(&mut el, &mut commit, take_more).await,
        };
        let ev = match step {
            Step::Durable(msgs) => {
                for m in msgs? {
                    print_message(&mut stdout, &args, &m.topic, Some(&m), &m.payload);
                    received += 1;
                }
                continue;
            }
            Step::Event(ev) => ev,
        };
        match ev {
            Ok(Ev::Verified(m)) => match &mut commit {
                // Group commit: printed once a save that records it is
                // durable, so a crash never lets a printed message be
                // accepted again after the restart.
                Some(c) => c.push(m, || el.opener().snapshot().collect()),
                None => {
                    print_message(&mut stdout, &args, &m.topic, Some(&m), &m.payload);
                    received += 1;
                }
            },
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
    // Whatever was accepted is saved and printed before leaving.
    if let Some(c) = &mut commit {
        while c.busy() || c.has_pending() {
            if !c.busy() {
                c.start(el.opener().snapshot().collect());
            }
            for m in c.durable().await? {
                print_message(&mut stdout, &args, &m.topic, Some(&m), &m.payload);
            }
        }
    }
    if args.stats {
        print_stats(&client.stats());
        if let Some(c) = &commit {
            eprintln!("mqseal: stats: replay_state_commits={}", c.commits);
        }
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
