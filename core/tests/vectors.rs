#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Runs the shared test vectors (`tests/vectors/v1.json`, also run by the
//! WASM package and the C library) through the public API, and checks that
//! the generator still produces the committed file byte for byte.

#[path = "vectors/generate.rs"]
#[allow(dead_code, clippy::unwrap_used, clippy::panic)]
mod generate;

use mqseal::{
    Error, Eviction, Key, Keyring, MemoryCounterStore, Opener, OpenerConfig, PrefixRewrite, PublicKey, Sealer,
    StaticKeyPair, Suite, SuiteSet,
};
use serde_json::Value;

const FILE: &str = include_str!("vectors/v1.json");

fn file() -> Value {
    serde_json::from_str(FILE).unwrap()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k} missing")).to_string()
}

/// A u64 field: the JSON number and its `<k>_dec` decimal string must agree
/// (the string is what runners with double-only JSON parsers read).
fn opt(v: &Value, k: &str) -> Option<u64> {
    let n = v[k].as_u64();
    let d = v[format!("{k}_dec")].as_str().map(|d| d.parse::<u64>().unwrap());
    assert_eq!(n, d, "{k} and {k}_dec differ in {}", v["name"]);
    assert_eq!(n.is_none(), v[k].is_null(), "{k} is neither a u64 nor null in {}", v["name"]);
    n
}

#[test]
fn u64_fields_are_exact() {
    let f = file();
    assert_eq!(f["max_u64"].as_u64(), Some(u64::MAX));
    assert_eq!(f["max_u64_dec"].as_str(), Some("18446744073709551615"));
    // Values a double cannot hold are present, so a runner that reads numbers
    // as doubles fails instead of passing.
    let positive = f["positive"].as_array().unwrap();
    assert!(positive.iter().any(|v| opt(v, "counter").is_some_and(|c| c > 1 << 53 && c % 2 == 1)));
    assert!(positive.iter().any(|v| opt(v, "counter") == Some(u64::MAX - 1)));
    assert!(positive.iter().any(|v| opt(v, "timestamp") == Some(u64::MAX)));
}

#[test]
fn committed_file_matches_generator() {
    assert!(
        FILE == generate::to_json(),
        "tests/vectors/v1.json differs from the generator: the wire format changed. \
         If deliberate, bump the version and run `cargo run -p mqseal --example gen_vectors`."
    );
}

#[test]
fn positive_vectors_seal_and_open() {
    let f = file();
    let list = f["positive"].as_array().unwrap();
    assert!(list.len() >= 26);
    for v in list {
        let name = s(v, "name");
        let suite: Suite = s(v, "suite").parse().unwrap();
        let key = Key::from_text(&s(v, "sender_key")).unwrap();
        let topic = s(v, "topic");
        let plaintext = hex::decode(s(v, "plaintext_hex")).unwrap();
        let expected = hex::decode(s(v, "envelope_hex")).unwrap();
        let counter = opt(v, "counter").unwrap();
        let sender_id = u32::try_from(v["sender_id"].as_u64().unwrap()).unwrap();

        // Pairwise vectors: the keys must follow from the two secrets.
        if let Some(pw) = v["pairwise"].as_object() {
            let sender = StaticKeyPair::from_secret_text(pw["sender_secret"].as_str().unwrap()).unwrap();
            let receiver = StaticKeyPair::from_secret_text(pw["receiver_secret"].as_str().unwrap()).unwrap();
            let id = u32::try_from(pw["key_id"].as_u64().unwrap()).unwrap();
            let send = sender.pairwise(&receiver.public(), id).unwrap().send;
            let recv = receiver.pairwise(&sender.public(), id).unwrap().recv;
            assert_eq!(send.to_text().as_str(), s(v, "sender_key"), "{name}");
            assert_eq!(recv.to_text().as_str(), s(v, "open_key"), "{name}");
        }

        let mut sealer = Sealer::new(&key, sender_id, suite, MemoryCounterStore::starting_at(counter)).unwrap();
        let mut out = vec![0u8; plaintext.len() + mqseal::MAX_OVERHEAD];
        let n = sealer.seal_into_at(&topic, opt(v, "timestamp"), &plaintext, &mut out).unwrap();
        assert_eq!(hex::encode(&out[..n]), hex::encode(&expected), "{name}: sealing");

        let ring = Keyring::<2>::with_primary(Key::from_text(&s(v, "open_key")).unwrap()).unwrap();
        let mut opener: Opener<2, 4> = Opener::new(ring);
        let mut buf = expected.clone();
        let opened = opener.open_in_place(topic.as_str(), &mut buf).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.payload, &plaintext[..], "{name}");
        assert_eq!(opened.header.counter, counter);
        assert_eq!(opened.header.sender_id, sender_id);
        assert_eq!(opened.header.timestamp, opt(v, "timestamp"));
        assert_eq!(opened.header.suite, suite);
    }
}

