//! `mqseal demo`: everything in one process, nothing to install.
//!
//! An embedded rumqttd broker on a free loopback port; a sealed publisher
//! and a sealed subscriber (mqseal-rumqttc); a plain client subscribed to
//! `#` that sees only envelopes; then that client, playing the attacker,
//! replays, forges, moves and fakes messages, and the subscriber rejects
//! each one. Exits 0 only if every step went as shown.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use mqseal::{FileCounterStore, FleetOpener, Key, Keyring, Sealer, StoreError, Suite};
use mqseal_rumqttc::{Protection, SealedClient, SealedEvent};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Publish, QoS};
use tokio::sync::mpsc;

/// `mqseal demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seconds to wait for each step before giving up.
    #[arg(long, default_value_t = 10)]
    step_timeout: u64,
}

const TOPIC: &str = "demo/plant/temperature";
const MOVED_TOPIC: &str = "demo/plant/valve";
const READINGS: [&str; 3] = ["temperature=21.5C", "temperature=21.7C", "temperature=22.0C"];

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(l.local_addr()?.port())
}

fn start_broker(port: u16) -> Result<()> {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let server = ServerSettings {
        name: "demo-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 32,
            max_outgoing_packet_count: 200,
            max_segment_size: 1 << 20,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                eprintln!("mqseal demo: embedded broker stopped: {e}");
            }
        })
        .context("cannot start the broker thread")?;
    for _ in 0..100 {
        if TcpStream::connect(listen).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the embedded broker did not start listening on {listen}")
}

/// A new directory under the system's temporary directory.
fn fresh_dir() -> Result<std::path::PathBuf> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let dir = base.join(format!("mqseal-demo-{}-{nanos:x}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(anyhow!("cannot create {}: {e}", dir.display())),
        }
    }
    bail!("cannot create a fresh directory under {}", base.display())
}

fn hex_preview(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().take(24).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 24 {
        s.push_str("...");
    }
    s
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

struct Steps {
    timeout: Duration,
    failures: u32,
}

impl Steps {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("   ok: {what}");
        } else {
            println!("   FAILED: {what}");
            self.failures += 1;
        }
    }

    async fn next<T>(&self, rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> Result<T> {
        tokio::time::timeout(self.timeout, rx.recv())
            .await
            .map_err(|_| anyhow!("timed out waiting for {what}"))?
            .ok_or_else(|| anyhow!("connection closed while waiting for {what}"))
    }
}

