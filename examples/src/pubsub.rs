//! `mqseal pub` and `mqseal sub`.

use core::time::Duration;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use mqseal::{ConfigField, CounterStore, Eviction, FleetOpener, OpenerConfig, Sealer, StoreError, Suite};
use mqseal_rumqttc::{v5, Protection, Reject, SealedClient, SealedEvent, SealedEventLoop, Stats, VerifiedMessage};
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
    /// Topic to publish on (or the path of an mqtt:// / mqtts:// -L URL).
    #[arg(short = 't', long)]
    pub(crate) topic: Option<String>,
    /// QoS: 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long)]
    pub(crate) retain: bool,
    /// The message.
    #[arg(short = 'm', long, group = "source")]
    pub(crate) message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long, group = "source", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Read the message from stdin (all of it, one message).
    #[arg(short = 's', long, group = "source")]
    stdin_file: bool,
    /// Read stdin line by line; each line is one message.
    #[arg(short = 'l', long, group = "source")]
    pub(crate) stdin_line: bool,
    /// Send a zero-length message, unsealed (there is nothing to protect):
    /// with -r it clears the topic's retained message, as with mosquitto_pub.
    #[arg(short = 'n', long = "null-message", group = "source")]
    null_message: bool,
    /// Publish the message this many times (with -m, -f, -s or -n).
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "stdin_line")]
    pub(crate) repeat: Option<u64>,
    /// Seconds between repeated messages (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, requires = "repeat")]
    pub(crate) repeat_delay: f64,
    /// Topic of the will the broker publishes if this client disappears.
    /// The will payload is sealed at start-up (it takes one counter).
    #[arg(long, value_name = "TOPIC", requires = "will_payload")]
    will_topic: Option<String>,
    /// The will's payload (sealed).
    #[arg(long, value_name = "PAYLOAD", requires = "will_topic")]
    will_payload: Option<String>,
    /// QoS of the will: 0, 1 or 2.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2), requires = "will_topic")]
    will_qos: u8,
    /// Retain the will.
    #[arg(long, requires = "will_topic")]
    will_retain: bool,
    /// When the connection drops: reconnect (backing off from 0.5 s to
    /// 10 s), send the unacknowledged QoS 1/2 messages again, and give up
    /// with exit code 1 if no connection is re-established within this many
    /// seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) reconnect_timeout: u64,
    /// Seal as the member enrolled in this directory (`mqseal member
    /// init`): the key and sender id the authority assigned in --group, from
    /// its control messages, applied while running. No key file, counter
    /// file, sender id, will or timestamp options then (refused).
    #[arg(
        long,
        value_name = "DIR",
        requires = "group",
        conflicts_with_all = [
            "sender_id", "sender_lease", "counter_file", "new_counter_file", "clock_floor", "reservation_block",
            "will_topic", "timestamps"
        ]
    )]
    pub(crate) member: Option<PathBuf>,
    /// The group to seal (pub) or open (sub) with, with --member.
    #[arg(long, value_name = "GROUP", requires = "member")]
    pub(crate) group: Option<String>,
    /// With --member: seconds to wait for the first control message when the
    /// member holds no key for the group yet.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "member")]
    pub(crate) state_timeout: u64,
    /// This publisher's sender id (unique per publisher and key).
    #[arg(long, env = "MQSEAL_SENDER_ID")]
    sender_id: Option<u32>,
    /// Lease the sender id from Redis instead of --sender-id (several
    /// instances of one service under one key): the lowest free id of
    /// --lease-ids, renewed every third of --lease-ttl, with its counter
    /// limit kept in Redis next to the lease (no counter file). A publisher
    /// that loses its lease (paused or cut off past the TTL) stops sealing
    /// at the end of its current block (reason leaseLost).
    #[arg(long, value_name = "URL", requires = "lease_ids", conflicts_with_all = ["sender_id", "counter_file", "new_counter_file"])]
    sender_lease: Option<String>,
    /// The sender ids --sender-lease may take, FIRST-LAST (inclusive).
    #[arg(long, value_name = "FIRST-LAST", requires = "sender_lease")]
    lease_ids: Option<String>,
    /// Lease TTL in seconds (default 10).
    #[arg(long, value_name = "SECONDS", requires = "sender_lease")]
    lease_ttl: Option<f64>,
    /// Key prefix of the leases and counters in Redis.
    #[arg(long, value_name = "PREFIX", default_value = mqseal_rumqttc::DEFAULT_PREFIX)]
    lease_prefix: String,
    /// Give leased ids whose counter Redis does not hold a counter of 0:
    /// only for the first deployment of the range. Without it (or
    /// --clock-floor) such an id is refused: a Redis that lost its data
    /// must not start counters over.
    #[arg(long, requires = "sender_lease", conflicts_with = "clock_floor")]
    new_lease_counters: bool,
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
    /// Topic filter to subscribe to (repeatable; or the path of an
    /// mqtt:// / mqtts:// -L URL).
    #[arg(short = 't', long = "topic")]
    pub(crate) topics: Vec<String>,
    /// QoS for the subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) qos: u8,
    /// Print the topic before each payload.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Print sender id, key id, counter, timestamp and flags before each payload.
    #[arg(long)]
    meta: bool,
    /// Output format, as mosquitto_sub's -F: %t topic, %p payload, %x / %X
    /// payload in hex, %l payload length, %q QoS, %r retain flag (0/1), %%;
    /// mqseal's authenticated fields: %S sender id, %K key id, %C counter,
    /// %T timestamp (empty when absent or for plain messages); escapes \n
    /// \t \r \0 \e \\. A newline follows unless -N.
    #[arg(short = 'F', long, value_name = "FORMAT", conflicts_with_all = ["verbose", "meta"])]
    format: Option<String>,
    /// No newline after each message.
    #[arg(short = 'N', long)]
    no_newline: bool,
    /// Do not print stale messages (those with the retain flag set).
    #[arg(short = 'R', long = "no-stale")]
    pub(crate) no_stale: bool,
    /// Print only retained messages; exit at the first one that is not.
    #[arg(long, conflicts_with = "no_stale")]
    retained_only: bool,
    /// Clear every retained message received (publish a zero-length
    /// retained message on its topic), as mosquitto_sub does.
    #[arg(long)]
    remove_retained: bool,
    /// Exit once the broker acknowledged every subscription (e.g. to create
    /// a persistent session with -c).
    #[arg(short = 'E', long = "exit-after-subscribe")]
    exit_after_subscribe: bool,
    /// Exit after this many printed messages (at least 1).
    #[arg(short = 'C', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,
    /// Exit with code 27 after this many seconds (at least 1).
    #[arg(short = 'W', long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: Option<u64>,
    /// Keep the session (clean session off): messages queued while away are
    /// delivered on reconnect. Needs a fixed --id.
    #[arg(short = 'c', long = "disable-clean-session", requires = "client_id")]
    persistent: bool,
    /// Topics (filters) where plain, unsealed payloads are accepted.
    #[arg(long = "plain-topic", value_name = "FILTER")]
    pub(crate) plain_topics: Vec<String>,
    /// Replay window width (1..=256).
    #[arg(long, default_value_t = 128)]
    window: u32,
    /// Ranges of never-accepted counters kept below the window, per sender
    /// (0..=4): a genuine message arriving more than a window late (a
    /// publisher that sends newer messages before the ones it queued during
    /// a broker outage) is still accepted, once. 0 is the plain bitmap
    /// window: anything below it is rejected as `replay`.
    #[arg(long, default_value_t = mqseal::DEFAULT_GAPS)]
    gaps: u32,
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
    /// Open as the member enrolled in this directory (`mqseal member
    /// init`): every key the authority currently accepts in --group, from
    /// its control messages, applied while running. Takes --replay-state,
    /// the receiver policy (--window, --gaps, --max-age, --max-skew,
    /// --eviction), --plain-topic, -R and --stats; refuses the options it
    /// does not support.
    #[arg(
        long,
        value_name = "DIR",
        requires = "group",
        conflicts_with_all = ["replay_redis", "retained_only", "remove_retained", "exit_after_subscribe", "persistent"]
    )]
    pub(crate) member: Option<PathBuf>,
    /// The group to open with, with --member.
    #[arg(long, value_name = "GROUP", requires = "member")]
    pub(crate) group: Option<String>,
    /// File that keeps the replay windows across runs, so a message this
    /// subscriber already accepted is rejected after a restart too. Locked
    /// while this process runs; rewritten atomically (and fsynced) before
    /// each verified message is printed. A JSON file written by an older
    /// `mqseal sub` is migrated to the current format.
    #[arg(long, env = "MQSEAL_REPLAY_STATE", value_name = "FILE")]
    pub(crate) replay_state: Option<PathBuf>,
    /// Keep the replay windows in Redis (or Valkey) at this URL
    /// (redis://127.0.0.1:6379/0), shared by every `mqseal sub` of a
    /// shared subscription ($share/GROUP/FILTER): each verified envelope is
    /// accepted once across the group. Verification stays local; a
    /// message is printed, and acknowledged, only after Redis accepted it.
    /// While Redis is unreachable nothing is printed or acknowledged (the
    /// broker keeps QoS 1/2 messages) and delivery resumes when it is back.
    #[arg(long, value_name = "URL", conflicts_with = "replay_state")]
    replay_redis: Option<String>,
    /// Key prefix in Redis for --replay-redis (one per group or deployment
    /// sharing the server).
    #[arg(long, value_name = "PREFIX", default_value = mqseal_rumqttc::DEFAULT_PREFIX)]
    replay_prefix: String,
    /// With --replay-redis: a sender's window expires this many seconds
    /// after its last accepted message (default: never). Set it no shorter
    /// than the key's lifetime or --max-age: an expired window opens that
    /// sender's old envelopes again.
    #[arg(long, value_name = "SECONDS", requires = "replay_redis", value_parser = clap::value_parser!(u64).range(1..))]
    replay_ttl: Option<u64>,
    /// Verified messages waiting for the replay store at most. While the
    /// store answers, a full queue pauses reading; while it cannot decide,
    /// messages beyond the bound are dropped undelivered and counted
    /// (held_back_dropped= in --stats): a QoS 0 message is lost, a QoS 1/2
    /// one is not acknowledged. Default: 10000.
    #[arg(long, value_name = "N", requires = "replay_redis", value_parser = clap::value_parser!(u64).range(1..))]
    max_held_back: Option<u64>,
    /// With --replay-redis: write the verified messages to this append-only
    /// file instead of stdout, exactly once across a kill -9 at any point
    /// (docs/EXACTLY_ONCE.md). Each store batch is recorded in Redis
    /// together with its messages, appended to FILE as one checksummed
    /// frame and fsynced, and only then acknowledged; a restart with the
    /// same --id appends what a dead run had recorded but not written.
    /// Needs -i, -c and -q 1 or 2. Locked while this process runs.
    #[arg(long, value_name = "FILE", requires_all = ["replay_redis", "persistent"])]
    out: Option<PathBuf>,
    /// Print counters of accepted and rejected messages on exit (stderr),
    /// also on SIGINT and SIGTERM (which end `sub` with exit code 0).
    #[arg(long)]
    pub(crate) stats: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// Pending messages per pipelined request to the shared replay store.
