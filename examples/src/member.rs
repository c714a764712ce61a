//! `mqseal member init|status`, and `mqseal pub/sub --member`: the CLI as a
//! member of key distribution. The member logic is the adapter's
//! [`mqseal_rumqttc::Member`] (and below it the core's `MemberFileStore`);
//! this file parses options, connects, and prints.

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use mqseal::{ControlTopics, MemberFileStore, OpenerConfig};
use mqseal_rumqttc::{Handled, Member, VerifiedMessage};
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;

use crate::connect::{self, Target};
use crate::pubsub::{Client, Ev, Loop, PubArgs, SubArgs};
use crate::state::{GroupCommit, ReplayState};
use crate::Common;

/// `mqseal member ...`.
#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Enrol: create the member's directory and X25519 key pair, print its
    /// public key (for `mqseal authority member add --public`).
    Init(InitArgs),
    /// Print the member's epoch, groups, key ids, sender ids and next
    /// scheduled switch (no secrets).
    Status(StatusArgs),
}

/// `mqseal member init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The member's state directory (created 0700; must be missing or empty).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The member id (1 to 64 of A-Z a-z 0-9 . _ -).
    #[arg(long)]
    id: String,
    /// The authority's X25519 public key: its text form or a file holding it.
    #[arg(long, value_name = "KEY|FILE")]
    authority: String,
    /// Prefix of the control topics.
    #[arg(long, default_value = mqseal::DEFAULT_CONTROL_PREFIX)]
    control_prefix: String,
    /// Prefix of the ack topics.
    #[arg(long, default_value = mqseal::DEFAULT_ACK_PREFIX)]
    ack_prefix: String,
}

/// `mqseal member status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The member's state directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

/// Runs `mqseal member ...`.
pub fn run(cmd: &MemberCommand) -> Result<()> {
    match cmd {
        MemberCommand::Init(a) => {
            let authority = crate::keys::public_key_arg(&a.authority, "--authority")?;
            let topics = ControlTopics { control: &a.control_prefix, ack: &a.ack_prefix };
            let (_, public) = MemberFileStore::init(&a.dir, &a.id, &authority, &topics)
                .map_err(|e| anyhow!("member init {}: {e}", a.dir.display()))?;
            println!("{}", public.to_text().as_str());
            Ok(())
        }
        MemberCommand::Status(a) => {
            let store = MemberFileStore::open(&a.dir).map_err(|e| anyhow!("{e}"))?;
            print!("{}", status(&store, mqseal::system_clock()));
            Ok(())
        }
    }
}

fn status(store: &MemberFileStore, now: u64) -> String {
    use core::fmt::Write;
    let agent = store.agent();
    let mut out = String::new();
    let _ = writeln!(out, "member {}", agent.member_id());
    let _ = writeln!(out, "epoch {}", agent.epoch());
    let _ = writeln!(out, "control topic {}", agent.control_topic());
    for g in agent.state().map(mqseal::ControlState::groups).unwrap_or_default() {
        let sealing = agent.sealing(g.name(), Some(now));
        let _ = writeln!(
            out,
            "group {}: seals with key {} as sender {}",
            g.name(),
            sealing.as_ref().map_or_else(|| "-".to_owned(), |s| s.key.id().to_string()),
            sealing.as_ref().map_or_else(|| "-".to_owned(), |s| s.sender_id.to_string()),
        );
        for k in g.keys() {
            let end = k.end_of_acceptance().map_or_else(|| "-".to_owned(), |e| e.to_string());
            let _ = writeln!(
                out,
                "  key {} sender {} suite {:?} activation {} end {end}{}",
                k.key_id(),
                k.sender_id(),
                k.suite(),
                k.activation(),
                if k.accepted_at(Some(now)) { "" } else { " (no longer accepted)" }
            );
        }
    }
    match agent.wake_at(Some(now)) {
        Some(t) => _ = writeln!(out, "next wake-up {t} (in {} s)", t.saturating_sub(now)),
        None => _ = writeln!(out, "next wake-up none"),
    }
    out
}

/// A connected member client: the adapter's member, the sealed client and
/// its event loop, MQTT 3.1.1 or 5 (the clients of plain `pub`/`sub`).
struct Session {
    member: Member,
    client: Client,
    el: Loop,
    target: Target,
    debug: bool,
    /// Control messages handled (applied, refused or cleared) so far.
    control_seen: u64,
}

/// What a member opens telemetry with (`sub --member`; defaults for `pub`).
#[derive(Default)]
struct Receive<'a> {
    /// The receiver policy (--window, --gaps, --max-age, --max-skew,
    /// --eviction).
    config: OpenerConfig,
    /// --plain-topic filters.
    plain_topics: &'a [String],
    /// --replay-state: restored into the opener before connecting.
    replay_state: Option<&'a Path>,
}

