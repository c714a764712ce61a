//! Puts memory.x where the linker finds it, and turns the shared test
//! vectors (core/tests/vectors/v1.json, schema in docs/PROTOCOL.md section
//! 11) into Rust statics, so the firmware needs no JSON parser.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
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

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} missing in {}", v["name"]))
}

/// A u64 field, read from its `_dec` string (exact) and checked against the
/// JSON number, as docs/PROTOCOL.md 11.1 asks of a runner.
fn opt_u64(v: &Value, k: &str) -> Option<u64> {
    let d = v[format!("{k}_dec")].as_str().map(|d| d.parse::<u64>().expect("decimal"));
    assert_eq!(d, v[k].as_u64(), "{k} and {k}_dec differ in {}", v["name"]);
    assert_eq!(d.is_none(), v[k].is_null(), "{k} is neither a u64 nor null in {}", v["name"]);
    d
}

fn lit_u64(n: Option<u64>) -> String {
    match n {
        Some(n) => format!("Some({n})"),
        None => "None".into(),
    }
}

fn lit_str(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("Some({s:?})"),
        None => "None".into(),
    }
}

fn suite(name: &str) -> &'static str {
    match name {
        "chacha20poly1305" => "Suite::ChaCha20Poly1305",
        "hmac-sha256" => "Suite::HmacSha256",
        other => panic!("unknown suite {other}"),
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
    assert_eq!(v["max_u64"].as_u64(), Some(u64::MAX), "the JSON parser must keep u64 exact");
    assert_eq!(v["max_u64_dec"].as_str(), Some("18446744073709551615"));

    let mut s = String::new();
    let mut max_len = 0usize;
    s.push_str("static POSITIVE: &[Positive] = &[\n");
    for p in v["positive"].as_array().expect("positive") {
        let pairwise = match p["pairwise"].as_object() {
            None => "None".to_string(),
            Some(pw) => format!(
                "Some(Pairwise {{ sender_secret: {:?}, receiver_secret: {:?}, key_id: {} }})",
                pw["sender_secret"].as_str().unwrap(),
                pw["receiver_secret"].as_str().unwrap(),
                pw["key_id"].as_u64().unwrap()
            ),
        };
        let envelope = hex(str_of(p, "envelope_hex"));
        max_len = max_len.max(envelope.len());
        writeln!(
            s,
            "Positive {{ name: {:?}, suite: {}, sender_key: {:?}, open_key: {:?}, pairwise: {pairwise}, sender_id: {}, \
             counter: {}, timestamp: {}, topic: {:?}, plaintext: {}, envelope: {} }},",
            str_of(p, "name"),
            suite(str_of(p, "suite")),
            str_of(p, "sender_key"),
            str_of(p, "open_key"),
            p["sender_id"].as_u64().unwrap(),
            opt_u64(p, "counter").expect("counter"),
            lit_u64(opt_u64(p, "timestamp")),
            str_of(p, "topic"),
            bytes(&hex(str_of(p, "plaintext_hex"))),
            bytes(&envelope),
        )
        .unwrap();
    }
    s.push_str("];\n\nstatic NEGATIVE: &[Negative] = &[\n");
    for n in v["negative"].as_array().expect("negative") {
        let pre: Vec<Vec<u8>> = n["preopen"].as_array().unwrap().iter().map(|e| hex(e.as_str().unwrap())).collect();
        let envelope = hex(str_of(n, "envelope_hex"));
        max_len = pre.iter().map(Vec::len).fold(max_len.max(envelope.len()), usize::max);
        let pre: Vec<String> = pre.iter().map(|b| bytes(b)).collect();
        let suites = match n["suites"].as_array() {
            None => "None".to_string(),
            Some(list) => {
                let l: Vec<&str> = list.iter().map(|x| suite(x.as_str().unwrap())).collect();
                format!("Some(&[{}])", l.join(","))
            }
        };
        let eviction = match str_of(n, "eviction") {
            "rejectNew" => "Eviction::RejectNew",
            "leastRecentlyUsed" => "Eviction::LeastRecentlyUsed",
            other => panic!("eviction {other}"),
        };
        let rewrite = match n["rewrite"].as_object() {
            None => "None".to_string(),
            Some(r) => format!("Some(({:?}, {:?}))", r["received"].as_str().unwrap(), r["sealed"].as_str().unwrap()),
        };
        writeln!(
            s,
            "Negative {{ name: {:?}, open_key: {:?}, topic: {:?}, window: {}, preopen: &[{}], now: {}, max_age: {}, \
             max_skew: {}, require_timestamp: {}, suites: {suites}, senders: {}, eviction: {eviction}, \
             rewrite: {rewrite}, envelope: {}, error: {:?} }},",
            str_of(n, "name"),
            str_of(n, "open_key"),
            str_of(n, "topic"),
            n["window"].as_u64().unwrap(),
            pre.join(","),
            lit_u64(opt_u64(n, "now")),
            lit_u64(opt_u64(n, "max_age")),
            lit_u64(opt_u64(n, "max_skew")),
            n["require_timestamp"].as_bool().unwrap(),
            lit_u64(n["senders"].as_u64()),
            bytes(&envelope),
            str_of(n, "error"),
        )
        .unwrap();
    }
    s.push_str("];\n\nstatic KEYS: &[KeyCase] = &[\n");
    for k in v["keys"].as_array().expect("keys") {
        let kind = match str_of(k, "kind") {
            "key" => "KeyKind::Key",
            "x25519-secret" => "KeyKind::X25519Secret",
            "x25519-public" => "KeyKind::X25519Public",
            other => panic!("kind {other}"),
        };
        let b = k["bytes_hex"].as_str().map(hex);
        writeln!(
            s,
            "KeyCase {{ name: {:?}, kind: {kind}, text: {:?}, key_id: {}, bytes: {}, canonical: {}, public: {}, \
             error: {} }},",
            str_of(k, "name"),
            str_of(k, "text"),
            lit_u64(k["key_id"].as_u64()),
            b.map_or("None".to_string(), |b| format!("Some({})", bytes(&b))),
            lit_str(k["canonical_text"].as_str()),
            lit_str(k["public_text"].as_str()),
            lit_str(k["error"].as_str()),
        )
        .unwrap();
    }
    s.push_str("];\n\nstatic PAIRWISE: &[PairCase] = &[\n");
    for p in v["pairwise"].as_array().expect("pairwise") {
        writeln!(
            s,
            "PairCase {{ name: {:?}, secret: {:?}, peer_public: {:?}, key_id: {}, send_key: {}, recv_key: {}, \
             error: {} }},",
            str_of(p, "name"),
            str_of(p, "secret"),
            str_of(p, "peer_public"),
            p["key_id"].as_u64().unwrap(),
            lit_str(p["send_key"].as_str()),
            lit_str(p["recv_key"].as_str()),
            lit_str(p["error"].as_str()),
        )
        .unwrap();
    }
    s.push_str("];\n\nstatic SEQUENCES: &[Sequence] = &[\n");
    for q in v["sequences"].as_array().expect("sequences") {
        let mut steps = Vec::new();
        for t in q["steps"].as_array().unwrap() {
            let envelope = hex(str_of(t, "envelope_hex"));
            max_len = max_len.max(envelope.len());
            let ctx = serde_json::json!({ "name": q["name"], "counter": t["counter"], "counter_dec": t["counter_dec"],
                "now": t["now"], "now_dec": t["now_dec"] });
            steps.push(format!(
                "Step {{ counter: {}, now: {}, envelope: {}, expect: {} }}",
                opt_u64(&ctx, "counter").expect("counter"),
                lit_u64(opt_u64(&ctx, "now")),
                bytes(&envelope),
                lit_str(t["expect"].as_str()),
            ));
        }
        writeln!(
            s,
            "Sequence {{ name: {:?}, open_key: {:?}, topic: {:?}, window: {}, gaps: {}, max_age: {}, max_skew: {}, \
             config_error: {}, steps: &[{}] }},",
            str_of(q, "name"),
            str_of(q, "open_key"),
            str_of(q, "topic"),
            q["window"].as_u64().unwrap(),
            q["gaps"].as_u64().unwrap(),
            lit_u64(opt_u64(q, "max_age")),
            lit_u64(opt_u64(q, "max_skew")),
            lit_str(q["config_error"].as_str()),
            steps.join(","),
        )
        .unwrap();
    }
    s.push_str("];\n");
    writeln!(s, "\n/// The longest envelope of the file.\nconst MAX_ENVELOPE: usize = {max_len};").unwrap();
    std::fs::write(out.join("vectors.rs"), s).unwrap();
}
