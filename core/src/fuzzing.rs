//! Entry points for the fuzz targets in `fuzz/` (outside the workspace).
//! Not part of the public API: each function takes arbitrary bytes and must
//! never panic.

use crate::{
    Envelope, Header, Key, Keyring, MemoryCounterStore, Opener, PublicKey, ReplayWindow, Sealer, StaticKeyPair, Suite,
};

fn fixed_keyring() -> Keyring<2> {
    let mut ring = Keyring::new();
    let _ = ring.insert(Key::from_bytes(1, [0x11; 32]));
    let _ = ring.insert(Key::from_bytes(2, [0x22; 32]));
    ring
}

/// Splits fuzz input into a topic (length-prefixed by the first byte) and
/// the rest.
fn split_topic(data: &[u8]) -> (&str, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return ("", data);
    };
    let n = usize::from(n).min(rest.len());
    let (t, rest) = rest.split_at(n);
    (core::str::from_utf8(t).unwrap_or("fuzz/topic"), rest)
}

/// Opens arbitrary bytes as an envelope on an arbitrary topic. Also seals a
/// message on that topic and checks that it opens, to reach past the tag.
pub fn open_envelope(data: &[u8]) {
    let (topic, envelope) = split_topic(data);
    let mut opener: Opener<2, 4> = Opener::new(fixed_keyring());
    let mut buf = [0u8; 512];
    let n = envelope.len().min(buf.len());
    buf[..n].copy_from_slice(&envelope[..n]);
    let before = buf;
    if opener.open_in_place(topic, &mut buf[..n]).is_ok() {
        // Only a genuine envelope under a fixed key can open: impossible
        // for the fuzzer unless it found a forgery.
        panic_forgery();
    }
    // A failed open must not have decrypted anything it did not verify.
    assert_untouched(&before[..n], &buf[..n], &envelope[..n]);

    let key = Key::from_bytes(1, [0x11; 32]);
    for suite in Suite::ALL {
        if let Ok(mut sealer) =
            Sealer::new(&key, u32::from(envelope.first().copied().unwrap_or(0)), suite, MemoryCounterStore::new())
        {
            let mut out = [0u8; 512 + crate::MAX_OVERHEAD];
            if let Ok(len) = sealer.seal_into(topic, &envelope[..n], &mut out) {
                // A fresh receiver per suite: one (key, sender) has one counter
                // sequence across suites, and both sealers here start at 0.
                let mut opener: Opener<2, 4> = Opener::new(fixed_keyring());
                match opener.open_in_place(topic, &mut out[..len]) {
                    Ok(o) if o.payload == &envelope[..n] => {}
                    _ => panic_forgery(),
                }
            }
        }
    }
}

#[allow(clippy::panic)]
fn panic_forgery() {
    panic!("envelope opened or round trip failed")
}

#[allow(clippy::panic)]
fn assert_untouched(before: &[u8], after: &[u8], _orig: &[u8]) {
    if before != after {
        panic!("failed open modified the buffer");
    }
}

/// Parses arbitrary bytes as a header and an envelope; a header that
/// parses must re-encode to the same bytes (canonical encoding).
#[allow(clippy::panic)]
pub fn parse_header(data: &[u8]) {
    let _ = Envelope::parse(data);
    if let Ok((h, n)) = Header::parse(data) {
        let mut out = [0u8; crate::MAX_HEADER_LEN];
        match h.encode(&mut out) {
            Ok(m) if out[..m] == data[..n] => {}
            _ => panic!("non-canonical header accepted"),
        }
    }
}

/// Parses arbitrary bytes as key texts and a postcard key file.
#[allow(clippy::panic)]
pub fn import_keys(data: &[u8]) {
    if let Ok(s) = core::str::from_utf8(data) {
        if let Ok(k) = Key::from_text(s) {
            let again = Key::from_text(k.to_text().as_str());
            if again.map(|a| *a.expose_secret() == *k.expose_secret() && a.id() == k.id()) != Ok(true) {
                panic!("group key text does not round-trip");
            }
        }
        if let Ok(p) = PublicKey::from_text(s) {
            if PublicKey::from_text(p.to_text().as_str()) != Ok(p) {
                panic!("public key text does not round-trip");
            }
        }
        let _ = StaticKeyPair::from_secret_text(s);
    }
    #[cfg(feature = "alloc")]
    {
        let _ = postcard::from_bytes::<crate::KeyFile>(data);
    }
    let _ = postcard::from_bytes::<Key>(data);
}

