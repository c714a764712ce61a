// The generator of core/tests/vectors/control-v1.json (key distribution,
// docs/PROTOCOL.md section 14), shared by `cargo run -p mqseal --example
// gen_vectors` and core/tests/control_vectors.rs (which regenerates in
// memory and compares with the committed file).
//
// Deterministic: fixed key pairs, secrets, counters and times.

use mqseal::{
    MemberAgent, MemoryCounterStore, Sealer, StaticKeyPair, Suite, AUTHORITY_SENDER_ID, CONTROL_KEY_ID,
    MAX_ACK_ENVELOPE_LEN, MAX_MEMBER_STATE_LEN,
};
use serde::Serialize;

#[derive(Serialize)]
pub struct ControlFile {
    pub format: &'static str,
    pub version: u32,
    pub description: &'static str,
    pub authority_secret: String,
    pub authority_public: String,
    pub member_secret: String,
    pub member_public: String,
    pub member_id: &'static str,
    pub control_topic: &'static str,
    pub ack_topic: &'static str,
    pub limits: Limits,
    pub positive: Vec<Positive>,
    pub negative: Vec<Negative>,
}

#[derive(Serialize)]
pub struct Limits {
    pub max_groups: usize,
    pub max_keys_per_group: usize,
    pub max_name_len: usize,
}

/// A state the member accepts, in order: each case is applied to the agent
/// that applied the cases before it.
#[derive(Serialize)]
pub struct Positive {
    pub name: &'static str,
    pub state: WState,
    /// postcard encoding of `state` (the sealed body).
    pub body_hex: String,
    /// The authority's envelope counter.
    pub counter: u64,
    pub envelope_hex: String,
    /// The ack the member publishes (its counter is `ack_counter`).
    pub ack_counter: u64,
    pub ack_body_hex: String,
    pub ack_envelope_hex: String,
    /// The member-state record after applying it.
    pub member_state_hex: String,
}

/// A message a fresh member (after applying `after_positive` positive
/// cases) refuses with `error` (and `reason` for `invalidControl`).
#[derive(Serialize)]
pub struct Negative {
    pub name: &'static str,
    pub after_positive: usize,
    pub topic: &'static str,
    pub envelope_hex: String,
    pub error: &'static str,
    pub reason: Option<&'static str>,
}

/// A member state as the spec lays it out (14.4), with `Vec`s, so that
/// tests can also build bodies the typed builder refuses to make. The one
/// definition of the wire layout for the vector files and the tests.
#[derive(Serialize, Clone, Debug)]
pub struct WState {
    pub format: u8,
    pub member_id: String,
    pub epoch: u64,
    pub groups: Vec<WGroup>,
}

#[derive(Serialize, Clone, Debug)]
pub struct WGroup {
    pub name: String,
    pub seal_now: u32,
    pub seal_next: Option<u32>,
    pub keys: Vec<WKey>,
}

#[derive(Serialize, Clone, Debug)]
pub struct WKey {
    pub key_id: u32,
    pub suite: u8,
    #[serde(serialize_with = "secret")]
    pub secret: [u8; 32],
    pub sender_id: u32,
    pub activation: u64,
    pub end_of_acceptance: Option<u64>,
}

/// The secret as hex in the JSON file, as its 32 raw bytes in the postcard
/// body.
fn secret<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&hex::encode(b))
    } else {
        b.serialize(s)
    }
}

/// The postcard body of a state.
pub fn body(w: &WState) -> Vec<u8> {
    postcard::to_allocvec(w).unwrap()
}

pub const MEMBER_ID: &str = "sensor-7";
pub const CTL: &str = "mqseal/v1/ctl/sensor-7";
pub const ACK: &str = "mqseal/v1/ack/sensor-7";
const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

pub fn authority() -> StaticKeyPair {
    StaticKeyPair::from_secret_bytes(core::array::from_fn(|i| 0x40 + i as u8))
}

pub fn member() -> StaticKeyPair {
    StaticKeyPair::from_secret_bytes(core::array::from_fn(|i| 0x80 + i as u8))
}

fn key(id: u32, suite: u8, sender_id: u32, activation: u64, end: Option<u64>) -> WKey {
    WKey {
        key_id: id,
        suite,
        secret: core::array::from_fn(|i| (id as u8) ^ (i as u8) ^ 0x5a),
        sender_id,
        activation,
        end_of_acceptance: end,
    }
}

fn state(epoch: u64, groups: Vec<WGroup>) -> WState {
    WState { format: 1, member_id: MEMBER_ID.into(), epoch, groups }
}

fn telemetry() -> WGroup {
    WGroup {
        name: "telemetry".into(),
        seal_now: 1,
        seal_next: Some(2),
        keys: vec![key(1, 1, 17, T0, Some(T0 + 86_400)), key(2, 1, 4, T0 + 3_600, None)],
    }
}

