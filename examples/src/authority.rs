//! `mqseal authority ...`: the key authority of a fleet (docs/PROTOCOL.md
//! section 14) over the `mqseal-authority` registry. Every decision is the
//! registry's; this file parses arguments, prints, and moves bytes to and
//! from the broker.

use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use mqseal::{ControlTopics, Suite};
use mqseal_authority::{unix_now, Outgoing, Registry, Retained};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};

use crate::{connect, Common};

/// Default grace period of a rotation: how long the old key stays accepted
/// after the switch.
const DEFAULT_GRACE: &str = "24h";

/// `mqseal authority`.
#[derive(Args, Debug)]
pub struct AuthorityArgs {
    /// The registry file (SQLite, mode 0600; holds every group secret).
    #[arg(long, env = "MQSEAL_AUTHORITY_DB", default_value = "mqseal-authority.db", global = true)]
    registry: PathBuf,
    #[command(subcommand)]
    command: AuthorityCommand,
}

#[derive(Subcommand, Debug)]
enum AuthorityCommand {
    /// Create the registry and the authority's X25519 key pair; prints the
    /// public key (give it to every member).
    Init {
        /// Prefix of the control topics (authority to member).
        #[arg(long, default_value = mqseal::DEFAULT_CONTROL_PREFIX)]
        control_prefix: String,
        /// Prefix of the ack topics (member to authority).
        #[arg(long, default_value = mqseal::DEFAULT_ACK_PREFIX)]
        ack_prefix: String,
    },
    /// Groups.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Plan a rotation of a group: the new key is handed out now and
    /// members switch at --at by their own clock (default: in 30 s).
    Rotate {
        /// The group.
        group: String,
        /// Switch time: Unix seconds, +DURATION from now, or `now` (default:
        /// +30s, so that every connected member holds the new key before
        /// anyone seals with it; `now` loses the messages sealed under it
        /// before the others have it).
        #[arg(long)]
        at: Option<String>,
        /// How long the old key stays accepted after the switch (30d, 12h,
        /// 15m, 90s or seconds).
        #[arg(long, default_value = DEFAULT_GRACE)]
        grace: String,
    },
    /// Revoke a member: remove it from its groups and rotate each of them
    /// with a key it never gets (switch in 30 s unless --at says otherwise).
    Revoke {
        /// The member id.
        member: String,
        /// End the old keys' acceptance at the switch (drops messages in
        /// flight) instead of after --grace.
        #[arg(long)]
        hard: bool,
        /// Grace period of the old keys for a soft revoke.
        #[arg(long, default_value = DEFAULT_GRACE)]
        grace: String,
        /// Switch time: Unix seconds, +DURATION from now, or `now` (default:
        /// +30s: every member gets the new key before anyone seals with it;
        /// the revoked member reads what is sealed until the switch).
        #[arg(long)]
        at: Option<String>,
    },
    /// Which member applied which epoch, and who is behind.
    Status,
    /// Connect to the broker: publish pending control states (retained,
    /// QoS 1), record acknowledgements, run scheduled rotations. Refuses to
    /// start when the broker retains newer states than the registry issued
    /// (a registry restored from a backup).
    Serve(Box<ServeArgs>),
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// Create a group with its first key, active now.
    Create {
        /// Group name (1 to 64 of A-Z a-z 0-9 . _ -).
        name: String,
        /// chacha20-poly1305 (encrypted) or hmac-sha256 (readable, authenticated).
        #[arg(long, default_value = "chacha20-poly1305")]
        suite: String,
    },
}

#[derive(Subcommand, Debug)]
enum MemberCommand {
    /// Enrol a member with its public key (`mqseal member init` prints it).
    Add {
        /// Member id (1 to 64 of A-Z a-z 0-9 . _ -).
        #[arg(long)]
        id: String,
        /// Its public key, `mqseal:x25519-public:v1:...`.
        #[arg(long)]
        public: String,
        /// Groups to join, comma-separated.
        #[arg(long, value_delimiter = ',')]
        group: Vec<String>,
    },
    /// Add a member to a group.
    Join {
        /// The member id.
        member: String,
        /// The group.
        group: String,
    },
}