const STORE_BATCH: usize = 512;
/// Wait before asking an unreachable replay store again.
const STORE_RETRY: Duration = Duration::from_millis(250);

/// One event, whatever the MQTT version.
pub(crate) enum Ev {
    Verified(VerifiedMessage),
    Plain {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        pkid: u16,
    },
    Rejected {
        topic: String,
        reason: Reject,
        retain: bool,
        qos: u8,
        pkid: u16,
    },
    /// Verified; the shared replay store decides (--replay-redis).
    Pending(Box<Held>),
    ConnAck {
        session_present: bool,
        /// MQTT 5: the broker's Maximum Packet Size, if it sent one.
        max_packet_size: Option<u32>,
    },
    /// Acknowledgement of one SUBSCRIBE: false if the broker refused a filter.
    SubAck {
        granted: bool,
    },
    /// A publish of ours is complete (QoS 0 written, 1 acked, 2 completed).
    PublishDone,
    Disconnected,
    Other,
}

/// A verified message waiting for the shared replay store's verdict.
pub(crate) enum Held {
    V4(mqseal_rumqttc::PendingMessage),
    V5(v5::PendingMessage),
}

impl Held {
    /// Drops it undelivered: the held-back queue is full.
    fn drop_held_back(self) -> String {
        match self {
            Held::V4(p) => {
                let t = p.publish().topic.clone();
                p.drop_held_back();
                t
            }
            Held::V5(p) => {
                let t = String::from_utf8_lossy(&p.publish().topic).into_owned();
                p.drop_held_back();
                t
            }
        }
    }
}

/// Messages waiting for the shared store, of one MQTT version, each with
/// the number of the connection it arrived on (only that connection can
/// acknowledge it).
enum Batch {
    V4(Vec<u64>, Vec<mqseal_rumqttc::PendingMessage>),
    V5(Vec<u64>, Vec<v5::PendingMessage>),
}

impl Batch {
    fn new(v5: bool) -> Batch {
        if v5 {
            Batch::V5(Vec::new(), Vec::new())
        } else {
            Batch::V4(Vec::new(), Vec::new())
        }
    }

    fn len(&self) -> usize {
        match self {
            Batch::V4(_, b) => b.len(),
            Batch::V5(_, b) => b.len(),
        }
    }

    fn push(&mut self, conn: u64, held: Held) {
        match (self, held) {
            (Batch::V4(g, b), Held::V4(p)) => {
                g.push(conn);
                b.push(p);
            }
            (Batch::V5(g, b), Held::V5(p)) => {
                g.push(conn);
                b.push(p);
            }
            // One connection, one version: cannot happen; the message is
            // dropped unacknowledged (the broker redelivers it).
            _ => {}
        }
    }

    /// Takes up to `n` of the oldest messages.
    fn take(&mut self, n: usize) -> Batch {
        match self {
            Batch::V4(g, b) => {
                let n = n.min(b.len());
                Batch::V4(g.drain(..n).collect(), b.drain(..n).collect())
            }
            Batch::V5(g, b) => {
                let n = n.min(b.len());
                Batch::V5(g.drain(..n).collect(), b.drain(..n).collect())
            }
        }
    }

    /// Puts `front` back before the others (a batch the store did not decide).
    fn unshift(&mut self, front: Batch) {
        match (self, front) {
            (Batch::V4(g, b), Batch::V4(mut fg, mut f)) => {
                fg.append(g);
                f.append(b);
                *g = fg;
                *b = f;
            }
            (Batch::V5(g, b), Batch::V5(mut fg, mut f)) => {
                fg.append(g);
                f.append(b);
                *g = fg;
                *b = f;
            }
            _ => {}
        }
    }

    async fn ask(
        mut self,
        store: mqseal_rumqttc::RedisReplayStore,
    ) -> (Batch, Result<Vec<mqseal::WindowVerdict>, mqseal_rumqttc::StoreUnavailable>) {
        let r = match &mut self {
            Batch::V4(_, b) => mqseal_rumqttc::ask_store(&store, b).await,
            Batch::V5(_, b) => mqseal_rumqttc::ask_store(&store, b).await,
        };
        (self, r)
    }

