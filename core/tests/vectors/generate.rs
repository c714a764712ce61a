// The test-vector generator, shared by `cargo run -p mqseal --example gen_vectors`
// (writes core/tests/vectors/v1.json) and by core/tests/vectors.rs (which
// regenerates in memory and compares with the committed file, so that any
// accidental change of the wire format fails the tests).
//
// Everything here is deterministic: fixed keys, counters and timestamps.

use mqseal::{Key, MemoryCounterStore, PublicKey, Sealer, StaticKeyPair, Suite};
use serde::Serialize;

#[derive(Serialize)]
pub struct VectorFile {
    pub format: &'static str,
    pub version: u32,
    pub description: &'static str,
    /// 2^64 - 1 as a JSON number and as a decimal string: a runner whose
    /// JSON parser reads numbers as doubles sees them differ.
    pub max_u64: u64,
    pub max_u64_dec: String,
    pub positive: Vec<Positive>,
    pub negative: Vec<Negative>,
    pub keys: Vec<KeyText>,
    pub pairwise: Vec<PairwiseCase>,
    pub sequences: Vec<Sequence>,
}

/// A receiver fed envelopes one after the other, each with its expected
/// result: the gap cases of the replay window (PROTOCOL 9.4).
#[derive(Serialize)]
pub struct Sequence {
    pub name: String,
    pub open_key: String,
    pub topic: String,
    pub window: u32,
    pub gaps: u32,
    pub max_age: Option<u64>,
    pub max_skew: Option<u64>,
    /// Building the receiver fails with this error (and `steps` is empty).
    pub config_error: Option<&'static str>,
    pub steps: Vec<Step>,
    pub max_age_dec: Option<String>,
    pub max_skew_dec: Option<String>,
}

/// One envelope of a [`Sequence`], opened at `now`.
#[derive(Serialize)]
pub struct Step {
    /// The envelope's counter, for the reader (the envelope holds it).
    pub counter: u64,
    pub now: Option<u64>,
    pub envelope_hex: String,
    /// null: opens; else the error name.
    pub expect: Option<&'static str>,
    pub counter_dec: String,
    pub now_dec: Option<String>,
}

#[derive(Serialize, Clone)]
pub struct Rewrite {
    pub received: String,
    pub sealed: String,
}

/// One key text, valid (`error` null) or not.
#[derive(Serialize)]
pub struct KeyText {
    pub name: String,
    /// "key", "x25519-secret" or "x25519-public".
    pub kind: &'static str,
    pub text: String,
    /// For a valid "key": its key id.
    pub key_id: Option<u32>,
    /// For a valid text: the 32 bytes.
    pub bytes_hex: Option<String>,
    /// For a valid text: the text an implementation writes for it.
    pub canonical_text: Option<String>,
    /// For a valid "x25519-secret": the text of its public key.
    pub public_text: Option<String>,
    pub error: Option<&'static str>,
}

/// A pairwise derivation (5.3) from one side's secret and the peer's public key.
#[derive(Serialize)]
pub struct PairwiseCase {
    pub name: String,
    pub secret: String,
    pub peer_public: String,
    pub key_id: u32,
    pub send_key: Option<String>,
    pub recv_key: Option<String>,
    pub error: Option<&'static str>,
}

#[derive(Serialize, Clone)]
pub struct Pairwise {
    pub sender_secret: String,
    pub receiver_secret: String,
    pub key_id: u32,
}

#[derive(Serialize, Clone)]
pub struct Positive {
    pub name: String,
    pub suite: &'static str,
    pub sender_key: String,
    pub open_key: String,
    pub pairwise: Option<Pairwise>,
    pub sender_id: u32,
    pub counter: u64,
    pub timestamp: Option<u64>,
    pub topic: String,
    pub plaintext_hex: String,
    pub envelope_hex: String,
    pub counter_dec: String,
    pub timestamp_dec: Option<String>,
}

#[derive(Serialize, Clone)]
pub struct Negative {
    pub name: String,
    pub open_key: String,
    pub topic: String,
    pub window: u32,
    pub preopen: Vec<String>,
    pub now: Option<u64>,
    pub max_age: Option<u64>,
    pub max_skew: Option<u64>,
    pub envelope_hex: String,
    pub error: &'static str,
    pub now_dec: Option<String>,
    pub max_age_dec: Option<String>,
    pub max_skew_dec: Option<String>,
    pub require_timestamp: bool,
    /// Suites accepted, by name; null: both.
    pub suites: Option<Vec<&'static str>>,
    /// Sender-table capacity; null: the implementation's default.
    pub senders: Option<u32>,
    /// "rejectNew" or "leastRecentlyUsed".
    pub eviction: &'static str,
    /// A prefix rewrite applied to `topic` before opening; null: exact binding.
    pub rewrite: Option<Rewrite>,
}

fn group_key(id: u32, fill: u8) -> Key {
    let mut b = [0u8; 32];
    for (i, x) in b.iter_mut().enumerate() {
        *x = fill.wrapping_mul(31).wrapping_add(i as u8);
    }
    Key::from_bytes(id, b)
}

fn keypair(fill: u8) -> StaticKeyPair {
    let mut b = [0u8; 32];
    for (i, x) in b.iter_mut().enumerate() {
        *x = fill ^ (i as u8).wrapping_mul(7);
    }
    StaticKeyPair::from_secret_bytes(b)
}

struct Spec<'a> {
    name: &'a str,
    suite: Suite,
    key: Key,
    open_key: Key,
    pairwise: Option<Pairwise>,
    sender_id: u32,
    counter: u64,
    timestamp: Option<u64>,
    topic: String,
    plaintext: Vec<u8>,
}

fn seal(spec: Spec<'_>) -> Positive {
    let mut sealer =
        Sealer::new(&spec.key, spec.sender_id, spec.suite, MemoryCounterStore::starting_at(spec.counter)).unwrap();
    let mut out = vec![0u8; spec.plaintext.len() + mqseal::MAX_OVERHEAD];
    let n = sealer.seal_into_at(&spec.topic, spec.timestamp, &spec.plaintext, &mut out).unwrap();
    out.truncate(n);
    Positive {
        name: spec.name.to_string(),
        suite: spec.suite.name(),
        sender_key: spec.key.to_text().to_string(),
        open_key: spec.open_key.to_text().to_string(),
        pairwise: spec.pairwise,
        sender_id: spec.sender_id,
        counter: spec.counter,
        timestamp: spec.timestamp,
        topic: spec.topic,
        plaintext_hex: hex::encode(&spec.plaintext),
        envelope_hex: hex::encode(out),
        counter_dec: spec.counter.to_string(),
        timestamp_dec: spec.timestamp.map(|t| t.to_string()),
    }
}

