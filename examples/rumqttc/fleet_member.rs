//! A fleet member on rumqttc: its keys and sender id come from the
//! authority (`mqseal authority serve`) through [`mqseal_rumqttc::Member`]
//! (state in a `mqseal member init` directory). It publishes sealed
//! telemetry, opens what it subscribes to, and follows rotations and
//! revocations while it runs.
//!
//! ```text
//! cargo run -p mqseal-cli --example fleet-member -- --dir DIR --group G --port 1883 \
//!     [--publish TOPIC --count N --interval-ms 200 [--start-on-stdin]] [--subscribe FILTER] [--no-clock]
//! ```
//!
//! `--no-clock`: a member without a clock, which switches keys when it
//! first sees a message under the next key (or gets a new control state).
//! Payloads are `<seq> <unix ms>`. Prints one line per event: `applied
//! EPOCH`, `V <topic> <key id> <sender id> <payload>` (verified), `R <topic>
//! <code>` (rejected), and, once N publishes were acknowledged (QoS 1),
//! `sent N`. Runs until SIGTERM or Ctrl-C, then prints `published P acked A`.

use core::time::Duration;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::Parser;
use mqseal_rumqttc::{Handled, Member, SealedClient, SealedEvent};
use rumqttc::{Event, Incoming, MqttOptions, QoS};
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser, Debug)]
struct Args {
    /// The member's state directory (`mqseal member init`).
    #[arg(long)]
    dir: PathBuf,
    /// The group to seal and open with.
    #[arg(long)]
    group: String,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 1883)]
    port: u16,
    /// Publish sealed telemetry to this topic.
    #[arg(long)]
    publish: Option<String>,
    /// How many messages to publish.
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Milliseconds between two messages.
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
    /// Subscribe to this filter (QoS 1) and open what arrives.
    #[arg(long)]
    subscribe: Option<String>,
    /// A member without a clock.
    #[arg(long)]
    no_clock: bool,
    /// Start publishing once a line arrives on stdin (a driver starting
    /// several publishers together).
    #[arg(long)]
    start_on_stdin: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let clock: Option<fn() -> u64> = if a.no_clock { None } else { Some(mqseal::system_clock) };
    let mut member = Member::open(&a.dir, &a.group, clock).map_err(|e| anyhow!("member {}: {e}", a.dir.display()))?;
    let protection = member.protection().map_err(|e| anyhow!("member {}: {e}", a.dir.display()))?;
    let mut options = MqttOptions::new(format!("fleet-{}", member.store().agent().member_id()), &a.host, a.port);
    options.set_keep_alive(Duration::from_secs(30));
    let max = mqseal::MAX_CONTROL_ENVELOPE_LEN + 1024;
    options.set_max_packet_size(max, max);
    let (client, mut el) = SealedClient::new(options, 64, protection);
    let mut term = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_millis(a.interval_ms.max(1)));
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut started = !a.start_on_stdin;
    // QoS 1 acks from the broker, and the control acks among them (also QoS 1).
    let (mut published, mut pubacks, mut control_acks, mut reported) = (0u64, 0u64, 0u64, false);
    // A control ack is counted when it is published, before its PUBACK: so
    // `pubacks - control_acks` is a lower bound of the acknowledged data
    // publishes at any moment, and its highest value so far is one too.
    let mut acked = 0u64;
    loop {
        let wake = member.wake_in();
        tokio::select! {
            ev = el.poll() => {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        eprintln!("connection: {e}; reconnecting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                if matches!(ev, SealedEvent::Other(Event::Incoming(Incoming::ConnAck(_)))) {
                    // Clean session: subscribe again after every connection.
                    member.subscribe(&client).await?;
                    if let Some(f) = &a.subscribe {
                        client.subscribe(f.as_str(), QoS::AtLeastOnce).await?;
                    }
                }
                match member.handle(ev, &client, el.opener_mut()) {
                    Handled::Applied { epoch } => {
                        control_acks += 1;
                        println!("applied {epoch}");
                    }
                    Handled::Rejected(e) if e.code() == "duplicate" => {}
                    Handled::Rejected(e) => println!("control rejected {}", e.code()),
                    Handled::Cleared => println!("control cleared"),
                    Handled::Event { event, switch_failed } => {
                        if let Some(e) = switch_failed {
                            println!("switch failed {}", e.code());
                        }
                        match event {
                            SealedEvent::Verified(m) => println!(
                                "V {} {} {} {}",
                                m.topic,
                                m.header.key_id,
                                m.header.sender_id,
                                String::from_utf8_lossy(&m.payload)
                            ),
                            SealedEvent::Rejected(r) => println!("R {} {}", r.publish.topic, r.reason.code()),
                            SealedEvent::Other(Event::Incoming(Incoming::PubAck(_))) => pubacks += 1,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            () = tokio::time::sleep(wake.unwrap_or(Duration::from_secs(3600))), if wake.is_some() => {
                if let Err(e) = member.tick(&client, el.opener_mut()) {
                    println!("switch failed {}", e.code());
                }
            }
            line = stdin.next_line(), if !started => {
                line?;
                started = true;
            }
            _ = tick.tick(), if started && a.publish.is_some() && published < a.count && member.has_keys() => {
                let topic = a.publish.as_deref().unwrap_or_default();
                let payload = format!("{} {}", published + 1, mqseal::system_clock_millis());
                client.publish(topic, QoS::AtLeastOnce, false, payload.into_bytes()).await?;
                published += 1;
            }
            _ = term.recv() => break,
            r = tokio::signal::ctrl_c() => { r?; break; }
        }
        acked = acked.max(pubacks.saturating_sub(control_acks));
        if !reported && a.count > 0 && acked >= a.count {
            println!("sent {}", a.count);
            reported = true;
        }
    }
    println!("published {published} acked {}", acked.min(published));
    let _ = client.disconnect().await;
    Ok(())
}
