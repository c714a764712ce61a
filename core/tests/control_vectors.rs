#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Runs core/tests/vectors/control-v1.json (docs/PROTOCOL.md 14.11) from
//! the JSON alone, as another implementation would, and checks that the
//! generator still produces the committed file byte for byte; and the
//! persist-before-ack form of the member (`MemberAgent::stage`) against it.

#[path = "vectors/generate_control.rs"]
#[allow(dead_code, clippy::unwrap_used, clippy::panic)]
mod generate_control;

use mqseal::{
    control_sealer, open_ack, seal_control, Ack, ControlState, ControlTopics, Error, MemberAgent, MemoryCounterStore,
    PublicKey, StaticKeyPair, MAX_ACK_ENVELOPE_LEN, MAX_CONTROL_ENVELOPE_LEN, MAX_MEMBER_STATE_LEN,
};
use serde_json::Value;

const FILE: &str = include_str!("vectors/control-v1.json");

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn committed_file_matches_generator() {
    assert!(
        FILE == generate_control::to_json(),
        "control-v1.json differs from the generator: run `cargo run -p mqseal --example gen_vectors` only for a deliberate wire change"
    );
}

struct Fixture {
    member: StaticKeyPair,
    authority: StaticKeyPair,
    authority_public: PublicKey,
    member_id: String,
    file: Value,
}

fn fixture() -> Fixture {
    let file: Value = serde_json::from_str(FILE).unwrap();
    let member = StaticKeyPair::from_secret_text(text(&file["member_secret"])).unwrap();
    let authority = StaticKeyPair::from_secret_text(text(&file["authority_secret"])).unwrap();
    let authority_public = PublicKey::from_text(text(&file["authority_public"])).unwrap();
    assert_eq!(authority.public(), authority_public);
    assert_eq!(member.public(), PublicKey::from_text(text(&file["member_public"])).unwrap());
    let member_id = text(&file["member_id"]).to_string();
    Fixture { member, authority, authority_public, member_id, file }
}

fn apply(f: &Fixture, agent: &mut MemberAgent, case: &Value) -> (Vec<u8>, Vec<u8>) {
    let mut env = hex(&case["envelope_hex"]);
    let (mut st, mut ack) = (vec![0u8; MAX_MEMBER_STATE_LEN], vec![0u8; MAX_ACK_ENVELOPE_LEN]);
    let topic = text(&f.file["control_topic"]);
    let a = agent.handle(topic, &mut env, None, &mut st, &mut ack, |_| Ok(())).unwrap();
    assert_eq!(a.epoch, case["state"]["epoch"].as_u64().unwrap());
    (a.state.to_vec(), a.ack.to_vec())
}

#[test]
fn positive_cases_apply_in_order() {
    let f = fixture();
    let mut agent =
        MemberAgent::new(&f.member, &f.member_id, &f.authority_public, &ControlTopics::default(), None).unwrap();
    assert_eq!(agent.control_topic(), text(&f.file["control_topic"]));
    assert_eq!(agent.ack_topic(), text(&f.file["ack_topic"]));
    let mut last_ack = None;
    for case in f.file["positive"].as_array().unwrap() {
        let name = text(&case["name"]);
        let body = hex(&case["body_hex"]);
        // The body decodes to the JSON fields and re-encodes to itself.
        let s = ControlState::decode(&body).unwrap();
        let w = &case["state"];
        assert_eq!(s.member_id(), text(&w["member_id"]), "{name}");
        assert_eq!(s.epoch(), w["epoch"].as_u64().unwrap());
        let groups = w["groups"].as_array().unwrap();
        assert_eq!(s.groups().len(), groups.len());
        for (g, jg) in s.groups().iter().zip(groups) {
            assert_eq!(g.name(), text(&jg["name"]));
            assert_eq!(u64::from(g.seal_now()), jg["seal_now"].as_u64().unwrap());
            assert_eq!(g.seal_next().map(u64::from), jg["seal_next"].as_u64());
            for (k, jk) in g.keys().iter().zip(jg["keys"].as_array().unwrap()) {
                assert_eq!(u64::from(k.key_id()), jk["key_id"].as_u64().unwrap());
                assert_eq!(u64::from(k.suite().id()), jk["suite"].as_u64().unwrap());
                assert_eq!(k.key().expose_secret().to_vec(), hex(&jk["secret"]));
                assert_eq!(u64::from(k.sender_id()), jk["sender_id"].as_u64().unwrap());
                assert_eq!(k.activation(), jk["activation"].as_u64().unwrap());
                assert_eq!(k.end_of_acceptance(), jk["end_of_acceptance"].as_u64());
            }
        }
        let mut out = vec![0u8; body.len()];
        assert_eq!(s.encode(&mut out).unwrap(), body.len());
        assert_eq!(out, body);
        // The authority's envelope at that counter.
        let counter = case["counter"].as_u64().unwrap();
        let mut sealer =
            control_sealer(&f.authority, &f.member.public(), MemoryCounterStore::starting_at(counter)).unwrap();
        let mut env = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
        let n = seal_control(&mut sealer, &ControlTopics::default(), &s, &mut env).unwrap();
        assert_eq!(&env[..n], &hex(&case["envelope_hex"])[..], "{name}");
        // The member applies it: state record and ack as in the file.
        let (state, ack) = apply(&f, &mut agent, case);
        assert_eq!(state, hex(&case["member_state_hex"]), "{name}");
        assert_eq!(ack, hex(&case["ack_envelope_hex"]), "{name}");
        let resumed =
            MemberAgent::new(&f.member, &f.member_id, &f.authority_public, &ControlTopics::default(), Some(&state))
                .unwrap();
        assert_eq!(resumed.epoch(), s.epoch());
        // The authority opens the ack.
        let a = Ack::decode(&hex(&case["ack_body_hex"])).unwrap();
        assert_eq!(a.epoch, s.epoch());
        let mut ack_env = ack.clone();
        let got = open_ack(
            &f.authority,
            &f.member.public(),
            &f.member_id,
            &ControlTopics::default(),
            text(&f.file["ack_topic"]),
            &mut ack_env,
            last_ack,
        )
        .unwrap();
        assert_eq!(got.ack, a);
        assert_eq!(got.counter, case["ack_counter"].as_u64().unwrap());
        last_ack = Some(got.counter);
    }
}