/// Seals without a [`Sealer`], straight from the spec (sections 5.2, 7, 8):
/// for the counter 2^64 - 1, which a conforming sender never uses, so that
/// the vectors can state what a receiver does with it.
fn raw_seal(key: &Key, suite: Suite, sender_id: u32, counter: u64, topic: &str, plaintext: &[u8]) -> String {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use hmac::Mac;
    use sha2::Digest;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let mut header = vec![0x10 | suite.id(), 0];
    varint(u64::from(key.id()), &mut header);
    varint(u64::from(sender_id), &mut header);
    varint(counter, &mut header);
    let mut subkey = [0u8; 32];
    let info: [&[u8]; 4] = [b"mqseal/v1 subkey", &[suite.id()], &key.id().to_be_bytes(), &sender_id.to_be_bytes()];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"mqseal/v1"), key.expose_secret())
        .expand_multi_info(&info, &mut subkey)
        .unwrap();
    let mut aad = b"mqseal/v1".to_vec();
    aad.extend_from_slice(&header);
    varint(topic.len() as u64, &mut aad);
    if topic.len() <= 128 {
        aad.extend_from_slice(topic.as_bytes());
    } else {
        aad.extend_from_slice(&sha2::Sha256::digest(topic.as_bytes()));
    }
    let mut body = plaintext.to_vec();
    let tag: Vec<u8> = match suite {
        Suite::ChaCha20Poly1305 => {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_be_bytes());
            let cipher = chacha20poly1305::ChaCha20Poly1305::new(&subkey.into());
            cipher.encrypt_inout_detached(&nonce.into(), &aad, body.as_mut_slice().into()).unwrap().to_vec()
        }
        _ => {
            let mut block = [0u8; 64];
            block[..32].copy_from_slice(&subkey);
            let mut m = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new(&block.into());
            m.update(&aad);
            m.update(&body);
            m.finalize().into_bytes()[..16].to_vec()
        }
    };
    header.extend_from_slice(&body);
    header.extend_from_slice(&tag);
    hex::encode(header)
}

pub const TS: u64 = 1_763_769_600; // 2025-11-22T00:00:00Z