/// The application's view of what the member made of an event: member
/// events are reported here and come back as `Ev::Other`.
fn report<E>(handled: Handled<E>, classify: fn(&E) -> Ev, topic: &str, debug: bool) -> Ev {
    match handled {
        Handled::Applied { epoch } => {
            eprintln!("mqseal: member: applied the control state of epoch {epoch} (acknowledged)");
            Ev::Other
        }
        Handled::Rejected(e) if e.code() == "duplicate" => {
            if debug {
                eprintln!("mqseal: debug: member: control message already applied (duplicate)");
            }
            Ev::Other
        }
        Handled::Rejected(e) => {
            eprintln!("mqseal: member: control message on {topic} rejected: {e} ({})", e.code());
            Ev::Other
        }
        Handled::Cleared => {
            eprintln!("mqseal: member: the control topic {topic} was cleared (revoked?)");
            Ev::Other
        }
        Handled::Event { event, switch_failed } => {
            if let Some(e) = switch_failed {
                eprintln!("mqseal: member: key switch failed: {e} ({})", e.code());
            }
            classify(&event)
        }
        _ => Ev::Other,
    }
}

/// Whether the member took the event as a control message.
const fn is_control<E>(handled: &Handled<E>) -> bool {
    matches!(handled, Handled::Applied { .. } | Handled::Rejected(_) | Handled::Cleared)
}

/// Mismatched client and event loop (never built).
const MIXED: &str = "internal error: client and event loop of different MQTT versions";

impl Session {
    async fn connect(
        c: &Common,
        dir: &Path,
        group: &str,
        role: &str,
        recv: Receive<'_>,
    ) -> Result<(Session, Option<ReplayState>)> {
        if c.keys.key_file.is_some() || c.keys.key_text.is_some() || c.keys.x25519.is_some() {
            bail!("--member takes its keys from the authority: no --key-file, --key-text or --x25519");
        }
        let mut member = Member::open(dir, group, Some(mqseal::system_clock))
            .map_err(|e| anyhow!("member {}: {e}", dir.display()))?
            .with_opener_config(recv.config);
        let mut protection = member.protection().map_err(|e| anyhow!("member {}: {e}", dir.display()))?;
        for f in recv.plain_topics {
            protection = protection.allow_plain_topic(f.clone())?;
        }
        let target = connect::target(c)?;
        let (client, mut el) = crate::pubsub::build(c, &target, role, true, protection, None, false);
        // Opened (and locked) before connecting, restored into the opener
        // that holds the group's keys: a message accepted before a restart
        // is a duplicate after it.
        let replay = match recv.replay_state {
            Some(path) => Some(ReplayState::open(path, el.opener_mut())?),
            None => None,
        };
        crate::pubsub::connect(&mut el, &target, c).await?;
        match &client {
            Client::V4(x) => member.subscribe(x).await?,
            Client::V5(x) => member.subscribe(x).await?,
        }
        Ok((Session { member, client, el, target, debug: c.debug, control_seen: 0 }, replay))
    }

    /// Polls once and gives the event to the member.
    async fn poll(&mut self) -> Result<Ev, String> {
        let topic = self.member.store().control_topic().to_owned();
        let seen = &mut self.control_seen;
        match (&mut self.el, &self.client) {
            (Loop::V4(l), Client::V4(c)) => {
                let ev = l.poll().await.map_err(|e| connect::explain(&e.to_string()))?;
                let handled = self.member.handle(ev, c, l.opener_mut());
                *seen += u64::from(is_control(&handled));
                Ok(report(handled, crate::pubsub::classify4, &topic, self.debug))
            }
            (Loop::V5(l), Client::V5(c)) => {
                let ev = l.poll().await.map_err(|e| connect::explain(&e.to_string()))?;
                let handled = self.member.handle(ev, c, l.opener_mut());
                *seen += u64::from(is_control(&handled));
                Ok(report(handled, crate::pubsub::classify5, &topic, self.debug))
            }
            _ => Err(MIXED.to_owned()),
        }
    }