    /// As [`Batch::ask`], for `--out`: batch `n` of `owner` decided and its
    /// accepted messages staged in Redis in one atomic call.
    async fn ask_staged(
        mut self,
        store: mqseal_rumqttc::RedisReplayStore,
        owner: String,
        n: u64,
    ) -> (Batch, Result<Vec<mqseal::WindowVerdict>, mqseal_rumqttc::StoreUnavailable>) {
        let record = |topic: &[u8], envelope: &[u8], qos: u8, retain: bool| {
            mqseal::PendingRecord { topic, envelope, qos, retain }.encode().unwrap_or_default()
        };
        let r = match &mut self {
            Batch::V4(_, b) => {
                let records = b
                    .iter()
                    .map(|p| p.publish())
                    .map(|m| record(m.topic.as_bytes(), &m.payload, m.qos as u8, m.retain));
                let records = records.collect();
                mqseal_rumqttc::ask_store_staged(&store, &owner, n, b, records).await
            }
            Batch::V5(_, b) => {
                let records =
                    b.iter().map(|p| p.publish()).map(|m| record(&m.topic, &m.payload, m.qos as u8, m.retain));
                let records = records.collect();
                mqseal_rumqttc::ask_store_staged(&store, &owner, n, b, records).await
            }
        };
        (self, r)
    }

    /// The store's verdicts applied: verified or rejected events, each with
    /// its connection number.
    fn resolve(self, verdicts: Vec<mqseal::WindowVerdict>) -> Vec<(u64, Ev)> {
        match self {
            Batch::V4(g, b) => {
                g.into_iter().zip(b.into_iter().zip(verdicts).map(|(p, v)| ev4(&p.resolve(v)))).collect()
            }
            Batch::V5(g, b) => {
                g.into_iter().zip(b.into_iter().zip(verdicts).map(|(p, v)| ev5(&p.resolve(v)))).collect()
            }
        }
    }
}

/// The CLI's view of an MQTT 3.1.1 message event (`Ev::Other` otherwise).
fn ev4(ev: &SealedEvent) -> Ev {
    match ev {
        SealedEvent::Verified(m) => Ev::Verified(m.clone()),
        SealedEvent::Plain(p) => Ev::Plain {
            topic: p.topic.clone(),
            payload: p.payload.to_vec(),
            qos: p.qos as u8,
            retain: p.retain,
            pkid: p.pkid,
        },
        SealedEvent::Rejected(r) => Ev::Rejected {
            topic: r.publish.topic.clone(),
            reason: r.reason,
            retain: r.publish.retain,
            qos: r.publish.qos as u8,
            pkid: r.publish.pkid,
        },
        _ => Ev::Other,
    }
}

/// The CLI's view of an MQTT 5 message event (`Ev::Other` otherwise).
fn ev5(ev: &v5::SealedEvent) -> Ev {
    match ev {
        v5::SealedEvent::Verified(m) => Ev::Verified(m.clone().into()),
        v5::SealedEvent::Plain(p) => Ev::Plain {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload.to_vec(),
            qos: p.qos as u8,
            retain: p.retain,
            pkid: p.pkid,
        },
        v5::SealedEvent::Rejected(r) => Ev::Rejected {
            topic: String::from_utf8_lossy(&r.publish.topic).into_owned(),
            reason: r.reason,
            retain: r.publish.retain,
            qos: r.publish.qos as u8,
            pkid: r.publish.pkid,
        },
        _ => Ev::Other,
    }
}

pub(crate) enum Client {
    V4(SealedClient),
    V5(v5::SealedClient),
}

pub(crate) enum Loop {
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
    pub(crate) fn clone_handle(&self) -> Client {
        match self {
            Client::V4(c) => Client::V4(c.clone()),
            Client::V5(c) => Client::V5(c.clone()),
        }
    }
    pub(crate) async fn publish(
        &self,
        topic: &str,
        qos: u8,
        retain: bool,
        payload: &[u8],
    ) -> Result<(), mqseal_rumqttc::Error> {
        match self {
            Client::V4(c) => c.publish(topic, qos4(qos), retain, payload).await,
            Client::V5(c) => c.publish(topic, qos5(qos), retain, payload).await,
        }
    }
    /// A zero-length message, unsealed: what clears a retained message.
    async fn publish_null(&self, topic: &str, qos: u8, retain: bool) -> Result<()> {
        match self {
            Client::V4(c) => c.unsealed_inner().publish(topic, qos4(qos), retain, Vec::new()).await?,
            Client::V5(c) => c.unsealed_inner().publish(topic, qos5(qos), retain, Vec::new()).await?,
        }
        Ok(())
    }
    pub(crate) async fn subscribe(&self, filter: &str, qos: u8) -> Result<()> {
        match self {
            Client::V4(c) => c.subscribe(filter, qos4(qos)).await?,
            Client::V5(c) => c.subscribe(filter, qos5(qos)).await?,
        }
        Ok(())
    }
    pub(crate) async fn disconnect(&self) -> Result<()> {
        match self {
            Client::V4(c) => c.disconnect().await?,
            Client::V5(c) => c.disconnect().await?,
        }
        Ok(())
    }
    /// Queues the acknowledgement of a received message (manual acks,
    /// --replay-redis) without waiting: false when the request channel is
    /// full (try again after polling the event loop).
    fn try_ack(&self, qos: u8, pkid: u16) -> bool {
        if qos == 0 {
            return true;
        }
        match self {
            Client::V4(c) => {
                let mut p = rumqttc::Publish::new("", qos4(qos), Vec::new());
                p.pkid = pkid;
                c.unsealed_inner().try_ack(&p).is_ok()
            }
            Client::V5(c) => {
                let mut p = rumqttc::v5::mqttbytes::v5::Publish::new("", qos5(qos), Vec::new(), None);
                p.pkid = pkid;
                c.unsealed_inner().try_ack(&p).is_ok()
            }
        }
    }
    pub(crate) fn stats(&self) -> Stats {
        match self {
            Client::V4(c) => c.stats(),
            Client::V5(c) => c.stats(),
        }
    }
}

/// `-d`: one line per event.
fn debug_line(ev: &Ev, other: &dyn core::fmt::Debug) {
    match ev {
        Ev::Verified(m) => eprintln!(
            "mqseal: debug: received PUBLISH (q{}, r{}, d{}, '{}', ... ({} bytes)): verified, sender {} key {} counter {}",
            m.qos as u8,
            u8::from(m.retain),
            u8::from(m.dup),
            m.topic,
            m.payload.len(),
            m.header.sender_id,
            m.header.key_id,
            m.header.counter
        ),
        Ev::Plain { topic, payload, qos, retain, .. } => eprintln!(
            "mqseal: debug: received PUBLISH (q{qos}, r{}, '{topic}', ... ({} bytes)): plain (allowlisted)",
            u8::from(*retain),
            payload.len()
        ),
        Ev::Rejected { topic, reason, retain, .. } => eprintln!(
            "mqseal: debug: received PUBLISH (r{}, '{topic}'): rejected: {reason} ({})",
            u8::from(*retain),
            reason.code()
        ),
        _ => eprintln!("mqseal: debug: {other:?}"),
    }
}

/// The CLI's view of any MQTT 3.1.1 event but a pending one.
pub(crate) fn classify4(ev: &SealedEvent) -> Ev {
    match ev {
        SealedEvent::Verified(_) | SealedEvent::Plain(_) | SealedEvent::Rejected(_) => ev4(ev),
        SealedEvent::Other(Event::Incoming(Incoming::ConnAck(c))) => {
            Ev::ConnAck { session_present: c.session_present, max_packet_size: None }
        }
        SealedEvent::Other(Event::Incoming(Incoming::SubAck(a))) => {
            Ev::SubAck { granted: a.return_codes.iter().all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))) }
        }
        SealedEvent::Other(
            Event::Incoming(Incoming::PubAck(_) | Incoming::PubComp(_)) | Event::Outgoing(Outgoing::Publish(0)),
        ) => Ev::PublishDone,
        SealedEvent::Other(Event::Outgoing(Outgoing::Disconnect)) => Ev::Disconnected,
        _ => Ev::Other,
    }
}