pub fn generate() -> VectorFile {
    let k1 = group_key(1, 1);
    let big: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let long_topic = format!("site/{}/telemetry", "segment-".repeat(24));
    assert!(long_topic.len() > mqseal::TOPIC_INLINE_MAX);
    let device = keypair(0xA5);
    let server = keypair(0x5A);
    let pw_id = 100;
    let on_device = device.pairwise(&server.public(), pw_id).unwrap();
    let on_server = server.pairwise(&device.public(), pw_id).unwrap();
    let pairwise = Pairwise {
        sender_secret: device.secret_text().to_string(),
        receiver_secret: server.secret_text().to_string(),
        key_id: pw_id,
    };

    let g = |name: &'static str, suite, sender_id, counter, timestamp, topic: &str, plaintext: &[u8]| Spec {
        name,
        suite,
        key: k1.clone(),
        open_key: k1.clone(),
        pairwise: None,
        sender_id,
        counter,
        timestamp,
        topic: topic.to_string(),
        plaintext: plaintext.to_vec(),
    };
    let aead = Suite::ChaCha20Poly1305;
    let hmac = Suite::HmacSha256;

    let mut positive = vec![
        seal(g("aead-group-basic", aead, 42, 1, None, "factory/line1/temp", b"21.5")),
        seal(g("aead-group-counter-zero", aead, 1, 0, None, "a", b"first")),
        seal(g("aead-group-empty", aead, 42, 2, None, "factory/line1/temp", b"")),
        seal(g("aead-group-timestamp", aead, 42, 3, Some(TS), "factory/line1/temp", b"{\"t\":21.5}")),
        seal(g("aead-group-large", aead, 70_000, 1 << 21, None, "factory/line1/blob", &big)),
        seal(g("aead-group-long-topic", aead, 42, 4, None, &long_topic, b"digest form of the topic")),
        seal(g("aead-group-utf8-topic", aead, 42, 5, None, "capteurs/température/°C", b"19.0")),
        seal(Spec {
            name: "aead-group-max-fields",
            key: group_key(u32::MAX, 9),
            open_key: group_key(u32::MAX, 9),
            ..g("", aead, u32::MAX, (1 << 53) - 1, Some((1 << 53) - 1), "x/y", b"extremes")
        }),
        seal(g("hmac-group-basic", hmac, 42, 1, None, "factory/line1/cmd", b"open-valve")),
        seal(g("hmac-group-empty", hmac, 7, 9, None, "factory/line1/cmd", b"")),
        seal(g("hmac-group-timestamp", hmac, 42, 300, Some(TS), "factory/line1/cmd", b"close-valve")),
        seal(g("hmac-group-long-topic", hmac, 42, 301, None, &long_topic, b"readable")),
        seal(g("hmac-group-large", hmac, 42, 302, None, "factory/line1/blob", &big)),
        seal(Spec {
            name: "aead-pairwise",
            key: on_device.send.clone(),
            open_key: on_server.recv.clone(),
            pairwise: Some(pairwise.clone()),
            ..g("", aead, 9, 77, None, "dev/9/up", b"pairwise hello")
        }),
        seal(Spec {
            name: "hmac-pairwise-timestamp",
            key: on_device.send.clone(),
            open_key: on_server.recv.clone(),
            pairwise: Some(pairwise.clone()),
            ..g("", hmac, 9, 78, Some(TS), "dev/9/up", b"pairwise readable")
        }),
    ];

    // Added in issue 10: key id 0, 10-byte varints, counters a double cannot
    // hold, the 128/129-byte topic boundary (in bytes, not characters).
    let k0 = group_key(0, 3);
    let kmax = group_key(u32::MAX, 9);
    let topic128 = format!("len128/{}", "a".repeat(128 - 7));
    let topic129 = format!("len129/{}", "b".repeat(129 - 7));
    let topic129_utf8 = format!("{}x", "\u{e9}".repeat(64));
    assert_eq!(
        (topic128.len(), topic129.len(), topic129_utf8.len(), topic129_utf8.chars().count()),
        (128, 129, 129, 65)
    );
    positive.extend([
        seal(Spec {
            name: "aead-key-id-zero",
            key: k0.clone(),
            open_key: k0.clone(),
            ..g("", aead, 0, 0, None, "k/0", b"key id 0, sender id 0, counter 0")
        }),
        seal(g(
            "aead-counter-2p53-plus-1",
            aead,
            42,
            (1 << 53) + 1,
            Some((1 << 53) + 1),
            "factory/line1/temp",
            b"no double",
        )),
        seal(g("hmac-counter-2p63", hmac, 42, 1 << 63, Some(1 << 63), "factory/line1/cmd", b"first 10-byte varint")),
        seal(Spec {
            name: "aead-counter-last",
            key: kmax.clone(),
            open_key: kmax.clone(),
            ..g("", aead, u32::MAX, u64::MAX - 1, Some(u64::MAX), "x/y", b"last counter, longest header")
        }),
        seal(Spec {
            name: "hmac-counter-last",
            key: kmax.clone(),
            open_key: kmax.clone(),
            ..g("", hmac, u32::MAX, u64::MAX - 1, Some(u64::MAX - 1), "x/y", b"last counter")
        }),
        seal(g("aead-topic-128", aead, 42, 10, None, &topic128, b"inline topic")),
        seal(g("aead-topic-129", aead, 42, 11, None, &topic129, b"digest topic")),
        seal(g("hmac-topic-128", hmac, 42, 303, None, &topic128, b"inline topic")),
        seal(g("hmac-topic-129", hmac, 42, 304, None, &topic129, b"digest topic")),
        seal(g("aead-topic-129-bytes-65-chars", aead, 42, 12, None, &topic129_utf8, b"bytes, not characters")),
        seal(g("aead-timestamp-zero", aead, 42, 13, Some(0), "factory/line1/temp", b"epoch")),
    ]);
    // The longest header (32 bytes) is exercised.
    let last_env = hex::decode(&positive.iter().find(|p| p.name == "aead-counter-last").unwrap().envelope_hex).unwrap();
    assert_eq!(mqseal::Header::parse(&last_env).unwrap().1, mqseal::MAX_HEADER_LEN);

    let by_name = |n: &str| positive.iter().find(|p| p.name == n).unwrap().clone();
    let basic = by_name("aead-group-basic");
    let hbasic = by_name("hmac-group-basic");
    let ts = by_name("aead-group-timestamp");
    let pw = by_name("aead-pairwise");
    let env = |p: &Positive| hex::decode(&p.envelope_hex).unwrap();
    let mutate = |p: &Positive, f: &dyn Fn(&mut Vec<u8>)| {
        let mut e = env(p);
        f(&mut e);
        hex::encode(e)
    };
    let neg = |name: &str, p: &Positive, envelope_hex: String, error: &'static str| Negative {
        name: name.to_string(),
        open_key: p.open_key.clone(),
        topic: p.topic.clone(),
        window: 128,
        preopen: vec![],
        now: None,
        max_age: None,
        max_skew: None,
        envelope_hex,
        error,
        now_dec: None,
        max_age_dec: None,
        max_skew_dec: None,
        require_timestamp: false,
        suites: None,
        senders: None,
        eviction: "rejectNew",
        rewrite: None,
    };
    let old = seal(g("old", aead, 42, 800, None, "factory/line1/temp", b"old"));
    let newer = seal(g("newer", aead, 42, 1000, None, "factory/line1/temp", b"newer"));

    let mut negative = vec![
        neg("aead-flipped-tag", &basic, mutate(&basic, &|e| *e.last_mut().unwrap() ^= 1), "auth"),
        neg("aead-flipped-body", &basic, mutate(&basic, &|e| e[6] ^= 0x80), "auth"),
        neg("aead-flipped-sender-id", &basic, mutate(&basic, &|e| e[3] ^= 1), "auth"),
        neg("aead-flipped-counter", &basic, mutate(&basic, &|e| e[4] ^= 2), "auth"),
        neg("hmac-flipped-body", &hbasic, mutate(&hbasic, &|e| e[6] ^= 1), "auth"),
        neg("hmac-flipped-tag", &hbasic, mutate(&hbasic, &|e| *e.last_mut().unwrap() ^= 0x40), "auth"),
        Negative {
            topic: "factory/line2/temp".into(),
            ..neg("aead-wrong-topic", &basic, basic.envelope_hex.clone(), "auth")
        },
        Negative {
            topic: "factory/line1/cmd2".into(),
            ..neg("hmac-wrong-topic", &hbasic, hbasic.envelope_hex.clone(), "auth")
        },
        Negative {
            open_key: group_key(1, 2).to_text().to_string(),
            ..neg("aead-wrong-key", &basic, basic.envelope_hex.clone(), "auth")
        },
        Negative {
            open_key: group_key(2, 1).to_text().to_string(),
            ..neg("aead-wrong-key-id", &basic, basic.envelope_hex.clone(), "unknownKey")
        },
        Negative {
            // The device's own receive key: the message reflected back to its sender.
            open_key: on_device.recv.to_text().to_string(),
            ..neg("aead-pairwise-reflected", &pw, pw.envelope_hex.clone(), "auth")
        },
        Negative {
            preopen: vec![basic.envelope_hex.clone()],
            ..neg("aead-duplicate", &basic, basic.envelope_hex.clone(), "duplicate")
        },
        Negative {
            preopen: vec![newer.envelope_hex.clone()],
            ..neg("aead-replay-below-window", &old, old.envelope_hex.clone(), "replay")
        },
        Negative {
            preopen: vec![newer.envelope_hex.clone()],
            window: 64,
            envelope_hex: seal(g("mid", aead, 42, 936, None, "factory/line1/temp", b"mid")).envelope_hex,
            ..neg("aead-replay-window-64", &old, String::new(), "replay")
        },
        neg("truncated-empty", &basic, String::new(), "truncated"),
        neg("truncated-header", &basic, hex::encode(&env(&basic)[..3]), "truncated"),
        neg("truncated-tag", &basic, hex::encode(&env(&basic)[..20]), "truncated"),
        neg(
            "bad-varint-overlong-key-id",
            &basic,
            mutate(&basic, &|e| e.splice(2..3, [0x81, 0x00]).for_each(drop)),
            "badVarint",
        ),
        neg(
            "bad-varint-overflow-key-id",
            &basic,
            mutate(&basic, &|e| e.splice(2..3, [0xff, 0xff, 0xff, 0xff, 0x1f]).for_each(drop)),
            "badVarint",
        ),
        neg(
            "bad-varint-counter-too-long",
            &basic,
            mutate(&basic, &|e| {
                e.splice(4..5, [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).for_each(drop)
            }),
            "badVarint",
        ),
        neg("unknown-version", &basic, mutate(&basic, &|e| e[0] = 0x21), "unsupportedVersion"),
        neg("unknown-version-zero", &basic, mutate(&basic, &|e| e[0] = 0x01), "unsupportedVersion"),
        neg("unknown-suite", &basic, mutate(&basic, &|e| e[0] = 0x13), "unknownSuite"),
        neg("unknown-flags", &basic, mutate(&basic, &|e| e[1] = 0x02), "unknownFlags"),
        Negative {
            now: Some(TS + 1000),
            max_age: Some(300),
            ..neg("expired", &ts, ts.envelope_hex.clone(), "expired")
        },
        Negative {
            now: Some(TS - 1000),
            max_skew: Some(60),
            ..neg("from-future", &ts, ts.envelope_hex.clone(), "fromFuture")
        },
        Negative {
            now: Some(TS),
            max_age: Some(300),
            ..neg("timestamp-required", &basic, basic.envelope_hex.clone(), "timestampRequired")
        },
        Negative {
            now: Some(TS + 1000),
            max_age: Some(300),
            ..neg("expired-but-forged-is-auth", &ts, mutate(&ts, &|e| *e.last_mut().unwrap() ^= 1), "auth")
        },
    ];

    // ----- Added in issue 10 -----
    let t = "factory/line1/temp";
    let env_at = |suite: Suite, key: &Key, sender_id: u32, counter: u64, timestamp: Option<u64>, topic: &str| {
        seal(Spec {
            name: "",
            suite,
            key: key.clone(),
            open_key: key.clone(),
            pairwise: None,
            sender_id,
            counter,
            timestamp,
            topic: topic.to_string(),
            plaintext: b"v".to_vec(),
        })
        .envelope_hex
    };
    let e = |counter: u64| env_at(aead, &k1, 42, counter, None, t);
    let es = |sender_id: u32, counter: u64| env_at(aead, &k1, sender_id, counter, None, t);
    let et = |sender_id: u32, counter: u64, ts: u64| env_at(aead, &k1, sender_id, counter, Some(ts), t);
    let forge = |hex_env: &str| {
        let mut b = hex::decode(hex_env).unwrap();
        *b.last_mut().unwrap() ^= 1;
        hex::encode(b)
    };
    let splice = |p: &Positive, at: core::ops::Range<usize>, with: &[u8]| {
        let mut b = env(p);
        b.splice(at, with.iter().copied()).for_each(drop);
        hex::encode(b)
    };
    let cut = |p: &Positive, n: usize| hex::encode(&env(p)[..n]);
    // basic: 11 00 01 2a 01 ...; ts: 11 01 01 2a 03 [80 fa 83 c9 06] ...
    assert_eq!(&env(&basic)[..5], &[0x11, 0x00, 0x01, 0x2a, 0x01]);
    assert_eq!(&env(&ts)[..10], &[0x11, 0x01, 0x01, 0x2a, 0x03, 0x80, 0xfa, 0x83, 0xc9, 0x06]);
    let base = |name: &str, error: &'static str| neg(name, &basic, String::new(), error);
    let last = by_name("aead-counter-last");
    let tszero = by_name("aead-timestamp-zero");
    let counter_max = raw_seal(&k1, aead, 42, u64::MAX, t, b"v");
    let rewritten = env_at(aead, &k1, 42, 1, None, "site-a/temp");
    let rule = |received: &str, sealed: &str| Some(Rewrite { received: received.into(), sealed: sealed.into() });
    let aead_only = Some(vec![aead.name()]);
    let hmac_only = Some(vec![hmac.name()]);
    let lru = "leastRecentlyUsed";

    negative.extend([
        // Varints in every field, and what a parser checks first.
        neg("bad-varint-overlong-flags", &basic, splice(&basic, 1..2, &[0x80, 0x00]), "badVarint"),
        neg("bad-varint-overflow-flags", &basic, splice(&basic, 1..2, &[0xff, 0xff, 0xff, 0xff, 0x1f]), "badVarint"),
        neg(
            "bad-varint-flags-too-long",
            &basic,
            splice(&basic, 1..2, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            "badVarint",
        ),
        neg("unknown-flags-128", &basic, splice(&basic, 1..2, &[0x80, 0x01]), "unknownFlags"),
        neg("unknown-flags-2p31", &basic, splice(&basic, 1..2, &[0x80, 0x80, 0x80, 0x80, 0x08]), "unknownFlags"),
        neg("unknown-flags-before-key-id", &basic, "1102ffffffffff".into(), "unknownFlags"),
        neg("bad-varint-overlong-sender-id", &basic, splice(&basic, 3..4, &[0xaa, 0x00]), "badVarint"),
        neg(
            "bad-varint-overflow-sender-id",
            &basic,
            splice(&basic, 3..4, &[0x80, 0x80, 0x80, 0x80, 0x10]),
            "badVarint",
        ),
        neg(
            "bad-varint-overflow-counter",
            &basic,
            splice(&basic, 4..5, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]),
            "badVarint",
        ),
        neg("bad-varint-overlong-timestamp", &ts, splice(&ts, 9..10, &[0x86, 0x00]), "badVarint"),
        neg(
            "bad-varint-overflow-timestamp",
            &ts,
            splice(&ts, 5..10, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]),
            "badVarint",
        ),
        neg(
            "bad-varint-timestamp-too-long",
            &ts,
            splice(&ts, 5..10, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            "badVarint",
        ),
        neg("bad-varint-before-truncated", &basic, "118000".into(), "badVarint"),
        neg("truncated-in-counter", &basic, "1100012a80".into(), "truncated"),
        neg("truncated-in-timestamp", &ts, cut(&ts, 7), "truncated"),
        neg("truncated-after-header", &ts, cut(&ts, 10), "truncated"),
        neg("truncated-tag-15", &basic, cut(&basic, 5 + 15), "truncated"),
        neg("unknown-suite-zero", &basic, mutate(&basic, &|e| e[0] = 0x10), "unknownSuite"),
        neg("unknown-suite-before-truncated", &basic, "13".into(), "unknownSuite"),
        neg("unsupported-version-before-suite", &basic, "2f".into(), "unsupportedVersion"),
        neg("unsupported-version-15", &basic, mutate(&basic, &|e| e[0] = 0xf1), "unsupportedVersion"),
        // Suites the receiver does not accept: reported from the header alone.
        Negative {
            suites: aead_only.clone(),
            ..neg("suite-not-allowed", &hbasic, hbasic.envelope_hex.clone(), "suiteNotAllowed")
        },
        Negative {
            suites: hmac_only.clone(),
            ..neg("suite-not-allowed-forged", &basic, forge(&basic.envelope_hex), "suiteNotAllowed")
        },
        Negative {
            suites: aead_only.clone(),
            open_key: group_key(2, 1).to_text().to_string(),
            ..neg("suite-not-allowed-before-unknown-key", &hbasic, hbasic.envelope_hex.clone(), "suiteNotAllowed")
        },
        Negative {
            suites: hmac_only.clone(),
            preopen: vec![hbasic.envelope_hex.clone()],
            ..neg("suite-allowed-then-duplicate", &hbasic, hbasic.envelope_hex.clone(), "duplicate")
        },
        // Topic names, checked after the key lookup and before verification.
        Negative {
            open_key: group_key(2, 1).to_text().to_string(),
            topic: String::new(),
            ..neg("unknown-key-before-invalid-topic", &basic, basic.envelope_hex.clone(), "unknownKey")
        },
        Negative {
            topic: String::new(),
            ..neg("invalid-topic-empty", &basic, basic.envelope_hex.clone(), "invalidTopic")
        },
        Negative {
            topic: "factory/+/temp".into(),
            ..neg("invalid-topic-plus", &basic, basic.envelope_hex.clone(), "invalidTopic")
        },
        Negative {
            topic: "factory/#".into(),
            ..neg("invalid-topic-hash", &basic, basic.envelope_hex.clone(), "invalidTopic")
        },
        Negative {
            topic: "factory/line1\u{0}temp".into(),
            ..neg("invalid-topic-nul", &basic, basic.envelope_hex.clone(), "invalidTopic")
        },
        Negative {
            topic: String::new(),
            ..neg("invalid-topic-forged", &basic, forge(&basic.envelope_hex), "invalidTopic")
        },
        Negative {
            topic: "t".repeat(65_536),
            ..neg("topic-too-long-65536", &basic, basic.envelope_hex.clone(), "topicTooLong")
        },
        // Prefix rewrite: applied to the received topic before anything else.
        Negative {
            topic: "cloud/site-a/temp".into(),
            rewrite: rule("cloud/site-a/", "site-a/"),
            preopen: vec![rewritten.clone()],
            envelope_hex: rewritten.clone(),
            ..base("rewrite-applied-then-duplicate", "duplicate")
        },
        Negative {
            topic: "cloud/site-a/temp".into(),
            envelope_hex: rewritten.clone(),
            ..base("rewrite-missing-is-auth", "auth")
        },
        Negative {
            topic: "cloud/site-b/temp".into(),
            rewrite: rule("cloud/site-a/", "site-a/"),
            envelope_hex: rewritten.clone(),
            ..base("topic-not-rewritable", "topicNotRewritable")
        },
        Negative {
            topic: "other".into(),
            rewrite: rule("cloud/site-a/", "site-a/"),
            ..base("topic-not-rewritable-before-format", "topicNotRewritable")
        },
        Negative {
            topic: "cloud/+".into(),
            rewrite: rule("cloud/", "site-a/"),
            envelope_hex: rewritten.clone(),
            ..base("rewrite-to-invalid-topic", "invalidTopic")
        },
        Negative {
            topic: "cloud/site-a/temp".into(),
            rewrite: rule("cloud/site-a/temp", ""),
            envelope_hex: rewritten.clone(),
            ..base("rewrite-to-empty-topic", "invalidTopic")
        },
        // Timestamps and clocks.
        Negative {
            require_timestamp: true,
            ..neg("timestamp-required-flag", &basic, basic.envelope_hex.clone(), "timestampRequired")
        },
        Negative {
            require_timestamp: true,
            ..neg("timestamp-required-forged", &basic, forge(&basic.envelope_hex), "auth")
        },
        Negative {
            require_timestamp: true,
            preopen: vec![ts.envelope_hex.clone()],
            ..neg("timestamp-required-needs-no-clock", &ts, ts.envelope_hex.clone(), "duplicate")
        },
        Negative { max_age: Some(300), ..neg("clock-required-max-age", &ts, ts.envelope_hex.clone(), "clockRequired") },
        Negative {
            max_skew: Some(60),
            ..neg("clock-required-max-skew", &ts, ts.envelope_hex.clone(), "clockRequired")
        },
        Negative { max_age: Some(300), ..neg("clock-required-forged", &ts, forge(&ts.envelope_hex), "auth") },
        Negative {
            max_skew: Some(60),
            preopen: vec![basic.envelope_hex.clone()],
            ..neg("no-timestamp-skew-only-needs-no-clock", &basic, basic.envelope_hex.clone(), "duplicate")
        },
        Negative {
            max_age: Some(300),
            ..neg("timestamp-required-before-clock", &basic, basic.envelope_hex.clone(), "timestampRequired")
        },
        Negative {
            now: Some(TS + 300),
            max_age: Some(300),
            preopen: vec![ts.envelope_hex.clone()],
            ..neg("expired-boundary-accepted", &ts, ts.envelope_hex.clone(), "duplicate")
        },
        Negative {
            now: Some(TS + 301),
            max_age: Some(300),
            ..neg("expired-by-one", &ts, ts.envelope_hex.clone(), "expired")
        },
        Negative {
            now: Some(TS),
            max_age: Some(300),
            ..neg("expired-timestamp-zero", &tszero, tszero.envelope_hex.clone(), "expired")
        },
        Negative {
            now: Some(u64::MAX),
            max_age: Some(300),
            ..neg("expired-now-max", &ts, ts.envelope_hex.clone(), "expired")
        },
        Negative {
            now: Some(TS - 60),
            max_skew: Some(60),
            preopen: vec![ts.envelope_hex.clone()],
            ..neg("from-future-boundary-accepted", &ts, ts.envelope_hex.clone(), "duplicate")
        },
        Negative {
            now: Some(TS - 61),
            max_skew: Some(60),
            ..neg("from-future-by-one", &ts, ts.envelope_hex.clone(), "fromFuture")
        },
        Negative {
            now: Some(TS - 1),
            max_skew: Some(0),
            ..neg("from-future-skew-zero", &ts, ts.envelope_hex.clone(), "fromFuture")
        },
        Negative {
            now: Some(TS - 60),
            max_age: Some(60),
            preopen: vec![ts.envelope_hex.clone()],
            ..neg("from-future-implied-boundary", &ts, ts.envelope_hex.clone(), "duplicate")
        },
        Negative {
            now: Some(TS - 61),
            max_age: Some(60),
            ..neg("from-future-implied-by-max-age", &ts, ts.envelope_hex.clone(), "fromFuture")
        },
        Negative {
            now: Some(TS - 300),
            max_age: Some(86_400),
            preopen: vec![ts.envelope_hex.clone()],
            ..neg("from-future-implied-cap-boundary", &ts, ts.envelope_hex.clone(), "duplicate")
        },
        Negative {
            now: Some(TS - 301),
            max_age: Some(86_400),
            ..neg("from-future-implied-cap-300", &ts, ts.envelope_hex.clone(), "fromFuture")
        },
        Negative {
            now: Some(TS - 301),
            max_age: Some(86_400),
            max_skew: Some(600),
            preopen: vec![ts.envelope_hex.clone()],
            ..neg("max-skew-overrides-implied", &ts, ts.envelope_hex.clone(), "duplicate")
        },
        Negative {
            now: Some(TS),
            max_age: Some(60),
            ..neg("from-future-timestamp-max", &last, last.envelope_hex.clone(), "fromFuture")
        },
        Negative {
            now: Some(TS + 100),
            max_age: Some(300),
            preopen: vec![et(42, 500, TS)],
            envelope_hex: et(42, 500, TS - 1000),
            ..base("expired-before-duplicate", "expired")
        },
        // Replay windows: widths 1, 128 and 256, reordering, counter 0 and 2^64 - 1.
        Negative { window: 1, preopen: vec![e(10)], envelope_hex: e(10), ..base("window-1-duplicate", "duplicate") },
        Negative { window: 1, preopen: vec![e(10)], envelope_hex: e(9), ..base("window-1-replay", "replay") },
        Negative { window: 1, preopen: vec![e(10), e(11)], envelope_hex: e(10), ..base("window-1-advances", "replay") },
        Negative {
            preopen: vec![e(1000), e(873)],
            envelope_hex: e(873),
            ..base("window-128-oldest-inside", "duplicate")
        },
        Negative { preopen: vec![e(1000)], envelope_hex: e(872), ..base("window-128-first-outside", "replay") },
        Negative {
            window: 256,
            preopen: vec![e(1000), e(745)],
            envelope_hex: e(745),
            ..base("window-256-oldest-inside", "duplicate")
        },
        Negative {
            window: 256,
            preopen: vec![e(1000)],
            envelope_hex: e(744),
            ..base("window-256-first-outside", "replay")
        },
        Negative {
            preopen: vec![e(20), e(18), e(19), e(10), e(21)],
            envelope_hex: e(18),
            ..base("out-of-order-accepted-once", "duplicate")
        },
        Negative { preopen: vec![e(5), e(3), e(133), e(6)], envelope_hex: e(5), ..base("window-slides", "replay") },
        Negative { preopen: vec![e(0)], envelope_hex: e(0), ..base("counter-zero-duplicate", "duplicate") },
        Negative {
            preopen: vec![es(7, 5), es(42, 5)],
            envelope_hex: es(42, 5),
            ..base("window-per-sender", "duplicate")
        },
        Negative {
            preopen: vec![basic.envelope_hex.clone()],
            envelope_hex: forge(&basic.envelope_hex),
            ..base("duplicate-forged-is-auth", "auth")
        },
        Negative {
            preopen: vec![counter_max.clone()],
            envelope_hex: counter_max.clone(),
            ..base("counter-max-accepted-then-duplicate", "duplicate")
        },
        Negative {
            preopen: vec![counter_max.clone()],
            envelope_hex: e(u64::MAX - 128),
            ..base("counter-max-then-first-outside", "replay")
        },
        Negative {
            preopen: vec![counter_max.clone(), e(u64::MAX - 127)],
            envelope_hex: e(u64::MAX - 127),
            ..base("counter-max-then-oldest-inside", "duplicate")
        },
        // The sender table.
        Negative {
            senders: Some(1),
            preopen: vec![es(42, 1)],
            envelope_hex: es(7, 1),
            ..base("too-many-senders", "tooManySenders")
        },
        Negative {
            senders: Some(1),
            preopen: vec![es(42, 1)],
            envelope_hex: forge(&es(7, 1)),
            ..base("too-many-senders-forged-is-auth", "auth")
        },
        Negative {
            senders: Some(1),
            now: Some(TS),
            max_skew: Some(60),
            preopen: vec![es(42, 1)],
            envelope_hex: et(7, 1, TS + 1000),
            ..base("policy-before-too-many-senders", "fromFuture")
        },
        Negative {
            senders: Some(1),
            eviction: lru,
            now: Some(TS),
            max_age: Some(300),
            preopen: vec![et(1, 1, TS), et(2, 1, TS), et(1, 1, TS)],
            envelope_hex: et(1, 1, TS),
            ..base("lru-evicted-sender-forgotten", "duplicate")
        },
        Negative {
            senders: Some(2),
            eviction: lru,
            now: Some(TS),
            max_age: Some(300),
            preopen: vec![et(1, 1, TS), et(2, 1, TS), et(1, 2, TS), et(3, 1, TS), et(2, 1, TS)],
            envelope_hex: et(3, 1, TS),
            ..base("lru-evicts-least-recently-heard", "duplicate")
        },
        // Configurations a receiver refuses.
        Negative { window: 0, envelope_hex: basic.envelope_hex.clone(), ..base("config-window-0", "invalidConfig") },
        Negative {
            window: 257,
            envelope_hex: basic.envelope_hex.clone(),
            ..base("config-window-257", "invalidConfig")
        },
        Negative {
            suites: Some(vec![]),
            envelope_hex: basic.envelope_hex.clone(),
            ..base("config-no-suites", "invalidConfig")
        },
        Negative {
            eviction: lru,
            envelope_hex: basic.envelope_hex.clone(),
            ..base("config-lru-without-max-age", "invalidConfig")
        },
        Negative {
            eviction: lru,
            max_skew: Some(60),
            envelope_hex: basic.envelope_hex.clone(),
            ..base("config-lru-with-max-skew-only", "invalidConfig")
        },
    ]);
    for n in &mut negative {
        n.now_dec = n.now.map(|v| v.to_string());
        n.max_age_dec = n.max_age.map(|v| v.to_string());
        n.max_skew_dec = n.max_skew.map(|v| v.to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    for name in positive.iter().map(|p| &p.name).chain(negative.iter().map(|n| &n.name)) {
        assert!(seen.insert(name.clone()), "duplicate vector name {name}");
    }

    let sequences = sequences(&k1, aead);

    VectorFile {
        format: "mqseal-test-vectors",
        version: 1,
        description: "mqseal envelope v1. Generated by `cargo run -p mqseal --example gen_vectors`; see docs/PROTOCOL.md, section Test vectors.",
        max_u64: u64::MAX,
        max_u64_dec: u64::MAX.to_string(),
        positive,
        negative,
        keys: key_texts(&k1, &device, &server),
        pairwise: pairwise_cases(&device, &server),
        sequences,
    }
}

/// The gap cases (PROTOCOL 9.4): one sender (42) on one topic, a window of
/// 4 so that counters fall below it quickly.
fn sequences(k1: &Key, aead: Suite) -> Vec<Sequence> {
    let topic = "factory/line1/temp";
    let env = |counter: u64, timestamp: Option<u64>| {
        seal(Spec {
            name: "",
            suite: aead,
            key: k1.clone(),
            open_key: k1.clone(),
            pairwise: None,
            sender_id: 42,
            counter,
            timestamp,
            topic: topic.to_string(),
            plaintext: b"v".to_vec(),
        })
        .envelope_hex
    };
    // (counter, expected) opened with no clock, no timestamp.
    let steps = |list: &[(u64, Option<&'static str>)]| -> Vec<Step> {
        list.iter()
            .map(|&(counter, expect)| Step {
                counter,
                now: None,
                envelope_hex: env(counter, None),
                expect,
                counter_dec: counter.to_string(),
                now_dec: None,
            })
            .collect()
    };
    // (counter, timestamp, now, expected).
    let timed = |list: &[(u64, u64, u64, Option<&'static str>)]| -> Vec<Step> {
        list.iter()
            .map(|&(counter, ts, now, expect)| Step {
                counter,
                now: Some(now),
                envelope_hex: env(counter, Some(ts)),
                expect,
                counter_dec: counter.to_string(),
                now_dec: Some(now.to_string()),
            })
            .collect()
    };
    let seq = |name: &str, window: u32, gaps: u32, steps: Vec<Step>| Sequence {
        name: name.to_string(),
        open_key: k1.to_text().to_string(),
        topic: topic.to_string(),
        window,
        gaps,
        max_age: None,
        max_skew: None,
        config_error: None,
        steps,
        max_age_dec: None,
        max_skew_dec: None,
    };
    const OK: Option<&str> = None;
    let replay = Some("replay");
    let duplicate = Some("duplicate");
    let mut list = vec![
        // Window 7..=10, then 97..=100: gaps 7..=9 and 11..=96. 50 is far
        // below the window but never accepted: accepted once.
        seq(
            "gap-late-accepted-once",
            4,
            4,
            steps(&[(10, OK), (100, OK), (50, OK), (50, replay), (49, OK), (51, OK), (99, OK), (99, duplicate)]),
        ),
        // Below the window and in no gap: below the first window (7), or
        // accepted before it left the window.
        seq(
            "gap-none-below-window",
            4,
            4,
            steps(&[(10, OK), (100, OK), (6, replay), (0, replay), (10, replay), (7, OK)]),
        ),
        // Budget 2: 30 makes gaps 7..=9, 11..=19, 21..=26, the lowest is
        // dropped. Accepting from inside a gap splits it; the lower piece
        // is then the lowest gap and dropped when over the budget.
        seq(
            "gap-budget-drops-lowest",
            4,
            2,
            steps(&[
                (10, OK),
                (20, OK),
                (30, OK),
                (8, replay),
                (15, OK), // 11..=14 dropped, 16..=19 and 21..=26 kept
                (12, replay),
                (17, OK), // 16 dropped: 18..=19, 21..=26
                (23, OK), // 18..=19 dropped: 21..=22, 24..=26
                (18, replay),
                (26, OK), // 24..=25
                (21, OK), // 22
                (22, OK), // gap closed: 24..=25 only
                (25, OK),
                (24, OK),
                (24, replay),
            ]),
        ),
        // Gaps 0: the plain bitmap window.
        seq("gap-budget-0-plain-bitmap", 4, 0, steps(&[(10, OK), (100, OK), (50, replay), (97, OK), (96, replay)])),
        // A sender that skipped a block after a crash (4..=996 never
        // used): one gap, so a budget of 1 holds it.
        seq(
            "gap-skipped-block-is-one-gap",
            4,
            1,
            steps(&[
                (0, OK),
                (1, OK),
                (2, OK),
                (3, OK),
                (1000, OK),
                (4, OK),
                (996, OK),
                (500, OK),
                (499, replay),
                (501, OK),
            ]),
        ),
        // The default window: a message 300 behind (a broker restart).
        seq(
            "gap-default-window-300-behind",
            128,
            4,
            steps(&[
                (100, OK),
                (500, OK),
                (200, OK),
                (200, replay),
                (372, OK),
                (373, OK),
                (373, duplicate),
                (100, replay),
            ]),
        ),
    ];
    // With a maximum age: a late message in a gap is accepted while it is
    // fresh enough; an older one in a gap is `expired` (checked first).
    // Dropping gaps by age never changes a verdict, so no vector can tell
    // it happened; these pin the order of the checks.
    let mut aged = seq(
        "gap-with-max-age",
        4,
        4,
        timed(&[
            (10, 1010, 1010, OK),
            (100, 1100, 1100, OK),
            (50, 1050, 1100, OK),
            (50, 1050, 1100, replay),
            (40, 1040, 1100, OK),
            (60, 1060, 1221, Some("expired")),
            (199, 1199, 1221, OK),
            (60, 1060, 1221, Some("expired")),
        ]),
    );
    aged.max_age = Some(60);
    list.push(aged);
    for gaps in [5, 1000] {
        let mut bad = seq(&format!("config-gaps-{gaps}"), 128, gaps, vec![]);
        bad.config_error = Some("invalidConfig");
        list.push(bad);
    }
    for q in &mut list {
        q.max_age_dec = q.max_age.map(|v| v.to_string());
        q.max_skew_dec = q.max_skew.map(|v| v.to_string());
    }
    list
}

/// A base64url text of 31 or 33 bytes (a wrong length, canonically encoded).
fn b64_any(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut n = [0u8; 3];
        n[..chunk.len()].copy_from_slice(chunk);
        let v = (u32::from(n[0]) << 16) | (u32::from(n[1]) << 8) | u32::from(n[2]);
        for i in 0..=chunk.len() {
            out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The same text with its last base64url character's two unused low bits set.
fn non_canonical_last(b: &str) -> String {
    const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = b.chars().last().unwrap();
    let v = A.find(last).unwrap();
    assert_eq!(v & 3, 0);
    format!("{}{}", &b[..b.len() - 1], A.as_bytes()[v | 1] as char)
}

fn key_texts(k1: &Key, device: &StaticKeyPair, server: &StaticKeyPair) -> Vec<KeyText> {
    let ok_key = |name: &str, text: String, key: &Key| KeyText {
        name: name.into(),
        kind: "key",
        text,
        key_id: Some(key.id()),
        bytes_hex: Some(hex::encode(key.expose_secret())),
        canonical_text: Some(key.to_text().to_string()),
        public_text: None,
        error: None,
    };
    let ok_secret = |name: &str, text: String, pair: &StaticKeyPair| {
        let secret = pair.secret_text().to_string();
        KeyText {
            name: name.into(),
            kind: "x25519-secret",
            text,
            key_id: None,
            bytes_hex: Some(hex::encode(b64_decode(&secret["mqseal:x25519-secret:v1:".len()..]))),
            canonical_text: Some(secret),
            public_text: Some(pair.public().to_text().to_string()),
            error: None,
        }
    };
    let ok_public = |name: &str, text: String, public: &PublicKey| KeyText {
        name: name.into(),
        kind: "x25519-public",
        text,
        key_id: None,
        bytes_hex: Some(hex::encode(public.as_bytes())),
        canonical_text: Some(public.to_text().to_string()),
        public_text: None,
        error: None,
    };
    let bad = |name: &str, kind: &'static str, text: String| KeyText {
        name: name.into(),
        kind,
        text,
        key_id: None,
        bytes_hex: None,
        canonical_text: None,
        public_text: None,
        error: Some("invalidKey"),
    };
    let g = k1.to_text().to_string();
    let gb = g["mqseal:key:v1:1:".len()..].to_string();
    let with_id = |id: &str| format!("mqseal:key:v1:{id}:{gb}");
    let k0 = group_key(0, 3);
    let kmax = group_key(u32::MAX, 9);
    // 0xfb 0xff 0xbf encodes as "-_-_": both characters that differ from standard base64.
    let mut url_bytes = [0u8; 32];
    for (i, b) in url_bytes.iter_mut().enumerate() {
        *b = [0xfb, 0xff, 0xbf][i % 3];
    }
    let kurl = Key::from_bytes(7, url_bytes);
    let u = kurl.to_text().to_string();
    assert!(u.contains('-') && u.contains('_'));
    let s = device.secret_text().to_string();
    let sb = s["mqseal:x25519-secret:v1:".len()..].to_string();
    let p = server.public().to_text().to_string();
    let pb = p["mqseal:x25519-public:v1:".len()..].to_string();
    let unclamped = StaticKeyPair::from_secret_bytes([0xff; 32]);
    let zero_public = PublicKey::from_bytes([0; 32]);
    let url_public = PublicKey::from_bytes(url_bytes);
    let up = url_public.to_text().to_string();

    let list = vec![
        ok_key("key-canonical", g.clone(), k1),
        ok_key("key-id-zero", k0.to_text().to_string(), &k0),
        ok_key("key-id-max", kmax.to_text().to_string(), &kmax),
        ok_key("key-url-alphabet", u.clone(), &kurl),
        ok_key("key-whitespace-all-five", format!(" \t\r\n\x0c{g}\x0c\n\r\t "), k1),
        ok_key("key-whitespace-space", format!("  {g} "), k1),
        ok_key("key-whitespace-tab", format!("\t{g}\t"), k1),
        ok_key("key-whitespace-crlf", format!("{g}\r\n"), k1),
        ok_key("key-whitespace-lf", format!("\n{g}\n"), k1),
        ok_key("key-whitespace-form-feed", format!("\x0c{g}\x0c"), k1),
        bad("key-nbsp-leading", "key", format!("\u{a0}{g}")),
        bad("key-nbsp-trailing", "key", format!("{g}\u{a0}")),
        bad("key-vertical-tab", "key", format!("\x0b{g}")),
        bad("key-nel", "key", format!("{g}\u{85}")),
        bad("key-byte-order-mark", "key", format!("\u{feff}{g}")),
        bad("key-ideographic-space", "key", format!("{g}\u{3000}")),
        bad("key-nul-trailing", "key", format!("{g}\u{0}")),
        bad("key-space-before-base64", "key", format!("mqseal:key:v1:1: {gb}")),
        bad("key-space-inside-base64", "key", format!("mqseal:key:v1:1:{} {}", &gb[..20], &gb[20..])),
        bad("key-padding", "key", format!("{g}=")),
        bad("key-padding-instead-of-last", "key", format!("mqseal:key:v1:1:{}=", &gb[..42])),
        bad("key-standard-alphabet-plus", "key", u.replace('-', "+")),
        bad("key-standard-alphabet-slash", "key", u.replace('_', "/")),
        bad("key-non-canonical-last-char", "key", format!("mqseal:key:v1:1:{}", non_canonical_last(&gb))),
        bad("key-base64-42-chars", "key", format!("mqseal:key:v1:1:{}", &gb[..42])),
        bad("key-base64-44-chars", "key", format!("{g}A")),
        bad("key-31-bytes", "key", format!("mqseal:key:v1:1:{}", b64_any(&[7u8; 31]))),
        bad("key-33-bytes", "key", format!("mqseal:key:v1:1:{}", b64_any(&[7u8; 33]))),
        bad("key-empty-base64", "key", "mqseal:key:v1:1:".into()),
        bad("key-id-leading-zero", "key", with_id("01")),
        bad("key-id-double-zero", "key", with_id("00")),
        bad("key-id-empty", "key", with_id("")),
        bad("key-id-negative", "key", with_id("-1")),
        bad("key-id-plus-sign", "key", with_id("+1")),
        bad("key-id-2p32", "key", with_id("4294967296")),
        bad("key-id-11-digits", "key", with_id("10000000000")),
        bad("key-id-hex", "key", with_id("0x1")),
        bad("key-id-space", "key", with_id(" 1")),
        bad("key-id-arabic-indic-digit", "key", with_id("\u{661}")),
        bad("key-no-id", "key", format!("mqseal:key:v1:{gb}")),
        bad("key-extra-field", "key", format!("mqseal:key:v1:1:2:{gb}")),
        bad("key-trailing-colon", "key", format!("{g}:")),
        bad("key-wrong-version", "key", g.replace(":v1:", ":v2:")),
        bad("key-uppercase-prefix", "key", g.replace("mqseal:", "MQSEAL:")),
        bad("key-uppercase-kind", "key", g.replace(":key:", ":KEY:")),
        bad("key-no-prefix", "key", gb.clone()),
        bad("key-secret-text", "key", s.clone()),
        bad("key-public-text", "key", p.clone()),
        bad("key-empty", "key", String::new()),
        bad("key-whitespace-only", "key", " \t\r\n".into()),
        ok_secret("secret-canonical", s.clone(), device),
        ok_secret("secret-whitespace", format!("\r\n{s} \t"), device),
        ok_secret("secret-unclamped", unclamped.secret_text().to_string(), &unclamped),
        bad("secret-nbsp", "x25519-secret", format!("{s}\u{a0}")),
        bad("secret-public-prefix", "x25519-secret", format!("mqseal:x25519-public:v1:{sb}")),
        bad("secret-key-prefix", "x25519-secret", format!("mqseal:key:v1:1:{sb}")),
        bad("secret-wrong-version", "x25519-secret", s.replace(":v1:", ":v2:")),
        bad("secret-padding", "x25519-secret", format!("{s}=")),
        bad("secret-base64-42-chars", "x25519-secret", s[..s.len() - 1].to_string()),
        bad(
            "secret-non-canonical-last-char",
            "x25519-secret",
            format!("mqseal:x25519-secret:v1:{}", non_canonical_last(&sb)),
        ),
        ok_public("public-canonical", p.clone(), &server.public()),
        ok_public("public-whitespace", format!("\t{p}\n"), &server.public()),
        ok_public("public-url-alphabet", up.clone(), &url_public),
        ok_public("public-all-zero-parses", zero_public.to_text().to_string(), &zero_public),
        bad("public-nbsp", "x25519-public", format!("\u{a0}{p}")),
        bad("public-secret-prefix", "x25519-public", format!("mqseal:x25519-secret:v1:{pb}")),
        bad("public-standard-alphabet", "x25519-public", up.replace('-', "+").replace('_', "/")),
        bad("public-base64-44-chars", "x25519-public", format!("{p}A")),
        bad(
            "public-non-canonical-last-char",
            "x25519-public",
            format!("mqseal:x25519-public:v1:{}", non_canonical_last(&pb)),
        ),
    ];
    // The code must agree with every entry.
    for k in &list {
        let got: Result<(Option<u32>, String, String, Option<String>), mqseal::Error> = match k.kind {
            "key" => Key::from_text(&k.text)
                .map(|x| (Some(x.id()), hex::encode(x.expose_secret()), x.to_text().to_string(), None)),
            "x25519-secret" => StaticKeyPair::from_secret_text(&k.text).map(|x| {
                let t = x.secret_text().to_string();
                (
                    None,
                    hex::encode(b64_decode(&t["mqseal:x25519-secret:v1:".len()..])),
                    t,
                    Some(x.public().to_text().to_string()),
                )
            }),
            _ => {
                PublicKey::from_text(&k.text).map(|x| (None, hex::encode(x.as_bytes()), x.to_text().to_string(), None))
            }
        };
        match (&got, k.error) {
            (Ok((id, bytes, canonical, public)), None) => {
                assert_eq!(id, &k.key_id, "{}", k.name);
                assert_eq!(Some(bytes), k.bytes_hex.as_ref(), "{}", k.name);
                assert_eq!(Some(canonical), k.canonical_text.as_ref(), "{}", k.name);
                assert_eq!(public, &k.public_text, "{}", k.name);
            }
            (Err(e), Some(code)) => assert_eq!(e.code(), code, "{}", k.name),
            _ => panic!("key text {}: the code gives {:?}", k.name, got.map(|_| ())),
        }
    }
    list
}

fn b64_decode(text: &str) -> Vec<u8> {
    hex::decode(hex::encode(PublicKey::from_text(&format!("mqseal:x25519-public:v1:{text}")).unwrap().as_bytes()))
        .unwrap()
}

fn pairwise_cases(device: &StaticKeyPair, server: &StaticKeyPair) -> Vec<PairwiseCase> {
    let case = |name: &str, own: &StaticKeyPair, peer: &PublicKey, key_id: u32, error: Option<&'static str>| {
        let got = own.pairwise(peer, key_id);
        match (&got, error) {
            (Ok(_), None) => {}
            (Err(e), Some(code)) => assert_eq!(e.code(), code, "{name}"),
            _ => panic!("pairwise {name}: the code gives {:?}", got.as_ref().map(|_| ()).map_err(|e| e.code())),
        }
        let keys = got.ok();
        PairwiseCase {
            name: name.into(),
            secret: own.secret_text().to_string(),
            peer_public: peer.to_text().to_string(),
            key_id,
            send_key: keys.as_ref().map(|k| k.send.to_text().to_string()),
            recv_key: keys.as_ref().map(|k| k.recv.to_text().to_string()),
            error,
        }
    };
    let low = |hex_u: &str| {
        let mut b = [0u8; 32];
        b.copy_from_slice(&hex::decode(hex_u).unwrap());
        PublicKey::from_bytes(b)
    };
    vec![
        case("device-to-server", device, &server.public(), 100, None),
        case("server-to-device", server, &device.public(), 100, None),
        case("device-to-server-key-id-zero", device, &server.public(), 0, None),
        case("self-pairing", device, &device.public(), 100, Some("selfPairing")),
        case("low-order-zero", device, &low(&"00".repeat(32)), 100, Some("weakSharedSecret")),
        case("low-order-one", device, &low(&format!("01{}", "00".repeat(31))), 100, Some("weakSharedSecret")),
        case(
            "low-order-order-8",
            device,
            &low("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            100,
            Some("weakSharedSecret"),
        ),
        case(
            "low-order-p-minus-1",
            device,
            &low("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            100,
            Some("weakSharedSecret"),
        ),
    ]
}

pub fn to_json() -> String {
    let mut s = serde_json::to_string_pretty(&generate()).unwrap();
    s.push('\n');
    s
}