    /// Takes the control topic's retained state before the first seal: the
    /// broker sends it right after the SUBACK, and a publisher that runs for
    /// a moment would otherwise seal with the keys it held when it last ran
    /// (a rotation behind, or with a key the fleet no longer accepts) and
    /// never acknowledge the new state. Waits for the SUBACK (at most the
    /// connect timeout), then at most [`connect::RETAINED_SETTLE`] for the
    /// state; a member whose topic holds nothing carries on with what it has.
    async fn take_retained(&mut self, connect_timeout: Duration) -> Result<()> {
        let before = self.control_seen;
        let mut until = Instant::now() + connect_timeout;
        let mut subacked = false;
        while self.control_seen == before {
            match tokio::time::timeout_at(until, self.poll()).await {
                Err(_) if subacked => return Ok(()),
                Err(_) => {
                    bail!("the broker did not acknowledge the subscription to {}", self.member.store().control_topic())
                }
                Ok(Ok(Ev::SubAck { granted: false })) => {
                    bail!("the broker refused the subscription to {}", self.member.store().control_topic())
                }
                Ok(Ok(Ev::SubAck { granted: true })) if !subacked => {
                    subacked = true;
                    until = Instant::now() + connect::RETAINED_SETTLE;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!("connection to {} lost: {e}", self.target.display),
            }
        }
        Ok(())
    }

    /// A scheduled switch (see `Member::tick`).
    fn tick(&mut self) -> Result<bool, mqseal_rumqttc::MemberError> {
        match (&mut self.el, &self.client) {
            (Loop::V4(l), Client::V4(c)) => self.member.tick(c, l.opener_mut()),
            (Loop::V5(l), Client::V5(c)) => self.member.tick(c, l.opener_mut()),
            _ => Ok(false),
        }
    }

    /// The next event for the application (`None`: a member event, already
    /// reported, or a scheduled switch). Connection errors are reported and
    /// retried after a pause; the control topic is subscribed again after
    /// each reconnect (clean sessions).
    async fn next(&mut self) -> Option<Ev> {
        let wake = self.member.wake_in();
        let ev = tokio::select! {
            ev = self.poll() => ev,
            () = tokio::time::sleep(wake.unwrap_or(Duration::from_secs(3600))), if wake.is_some() => {
                match self.tick() {
                    Ok(true) => eprintln!("mqseal: member: scheduled key switch done"),
                    Ok(false) => {}
                    Err(e) => eprintln!("mqseal: member: scheduled key switch failed: {e} ({})", e.code()),
                }
                return None;
            }
        };
        match ev {
            Ok(Ev::ConnAck { .. }) => {
                let sent = match &self.client {
                    Client::V4(c) => self.member.try_subscribe(c),
                    Client::V5(c) => self.member.try_subscribe(c),
                };
                if let Err(e) = sent {
                    eprintln!("mqseal: member: cannot subscribe to the control topic: {e}");
                }
                None
            }
            Ok(Ev::Other) => None,
            Ok(ev) => Some(ev),
            Err(e) => {
                eprintln!("mqseal: connection to {} lost: {e}; reconnecting", self.target.display);
                tokio::time::sleep(Duration::from_millis(500)).await;
                None
            }
        }
    }
}

/// `mqseal pub --member DIR --group G`.
pub async fn run_pub(args: PubArgs) -> Result<ExitCode> {
    let (Some(dir), Some(group)) = (&args.member, &args.group) else { bail!("--member needs --group") };
    let topic = args.topic.clone().ok_or_else(|| anyhow!("missing -t TOPIC"))?;
    crate::pubsub::check_publish_topic(&topic, "publish")?;
    let (mut s, _) = Session::connect(&args.common, dir, group, "pub", Receive::default()).await?;
    if s.member.has_keys() {
        s.take_retained(Duration::from_secs(args.common.connect_timeout)).await?;
    }
    if !s.member.has_keys() {
        eprintln!(
            "mqseal: member {} holds no key for group {group} yet: waiting up to {} s for its control message on {}",
            s.member.store().agent().member_id(),
            args.state_timeout,
            s.member.store().control_topic()
        );
        let deadline = Instant::now() + Duration::from_secs(args.state_timeout);
        while !s.member.has_keys() {
            if tokio::time::timeout_at(deadline, s.next()).await.is_err() {
                bail!(
                    "no key for group {group} after {} s (--state-timeout): is the member enrolled?",
                    args.state_timeout
                );
            }
        }
    }
    let (client, qos, retain) = (s.client.clone_handle(), args.qos, args.retain);
    let (repeat, delay) = (args.repeat.unwrap_or(1), Duration::from_secs_f64(args.repeat_delay.max(0.0)));
    let single = args.message.clone();
    if single.is_none() && !args.stdin_line {
        bail!("with --member, give -m MESSAGE or -l");
    }
    let producer = tokio::spawn(async move {
        let mut sent = 0u64;
        if let Some(m) = single {
            for i in 0..repeat {
                if i > 0 {
                    tokio::time::sleep(delay).await;
                }
                client.publish(topic.as_str(), qos, retain, m.as_bytes()).await?;
                sent += 1;
            }
        } else {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines.next_line().await? {
                client.publish(topic.as_str(), qos, retain, line.as_bytes()).await?;
                sent += 1;
            }
        }
        Ok::<u64, anyhow::Error>(sent)
    });
    tokio::pin!(producer);
    let (mut done, mut total) = (0u64, None::<u64>);
    // Control acks are QoS 1 publishes too: count at least the producer's.
    while total.is_none_or(|t| done < t) {
        tokio::select! {
            r = &mut producer, if total.is_none() => {
                total = Some(r.map_err(|e| anyhow!("publisher task failed: {e}"))?.map_err(|e| anyhow!("{e}"))?);
            }
            ev = s.next() => {
                if matches!(ev, Some(Ev::PublishDone)) {
                    done += 1;
                }
            }
        }
    }
    s.client.disconnect().await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while !matches!(s.el.poll(false).await, Ok(Ev::Disconnected) | Err(_)) {}
    })
    .await;
    Ok(ExitCode::SUCCESS)
}

