//! The minimq glue against a real Mosquitto on loopback: a "device" (sealer
//! on a FlashCounterStore over RAM flash, static-size buffers) and a
//! "controller" exchange sealed messages through the broker; the broker's
//! copy is an envelope, replays and forgeries are rejected.
//!
//! Needs Mosquitto (Debian's `mosquitto`, started by the workspace's test
//! harness, `mqseal-test-support`): skipped when it is not installed, a
//! failure under CI or `MQSEAL_REQUIRE_BROKERS` (the test scripts install it).
// Test helpers outside #[test] functions: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::panic, clippy::std_instead_of_core)]

use core::future::poll_fn;
use core::pin::Pin;
use core::task::Poll;
use std::time::Duration;

use embedded_io_async::{ErrorType, Read, Write};
use embedded_storage::nor_flash::{ErrorType as FlashErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use minimq::{Buffers, ConfigBuilder, Connection, Publication, QoS, Session, TopicFilter};
use mqseal::{
    Error, Key, Keyring, MemoryCounterStore, Opener, OpenerConfig, PlainTopics, Sealer, StoreError, Suite, SuiteSet,
};
use mqseal_embedded::mqtt::{open_inbound, publish_sealed, recv_opened, Inbound, MqttError};
use mqseal_embedded::FlashCounterStore;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

struct Tcp(TcpStream);

impl ErrorType for Tcp {
    type Error = std::io::Error;
}

impl Read for Tcp {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            let mut rb = tokio::io::ReadBuf::new(buf);
            match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

impl Write for Tcp {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        poll_fn(|cx| Pin::new(&mut self.0).poll_write(cx, buf)).await
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        poll_fn(|cx| Pin::new(&mut self.0).poll_flush(cx)).await
    }
}

/// NOR flash in RAM (4-byte writes, 256-byte sectors).
struct RamFlash([u8; 1024]);
impl FlashErrorType for RamFlash {
    type Error = NorFlashErrorKind;
}
impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let o = offset as usize;
        bytes.copy_from_slice(&self.0[o..o + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}
impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 256;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0[from as usize..to as usize].fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        for (d, s) in self.0[offset as usize..].iter_mut().zip(bytes) {
            *d &= *s;
        }
        Ok(())
    }
}

async fn connect<'a, 'buf>(session: &'a mut Session<'buf>, port: u16) -> Connection<'a, 'buf, Tcp> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    session.connect(Tcp(tcp)).await.unwrap()
}