/// `mqseal authority serve`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Rotate every group on this period (e.g. 30d), measured from its
    /// newest key's activation.
    #[arg(long)]
    rotate_every: Option<String>,
    /// How far ahead of a scheduled switch the new key is handed out.
    #[arg(long, default_value = "1h")]
    rotate_lead: String,
    /// Grace period of scheduled rotations.
    #[arg(long, default_value = DEFAULT_GRACE)]
    grace: String,
    /// Seconds between looks at the registry for changes made by other
    /// `mqseal authority` commands.
    #[arg(long, default_value_t = 1)]
    poll: u64,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// Parses `30d`, `12h`, `15m`, `90s` or plain seconds.
fn parse_duration(s: &str) -> Result<u64> {
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = num.parse().map_err(|_| anyhow!("bad duration {s:?} (expected e.g. 30d, 12h, 15m, 90s)"))?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => bail!("bad duration unit in {s:?} (s, m, h or d)"),
    };
    n.checked_mul(mult).ok_or_else(|| anyhow!("duration {s:?} too long"))
}

/// Parses Unix seconds or `+DURATION` from `now`.
/// The switch time of `rotate` / `revoke`: `--at`, or
/// [`mqseal_authority::DEFAULT_SWITCH_LEAD`] from now; `None` for `now`
/// (now, or just after the group's newest key if that is not before now).
fn switch_time(at: Option<&str>, now: u64) -> Result<Option<u64>> {
    match at {
        Some("now") => Ok(None),
        Some(a) => parse_time(a, now).map(Some),
        None => {
            now.checked_add(mqseal_authority::DEFAULT_SWITCH_LEAD).map(Some).ok_or_else(|| anyhow!("clock too far"))
        }
    }
}

fn parse_time(s: &str, now: u64) -> Result<u64> {
    match s.strip_prefix('+') {
        Some(d) => now.checked_add(parse_duration(d)?).ok_or_else(|| anyhow!("time {s:?} too far")),
        None => s.parse().map_err(|_| anyhow!("bad time {s:?} (Unix seconds or +DURATION)")),
    }
}

fn open(args: &AuthorityArgs) -> Result<Registry> {
    Registry::open(&args.registry).map_err(|e| anyhow!("{e}"))
}

