#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Runs the shared test vectors (`tests/vectors/v1.json`, also run by the
//! WASM package and the C library) through the public API, and checks that
//! the generator still produces the committed file byte for byte.

#[path = "vectors/generate.rs"]
#[allow(dead_code, clippy::unwrap_used, clippy::panic)]
mod generate;

use mqseal::{Key, Keyring, MemoryCounterStore, Opener, OpenerConfig, Sealer, StaticKeyPair, Suite};
use serde_json::Value;

const FILE: &str = include_str!("vectors/v1.json");

fn file() -> Value {
    serde_json::from_str(FILE).unwrap()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k} missing")).to_string()
}

fn opt(v: &Value, k: &str) -> Option<u64> {
    v[k].as_u64()
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
    assert!(list.len() >= 12);
    for v in list {
        let name = s(v, "name");
        let suite: Suite = s(v, "suite").parse().unwrap();
        let key = Key::from_text(&s(v, "sender_key")).unwrap();
        let topic = s(v, "topic");
        let plaintext = hex::decode(s(v, "plaintext_hex")).unwrap();
        let expected = hex::decode(s(v, "envelope_hex")).unwrap();
        let counter = v["counter"].as_u64().unwrap();
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
    assert!(list.len() >= 20);
    for v in list {
        let name = s(v, "name");
        let key = Key::from_text(&s(v, "open_key")).unwrap();
        let mut config = OpenerConfig::default();
        config.window = u32::try_from(v["window"].as_u64().unwrap()).unwrap();
        config.max_age = opt(v, "max_age");
        config.max_skew = opt(v, "max_skew");
        let mut opener: Opener<2, 4> = Opener::with_config(Keyring::with_primary(key).unwrap(), &config).unwrap();
        let topic = s(v, "topic");
        let now = opt(v, "now");
        for pre in v["preopen"].as_array().unwrap() {
            let mut b = hex::decode(pre.as_str().unwrap()).unwrap();
            opener.open_in_place_at(topic.as_str(), &mut b, now).unwrap_or_else(|e| panic!("{name}: preopen {e}"));
        }
        let envelope = hex::decode(s(v, "envelope_hex")).unwrap();
        let mut b = envelope.clone();
        let err = opener.open_in_place_at(topic.as_str(), &mut b, now).map(|o| o.header).unwrap_err();
        assert_eq!(err.code(), s(v, "error"), "{name}");
        if err == mqseal::Error::Auth || err.is_format() {
            assert_eq!(b, envelope, "{name}: buffer changed on a failed open");
        }
    }
}