/// A typed payload for [`typed_open`].
#[derive(serde::Deserialize, serde::Serialize, Debug)]
pub struct FuzzReading<'a> {
    /// A number.
    pub value: i64,
    /// A borrowed string.
    pub label: &'a str,
    /// Options.
    pub flags: Option<[u8; 4]>,
}

/// Seals arbitrary bytes as the body of an envelope (so it verifies), then
/// opens it as a typed value: postcard must reject garbage without panic.
pub fn typed_open(data: &[u8]) {
    let key = Key::from_bytes(1, [0x11; 32]);
    let Ok(mut sealer) = Sealer::new(&key, 1, Suite::ChaCha20Poly1305, MemoryCounterStore::new()) else { return };
    let mut buf = [0u8; 512 + crate::MAX_OVERHEAD];
    let n = data.len().min(512);
    let Ok(len) = sealer.seal_into("t", &data[..n], &mut buf) else { return };
    let mut opener: Opener<2, 4> = Opener::new(fixed_keyring());
    let _ = opener.open_value::<FuzzReading<'_>>("t", &mut buf[..len]);
}

/// Drives a [`ReplayWindow`] and a simple reference model (a sorted set of
/// accepted counters) with the same operations and compares their answers.
#[allow(clippy::panic)]
pub fn replay_window_differential(data: &[u8]) {
    let Some((&w, ops)) = data.split_first() else { return };
    let width = u32::from(w) + 1; // 1..=256
                                  // Without gaps: the model is the plain bitmap window (the gaps have
                                  // their own model in the unit tests).
    let Ok(mut win) = ReplayWindow::with_gaps(width, 0) else { return };
    let mut model = Model::default();
    let mut last: u64 = 0;
    for chunk in ops.chunks(3) {
        // Op encoding: a base selector and a 16-bit delta, so the fuzzer
        // explores jumps, small steps back and the u64 extremes.
        let sel = chunk[0];
        let delta =
            u64::from(u16::from_le_bytes([chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)]));
        let c = match sel % 4 {
            0 => last.saturating_add(delta),
            1 => last.saturating_sub(delta % 300),
            2 => u64::MAX - delta,
            _ => delta,
        };
        let got = win.check(c);
        let want = model.check(width, c);
        if got != want {
            panic!("window {got:?} model {want:?} for {c}");
        }
        if got.is_ok() {
            win.update(c);
            model.accept(c);
        }
        last = c;
    }
}

/// Reference model: the highest accepted counter and the accepted counters
/// within the largest window below it, in a fixed array (no allocation).
struct Model {
    highest: Option<u64>,
    seen: [Option<u64>; 512],
    len: usize,
}

impl Default for Model {
    fn default() -> Self {
        Model { highest: None, seen: [None; 512], len: 0 }
    }
}

impl Model {
    fn check(&self, width: u32, c: u64) -> Result<(), crate::Error> {
        match self.highest {
            None => Ok(()),
            Some(h) if c > h => Ok(()),
            Some(h) if h - c >= u64::from(width) => Err(crate::Error::Replay),
            Some(_) if self.seen[..self.len].contains(&Some(c)) => Err(crate::Error::Duplicate),
            Some(_) => Ok(()),
        }
    }
    fn accept(&mut self, c: u64) {
        self.highest = Some(self.highest.map_or(c, |h| h.max(c)));
        let h = self.highest.unwrap_or(c);
        // Keep only counters that can still be inside any window.
        let mut j = 0;
        for i in 0..self.len {
            if let Some(v) = self.seen[i] {
                if h - v < 256 {
                    self.seen[j] = Some(v);
                    j += 1;
                }
            }
        }
        self.len = j;
        if self.len < self.seen.len() {
            self.seen[self.len] = Some(c);
            self.len += 1;
        }
    }
}

/// The cryptographic backend this build of the core uses: `"ring"` or
/// `"rustcrypto"` (see `suites.rs`).
#[must_use]
pub fn backend() -> &'static str {
    crate::suites::BACKEND
}

