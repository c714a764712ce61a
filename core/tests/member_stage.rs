#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! `MemberAgent::stage` / `Staged::persisted` (the persist-before-ack form
//! the npm and Python members use) against the control vectors: staging
//! changes nothing; only `persisted` gives the agent and the ack, which are
//! the vectors' byte for byte; a dropped stage spends no ack counter.

use mqseal::{ControlTopics, MemberAgent, PublicKey, StaticKeyPair};
use serde_json::Value;

const FILE: &str = include_str!("vectors/control-v1.json");

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

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