#[test]
fn negative_cases_are_refused_with_their_error() {
    let f = fixture();
    let positive = f.file["positive"].as_array().unwrap();
    let negative = f.file["negative"].as_array().unwrap();
    assert!(negative.len() >= 25);
    for case in negative {
        let name = text(&case["name"]);
        let mut agent =
            MemberAgent::new(&f.member, &f.member_id, &f.authority_public, &ControlTopics::default(), None).unwrap();
        for p in &positive[..case["after_positive"].as_u64().unwrap() as usize] {
            apply(&f, &mut agent, p);
        }
        let epoch = agent.epoch();
        let mut env = hex(&case["envelope_hex"]);
        let (mut st, mut ack) = (vec![0u8; MAX_MEMBER_STATE_LEN], vec![0u8; MAX_ACK_ENVELOPE_LEN]);
        let e = agent.handle(text(&case["topic"]), &mut env, None, &mut st, &mut ack, |_| Ok(())).unwrap_err();
        assert_eq!(e.code(), text(&case["error"]), "{name}: {e:?}");
        let reason = match e {
            Error::InvalidControl(r) => Some(r.code()),
            _ => None,
        };
        assert_eq!(reason, case["reason"].as_str(), "{name}");
        assert_eq!(agent.epoch(), epoch, "{name}: nothing changed");
    }
}

#[test]
fn a_failing_persist_changes_nothing_and_hands_out_no_ack() {
    let f = fixture();
    let case = &f.file["positive"][0];
    let topic = text(&f.file["control_topic"]);
    let mut agent =
        MemberAgent::new(&f.member, &f.member_id, &f.authority_public, &ControlTopics::default(), None).unwrap();
    let (mut st, mut ack) = (vec![0u8; MAX_MEMBER_STATE_LEN], vec![0u8; MAX_ACK_ENVELOPE_LEN]);
    let mut env = hex(&case["envelope_hex"]);
    let mut persisted = Vec::new();
    let e = agent
        .handle(topic, &mut env, None, &mut st, &mut ack, |r| {
            persisted = r.to_vec();
            Err(Error::CounterStore(mqseal::StoreError::Write))
        })
        .unwrap_err();
    assert_eq!(e, Error::CounterStore(mqseal::StoreError::Write));
    assert_eq!(persisted, hex(&case["member_state_hex"]), "persist saw the new record first");
    assert_eq!(agent.epoch(), 0);
    assert!(agent.sealing("telemetry", None).is_none());
    assert!(ack.iter().all(|&b| b == 0) && st.iter().all(|&b| b == 0), "no ack, no record left");
    // The next attempt uses the same ack counter: the failed one used none.
    let (state, ack) = apply(&f, &mut agent, case);
    assert_eq!(state, hex(&case["member_state_hex"]));
    assert_eq!(ack, hex(&case["ack_envelope_hex"]));
}

/// `MemberAgent::stage` / `Staged::persisted` (the persist-before-ack form
/// the npm and Python members use) against the same vectors: staging
/// changes nothing; only `persisted` gives the agent and the ack, which are
/// the vectors' byte for byte; a dropped stage spends no ack counter.
#[test]
fn staged_states_give_the_vector_records_and_acks_only_once_persisted() {
    let file: Value = serde_json::from_str(FILE).unwrap();
    let member = StaticKeyPair::from_secret_text(text(&file["member_secret"])).unwrap();
    let authority = PublicKey::from_text(text(&file["authority_public"])).unwrap();
    let topic = text(&file["control_topic"]);
    let mut agent =
        MemberAgent::new(&member, text(&file["member_id"]), &authority, &ControlTopics::default(), None).unwrap();
    for case in file["positive"].as_array().unwrap() {
        let env = hex(&case["envelope_hex"]);
        // A stage that is dropped (its write failed) leaves the agent as it was.
        let dropped = agent.stage(topic, &env, None).unwrap();
        assert_eq!(dropped.state(), &hex(&case["member_state_hex"])[..]);
        drop(dropped);
        let before = agent.epoch();
        let staged = agent.stage(topic, &env, None).unwrap();
        assert_eq!(agent.epoch(), before, "staging changes nothing");
        assert_eq!(staged.epoch(), case["state"]["epoch"].as_u64().unwrap());
        assert_eq!(staged.state(), &hex(&case["member_state_hex"])[..]);
        let (next, ack) = staged.persisted();
        assert_eq!(ack, hex(&case["ack_envelope_hex"]), "the same ack counter: none spent by the dropped stage");
        agent = next;
        assert_eq!(agent.epoch(), case["state"]["epoch"].as_u64().unwrap());
    }
    // Refused messages stage nothing, with the core's error.
    let last = file["positive"].as_array().unwrap().len();
    for case in
        file["negative"].as_array().unwrap().iter().filter(|c| c["after_positive"].as_u64() == Some(last as u64))
    {
        let err = agent.stage(text(&case["topic"]), &hex(&case["envelope_hex"]), None).unwrap_err();
        assert_eq!(err.code(), text(&case["error"]), "{}", text(&case["name"]));
    }
}