#[test]
fn negative_vectors_fail_as_stated() {
    let f = file();
    let list = f["negative"].as_array().unwrap();
    assert!(list.len() >= 113);
    for v in list {
        match v["senders"].as_u64() {
            None => negative::<64>(v),
            Some(1) => negative::<1>(v),
            Some(2) => negative::<2>(v),
            Some(n) => panic!("senders {n}: add a case"),
        }
    }
    // Every error a receiver can produce from an envelope and its
    // configuration is covered.
    for code in [
        "truncated",
        "unsupportedVersion",
        "unknownSuite",
        "badVarint",
        "unknownFlags",
        "auth",
        "unknownKey",
        "duplicate",
        "replay",
        "expired",
        "fromFuture",
        "timestampRequired",
        "clockRequired",
        "suiteNotAllowed",
        "tooManySenders",
        "topicNotRewritable",
        "topicTooLong",
        "invalidTopic",
        "invalidConfig",
    ] {
        assert!(list.iter().any(|v| v["error"] == code), "no negative vector for {code}");
    }
}

fn config_of(v: &Value) -> OpenerConfig {
    let mut config = OpenerConfig::default();
    config.window = u32::try_from(v["window"].as_u64().unwrap()).unwrap();
    config.max_age = opt(v, "max_age");
    config.max_skew = opt(v, "max_skew");
    config.require_timestamp = v["require_timestamp"].as_bool().unwrap();
    if let Some(names) = v["suites"].as_array() {
        let suites: Vec<Suite> = names.iter().map(|n| n.as_str().unwrap().parse().unwrap()).collect();
        config.suites = SuiteSet::from_suites(&suites);
    }
    config.eviction = match v["eviction"].as_str().unwrap() {
        "rejectNew" => Eviction::RejectNew,
        "leastRecentlyUsed" => Eviction::LeastRecentlyUsed,
        other => panic!("eviction {other}"),
    };
    config
}

fn negative<const SENDERS: usize>(v: &Value) {
    let name = s(v, "name");
    let key = Key::from_text(&s(v, "open_key")).unwrap();
    let opener = Opener::<2, SENDERS>::with_config(Keyring::with_primary(key).unwrap(), &config_of(v));
    let mut opener = match opener {
        Ok(o) => o,
        Err(e) => {
            assert_eq!(e.code(), s(v, "error"), "{name}: configuration");
            return;
        }
    };
    let received = s(v, "topic");
    let rule = v["rewrite"].as_object().map(|r| (r["received"].as_str().unwrap(), r["sealed"].as_str().unwrap()));
    let rule = rule.map(|(received, sealed)| PrefixRewrite { received, sealed });
    let now = opt(v, "now");
    let mut open = |b: &mut Vec<u8>| -> Result<(), Error> {
        let topic = match &rule {
            Some(r) => r.bound_topic(&received)?,
            None => received.as_str().into(),
        };
        opener.open_in_place_at(topic, b, now).map(|_| ())
    };
    for pre in v["preopen"].as_array().unwrap() {
        let mut b = hex::decode(pre.as_str().unwrap()).unwrap();
        open(&mut b).unwrap_or_else(|e| panic!("{name}: preopen {e}"));
    }
    let envelope = hex::decode(s(v, "envelope_hex")).unwrap();
    let mut b = envelope.clone();
    let err = open(&mut b).unwrap_err();
    assert_eq!(err.code(), s(v, "error"), "{name}");
    if err == Error::Auth || err.is_format() {
        assert_eq!(b, envelope, "{name}: buffer changed on a failed open");
    }
}