/// The CLI's view of any MQTT 5 event but a pending one.
pub(crate) fn classify5(ev: &v5::SealedEvent) -> Ev {
    use rumqttc::v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
    match ev {
        v5::SealedEvent::Verified(_) | v5::SealedEvent::Plain(_) | v5::SealedEvent::Rejected(_) => ev5(ev),
        v5::SealedEvent::Other(rumqttc::v5::Event::Incoming(Packet::ConnAck(c))) => Ev::ConnAck {
            session_present: c.session_present,
            max_packet_size: c.properties.as_ref().and_then(|p| p.max_packet_size),
        },
        v5::SealedEvent::Other(rumqttc::v5::Event::Incoming(Packet::SubAck(a))) => {
            Ev::SubAck { granted: a.return_codes.iter().all(|c| matches!(c, SubscribeReasonCode::Success(_))) }
        }
        v5::SealedEvent::Other(
            rumqttc::v5::Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))
            | rumqttc::v5::Event::Outgoing(Outgoing::Publish(0)),
        ) => Ev::PublishDone,
        v5::SealedEvent::Other(rumqttc::v5::Event::Outgoing(Outgoing::Disconnect)) => Ev::Disconnected,
        _ => Ev::Other,
    }
}

impl Loop {
    pub(crate) fn opener(&self) -> &FleetOpener {
        match self {
            Loop::V4(l) => l.opener(),
            Loop::V5(l) => l.opener(),
        }
    }

    pub(crate) fn opener_mut(&mut self) -> &mut FleetOpener {
        match self {
            Loop::V4(l) => l.opener_mut(),
            Loop::V5(l) => l.opener_mut(),
        }
    }

    pub(crate) async fn poll(&mut self, debug: bool) -> Result<Ev, String> {
        let explain = |e: &dyn core::fmt::Display| connect::explain(&e.to_string());
        let shown = |out: Ev, ev: &dyn core::fmt::Debug| {
            if debug {
                debug_line(&out, ev);
            }
            out
        };
        match self {
            Loop::V4(l) => match l.poll().await.map_err(|e| explain(&e))? {
                SealedEvent::Pending(p) => Ok(Ev::Pending(Box::new(Held::V4(p)))),
                ev => Ok(shown(classify4(&ev), &ev)),
            },
            Loop::V5(l) => match l.poll().await.map_err(|e| explain(&e))? {
                v5::SealedEvent::Pending(p) => Ok(Ev::Pending(Box::new(Held::V5(p)))),
                ev => Ok(shown(classify5(&ev), &ev)),
            },
        }
    }
}

/// A sealed will: topic, envelope, QoS, retain.
pub(crate) struct Will {
    topic: String,
    envelope: Vec<u8>,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
}

pub(crate) fn build(
    c: &Common,
    target: &Target,
    role: &str,
    clean: bool,
    protection: Protection,
    will: Option<Will>,
    manual_acks: bool,
) -> (Client, Loop) {
    let mut net = NetworkOptions::new();
    net.set_connection_timeout(c.connect_timeout);
    let protection = match c.max_packet_size {
        Some(max) => protection.max_packet_size(max as usize),
        None => protection,
    };
    if connect::is_v5(c) {
        let mut o = connect::options_v5(c, target, role, clean);
        if let Some(w) = will {
            o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
                w.topic,
                w.envelope,
                qos5(w.qos),
                w.retain,
                None,
            ));
        }
        o.set_network_options(net);
        o.set_manual_acks(manual_acks);
        let (client, el) = v5::SealedClient::new(o, request_capacity(manual_acks), protection);
        (Client::V5(client), Loop::V5(Box::new(el)))
    } else {
        let mut o = connect::options_v4(c, target, role, clean);
        if let Some(w) = will {
            o.set_last_will(rumqttc::LastWill::new(w.topic, w.envelope, qos4(w.qos), w.retain));
        }
        o.set_manual_acks(manual_acks);
        let (client, mut el) = SealedClient::new(o, request_capacity(manual_acks), protection);
        el.eventloop.set_network_options(net);
        (Client::V4(client), Loop::V4(Box::new(el)))
    }
}

/// The client's request channel: with manual acks, room for the acks of a
/// whole store batch, which are queued without polling the event loop in
/// between (a full channel would block them, and the loop, for good).
const fn request_capacity(manual_acks: bool) -> usize {
    if manual_acks {
        64 + 2 * STORE_BATCH
    } else {
        64
    }
}

/// Polls until the broker accepts the connection; returns the CONNACK's
/// session-present flag and (MQTT 5) maximum packet size.
pub(crate) async fn connect(el: &mut Loop, target: &Target, c: &Common) -> Result<(bool, Option<u32>)> {
    let timeout = c.connect_timeout;
    if c.debug {
        eprintln!("mqseal: debug: connecting to {} (MQTT {})", target.display, if connect::is_v5(c) { 5 } else { 3 });
    }
    let deadline = Instant::now() + Duration::from_secs(timeout + 1);
    loop {
        let ev = tokio::time::timeout_at(deadline, el.poll(c.debug))
            .await
            .map_err(|_| anyhow!("cannot connect to broker at {}: timed out after {timeout} s", target.display))?;
        match ev {
            Ok(Ev::ConnAck { session_present, max_packet_size }) => return Ok((session_present, max_packet_size)),
            Ok(_) => {}
            Err(e) => bail!("cannot connect to broker at {}: {e}", target.display),
        }
    }
}

/// A publishing error; a counter-store failure names the store.
fn seal_error(e: mqseal_rumqttc::Error, store: &str) -> anyhow::Error {
    match e {
        mqseal_rumqttc::Error::Seal(mqseal::Error::CounterStore(kind)) => {
            let hint = match kind {
                StoreError::Conflict => " (another writer changed it: two publishers must never share a sender id)",
                StoreError::LeaseLost => {
                    " (this process was paused or cut off from Redis past --lease-ttl; start it again to lease an id)"
                }
                _ => "",
            };
            anyhow!("sealing failed: {store}: {kind}{hint}; nothing more was sealed")
        }
        e => anyhow!(e),
    }
}

/// Options that need MQTT 5.
fn check_common(c: &Common) -> Result<()> {
    if c.session_expiry.is_some() && !connect::is_v5(c) {
        bail!("-x (session expiry interval) needs MQTT 5: add -V 5");
    }
    Ok(())
}

/// A topic name, checked by the core as every binding does, with
/// mosquitto_pub's wording.
pub(crate) fn check_publish_topic(topic: &str, what: &str) -> Result<()> {
    match mqseal::check_topic_name(topic) {
        Ok(()) => Ok(()),
        Err(mqseal::Error::TopicTooLong) => bail!("invalid {what} topic: longer than 65535 bytes"),
        Err(_) => bail!(
            "invalid {what} topic '{topic}', does it contain '+' or '#'? (a topic name is non-empty and holds no \
             wildcard or U+0000)"
        ),
    }
}

/// A topic filter, checked by the core, with mosquitto_sub's wording.
pub(crate) fn check_filter(filter: &str, what: &str) -> Result<()> {
    match mqseal::check_topic_filter(filter) {
        Ok(()) => Ok(()),
        Err(mqseal::Error::TopicTooLong) => bail!("invalid {what} topic: longer than 65535 bytes"),
        Err(_) => bail!(
            "invalid {what} topic '{filter}', are all '+' and '#' wildcards correct? ('#' only as the whole last \
             level, '+' only as a whole level, not empty)"
        ),
    }
}

/// Bytes of the varint remaining length of a packet (1 to 4).
fn len_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The largest size of the PUBLISH packet carrying `payload_len` bytes
/// (sealed: plus the envelope's maximum overhead).
fn publish_packet_size(topic: &str, qos: u8, v5: bool, payload_len: usize) -> usize {
    let rem = 2 + topic.len() + if qos > 0 { 2 } else { 0 } + usize::from(v5) + payload_len;
    1 + len_len(rem) + rem
}