/// Drives a connection until its SUBSCRIBE is acknowledged.
async fn subscribe(conn: &mut Connection<'_, '_, Tcp>, topic: &str) {
    let op = conn.subscribe(&[TopicFilter::new(topic)], &[]).await.unwrap();
    for _ in 0..100 {
        if conn.is_complete(&op) {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), conn.poll()).await;
    }
    panic!("SUBSCRIBE to {topic} not acknowledged");
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "current_thread")]
async fn seal_on_publish_open_on_receive_through_mosquitto() {
    let broker = mqseal_test_support::mosquitto_or_skip!();
    let key = Key::from_bytes(7, [0x5A; 32]);

    // The device: counters on flash, fixed buffers, a small opener.
    let (mut dev_rx, mut dev_tx) = ([0u8; 1024], [0u8; 1024]);
    let mut dev_session =
        Session::new(ConfigBuilder::new(Buffers::new(&mut dev_rx, &mut dev_tx)).client_id("mqseal-dev-1").unwrap());
    let mut store = FlashCounterStore::new(RamFlash([0xFF; 1024]), 0, 4).unwrap();
    // Unprovisioned flash is refused: a device never starts at 0 by itself.
    assert_eq!(
        Sealer::new(&key, 1, Suite::ChaCha20Poly1305, &mut store).err(),
        Some(Error::CounterStore(StoreError::Missing))
    );
    store.create().unwrap(); // the factory / first-boot step for (key 7, sender 1)
    let mut dev_sealer =
        Sealer::new(&key, 1, Suite::ChaCha20Poly1305, store).unwrap().with_reservation_block(16).unwrap();
    // The device's opener lives in static memory in firmware: configured in
    // place (a smaller replay window than the default 128).
    let mut dev_opener: Opener<2, 4> = Opener::new(Keyring::with_primary(key.clone()).unwrap());
    let mut dev_config = OpenerConfig::default();
    dev_config.window = 32;
    dev_opener.set_config(&dev_config).unwrap();
    assert_eq!(dev_opener.config().window, 32);
    let mut dev_open_buf = [0u8; 512];
    // Sealed unless allowlisted: only the status topic may carry plain bytes.
    let dev_plain = PlainTopics::new(["cmd/dev1/status"]).unwrap();

    // The controller.
    let (mut ctl_rx, mut ctl_tx) = ([0u8; 1024], [0u8; 1024]);
    let mut ctl_session =
        Session::new(ConfigBuilder::new(Buffers::new(&mut ctl_rx, &mut ctl_tx)).client_id("mqseal-ctl").unwrap());
    let mut ctl_sealer = Sealer::new(&key, 100, Suite::HmacSha256, MemoryCounterStore::new()).unwrap();
    // The controller accepts only the device's suite.
    let mut ctl_config = OpenerConfig::default();
    ctl_config.suites = SuiteSet::only(Suite::ChaCha20Poly1305);
    let mut ctl_opener: Opener<2, 4> =
        Opener::with_config(Keyring::with_primary(key.clone()).unwrap(), &ctl_config).unwrap();

    let mut dev = connect(&mut dev_session, broker.tcp).await;
    let mut ctl = connect(&mut ctl_session, broker.tcp).await;
    subscribe(&mut dev, "cmd/dev1/#").await;
    subscribe(&mut ctl, "dev/1/up").await;

    // Device -> controller: sealed reading at QoS 1, written straight into
    // minimq's TX buffer.
    publish_sealed(&mut dev, &mut dev_sealer, "dev/1/up", b"reading 21.5", QoS::AtLeastOnce).await.unwrap();
    let mut raw = [0u8; 512];
    let raw_len;
    {
        let msg = tokio::time::timeout(WAIT, ctl.recv()).await.unwrap().unwrap();
        assert_eq!(msg.topic(), "dev/1/up");
        // What the broker carried is an envelope, not the reading.
        assert!(!msg.payload().windows(4).any(|w| w == b"21.5"));
        raw_len = msg.payload().len();
        raw[..raw_len].copy_from_slice(msg.payload());
        let mut buf = [0u8; 512];
        let opened = open_inbound(&mut ctl_opener, &msg, &mut buf).unwrap();
        assert_eq!(opened.payload, b"reading 21.5");
        assert_eq!(opened.header.sender_id, 1);
        assert_eq!(opened.header.counter, 0);
    }
    // The flash store holds the reservation.
    assert_eq!(dev_sealer.next_counter(), Ok(1));
    assert_eq!(dev_sealer.granted_limit(), 16);

    // Controller -> device: sealed command (integrity-only suite).
    publish_sealed(&mut ctl, &mut ctl_sealer, "cmd/dev1/valve", b"open", QoS::AtLeastOnce).await.unwrap();
    let cmd_raw: Vec<u8>;
    {
        let got = tokio::time::timeout(WAIT, recv_opened(&mut dev, &mut dev_opener, &dev_plain, &mut dev_open_buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.topic, "cmd/dev1/valve");
        let Ok(Inbound::Sealed(opened)) = got.opened else { panic!("not verified: {:?}", got.opened) };
        assert_eq!(opened.payload, b"open");
        assert_eq!(opened.header.sender_id, 100);
        assert_eq!(opened.header.suite, Suite::HmacSha256);
        cmd_raw = opened.payload.to_vec();
    }
    assert_eq!(cmd_raw, b"open");

    // An attacker on the broker replays the device's envelope to the
    // controller: a duplicate, not delivered twice.
    ctl.publish(Publication::bytes("dev/1/up", &raw[..raw_len]).qos(QoS::AtLeastOnce)).await.unwrap();
    {
        let msg = tokio::time::timeout(WAIT, ctl.recv()).await.unwrap().unwrap();
        let mut buf = [0u8; 512];
        assert_eq!(open_inbound(&mut ctl_opener, &msg, &mut buf).err(), Some(Error::Duplicate));
    }

    // The same envelope moved to a command topic of the device, and a
    // forged copy: both fail authentication at the device.
    ctl.publish(Publication::bytes("cmd/dev1/other", &raw[..raw_len])).await.unwrap();
    let got = tokio::time::timeout(WAIT, recv_opened(&mut dev, &mut dev_opener, &dev_plain, &mut dev_open_buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.topic, "cmd/dev1/other");
    assert_eq!(got.opened.err(), Some(Error::Auth));

    let mut forged = raw;
    forged[raw_len - 1] ^= 1;
    ctl.publish(Publication::bytes("dev/1/up", &forged[..raw_len])).await.unwrap();
    {
        let msg = tokio::time::timeout(WAIT, ctl.recv()).await.unwrap().unwrap();
        let mut buf = [0u8; 512];
        assert_eq!(open_inbound(&mut ctl_opener, &msg, &mut buf).err(), Some(Error::Auth));
    }

    // Plain (unsealed) bytes are not an envelope; a receive buffer that is
    // too small is reported, not overrun.
    ctl.publish(Publication::bytes("cmd/dev1/valve", b"open")).await.unwrap();
    let got = tokio::time::timeout(WAIT, recv_opened(&mut dev, &mut dev_opener, &dev_plain, &mut dev_open_buf))
        .await
        .unwrap()
        .unwrap();
    assert!(got.opened.err().is_some_and(|e| e.is_format()));
    // ... except on the allowlisted topic, where they are handed out as
    // plain, unverified.
    ctl.publish(Publication::bytes("cmd/dev1/status", b"ping")).await.unwrap();
    let got = tokio::time::timeout(WAIT, recv_opened(&mut dev, &mut dev_opener, &dev_plain, &mut dev_open_buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.topic, "cmd/dev1/status");
    assert!(matches!(got.opened, Ok(Inbound::Plain(b"ping"))), "{:?}", got.opened);
    publish_sealed(&mut ctl, &mut ctl_sealer, "cmd/dev1/valve", &[0x42; 100], QoS::AtMostOnce).await.unwrap();
    let mut tiny = [0u8; 64];
    let got = tokio::time::timeout(WAIT, recv_opened(&mut dev, &mut dev_opener, &dev_plain, &mut tiny))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(got.opened, Err(Error::BufferTooSmall { needed }) if needed > 100));

    // A payload too large for minimq's TX buffer fails to seal, before a
    // counter is used.
    let next = dev_sealer.next_counter().unwrap();
    let err = publish_sealed(&mut dev, &mut dev_sealer, "dev/1/up", &[0u8; 2000], QoS::AtMostOnce).await;
    assert!(err.is_err());
    assert_eq!(dev_sealer.next_counter(), Ok(next));

    // A topic that is not a topic name (wildcards) is refused before a
    // counter is used, and nothing is sent.
    let err = publish_sealed(&mut dev, &mut dev_sealer, "dev/+/up", b"x", QoS::AtMostOnce).await;
    assert!(matches!(err, Err(MqttError::Seal(Error::InvalidTopic))), "{err:?}");
    assert_eq!(dev_sealer.next_counter(), Ok(next));

    // A sealed message of the other suite is refused by the controller's
    // suite policy.
    publish_sealed(&mut ctl, &mut ctl_sealer, "dev/1/up", b"not from the device", QoS::AtLeastOnce).await.unwrap();
    {
        let msg = tokio::time::timeout(WAIT, ctl.recv()).await.unwrap().unwrap();
        let mut buf = [0u8; 512];
        assert_eq!(
            open_inbound(&mut ctl_opener, &msg, &mut buf).err(),
            Some(Error::SuiteNotAllowed(Suite::HmacSha256))
        );
    }

    let _ = dev.disconnect().await;
    let _ = ctl.disconnect().await;
}