fn commands() -> WGroup {
    WGroup { name: "commands".into(), seal_now: 300, seal_next: None, keys: vec![key(300, 2, 1, 0, None)] }
}

struct Auth {
    sealer: Sealer<MemoryCounterStore>,
}

impl Auth {
    fn new() -> Auth {
        let keys = authority().pairwise(&member().public(), CONTROL_KEY_ID).unwrap();
        let sealer =
            Sealer::new(&keys.send, AUTHORITY_SENDER_ID, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap();
        Auth { sealer }
    }

    /// Seals with the next counter (every envelope of the file comes from
    /// one counter sequence, positive cases first).
    fn seal(&mut self, topic: &str, body: &[u8]) -> (u64, Vec<u8>) {
        let c = self.sealer.next_counter().unwrap();
        (c, self.sealer.seal_to_vec(topic, body).unwrap())
    }

    fn seal_with(keys: &mqseal::PairwiseKeys, sender: u32, suite: Suite, body: &[u8]) -> Vec<u8> {
        Sealer::new(&keys.send, sender, suite, MemoryCounterStore::starting_at(1000))
            .unwrap()
            .seal_to_vec(CTL, body)
            .unwrap()
    }
}

pub fn generate() -> ControlFile {
    let mut auth = Auth::new();
    let mut agent = MemberAgent::new(&member(), MEMBER_ID, &authority().public(), &Default::default(), None).unwrap();
    let mut positive = Vec::new();
    let mut sealed = Vec::new();
    for (name, w) in [
        ("first-state", state(1, vec![telemetry(), commands()])),
        ("rotated", {
            let mut t = telemetry();
            t.seal_now = 2;
            t.seal_next = Some(3);
            t.keys.push(key(3, 1, 9, T0 + 7_200, None));
            state(2, vec![t, commands()])
        }),
        ("revoked-from-all-groups", state(7, vec![])),
    ] {
        let b = body(&w);
        let (counter, env) = auth.seal(CTL, &b);
        let mut st = vec![0u8; MAX_MEMBER_STATE_LEN];
        let mut ack = vec![0u8; MAX_ACK_ENVELOPE_LEN];
        let ack_counter = positive.len() as u64;
        let applied = agent.handle(CTL, &mut env.clone(), Some(T0), &mut st, &mut ack, |_| Ok(())).unwrap();
        let (state_hex, ack_env) = (hex::encode(applied.state), applied.ack.to_vec());
        let mut ack_body = vec![1u8, MEMBER_ID.len() as u8];
        ack_body.extend_from_slice(MEMBER_ID.as_bytes());
        ack_body.extend_from_slice(&postcard::to_allocvec(&w.epoch).unwrap());
        ack_body.push(0);
        sealed.push(env.clone());
        positive.push(Positive {
            name,
            state: w,
            body_hex: hex::encode(&b),
            counter,
            envelope_hex: hex::encode(&env),
            ack_counter,
            ack_body_hex: hex::encode(ack_body),
            ack_envelope_hex: hex::encode(ack_env),
            member_state_hex: state_hex,
        });
    }

    let mut negative = Vec::new();
    let mut neg = |name, after, topic, env: Vec<u8>, error, reason| {
        negative.push(Negative { name, after_positive: after, topic, envelope_hex: hex::encode(env), error, reason })
    };
    // Envelope-level.
    neg("replayed-retained", 1, CTL, sealed[0].clone(), "duplicate", None);
    neg("older-envelope", 2, CTL, sealed[0].clone(), "replay", None);
    neg("wrong-topic", 0, "mqseal/v1/ctl/sensor-8", sealed[0].clone(), "invalidControl", Some("wrongTopic"));
    let mut flipped = sealed[0].clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    neg("flipped-tag", 0, CTL, flipped, "auth", None);
    let rogue = StaticKeyPair::from_secret_bytes([0x33; 32]);
    let forged_keys = rogue.pairwise(&member().public(), CONTROL_KEY_ID).unwrap();
    let b1 = body(&state(9, vec![telemetry()]));
    neg("forged", 0, CTL, Auth::seal_with(&forged_keys, 0, Suite::ChaCha20Poly1305, &b1), "auth", None);
    let real = authority().pairwise(&member().public(), CONTROL_KEY_ID).unwrap();
    neg(
        "wrong-sender-id",
        0,
        CTL,
        Auth::seal_with(&real, 5, Suite::ChaCha20Poly1305, &b1),
        "invalidControl",
        Some("wrongSender"),
    );
    neg(
        "integrity-only-suite",
        0,
        CTL,
        Auth::seal_with(&real, 0, Suite::HmacSha256, &b1),
        "invalidControl",
        Some("wrongSender"),
    );
    // Body-level: sealed by the real authority, with the next counters.
    let mut body_case = |name, after, w: Vec<u8>, error, reason| {
        let (_, env) = auth.seal(CTL, &w);
        neg(name, after, CTL, env, error, reason);
    };
    body_case("stale-epoch", 2, body(&state(2, vec![telemetry()])), "staleEpoch", None);
    body_case("older-epoch", 2, body(&state(1, vec![telemetry()])), "staleEpoch", None);
    let mut b = body(&state(3, vec![]));
    b.push(0);
    body_case("trailing-byte", 0, b, "invalidControl", Some("malformed"));
    let b = body(&state(3, vec![telemetry()]));
    body_case("truncated", 0, b[..b.len() - 1].to_vec(), "invalidControl", Some("malformed"));
    let mut nc = vec![1u8, MEMBER_ID.len() as u8];
    nc.extend_from_slice(MEMBER_ID.as_bytes());
    nc.extend_from_slice(&[0x83, 0x00, 0x00]);
    body_case("non-canonical-epoch", 0, nc, "invalidControl", Some("malformed"));
    let mut f = state(3, vec![]);
    f.format = 2;
    body_case("format-2", 0, body(&f), "invalidControl", Some("unsupportedFormat"));
    let nine = (0..9).map(|i| WGroup { name: format!("g{i}"), ..commands() }).collect();
    body_case("nine-groups", 0, body(&state(3, nine)), "invalidControl", Some("tooManyGroups"));
    let mut five = commands();
    five.keys = (0..5).map(|i| key(300 + i, 2, 1, u64::from(i), None)).collect();
    body_case("five-keys", 0, body(&state(3, vec![five])), "invalidControl", Some("tooManyKeys"));
    let mut none = commands();
    none.keys.clear();
    body_case("group-without-keys", 0, body(&state(3, vec![none])), "invalidControl", Some("tooManyKeys"));
    let mut slash = commands();
    slash.name = "a/b".into();
    body_case("group-name-slash", 0, body(&state(3, vec![slash])), "invalidControl", Some("badName"));
    let mut long = commands();
    long.name = "n".repeat(65);
    body_case("group-name-65-bytes", 0, body(&state(3, vec![long])), "invalidControl", Some("badName"));
    let mut other = state(3, vec![]);
    other.member_id = "sensor-8".into();
    body_case("other-member", 0, body(&other), "invalidControl", Some("wrongMember"));
    body_case("epoch-zero", 0, body(&state(0, vec![])), "invalidControl", Some("zeroEpoch"));
    body_case(
        "duplicate-group",
        0,
        body(&state(3, vec![commands(), commands()])),
        "invalidControl",
        Some("duplicateGroup"),
    );
    let mut dup = telemetry();
    dup.keys[1].key_id = 1;
    body_case("duplicate-key-id", 0, body(&state(3, vec![dup])), "invalidControl", Some("duplicateKeyId"));
    let mut suite = commands();
    suite.keys[0].suite = 0;
    body_case("suite-zero", 0, body(&state(3, vec![suite])), "invalidControl", Some("badSuite"));
    let mut end = telemetry();
    end.keys[0].end_of_acceptance = Some(T0);
    body_case("end-at-activation", 0, body(&state(3, vec![end])), "invalidControl", Some("endBeforeActivation"));
    let mut missing = telemetry();
    missing.seal_now = 5;
    body_case("seal-now-not-listed", 0, body(&state(3, vec![missing])), "invalidControl", Some("sealKeyMissing"));
    let mut next = telemetry();
    next.seal_next = Some(6);
    body_case("seal-next-not-listed", 0, body(&state(3, vec![next])), "invalidControl", Some("badNextKey"));
    let mut early = telemetry();
    early.keys[1].activation = T0;
    body_case("seal-next-not-later", 0, body(&state(3, vec![early])), "invalidControl", Some("badNextKey"));

    ControlFile {
        format: "mqseal-control-vectors",
        version: 1,
        description: "mqseal key distribution, control protocol v1. Generated by `cargo run -p mqseal --example gen_vectors`; see docs/PROTOCOL.md, section 14.",
        authority_secret: authority().secret_text().as_str().into(),
        authority_public: authority().public().to_text().as_str().into(),
        member_secret: member().secret_text().as_str().into(),
        member_public: member().public().to_text().as_str().into(),
        member_id: MEMBER_ID,
        control_topic: CTL,
        ack_topic: ACK,
        limits: Limits {
            max_groups: mqseal::MAX_GROUPS,
            max_keys_per_group: mqseal::MAX_KEYS_PER_GROUP,
            max_name_len: mqseal::MAX_NAME_LEN,
        },
        positive,
        negative,
    }
}

pub fn to_json() -> String {
    let mut s = serde_json::to_string_pretty(&generate()).unwrap();
    s.push('\n');
    s
}