/// The limit a publish must respect, and its name for messages.
fn send_limit(c: &Common, broker: Option<u32>) -> (usize, String) {
    let user = c.max_packet_size.map(|m| (m as usize, format!("--max-packet-size {m}")));
    let broker =
        broker.map(|m| (m as usize, format!("the broker's maximum packet size of {m} bytes (MQTT 5 CONNACK)")));
    let mqtt =
        (mqseal_rumqttc::MQTT_MAX_PACKET_SIZE as usize, "the MQTT maximum packet size (268435460 bytes)".to_owned());
    [user, broker, Some(mqtt)].into_iter().flatten().min_by_key(|(m, _)| *m).unwrap_or((0, String::new()))
}

/// `mqseal pub`.
pub async fn run_pub(args: PubArgs) -> Result<ExitCode> {
    check_common(&args.common)?;
    if args.member.is_some() {
        return crate::member::run_pub(args).await;
    }
    let keys = args.common.keys.load()?;
    let key = keys.seal_key.ok_or_else(|| anyhow!("the key file has no key to seal with (set \"primary\")"))?;
    let suite: Suite =
        args.suite.parse().map_err(|_| anyhow!("unknown suite {:?} (chacha20poly1305 or hmac-sha256)", args.suite))?;
    let target = connect::target(&args.common)?;
    let topic = match (&args.topic, &target.url_topic) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => bail!("missing -t TOPIC (or a topic as the path of an mqtt:// -L URL)"),
    };
    check_publish_topic(&topic, "publish")?;
    if let Some(w) = &args.will_topic {
        check_publish_topic(w, "will")?;
    }
    if !(args.repeat_delay.is_finite() && args.repeat_delay >= 0.0) {
        bail!("--repeat-delay {}: not a number of seconds", args.repeat_delay);
    }
    let start = match (args.new_counter_file || args.new_lease_counters, args.clock_floor) {
        (true, _) => Start::New,
        (false, true) => Start::ClockFloor,
        (false, false) => Start::Resume,
    };
    // The lease (renewed by its thread) lives until the process ends and is
    // released then; the file store holds the file's lock as long (it moves
    // into the sealer, the sealer into the client): a second publisher on
    // the file fails here, before connecting or sealing.
    let (sender_id, store, store_name, _lease) = if let Some(url) = &args.sender_lease {
        let lease = state::lease_sender_id(
            url,
            key.id(),
            args.lease_ids.as_deref().unwrap_or_default(),
            args.lease_ttl,
            &args.lease_prefix,
            start,
        )?;
        let name = format!("leased counter of sender id {} in {url}", lease.sender_id());
        let store: Box<dyn CounterStore + Send> = Box::new(lease.counter_store());
        (lease.sender_id(), store, name, Some(lease))
    } else {
        let sender_id = args.sender_id.ok_or_else(|| {
            anyhow!(
                "missing --sender-id (or MQSEAL_SENDER_ID, or --sender-lease): every publisher needs its own sender id"
            )
        })?;
        let counter_file = state::counter_path(args.counter_file.as_deref(), key.id(), sender_id)?;
        let store: Box<dyn CounterStore + Send> = Box::new(state::open_counter(&counter_file, start)?);
        (sender_id, store, format!("counter file {}", counter_file.display()), None)
    };

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
    } else if args.null_message {
        Some(Vec::new())
    } else {
        bail!("nothing to publish: give -m MESSAGE, -f FILE, -s, -l or -n");
    };

    // The file is rewritten (and fsynced) once per block, and a crash skips
    // at most the rest of one block.
    let block = args.reservation_block.unwrap_or(if single.is_some() { 1 } else { mqseal::DEFAULT_RESERVATION_BLOCK });
    let sealer = if start == Start::ClockFloor {
        Sealer::new_with_clock_floor(&key, sender_id, suite, store, mqseal::system_clock_millis())
    } else {
        Sealer::new(&key, sender_id, suite, store)
    };
    let mut sealer = sealer.map_err(|e| anyhow!("{store_name}: {e}"))?.with_reservation_block(block)?;
    if let Err(e) = sealer.next_counter() {
        bail!("{store_name}: {e}: nothing was sealed (use another --sender-id or a new key)");
    }
    if args.timestamps {
        sealer = sealer.with_timestamps(mqseal::system_clock);
    }
    let will = match (&args.will_topic, &args.will_payload) {
        (Some(t), Some(p)) => Some(Will {
            topic: t.clone(),
            envelope: sealer.seal_to_vec(t, p.as_bytes()).map_err(|e| anyhow!("sealing the will failed: {e}"))?,
            qos: args.will_qos,
            retain: args.will_retain,
        }),
        _ => None,
    };
    let (client, mut el) = build(&args.common, &target, "pub", true, Protection::publish_only(sealer), will, false);
    let (_, broker_max) = connect(&mut el, &target, &args.common).await?;
    let broker_max = std::sync::Arc::new(core::sync::atomic::AtomicU32::new(broker_max.unwrap_or(u32::MAX)));

    let (qos, retain, v5) = (args.qos, args.retain, connect::is_v5(&args.common));
    let producer_client = client.clone_handle();
    let store_path = store_name.clone();
    let common = args.common.clone();
    let null = args.null_message;
    let (repeat, delay) = (args.repeat.unwrap_or(1), Duration::from_secs_f64(args.repeat_delay));
    let limit_of = broker_max.clone();
    let producer = tokio::spawn(async move {
        let send = |payload: Vec<u8>| {
            let (client, topic, store_path, common, limit_of) =
                (&producer_client, &topic, &store_path, &common, &limit_of);
            async move {
                let broker = Some(limit_of.load(core::sync::atomic::Ordering::Relaxed)).filter(|&m| m != u32::MAX);
                let (limit, name) = send_limit(common, broker);
                let overhead = if null { 0 } else { mqseal::MAX_OVERHEAD };
                let size = publish_packet_size(topic, qos, v5, payload.len() + overhead);
                if size > limit {
                    bail!(
                        "message too large: {} bytes make a {}PUBLISH packet of up to {size} bytes, above {name}; \
                         nothing was sent",
                        payload.len(),
                        if null { "" } else { "sealed " }
                    );
                }
                if null {
                    client.publish_null(topic, qos, retain).await
                } else {
                    client.publish(topic, qos, retain, &payload).await.map_err(|e| seal_error(e, store_path))
                }
            }
        };
        let mut sent = 0u64;
        if let Some(m) = single {
            for i in 0..repeat {
                if i > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                send(m.clone()).await?;
                sent += 1;
            }
        } else {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines.next_line().await.context("cannot read stdin")? {
                send(line.into_bytes()).await?;
                sent += 1;
            }
        }
        Ok::<u64, anyhow::Error>(sent)
    });
    tokio::pin!(producer);

    let mut done = 0u64;
    let mut total: Option<u64> = None;
    let mut lost_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(500);
    let give_up = Duration::from_secs(args.reconnect_timeout);
    loop {
        if total == Some(done) {
            break;
        }
        tokio::select! {
            r = &mut producer, if total.is_none() => {
                let n = r.map_err(|e| anyhow!("publisher task failed: {e}"))??;
                total = Some(n);
            }
            ev = el.poll(args.common.debug) => match ev {
                Ok(Ev::PublishDone) => done += 1,
                Ok(Ev::ConnAck { max_packet_size, .. }) => {
                    if lost_since.take().is_some() {
                        eprintln!("mqseal: reconnected to {}; unacknowledged messages are sent again", target.display);
                    }
                    broker_max.store(max_packet_size.unwrap_or(u32::MAX), core::sync::atomic::Ordering::Relaxed);
                    backoff = Duration::from_millis(500);
                }
                Ok(_) => {}
                Err(e) => {
                    let since = *lost_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= give_up {
                        bail!(
                            "connection to {} lost and not re-established within {} s (--reconnect-timeout): {e}; \
                             {} message(s) not acknowledged",
                            target.display,
                            args.reconnect_timeout,
                            total.map_or_else(|| "some".to_owned(), |t| (t - done).to_string())
                        );
                    }
                    eprintln!("mqseal: connection to {} lost: {e}; reconnecting in {:.1} s", target.display, backoff.as_secs_f64());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
    client.disconnect().await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(ev) = el.poll(args.common.debug).await {
            if matches!(ev, Ev::Disconnected) {
                break;
            }
        }
    })
    .await;
    Ok(ExitCode::SUCCESS)
}

fn hex(out: &mut Vec<u8>, bytes: &[u8], upper: bool) {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    for b in bytes {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 15)]);
    }
}