/// Input layout: `[flags] [key: 32] [counter: 8, LE] [aad length] aad body`
/// (short input is padded with zeros). Bit 0 of `flags` picks the suite.
/// Panics when the compiled backends disagree on sealing or opening, or a
/// corrupted tag opens or changes the body ([`backends_agree`]); with only
/// RustCrypto compiled it checks RustCrypto against itself.
#[cfg(feature = "alloc")]
#[allow(clippy::panic)]
pub fn backend_differential(data: &[u8]) {
    let mut fixed = [0u8; 42];
    let n = data.len().min(fixed.len());
    fixed[..n].copy_from_slice(&data[..n]);
    let rest = &data[n..];
    let suite = if fixed[0] & 1 == 0 { Suite::ChaCha20Poly1305 } else { Suite::HmacSha256 };
    let mut key = [0u8; 32];
    key.copy_from_slice(&fixed[1..33]);
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&fixed[33..41]);
    let aad_len = usize::from(fixed[41]).min(rest.len());
    let (aad, body) = rest.split_at(aad_len);
    if !backends_agree(suite, &key, u64::from_le_bytes(counter), aad, body) {
        panic!("backends disagree ({}) on {suite:?}, {} B aad, {} B body", backend(), aad.len(), body.len());
    }
}

/// Seals `body` with every compiled backend and opens it with every one,
/// also with a corrupted tag; true when they all agree (same ciphertext and
/// tag, round trip, rejection with the body left as it was).
#[cfg(feature = "alloc")]
#[must_use]
pub fn backends_agree(suite: Suite, key: &[u8; 32], counter: u64, aad: &[u8], body: &[u8]) -> bool {
    crate::suites::backends_agree(suite, key, counter, aad, body)
}

/// Decodes arbitrary bytes as a control message, an acknowledgement and a
/// member-state record; a control message that decodes must re-encode to
/// the same bytes. Then seals the bytes as a control body under a fixed
/// pairwise key and hands the envelope to a member agent, to reach past the
/// tag: whatever the body, the agent refuses or applies it without panicking.
#[allow(clippy::panic)]
pub fn control_message(data: &[u8]) {
    use crate::{ControlState, ControlTopics, MemberAgent, CONTROL_KEY_ID};
    if let Ok(state) = ControlState::decode(data) {
        let mut out = [0u8; crate::MAX_CONTROL_LEN];
        match state.encode(&mut out) {
            Ok(n) if &out[..n] == data => {}
            _ => panic!("a decoded control message did not re-encode to its bytes"),
        }
    }
    let _ = crate::Ack::decode(data);
    let member = StaticKeyPair::from_secret_bytes([0x42; 32]);
    let authority = StaticKeyPair::from_secret_bytes([0x24; 32]);
    let (Ok(to_member), Ok(from_authority)) =
        (authority.pairwise(&member.public(), CONTROL_KEY_ID), member.pairwise(&authority.public(), CONTROL_KEY_ID))
    else {
        return;
    };
    let topics = ControlTopics::default();
    let _ = MemberAgent::with_pairwise(from_authority.clone(), "fuzz", &topics, Some(data));
    let Ok(mut agent) = MemberAgent::with_pairwise(from_authority.clone(), "fuzz", &topics, None) else { return };
    let Ok(mut sealer) = Sealer::new(&to_member.send, 0, Suite::ChaCha20Poly1305, MemoryCounterStore::new()) else {
        return;
    };
    let mut env = [0u8; crate::MAX_CONTROL_ENVELOPE_LEN];
    let n = data.len().min(crate::MAX_CONTROL_LEN);
    env[..n].copy_from_slice(&data[..n]);
    let Ok(len) = sealer.seal_in_place(agent.control_topic(), &mut env, n) else { return };
    let mut state = [0u8; crate::MAX_MEMBER_STATE_LEN];
    let mut ack = [0u8; crate::MAX_ACK_ENVELOPE_LEN];
    let applied = agent
        .handle("mqseal/v1/ctl/fuzz", &mut env[..len], None, &mut state, &mut ack, |_| Ok(()))
        .map(|a| a.state.len());
    if let Ok(n) = applied {
        if MemberAgent::with_pairwise(from_authority, "fuzz", &topics, Some(&state[..n])).is_err() {
            panic!("the agent's own state record did not load");
        }
    }
}
