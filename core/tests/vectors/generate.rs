// The test-vector generator, shared by `cargo run -p mqseal --example gen_vectors`
// (writes core/tests/vectors/v1.json) and by core/tests/vectors.rs (which
// regenerates in memory and compares with the committed file, so that any
// accidental change of the wire format fails the tests).
//
// Everything here is deterministic: fixed keys, counters and timestamps.

use mqseal::{Key, MemoryCounterStore, Sealer, StaticKeyPair, Suite};
use serde::Serialize;

#[derive(Serialize)]
pub struct VectorFile {
    pub format: &'static str,
    pub version: u32,
    pub description: &'static str,
    pub positive: Vec<Positive>,
    pub negative: Vec<Negative>,
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
}

#[derive(Serialize)]
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
    }
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

    let positive = vec![
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
    };
    let old = seal(g("old", aead, 42, 800, None, "factory/line1/temp", b"old"));
    let newer = seal(g("newer", aead, 42, 1000, None, "factory/line1/temp", b"newer"));

    let negative = vec![
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

    VectorFile {
        format: "mqseal-test-vectors",
        version: 1,
        description: "mqseal envelope v1. Generated by `cargo run -p mqseal --example gen_vectors`; see docs/PROTOCOL.md, section Test vectors.",
        positive,
        negative,
    }
}

pub fn to_json() -> String {
    let mut s = serde_json::to_string_pretty(&generate()).unwrap();
    s.push('\n');
    s
}