/// Runs `mqseal authority ...`.
pub async fn run(args: AuthorityArgs) -> Result<ExitCode> {
    let now = unix_now();
    match &args.command {
        AuthorityCommand::Init { control_prefix, ack_prefix } => {
            let topics = ControlTopics { control: control_prefix, ack: ack_prefix };
            let (_, public) = Registry::init(&args.registry, Some(topics)).map_err(|e| anyhow!("{e}"))?;
            eprintln!("mqseal: created registry {} (mode 0600; it holds every group secret)", args.registry.display());
            println!("{public}");
        }
        AuthorityCommand::Group { command: GroupCommand::Create { name, suite } } => {
            let suite: Suite = suite.parse().map_err(|_| anyhow!("unknown suite {suite:?}"))?;
            let key = open(&args)?.create_group(name, suite, now).map_err(|e| anyhow!("{e}"))?;
            println!("group {name} created (suite {suite}, key {key})");
        }
        AuthorityCommand::Member { command: MemberCommand::Add { id, public, group } } => {
            let groups: Vec<&str> = group.iter().map(String::as_str).collect();
            open(&args)?.add_member(id, public.trim(), &groups, now).map_err(|e| anyhow!("{e}"))?;
            println!("member {id} added to [{}]", group.join(","));
        }
        AuthorityCommand::Member { command: MemberCommand::Join { member, group } } => {
            open(&args)?.join(member, group, now).map_err(|e| anyhow!("{e}"))?;
            println!("member {member} joined {group}");
        }
        AuthorityCommand::Rotate { group, at, grace } => {
            let at = switch_time(at.as_deref(), now)?;
            let key = open(&args)?.rotate(group, at, parse_duration(grace)?, now).map_err(|e| anyhow!("{e}"))?;
            match at {
                Some(at) => println!("group {group}: key {key} planned at {at}"),
                None => println!("group {group}: key {key} active now"),
            }
        }
        AuthorityCommand::Revoke { member, hard, grace, at } => {
            let at = switch_time(at.as_deref(), now)?;
            open(&args)?.revoke_at(member, *hard, at, parse_duration(grace)?, now).map_err(|e| anyhow!("{e}"))?;
            println!("member {member} revoked{}", if *hard { " (hard)" } else { "" });
        }
        AuthorityCommand::Status => {
            for m in open(&args)?.status().map_err(|e| anyhow!("{e}"))? {
                let state = if m.revoked {
                    "revoked"
                } else if m.behind() {
                    "behind"
                } else {
                    "current"
                };
                println!(
                    "{} epoch={} published={} acked={} {state} groups={}",
                    m.id,
                    m.epoch,
                    m.published_epoch,
                    m.acked_epoch,
                    m.groups.join(",")
                );
            }
        }
        AuthorityCommand::Serve(serve_args) => return serve(open(&args)?, serve_args).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Publishes what is pending and not yet in flight.
async fn publish_all(
    client: &AsyncClient,
    items: Vec<Outgoing>,
    sent: &mut Vec<Outgoing>,
    queued: &mut HashSet<Outgoing>,
) -> Result<()> {
    for item in items {
        if !queued.insert(item.clone()) {
            continue;
        }
        client
            .publish(item.topic(), QoS::AtLeastOnce, true, item.payload().to_vec())
            .await
            .context("queueing a control message")?;
        sent.push(item);
    }
    Ok(())
}

/// Before the first publication: every retained control message this
/// authority sealed must be one the registry issued (PROTOCOL.md 14.5,
/// rule 6), or the registry was rolled back and serving would hand out
/// sender ids twice. `Ok(false)`: the connection dropped before the check
/// finished (run it again after the reconnect).
async fn check_retained(reg: &Registry, client: &AsyncClient, el: &mut EventLoop) -> Result<bool> {
    let filter = format!("{}/+", reg.topics().control);
    client.subscribe(filter.clone(), QoS::AtMostOnce).await?;
    let (mut subacked, mut known) = (false, 0usize);
    let mut until = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(ev) = tokio::time::timeout_at(until, el.poll()).await {
        match ev {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                subacked = true;
                until = tokio::time::Instant::now() + connect::RETAINED_SETTLE;
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.retain => {
                match reg.check_retained(&p.topic, &p.payload) {
                    Ok(Retained::Known { .. }) => known += 1,
                    Ok(Retained::UnknownMember(m)) => {
                        eprintln!(
                            "mqseal: authority: retained control message for unknown member {m:?} on {}",
                            p.topic
                        );
                    }
                    Ok(Retained::NotOurs(e)) => {
                        eprintln!("mqseal: authority: retained message on {} is not ours: {e} ({})", p.topic, e.code());
                    }
                    Ok(_) => {}
                    Err(e) => bail!("{e} [{}]", e.code()),
                }
                if subacked {
                    until = tokio::time::Instant::now() + connect::RETAINED_SETTLE;
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("mqseal: broker connection: {}; retrying", connect::explain(&e.to_string()));
                return Ok(false);
            }
        }
    }
    if !subacked {
        bail!("the broker did not acknowledge the subscription to {filter}");
    }
    client.unsubscribe(filter).await?;
    eprintln!("mqseal: authority: the broker's {known} retained control states are the registry's");
    Ok(true)
}

async fn serve(mut reg: Registry, args: &ServeArgs) -> Result<ExitCode> {
    if connect::is_v5(&args.common) {
        bail!("authority serve speaks MQTT 3.1.1 (-V 311)");
    }
    let every = args.rotate_every.as_deref().map(parse_duration).transpose()?;
    let lead = parse_duration(&args.rotate_lead)?;
    let grace = parse_duration(&args.grace)?;
    let target = connect::target(&args.common)?;
    let mut options = connect::options_v4(&args.common, &target, "authority", true);
    options.set_max_packet_size(mqseal::MAX_CONTROL_ENVELOPE_LEN + 1024, mqseal::MAX_CONTROL_ENVELOPE_LEN + 1024);
    let (client, mut el) = AsyncClient::new(options, 256);
    let ack_filter = format!("{}/+", reg.topics().ack);
    // Publications in the order they were queued, until rumqttc gives
    // each its packet id; then by packet id until the broker's PUBACK.
    let mut sent: Vec<Outgoing> = Vec::new();
    let mut by_pkid: HashMap<u16, Outgoing> = HashMap::new();
    let mut queued: HashSet<Outgoing> = HashSet::new();
    // Until the first connection checked the broker's retained states.
    let mut first = true;
    let mut tick = tokio::time::interval(Duration::from_secs(args.poll.max(1)));
    loop {
        tokio::select! {
            ev = el.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    eprintln!("mqseal: authority connected to {}", target.display);
                    if first && !check_retained(&reg, &client, &mut el).await? {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    client.subscribe(ack_filter.clone(), QoS::AtLeastOnce).await?;
                    sent.clear();
                    by_pkid.clear();
                    queued.clear();
                    // After a restart, the same bytes again (for a broker
                    // that lost its retained messages); members see a
                    // duplicate and change nothing.
                    let items = if first { reg.all_sealed() } else { reg.unpublished() }.map_err(|e| anyhow!("{e}"))?;
                    first = false;
                    publish_all(&client, items, &mut sent, &mut queued).await?;
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => {
                    if !sent.is_empty() {
                        by_pkid.insert(pkid, sent.remove(0));
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(item) = by_pkid.remove(&ack.pkid) {
                        reg.mark_published(&item).map_err(|e| anyhow!("{e}"))?;
                        match &item {
                            Outgoing::State { member, epoch, .. } => println!("published {member} epoch {epoch}"),
                            Outgoing::Clear { member, .. } => println!("cleared {member}"),
                        }
                        queued.remove(&item);
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => match reg.record_ack(&p.topic, &p.payload) {
                    Ok(a) => println!("ack {} epoch {}{}", a.member, a.epoch, if a.current { "" } else { " (behind)" }),
                    // A verified ack of an epoch never sealed: the member
                    // holds a newer state than the registry, which was
                    // rolled back (PROTOCOL.md 14.5, rule 6).
                    Err(e @ mqseal_authority::AuthorityError::AckEpochNotIssued { .. }) => bail!(
                        "{e} [{}]: the registry was restored from a backup or rolled back; refusing to serve, \
                         which could hand out sender ids twice (SECURITY.md, \"Restoring the registry\")",
                        e.code()
                    ),
                    Err(e) => eprintln!("mqseal: refused ack on {}: {e} [{}]", p.topic, e.code()),
                },
                Ok(_) => {}
                Err(e) => {
                    eprintln!("mqseal: broker connection: {}; retrying", connect::explain(&e.to_string()));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            // Nothing is rotated, sealed or queued before the retained
            // states were checked against the registry (the first tick
            // fires at once, before the connection is up).
            _ = tick.tick(), if !first => {
                let now = unix_now();
                if let Some(every) = every {
                    for (group, at) in reg.due_rotations(now, every, lead).map_err(|e| anyhow!("{e}"))? {
                        match reg.rotate(&group, Some(at), grace, now) {
                            Ok(key) => println!("rotated {group}: key {key} at {at}"),
                            Err(e) => eprintln!("mqseal: scheduled rotation of {group}: {e}"),
                        }
                    }
                }
                let items = reg.seal_pending(now).map_err(|e| anyhow!("{e}"))?;
                publish_all(&client, items, &mut sent, &mut queued).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3600);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert!(parse_duration("5y").is_err() && parse_duration("").is_err() && parse_duration("h").is_err());
        assert_eq!(parse_time("+1h", 100).unwrap(), 3700);
        assert_eq!(switch_time(Some("now"), 100).unwrap(), None);
        assert_eq!(switch_time(Some("+5s"), 100).unwrap(), Some(105));
        assert_eq!(switch_time(None, 100).unwrap(), Some(100 + mqseal_authority::DEFAULT_SWITCH_LEAD));
        assert_eq!(parse_time("1800000000", 100).unwrap(), 1_800_000_000);
    }
}