/// `-F`: mosquitto_sub's format fields and escapes, and mqseal's.
fn format_message(fmt: &str, topic: &str, meta: Option<&Meta>, payload: &[u8], qos: u8, retain: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + fmt.len());
    let mut chars = fmt.chars();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.extend_from_slice(topic.as_bytes()),
                Some('p') => out.extend_from_slice(payload),
                Some('x') => hex(&mut out, payload, false),
                Some('X') => hex(&mut out, payload, true),
                Some('l') => out.extend_from_slice(payload.len().to_string().as_bytes()),
                Some('q') => out.extend_from_slice(qos.to_string().as_bytes()),
                Some('r') => out.push(if retain { b'1' } else { b'0' }),
                Some('S') => {
                    out.extend_from_slice(meta.map(|m| m.header.sender_id.to_string()).unwrap_or_default().as_bytes())
                }
                Some('K') => {
                    out.extend_from_slice(meta.map(|m| m.header.key_id.to_string()).unwrap_or_default().as_bytes())
                }
                Some('C') => {
                    out.extend_from_slice(meta.map(|m| m.header.counter.to_string()).unwrap_or_default().as_bytes())
                }
                Some('T') => out.extend_from_slice(
                    meta.and_then(|m| m.header.timestamp).map(|t| t.to_string()).unwrap_or_default().as_bytes(),
                ),
                Some('%') => out.push(b'%'),
                Some(other) => {
                    out.push(b'%');
                    out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
                None => out.push(b'%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('r') => out.push(b'\r'),
                Some('0') => out.push(0),
                Some('e') => out.push(0x1b),
                Some('\\') => out.push(b'\\'),
                Some(other) => {
                    out.push(b'\\');
                    out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
                None => out.push(b'\\'),
            },
            c => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    out
}

fn print_message(
    out: &mut impl Write,
    args: &SubArgs,
    topic: &str,
    meta: Option<&Meta>,
    payload: &[u8],
    qos: u8,
    retain: bool,
) {
    let mut line = Vec::with_capacity(payload.len() + 64);
    if let Some(fmt) = &args.format {
        line = format_message(fmt, topic, meta, payload, qos, retain);
    } else {
        if args.verbose {
            line.extend_from_slice(topic.as_bytes());
            line.push(b' ');
        }
        if args.meta {
            let text = match meta {
                Some(m) => {
                    let mut t =
                        format!("[sender={} key={} counter={}", m.header.sender_id, m.header.key_id, m.header.counter);
                    if let Some(ts) = m.header.timestamp {
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
    }
    if !args.no_newline {
        line.push(b'\n');
    }
    // A closed stdout (e.g. `| head`) is not worth an error message.
    let _ = out.write_all(&line).and_then(|()| out.flush());
}

/// What the line formats show of a verified message beyond its payload.
struct Meta {
    header: mqseal::Header,
    retain: bool,
    dup: bool,
}

/// An allowlisted plain message (`--plain-topic`).
pub(crate) fn print_plain(out: &mut impl Write, args: &SubArgs, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    print_message(out, args, topic, None, payload, qos, retain);
}

pub(crate) fn print_verified(out: &mut impl Write, args: &SubArgs, m: &VerifiedMessage) {
    let meta = Meta { header: m.header, retain: m.retain, dup: m.dup };
    print_message(out, args, &m.topic, Some(&meta), &m.payload, m.qos as u8, m.retain);
}

/// Prints a batch whose replay state is now durable, in one write: a kill
/// -9 after the save and before it is the only way to lose these messages
/// (never to deliver one twice). Retained messages marked stale are not
/// printed.
pub(crate) fn print_durable(
    stdout: &mut impl Write,
    args: &SubArgs,
    batch: Vec<(VerifiedMessage, bool)>,
    received: &mut u64,
) {
    let mut out = Vec::new();
    for (m, stale) in batch {
        if !stale {
            print_verified(&mut out, args, &m);
            *received += 1;
        }
    }
    let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
}

pub(crate) fn print_stats(s: &Stats) {
    eprintln!(
        "mqseal: stats: accepted={} plain={} duplicate={} replayed={} forged={} unknown_key={} unsealed={} malformed={} policy={} oversized={} other={} held_back={} held_back_dropped={}",
        s.accepted, s.plain_accepted, s.duplicate, s.replayed, s.forged, s.unknown_key, s.unsealed, s.malformed, s.policy, s.oversized, s.other, s.held_back, s.held_back_dropped
    );
}

/// The receiver's policy from the command line, checked as a whole by the
/// core; its refusals are worded for the flags.
pub(crate) fn opener_config(args: &SubArgs) -> Result<OpenerConfig> {
    let mut config = OpenerConfig::default();
    config.window = args.window;
    config.gaps = args.gaps;
    config.max_age = args.max_age;
    config.max_skew = args.max_skew;
    config.eviction = if args.eviction == "lru" { Eviction::LeastRecentlyUsed } else { Eviction::RejectNew };
    match config.check() {
        Ok(()) => Ok(config),
        Err(ConfigField::Window) => {
            bail!("--window {} is out of range: 1..={}", config.window, mqseal::MAX_WINDOW)
        }
        Err(ConfigField::Gaps) => bail!("--gaps {} is out of range: 0..={}", config.gaps, mqseal::MAX_GAPS),
        Err(ConfigField::Eviction) => bail!(
            "--eviction lru needs --max-age: an evicted sender's replay window is forgotten, so its old \
             messages would open again unless they expire (the core refuses LRU eviction without a maximum age)"
        ),
        Err(field) => bail!("invalid receiver configuration: {}: {}", field.name(), field.rule()),
    }
}

/// Resolves when SIGINT or SIGTERM arrives (SIGINT only off Unix).
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// `--out FILE`: the exactly-once sink (docs/EXACTLY_ONCE.md). The file
/// (a core `BatchLog`), the store that stages each batch, the owner id (the
/// MQTT client id) and an opener that verifies staged envelopes again.
struct OutSink {
    log: mqseal::BatchLog,
    store: mqseal_rumqttc::RedisReplayStore,
    owner: String,
    opener: FleetOpener,
    next_batch: u64,
    /// A staged call failed: its batch may be staged without an answer;
    /// recover before writing the next one.
    recover: bool,
}

impl OutSink {
    /// Appends every staged batch the file lacks (verified again, no
    /// window check: the shared windows hold them already), then deletes
    /// the staged batches; sets the next batch number.
    async fn recover(&mut self, args: &SubArgs) -> Result<usize> {
        let staged = self.store.staged(&self.owner).await.map_err(|e| anyhow!("--out recovery: {e}"))?;
        let numbers: Vec<u64> = staged.iter().map(|(n, _)| *n).collect();
        let plan = mqseal::recovery_plan(self.log.last_batch(), &numbers);
        let mut written = 0;
        for n in &plan.append {
            let Some((_, bytes)) = staged.iter().find(|(m, _)| m == n) else { continue };
            let records =
                mqseal::parse_pending_batch(bytes).map_err(|e| anyhow!("--out recovery: staged batch {n}: {e}"))?;
            let mut body = Vec::new();
            for r in records {
                let topic = String::from_utf8_lossy(r.topic);
                match self
                    .opener
                    .open_pending_to_vec(topic.as_ref(), r.envelope, Some(mqseal::system_clock()))
                    .and_then(|p| p.resolve(mqseal::WindowVerdict::Accepted))
                {
                    Ok(o) => {
                        let meta = Meta { header: o.header, retain: r.retain, dup: false };
                        print_message(&mut body, args, &topic, Some(&meta), &o.payload, r.qos, r.retain);
                        written += 1;
                    }
                    Err(e) => eprintln!(
                        "mqseal: --out recovery: a staged message on {topic} no longer opens: {e} ({})",
                        e.code()
                    ),
                }
            }
            self.log.append(*n, &body).map_err(|e| anyhow!("{e}"))?;
        }
        self.store.unstage(&self.owner, &plan.delete).await.map_err(|e| anyhow!("--out recovery: {e}"))?;
        self.next_batch = plan.next_batch;
        self.recover = false;
        Ok(written)
    }

    /// Batch `n`'s accepted lines, durable in the file when this returns
    /// (or, after a failed call, every staged batch the file lacks).
    async fn write(&mut self, args: &SubArgs, n: u64, body: &[u8]) -> Result<()> {
        if self.recover {
            self.recover(args).await?;
            return Ok(());
        }
        if !body.is_empty() {
            self.log.append(n, body).map_err(|e| anyhow!("{e}"))?;
        }
        // Best effort: a staged batch left behind is deleted by the next
        // recovery (it is in the file).
        let (store, owner) = (self.store.clone(), self.owner.clone());
        tokio::spawn(async move { store.unstage(&owner, &[n]).await });
        Ok(())
    }
}

/// `mqseal sub`.
pub async fn run_sub(args: SubArgs) -> Result<ExitCode> {
    check_common(&args.common)?;
    if args.member.is_some() {
        return crate::member::run_sub(args).await;
    }
    let keys = args.common.keys.load()?;
    let target = connect::target(&args.common)?;
    let topics: Vec<String> =
        if args.topics.is_empty() { target.url_topic.iter().cloned().collect() } else { args.topics.clone() };
    if topics.is_empty() {
        bail!("missing -t TOPIC (or a topic filter as the path of an mqtt:// -L URL)");
    }
    for t in &topics {
        check_filter(t, "subscription")?;
    }
    for f in &args.plain_topics {
        check_filter(f, "--plain-topic")?;
    }
    // A growable sender table (up to mqseal::DEFAULT_MAX_SENDERS): a
    // subscriber to `fleet/#` hears from every device of the fleet.
    let recovery_opener = match &args.out {
        Some(_) => Some(
            FleetOpener::with_config(keys.ring.clone(), &opener_config(&args)?)
                .map_err(|e| anyhow!("invalid receiver configuration: {e}"))?,
        ),
        None => None,
    };
    let mut opener: FleetOpener = FleetOpener::with_config(keys.ring, &opener_config(&args)?)
        .map_err(|e| anyhow!("invalid receiver configuration: {e}"))?
        .with_clock(mqseal::system_clock);
    // Opened (and locked) before connecting: a second subscriber on the
    // same file, or an unreadable file, fails before any message arrives.
    // Group commit: a message is printed once a save recording it is
    // durable, so a crash never lets a printed message be accepted again
    // after the restart; many messages share one save.
    let store = match &args.replay_redis {
        Some(url) => Some(
            mqseal_rumqttc::RedisReplayStore::connect(url)
                .await
                .map_err(|e| anyhow!("--replay-redis {url}: {e}"))?
                .with_prefix(args.replay_prefix.clone())
                .with_ttl(args.replay_ttl.map(Duration::from_secs)),
        ),
        None => None,
    };
    // --out: the file locked and its torn tail cut, then what a dead run
    // staged appended, all before connecting.
    let mut sink = match (&args.out, &store, recovery_opener) {
        (Some(path), Some(store), Some(opener)) => {
            if args.qos == 0 {
                bail!("--out needs -q 1 or 2: a QoS 0 message the broker handed over is gone if this process dies");
            }
            let owner = args.common.client_id.clone().unwrap_or_default();
            let log = mqseal::BatchLog::open(path).map_err(|e| anyhow!("--out: {e}"))?;
            if log.truncated() > 0 {
                eprintln!("mqseal: --out {}: cut a torn last batch ({} bytes)", path.display(), log.truncated());
            }
            let mut sink = OutSink { log, store: store.clone(), owner, opener, next_batch: 1, recover: false };
            let n = sink.recover(&args).await?;
            if n > 0 {
                eprintln!("mqseal: --out {}: appended {n} messages staged by an earlier run", path.display());
            }
            Some(sink)
        }
        _ => None,
    };
    let mut commit = match &args.replay_state {
        Some(path) => Some(GroupCommit::<(VerifiedMessage, bool)>::new(ReplayState::open(path, &mut opener)?)),
        None => None,
    };
    let mut protection = Protection::receive_only(opener);
    for f in &args.plain_topics {
        protection = protection.allow_plain_topic(f.clone())?;
    }
    let shared = args.replay_redis.is_some();
    if shared {
        protection = protection.shared_replay_windows();
    }
    let (client, mut el) = build(&args.common, &target, "sub", !args.persistent, protection, None, shared);
    let mut held = Batch::new(connect::is_v5(&args.common));
    type Asking = core::pin::Pin<
        Box<
            dyn core::future::Future<
                    Output = Option<(Batch, Result<Vec<mqseal::WindowVerdict>, mqseal_rumqttc::StoreUnavailable>)>,
                > + Send,
        >,
    >;
    let mut asking: Option<Asking> = None;
    let mut retry_at: Option<Instant> = None;
    let mut outage = false;
    let mut queue_full = false;
    // Messages of the batch being asked (they count towards the bound).
    let mut asking_len = 0usize;
    // --out: the number of the batch being asked.
    let mut asking_batch = 0u64;
    let max_held_back =
        args.max_held_back.map_or(mqseal_rumqttc::DEFAULT_MAX_HELD_BACK, |n| usize::try_from(n).unwrap_or(usize::MAX));
    // Connections so far (each CONNACK), to acknowledge on the right one.
    let mut conn = 0u64;
    // Acknowledgements to queue: never awaited in the loop (a full request
    // channel would stop the event loop that drains it).
    let mut acks: std::collections::VecDeque<(u8, u16)> = std::collections::VecDeque::new();
    let deadline = args.timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let stop = stop_signal();
    tokio::pin!(stop);
    let (session_present, _) = tokio::select! {
        r = connect(&mut el, &target, &args.common) => r?,
        _ = &mut stop => (false, None),
    };
    let mut pending_subacks = 0usize;
    if !session_present || !args.persistent {
        for t in &topics {
            client.subscribe(t, args.qos).await?;
            pending_subacks += 1;
        }
    }
    if args.exit_after_subscribe && pending_subacks == 0 {
        // A resumed session: the subscriptions exist already.
        let _ = client.disconnect().await;
        return Ok(ExitCode::SUCCESS);
    }

    let mut stdout = std::io::stdout().lock();
    let mut received = 0u64;
    let mut backoff = Duration::from_millis(500);
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let code = loop {
        if args.count.is_some_and(|c| received >= c) {
            break ExitCode::SUCCESS;
        }
        // Accepted messages still waiting for their save count towards
        // --count: no more are taken once the count is reached.
        while let Some(&(qos, pkid)) = acks.front() {
            if !client.try_ack(qos, pkid) {
                break;
            }
            acks.pop_front();
        }
        let in_flight = (commit.as_ref().map_or(0, GroupCommit::in_flight) + held.len()) as u64;
        // Shared windows: ask the store about what is held, one pipelined
        // batch at a time (messages arriving meanwhile form the next one).
        if let Some(store) = store.as_ref().filter(|_| asking.is_none() && retry_at.is_none() && held.len() > 0) {
            let batch = held.take(STORE_BATCH);
            asking_len = batch.len();
            if args.common.debug {
                eprintln!("mqseal: debug: asking the replay store about {} messages", batch.len());
            }
            let task = match &mut sink {
                Some(k) => {
                    asking_batch = k.next_batch;
                    k.next_batch += 1;
                    tokio::spawn(batch.ask_staged(store.clone(), k.owner.clone(), asking_batch))
                }
                None => tokio::spawn(batch.ask(store.clone())),
            };
            asking = Some(Box::pin(async move { task.await.ok() }));
        }
        // A full held-back queue while the store answers: read no more until
        // it has (backpressure). Only while it cannot decide are messages
        // beyond the bound dropped (polling must go on for the keep-alive).
        let take_more =
            args.count.is_none_or(|c| received + in_flight < c) && (outage || held.len() + asking_len < max_held_back);
        if let Some(c) = commit.as_mut().filter(|c| !c.busy() && c.has_pending()) {
            c.start(el.opener().snapshot().collect());
        }
        let saving = commit.as_ref().is_some_and(GroupCommit::busy);
        let ev = tokio::select! {
            biased;
            sig = &mut stop => {
                if args.common.debug {
                    eprintln!("mqseal: debug: {sig}: exiting");
                }
                break ExitCode::SUCCESS;
            }
            () = tokio::time::sleep_until(deadline.unwrap_or(far)) => {
                eprintln!("mqseal: timed out after {} s", args.timeout.unwrap_or(0));
                break ExitCode::from(EXIT_TIMEOUT);
            }
            durable = crate::state::durable_of(&mut commit), if saving => {
                print_durable(&mut stdout, &args, durable?, &mut received);
                continue;
            }
            done = async {
                match asking.as_mut() {
                    Some(f) => f.await,
                    None => core::future::pending().await,
                }
            }, if asking.is_some() => {
                asking = None;
                asking_len = 0;
                match done {
                    // The task cannot fail short of a panic; its messages
                    // are then unacknowledged and come again after a reconnect.
                    None => {}
                    Some((batch, Ok(verdicts))) => {
                        queue_full = false;
                        if outage {
                            outage = false;
                            eprintln!("mqseal: replay store reachable again: delivering {} held messages", batch.len() + held.len());
                        }
                        // A message from an earlier connection is handled but not
                        // acknowledged: its packet id is not this connection's
                        // (the broker's copy comes again and is a duplicate).
                        // The accepted messages of the batch go out in one
                        // write, right after the store's answer. The store
                        // recorded them before answering, so a kill -9 from
                        // then until this write loses the batch (at most
                        // once; SHARED_REPLAY.md).
                        let mut out = Vec::new();
                        for (conn_no, ev) in batch.resolve(verdicts) {
                            match ev {
                                Ev::Verified(m) => {
                                    print_verified(&mut out, &args, &m);
                                    received += 1;
                                    if conn_no == conn {
                                        acks.push_back((m.qos as u8, m.pkid));
                                    }
                                }
                                Ev::Rejected { topic, reason, qos, pkid, .. } => {
                                    eprintln!("mqseal: rejected message on {topic}: {reason} ({})", reason.code());
                                    if conn_no == conn {
                                        acks.push_back((qos, pkid));
                                    }
                                }
                                _ => {}
                            }
                        }
                        match &mut sink {
                            // Durable before any of it is acknowledged.
                            Some(k) => k.write(&args, asking_batch, &out).await?,
                            None => {
                                let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
                            }
                        }
                    }
                    Some((batch, Err(e))) => {
                        if let Some(k) = &mut sink {
                            k.recover = true;
                        }
                        held.unshift(batch);
                        if !outage {
                            outage = true;
                            eprintln!(
                                "mqseal: {e}: holding verified messages back (not printed, not acknowledged) until it is reachable again"
                            );
                        }
                        if args.common.debug {
                            eprintln!("mqseal: debug: {} messages held back", held.len());
                        }
                        retry_at = Some(Instant::now() + STORE_RETRY);
                    }
                }
                continue;
            }
            () = tokio::time::sleep_until(retry_at.unwrap_or(far)), if retry_at.is_some() => {
                retry_at = None;
                continue;
            }
            ev = el.poll(args.common.debug), if take_more => ev,
        };
        let retained = match &ev {
            Ok(Ev::Verified(m)) => Some((m.topic.clone(), m.retain)),
            Ok(Ev::Plain { topic, retain, .. } | Ev::Rejected { topic, retain, .. }) => Some((topic.clone(), *retain)),
            _ => None,
        };
        if let Some((topic, retain)) = &retained {
            if args.retained_only && !retain {
                break ExitCode::SUCCESS;
            }
            if args.remove_retained && *retain {
                client.publish_null(topic, 0, true).await?;
            }
        }
        let stale = retained.is_some_and(|(_, r)| r) && args.no_stale;
        // Manual acks (--replay-redis): a message is acknowledged once it is
        // handled; a pending one once the store decided.
        if let Ok(Ev::Plain { qos, pkid, .. } | Ev::Rejected { qos, pkid, .. }) = &ev {
            if shared {
                acks.push_back((*qos, *pkid));
            }
        }
        match ev {
            Ok(Ev::Pending(p)) => {
                // Fail closed beyond the bound: drop, count, never deliver.
                if outage && held.len() + asking_len >= max_held_back {
                    let topic = p.drop_held_back();
                    if !queue_full {
                        queue_full = true;
                        eprintln!(
                            "mqseal: held-back queue full ({max_held_back}, --max-held-back): dropping verified messages \
                             undelivered (not printed, not acknowledged) until the replay store decides again"
                        );
                    }
                    if args.common.debug {
                        eprintln!("mqseal: debug: dropped a held-back message on {topic}");
                    }
                } else {
                    held.push(conn, *p);
                }
            }
            Ok(Ev::Verified(m)) => match &mut commit {
                Some(c) => c.push((m, stale), || el.opener().snapshot().collect()),
                None => {
                    if !stale {
                        print_verified(&mut stdout, &args, &m);
                        received += 1;
                    }
                }
            },
            Ok(Ev::Plain { topic, payload, qos, retain, .. }) => {
                if !stale {
                    print_message(&mut stdout, &args, &topic, None, &payload, qos, retain);
                    received += 1;
                }
            }
            Ok(Ev::Rejected { topic, reason, .. }) => {
                let hint = if matches!(reason, Reject::TooLarge { .. }) { " (--max-packet-size)" } else { "" };
                eprintln!("mqseal: rejected message on {topic}: {reason}{hint} ({})", reason.code());
            }
            Ok(Ev::ConnAck { session_present, .. }) => {
                backoff = Duration::from_millis(500);
                conn += 1;
                // Packet ids of the old connection mean nothing on this one.
                acks.clear();
                if !session_present {
                    for t in &topics {
                        client.subscribe(t, args.qos).await?;
                        pending_subacks += 1;
                    }
                }
            }
            Ok(Ev::SubAck { granted }) => {
                if !granted {
                    eprintln!("mqseal: the broker refused a subscription (not authorised, or an invalid filter)");
                }
                pending_subacks = pending_subacks.saturating_sub(1);
                if args.exit_after_subscribe && pending_subacks == 0 {
                    break ExitCode::SUCCESS;
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!(
                    "mqseal: connection to {} lost: {e}; reconnecting in {:.1} s",
                    target.display,
                    backoff.as_secs_f64()
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = &mut stop => break ExitCode::SUCCESS,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    // Whatever was accepted is saved, and printed, before leaving (also
    // after SIGINT or SIGTERM).
    if let Some(c) = &mut commit {
        while c.busy() || c.has_pending() {
            if !c.busy() {
                c.start(el.opener().snapshot().collect());
            }
            for (m, stale) in c.durable().await? {
                if !stale {
                    print_verified(&mut stdout, &args, &m);
                }
            }
        }
    }
    if args.stats {
        print_stats(&client.stats());
        if let Some(c) = &commit {
            eprintln!("mqseal: stats: replay_state_commits={}", c.commits);
        }
    }
    // Bounded: with manual acks the request channel may be full of acks
    // that only the event loop, not polled while this waits, would drain.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(ev) = el.poll(false).await {
            if matches!(ev, Ev::Disconnected) {
                break;
            }
        }
    })
    .await;
    Ok(code)
}