/// The gap sequences (PROTOCOL 11.6): one receiver, envelopes in order,
/// each with its expected result.
#[test]
fn sequences_open_as_stated() {
    let f = file();
    let list = f["sequences"].as_array().unwrap();
    assert!(list.len() >= 9);
    for v in list {
        let name = s(v, "name");
        let key = Key::from_text(&s(v, "open_key")).unwrap();
        let mut config = OpenerConfig::default();
        config.window = u32::try_from(v["window"].as_u64().unwrap()).unwrap();
        config.gaps = u32::try_from(v["gaps"].as_u64().unwrap()).unwrap();
        config.max_age = opt(v, "max_age");
        config.max_skew = opt(v, "max_skew");
        let opener = Opener::<2, 4>::with_config(Keyring::with_primary(key).unwrap(), &config);
        let mut opener = match (opener, v["config_error"].as_str()) {
            (Ok(o), None) => o,
            (Err(e), Some(code)) => {
                assert_eq!(e.code(), code, "{name}");
                assert!(v["steps"].as_array().unwrap().is_empty(), "{name}");
                continue;
            }
            (Ok(_), Some(code)) => panic!("{name}: configuration accepted, expected {code}"),
            (Err(e), None) => panic!("{name}: configuration refused: {e}"),
        };
        let topic = s(v, "topic");
        for (i, step) in v["steps"].as_array().unwrap().iter().enumerate() {
            let mut b = hex::decode(s(step, "envelope_hex")).unwrap();
            let got = opener.open_in_place_at(topic.as_str(), &mut b, opt(step, "now"));
            match (got, step["expect"].as_str()) {
                (Ok(o), None) => assert_eq!(Some(o.header.counter), opt(step, "counter"), "{name} step {i}"),
                (Err(e), Some(code)) => assert_eq!(e.code(), code, "{name} step {i}"),
                (got, want) => panic!("{name} step {i}: got {:?}, want {want:?}", got.map(|_| ())),
            }
        }
    }
}

#[test]
fn key_texts() {
    let f = file();
    let list = f["keys"].as_array().unwrap();
    assert!(list.len() >= 60);
    for v in list {
        let name = s(v, "name");
        let text = s(v, "text");
        let got = match s(v, "kind").as_str() {
            "key" => Key::from_text(&text).map(|k| {
                assert_eq!(v["key_id"].as_u64(), Some(u64::from(k.id())), "{name}");
                (hex::encode(k.expose_secret()), k.to_text().to_string(), None)
            }),
            "x25519-secret" => StaticKeyPair::from_secret_text(&text).map(|k| {
                let t = k.secret_text().to_string();
                let b = PublicKey::from_text(&t.replace("x25519-secret", "x25519-public")).unwrap();
                (hex::encode(b.as_bytes()), t, Some(k.public().to_text().to_string()))
            }),
            "x25519-public" => {
                PublicKey::from_text(&text).map(|k| (hex::encode(k.as_bytes()), k.to_text().to_string(), None))
            }
            other => panic!("kind {other}"),
        };
        match (got, v["error"].as_str()) {
            (Ok((bytes, canonical, public)), None) => {
                assert_eq!(bytes, s(v, "bytes_hex"), "{name}");
                assert_eq!(canonical, s(v, "canonical_text"), "{name}");
                assert_eq!(public.as_deref(), v["public_text"].as_str(), "{name}");
            }
            (Err(e), Some(code)) => assert_eq!(e.code(), code, "{name}"),
            (got, want) => panic!("{name}: got {:?}, want {want:?}", got.map(|_| ())),
        }
    }
    assert!(list.iter().filter(|v| v["error"].is_null()).count() >= 15);
}

#[test]
fn pairwise_derivations() {
    let f = file();
    for v in f["pairwise"].as_array().unwrap() {
        let name = s(v, "name");
        let own = StaticKeyPair::from_secret_text(&s(v, "secret")).unwrap();
        let peer = PublicKey::from_text(&s(v, "peer_public")).unwrap();
        let id = u32::try_from(v["key_id"].as_u64().unwrap()).unwrap();
        match (own.pairwise(&peer, id), v["error"].as_str()) {
            (Ok(k), None) => {
                assert_eq!(k.send.to_text().as_str(), s(v, "send_key"), "{name}");
                assert_eq!(k.recv.to_text().as_str(), s(v, "recv_key"), "{name}");
            }
            (Err(e), Some(code)) => assert_eq!(e.code(), code, "{name}"),
            (got, want) => panic!("{name}: got {:?}, want {want:?}", got.map(|_| ())),
        }
    }
}
