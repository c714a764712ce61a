//! Puts memory.x where the linker finds it, and turns the shared test
//! vectors (core/tests/vectors/v1.json) into Rust statics, so the firmware
//! needs no JSON parser.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn bytes(b: &[u8]) -> String {
    let mut s = String::from("&[");
    for x in b {
        write!(s, "{x},").unwrap();
    }
    s.push(']');
    s
}

fn opt_u64(v: &Value) -> String {
    match v.as_u64() {
        Some(n) => format!("Some({n})"),
        None => "None".into(),
    }
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");

    let path = "../../core/tests/vectors/v1.json";
    println!("cargo:rerun-if-changed={path}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read vectors")).expect("vectors JSON");
    assert_eq!(v["format"], "mqseal-test-vectors");
    assert_eq!(v["version"], 1);

    let mut s = String::new();
    s.push_str("static POSITIVE: &[Positive] = &[\n");
    for p in v["positive"].as_array().expect("positive") {
        let suite = match p["suite"].as_str().unwrap() {
            "chacha20poly1305" => "Suite::ChaCha20Poly1305",
            "hmac-sha256" => "Suite::HmacSha256",
            other => panic!("unknown suite {other}"),
        };
        writeln!(
            s,
            "Positive {{ name: {:?}, suite: {suite}, sender_key: {:?}, open_key: {:?}, sender_id: {}, counter: {}, \
             timestamp: {}, topic: {:?}, plaintext: {}, envelope: {} }},",
            p["name"].as_str().unwrap(),
            p["sender_key"].as_str().unwrap(),
            p["open_key"].as_str().unwrap(),
            p["sender_id"].as_u64().unwrap(),
            p["counter"].as_u64().unwrap(),
            opt_u64(&p["timestamp"]),
            p["topic"].as_str().unwrap(),
            bytes(&hex(p["plaintext_hex"].as_str().unwrap())),
            bytes(&hex(p["envelope_hex"].as_str().unwrap())),
        )
        .unwrap();
    }
    s.push_str("];\n\nstatic NEGATIVE: &[Negative] = &[\n");
    for n in v["negative"].as_array().expect("negative") {
        let pre: Vec<String> =
            n["preopen"].as_array().unwrap().iter().map(|e| bytes(&hex(e.as_str().unwrap()))).collect();
        writeln!(
            s,
            "Negative {{ name: {:?}, open_key: {:?}, topic: {:?}, window: {}, preopen: &[{}], now: {}, max_age: {}, \
             max_skew: {}, envelope: {}, error: {:?} }},",
            n["name"].as_str().unwrap(),
            n["open_key"].as_str().unwrap(),
            n["topic"].as_str().unwrap(),
            n["window"].as_u64().unwrap(),
            pre.join(","),
            opt_u64(&n["now"]),
            opt_u64(&n["max_age"]),
            opt_u64(&n["max_skew"]),
            bytes(&hex(n["envelope_hex"].as_str().unwrap())),
            n["error"].as_str().unwrap(),
        )
        .unwrap();
    }
    s.push_str("];\n");
    std::fs::write(out.join("vectors.rs"), s).unwrap();
}