/// `mqseal sub --member DIR --group G`. With --replay-state, a verified
/// message is printed only once a save of the replay windows that records
/// it is durable (the group commit of plain `sub`), so a restarted member
/// subscriber rejects what it accepted before as a duplicate.
pub async fn run_sub(args: SubArgs) -> Result<ExitCode> {
    let (Some(dir), Some(group)) = (&args.member, &args.group) else { bail!("--member needs --group") };
    if args.topics.is_empty() {
        bail!("missing -t TOPIC");
    }
    for t in args.topics.iter().chain(&args.plain_topics) {
        crate::pubsub::check_filter(t, "subscription")?;
    }
    let recv = Receive {
        config: crate::pubsub::opener_config(&args)?,
        plain_topics: &args.plain_topics,
        replay_state: args.replay_state.as_deref(),
    };
    let (mut s, replay) = Session::connect(&args.common, dir, group, "sub", recv).await?;
    let mut commit = replay.map(GroupCommit::<(VerifiedMessage, bool)>::new);
    for t in &args.topics {
        s.client.subscribe(t.as_str(), args.qos).await?;
    }
    let deadline = args.timeout.map(|t| Instant::now() + Duration::from_secs(t));
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let mut stdout = std::io::stdout().lock();
    let mut received = 0u64;
    let code = loop {
        let in_flight = commit.as_ref().map_or(0, GroupCommit::in_flight) as u64;
        if args.count.is_some_and(|c| received >= c) {
            break ExitCode::SUCCESS;
        }
        // Accepted messages waiting for their save count towards --count:
        // none is accepted (and recorded) that would not be printed.
        let take_more = args.count.is_none_or(|c| received + in_flight < c);
        if let Some(c) = commit.as_mut().filter(|c| !c.busy() && c.has_pending()) {
            c.start(s.el.opener().snapshot().collect());
        }
        let saving = commit.as_ref().is_some_and(GroupCommit::busy);
        let ev = tokio::select! {
            biased;
            () = tokio::time::sleep_until(deadline.unwrap_or(far)) => break ExitCode::from(27),
            durable = crate::state::durable_of(&mut commit), if saving => {
                crate::pubsub::print_durable(&mut stdout, &args, durable?, &mut received);
                continue;
            }
            ev = s.next(), if take_more => ev,
        };
        match ev {
            Some(Ev::Verified(m)) => {
                let stale = m.retain && args.no_stale;
                match &mut commit {
                    Some(c) => c.push((m, stale), || s.el.opener().snapshot().collect()),
                    None if stale => {}
                    None => {
                        crate::pubsub::print_verified(&mut stdout, &args, &m);
                        received += 1;
                    }
                }
            }
            Some(Ev::Plain { topic, payload, qos, retain, .. }) if !(retain && args.no_stale) => {
                crate::pubsub::print_plain(&mut stdout, &args, &topic, &payload, qos, retain);
                received += 1;
            }
            Some(Ev::Rejected { topic, reason, .. }) => {
                eprintln!("mqseal: rejected message on {topic}: {reason} ({})", reason.code());
            }
            _ => {}
        }
    };
    // Whatever was accepted is saved, and printed, before leaving.
    if let Some(c) = &mut commit {
        while c.busy() || c.has_pending() {
            if !c.busy() {
                c.start(s.el.opener().snapshot().collect());
            }
            for (m, stale) in c.durable().await? {
                if !stale {
                    crate::pubsub::print_verified(&mut stdout, &args, &m);
                }
            }
        }
    }
    if args.stats {
        crate::pubsub::print_stats(&s.client.stats());
        if let Some(c) = &commit {
            eprintln!("mqseal: stats: replay_state_commits={}", c.commits);
        }
    }
    let _ = s.client.disconnect().await;
    Ok(code)
}
