//! The verify-then-shared-decision split: `open_pending` and `PendingOpen`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mqseal::{
    check_and_update_local, Error, FleetOpener, Key, Keyring, MemoryCounterStore, ReplayWindow, Sealer, Suite,
    WindowVerdict,
};

fn setup() -> (Sealer<MemoryCounterStore>, FleetOpener) {
    let key = Key::from_bytes(3, [9; 32]);
    let sealer = Sealer::new(&key, 77, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap();
    let opener = FleetOpener::new(Keyring::with_primary(key).unwrap());
    (sealer, opener)
}

#[test]
fn a_pending_open_releases_the_payload_only_on_accept() {
    let (mut sealer, mut opener) = setup();
    let env = sealer.seal_to_vec("fleet/up", b"hello").unwrap();
    let mut buf = env.clone();
    let pending = opener.open_pending("fleet/up", &mut buf, None).unwrap();
    let q = pending.query();
    assert_eq!((q.key_id, q.sender_id, q.width), (3, 77, 128));
    assert_eq!(pending.header().counter, q.counter);
    let shown = format!("{pending:?}");
    assert!(!shown.contains("104, 101, 108, 108, 111") && !shown.contains("hello"), "Debug shows the body: {shown}");
    let opened = pending.resolve(WindowVerdict::Accepted).unwrap();
    assert_eq!(opened.payload, b"hello");
    // The local windows are not consulted: the store decides.
    assert_eq!(opener.tracked_senders(), 0);

    for verdict in [WindowVerdict::Duplicate, WindowVerdict::Replay] {
        let mut buf = env.clone();
        let pending = opener.open_pending("fleet/up", &mut buf, None).unwrap();
        assert_eq!(pending.resolve(verdict).map(|o| o.payload.to_vec()), Err(verdict.into_result().unwrap_err()));
        assert!(!buf.windows(5).any(|w| w == b"hello"), "a rejected body is zeroed");
    }
}

#[test]
fn a_dropped_pending_open_leaves_nothing_behind_and_forgeries_never_reach_the_store() {
    let (mut sealer, mut opener) = setup();
    let key = Key::from_bytes(3, [9; 32]);
    let mut integrity = Sealer::new(&key, 78, Suite::HmacSha256, MemoryCounterStore::new()).unwrap();
    let env = integrity.seal_to_vec("fleet/up", b"plain-visible").unwrap();
    let mut buf = env.clone();
    drop(opener.open_pending("fleet/up", &mut buf, None).unwrap());
    assert!(!buf.windows(13).any(|w| w == b"plain-visible"));

    let mut forged = sealer.seal_to_vec("fleet/up", b"hello").unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(opener.open_pending("fleet/up", &mut forged, None).map(|_| ()), Err(Error::Auth));
    let mut other_topic = sealer.seal_to_vec("fleet/up", b"hello").unwrap();
    assert_eq!(opener.open_pending("fleet/other", &mut other_topic, None).map(|_| ()), Err(Error::Auth));
}

#[test]
fn the_local_rule_gives_the_window_codes() {
    let mut w = ReplayWindow::new(4).unwrap();
    assert_eq!(check_and_update_local(&mut w, 10), WindowVerdict::Accepted);
    assert_eq!(check_and_update_local(&mut w, 10), WindowVerdict::Duplicate);
    assert_eq!(check_and_update_local(&mut w, 7), WindowVerdict::Accepted);
    assert_eq!(check_and_update_local(&mut w, 6), WindowVerdict::Replay);
}

#[test]
fn an_owned_pending_open_releases_only_on_accept() {
    let (mut sealer, mut opener) = setup();
    let env = sealer.seal_to_vec("fleet/up", b"hello").unwrap();
    let p = opener.open_pending_to_vec("fleet/up", &env, None).unwrap();
    assert_eq!(p.query().sender_id, 77);
    assert_eq!(p.resolve(WindowVerdict::Accepted).unwrap().payload, b"hello");
    let p = opener.open_pending_to_vec("fleet/up", &env, None).unwrap();
    assert_eq!(p.resolve(WindowVerdict::Duplicate), Err(Error::Duplicate));
}