/// `mqseal demo`.
pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let mut steps = Steps { timeout: Duration::from_secs(args.step_timeout.max(1)), failures: 0 };
    let port = free_port()?;
    start_broker(port)?;
    println!("1. Embedded MQTT broker (rumqttd) listening on 127.0.0.1:{port}. Treat it as untrusted.");

    let key = Key::generate(1)?;
    // A fresh key each run, so a fresh counter file each run: created for
    // this new sender (the file store refuses a missing file otherwise), in
    // a directory of its own so that repeated or concurrent demos never meet.
    let state_dir = fresh_dir()?;
    let counter_file = state_dir.join("counter");
    let store = FileCounterStore::create(&counter_file).map_err(|e| anyhow!("{e}"))?;
    let sealer = Sealer::new(&key, 7, Suite::ChaCha20Poly1305, store)?;
    let opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key)?);
    println!("2. Fresh group key id 1; publisher is sender 7 (ChaCha20-Poly1305, counter persisted in a file).");
    // The publisher's store holds the counter file's lock for its lifetime.
    match FileCounterStore::open(&counter_file) {
        Err(e) if e.kind == StoreError::Locked => {
            println!("   a second publisher on the same counter file is refused:\n   {e}")
        }
        Err(e) => bail!("unexpected error opening the counter file a second time: {e}"),
        Ok(_) => steps.check(false, "a second publisher on the same counter file is refused"),
    }

    // The sealed subscriber.
    let (sub, mut sub_loop) = SealedClient::new(options("demo-subscriber", port), 16, Protection::receive_only(opener));
    let (sub_tx, mut sub_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = sub_loop.poll().await {
            let keep = matches!(
                ev,
                SealedEvent::Verified(_)
                    | SealedEvent::Rejected(_)
                    | SealedEvent::Other(Event::Incoming(Incoming::SubAck(_)))
            );
            if keep && sub_tx.send(ev).is_err() {
                break;
            }
        }
    });
    // The plain eavesdropper (and, later, attacker).
    let (spy, mut spy_loop) = AsyncClient::new(options("demo-eavesdropper", port), 16);
    let (spy_tx, mut spy_rx) = mpsc::unbounded_channel::<Option<Publish>>();
    tokio::spawn(async move {
        while let Ok(ev) = spy_loop.poll().await {
            let item = match ev {
                Event::Incoming(Incoming::Publish(p)) => Some(p),
                Event::Incoming(Incoming::SubAck(_)) => None,
                _ => continue,
            };
            if spy_tx.send(item).is_err() {
                break;
            }
        }
    });
    // The sealed publisher.
    let (publisher, mut pub_loop) =
        SealedClient::new(options("demo-publisher", port), 16, Protection::publish_only(sealer));
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });

    sub.subscribe("demo/#", QoS::AtLeastOnce).await?;
    spy.subscribe("#", QoS::AtLeastOnce).await?;
    let _ = steps.next(&mut sub_rx, "the subscriber's subscription").await?;
    let _ = steps.next(&mut spy_rx, "the eavesdropper's subscription").await?;
    println!("3. Sealed subscriber on demo/#, plain eavesdropper on #.\n");

    println!("4. Publishing {} sealed readings on {TOPIC}:", READINGS.len());
    let mut captured = Vec::new();
    for reading in READINGS {
        publisher.publish(TOPIC, QoS::AtLeastOnce, false, reading).await?;
        let seen = loop {
            if let Some(p) = steps.next(&mut spy_rx, "the eavesdropper's copy").await? {
                break p;
            }
        };
        println!("   eavesdropper sees {} bytes: {}", seen.payload.len(), hex_preview(&seen.payload));
        let leaked = seen.payload.windows(reading.len()).any(|w| w == reading.as_bytes());
        steps.check(!leaked, "no plaintext on the wire");
        match steps.next(&mut sub_rx, "the subscriber's message").await? {
            SealedEvent::Verified(m) => {
                println!(
                    "   subscriber verified from sender {} (key {}, counter {}): {}",
                    m.header.sender_id,
                    m.header.key_id,
                    m.header.counter,
                    String::from_utf8_lossy(&m.payload)
                );
                steps.check(m.payload == reading.as_bytes() && m.header.sender_id == 7, "payload and sender verified");
            }
            other => {
                println!("   unexpected: {other:?}");
                steps.check(false, "message verified");
            }
        }
        captured.push(seen.payload.to_vec());
    }

    println!("\n5. The eavesdropper turns attacker:");
    let mut forged = captured[1].clone();
    if let Some(last) = forged.last_mut() {
        *last ^= 0x01;
    }
    let attacks: [(&str, &str, Vec<u8>, &[&str]); 4] = [
        ("replays reading 1 as captured", TOPIC, captured[0].clone(), &["duplicate", "replay"]),
        ("flips one bit of reading 2", TOPIC, forged, &["auth"]),
        ("moves reading 3 to another topic", MOVED_TOPIC, captured[2].clone(), &["auth"]),
        ("publishes a plain, unsealed command", MOVED_TOPIC, b"valve=open".to_vec(), &["unsupportedVersion"]),
    ];
    for (what, topic, payload, expected) in attacks {
        println!("   attacker {what} on {topic}");
        spy.publish(topic, QoS::AtLeastOnce, false, payload).await?;
        match steps.next(&mut sub_rx, "the subscriber's verdict").await? {
            SealedEvent::Rejected(r) => {
                println!("   subscriber rejected it: {} ({})", r.reason, r.reason.code());
                steps.check(expected.contains(&r.reason.code()), "rejected for the right reason");
            }
            other => {
                println!("   subscriber accepted it: {other:?}");
                steps.check(false, "rejected");
            }
        }
    }

    let s = sub.stats();
    println!(
        "\n6. Subscriber counters: accepted={} duplicate={} forged={} unsealed={} (rejected {} in all)",
        s.accepted,
        s.duplicate,
        s.forged,
        s.unsealed,
        s.rejected()
    );
    steps.check(s.accepted == 3 && s.duplicate == 1 && s.forged == 2 && s.unsealed == 1, "counters match");
    let _ = std::fs::remove_dir_all(&state_dir);
    let _ = publisher.disconnect().await;
    let _ = sub.disconnect().await;
    let _ = spy.disconnect().await;
    if steps.failures == 0 {
        println!("\nDemo complete: the broker only ever carried envelopes, and every attack was rejected.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nDemo FAILED: {} check(s) did not hold.", steps.failures);
        Ok(ExitCode::FAILURE)
    }
}
