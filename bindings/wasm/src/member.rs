//! The key-distribution member agent for JavaScript (`docs/PROTOCOL.md`
//! section 14): the core's [`mqseal::MemberAgent`], bytes in and bytes out.
//! All checks, limits, the order of acceptance and which key to use when
//! are the core's.
//!
//! Persist before ack, by construction: [`RawMember::handle`] stages a
//! control envelope (the core's [`MemberAgent::stage`]: applied to a copy
//! of the agent) and returns only the member-state record to persist. The new keys and the ack envelope are
//! out of reach until [`RawMember::commit`], which the JS `Member` calls
//! once the record is durably written (an IndexedDB transaction complete);
//! [`RawMember::discard`] drops the copy when the write failed. Until the
//! commit, [`RawMember::sealing`] and [`RawMember::accepted_keys`] report the
//! old state.

use mqseal::{ControlTopics, MemberAgent, Staged, DEFAULT_ACK_PREFIX, DEFAULT_CONTROL_PREFIX, MAX_KEYS_PER_GROUP};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::{js_error, opt_u64_from_js, set_prop, suite_name, u64_to_js, Key, StaticKeyPair};

/// The member agent under the JS `Member`.
#[wasm_bindgen]
pub struct RawMember {
    agent: MemberAgent,
    pending: Option<Staged>,
}

fn wake_to_js(wake_at: Option<u64>) -> JsValue {
    wake_at.map_or(JsValue::NULL, u64_to_js)
}

fn now_from_js(now: &JsValue) -> Result<Option<u64>, JsValue> {
    opt_u64_from_js(now).map_err(js_error)
}

/// `invalidConfig` for [`RawMember::commit`] with nothing handled.
fn nothing_pending() -> JsValue {
    let err = js_sys::Error::new("nothing to commit: handle a control message first");
    err.set_name("MqsealError");
    set_prop(err.as_ref(), "code", &JsValue::from_str(mqseal::Error::InvalidConfig.code()));
    err.into()
}

#[wasm_bindgen]
impl RawMember {
    /// The agent of member `member_id` with key pair `own`, trusting the
    /// authority whose public key is `authority_public` (text form), with
    /// the control and ack topic prefixes (default `mqseal/v1/ctl`,
    /// `mqseal/v1/ack`), resuming from the member-state record `persisted`
    /// (`undefined`: a member just enrolled, epoch 0).
    ///
    /// # Errors
    /// `invalidKey`, `weakSharedSecret`, `selfPairing`; `invalidControl`
    /// (reason `badName`) for a bad member id; `invalidConfig` for a bad
    /// prefix; `invalidSnapshot` for a record that is not valid or is
    /// another member's.
    #[wasm_bindgen(constructor)]
    pub fn new(
        own: &StaticKeyPair,
        member_id: &str,
        authority_public: &str,
        control_prefix: Option<String>,
        ack_prefix: Option<String>,
        persisted: Option<Vec<u8>>,
    ) -> Result<RawMember, JsValue> {
        let persisted = persisted.map(Zeroizing::new);
        let authority = mqseal::PublicKey::from_text(authority_public).map_err(js_error)?;
        let topics = ControlTopics {
            control: control_prefix.as_deref().unwrap_or(DEFAULT_CONTROL_PREFIX),
            ack: ack_prefix.as_deref().unwrap_or(DEFAULT_ACK_PREFIX),
        };
        let agent = MemberAgent::new(&own.0, member_id, &authority, &topics, persisted.as_ref().map(|p| p.as_slice()))
            .map_err(js_error)?;
        Ok(RawMember { agent, pending: None })
    }

    /// The topic to subscribe to (QoS 1).
    #[wasm_bindgen(getter, js_name = controlTopic)]
    #[must_use]
    pub fn control_topic(&self) -> String {
        self.agent.control_topic().to_owned()
    }

    /// The topic acks are published on (QoS 1, not retained).
    #[wasm_bindgen(getter, js_name = ackTopic)]
    #[must_use]
    pub fn ack_topic(&self) -> String {
        self.agent.ack_topic().to_owned()
    }

    /// The member id.
    #[wasm_bindgen(getter, js_name = memberId)]
    #[must_use]
    pub fn member_id(&self) -> String {
        self.agent.member_id().to_owned()
    }

    /// The epoch in use (0 before the first state).
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn epoch(&self) -> JsValue {
        u64_to_js(self.agent.epoch())
    }

    /// The names of the groups this member belongs to.
    #[must_use]
    pub fn groups(&self) -> Vec<String> {
        self.agent.state().map_or_else(Vec::new, |s| s.groups().iter().map(|g| g.name().to_owned()).collect())
    }

    /// The member-state record of what is in use now (to persist after a
    /// [`RawMember::key_seen`] that returned true).
    ///
    /// # Errors
    /// `bufferTooSmall` (never: the buffer is the longest record).
    #[wasm_bindgen(js_name = encodeState)]
    pub fn encode_state(&self) -> Result<Vec<u8>, JsValue> {
        let mut out = Zeroizing::new(vec![0u8; mqseal::MAX_MEMBER_STATE_LEN]);
        let n = self.agent.encode_state(&mut out).map_err(js_error)?;
        Ok(out[..n].to_vec())
    }

    /// Checks and applies the control envelope received on `topic` at `now`
    /// (Unix seconds; `undefined` without a clock) to a copy of the agent.
    /// Returns `{ epoch, state, wakeAt }`: persist `state` durably, then call
    /// [`RawMember::commit`] for the ack (or [`RawMember::discard`]). A
    /// second `handle` replaces an uncommitted one.
    ///
    /// # Errors
    /// Those of the core's `MemberAgent::handle`, by code (`invalidControl`
    /// with `reason`, `auth`, `duplicate`, `replay`, `staleEpoch`,
    /// `unknownKey`, the format errors, `counterExhausted`); nothing changes.
    pub fn handle(&mut self, topic: &str, envelope: &[u8], now: JsValue) -> Result<JsValue, JsValue> {
        self.pending = None;
        let now = now_from_js(&now)?;
        let staged = self.agent.stage(topic, envelope, now).map_err(js_error)?;
        let out = js_sys::Object::new();
        set_prop(&out, "epoch", &u64_to_js(staged.epoch()));
        set_prop(&out, "state", &js_sys::Uint8Array::from(staged.state()).into());
        set_prop(&out, "wakeAt", &wake_to_js(staged.wake_at()));
        self.pending = Some(staged);
        Ok(out.into())
    }

    /// Makes the handled state the one in use (its record is persisted) and
    /// returns the ack envelope to publish on [`RawMember::ack_topic`].
    ///
    /// # Errors
    /// `invalidConfig` when nothing was handled since the last commit.
    pub fn commit(&mut self) -> Result<Vec<u8>, JsValue> {
        let (agent, ack) = self.pending.take().ok_or_else(nothing_pending)?.persisted();
        self.agent = agent;
        Ok(ack)
    }

    /// Drops a handled state whose record could not be persisted.
    pub fn discard(&mut self) {
        self.pending = None;
    }

    /// What to seal with in `group` at `now`: `{ key, keyId, senderId,
    /// suite }`, or `null` when not a member of the group.
    ///
    /// # Errors
    /// `invalidConfig` for a `now` that is not a whole number of seconds.
    pub fn sealing(&self, group: &str, now: JsValue) -> Result<JsValue, JsValue> {
        let Some(s) = self.agent.sealing(group, now_from_js(&now)?) else {
            return Ok(JsValue::NULL);
        };
        let out = js_sys::Object::new();
        set_prop(&out, "keyId", &JsValue::from(s.key.id()));
        set_prop(&out, "senderId", &JsValue::from(s.sender_id));
        set_prop(&out, "suite", &JsValue::from_str(suite_name(s.suite)));
        set_prop(&out, "key", &Key(s.key).into());
        Ok(out.into())
    }

    /// The keys of `group` accepted at `now` (an array of `Key`, empty when
    /// not a member of the group).
    ///
    /// # Errors
    /// `invalidConfig` for a bad `now`.
    #[wasm_bindgen(js_name = acceptedKeys)]
    pub fn accepted_keys(&self, group: &str, now: JsValue) -> Result<Vec<Key>, JsValue> {
        let ring = self.agent.keyring::<MAX_KEYS_PER_GROUP>(group, now_from_js(&now)?).map_err(js_error)?;
        Ok(ring.map_or_else(Vec::new, |r| r.ids().filter_map(|id| r.get(id).cloned().map(Key)).collect()))
    }

    /// A message of `group` under `key_id` verified: a member without a
    /// clock switches to the next key when it first sees it. True when the
    /// sealing key changed: persist [`RawMember::encode_state`] before
    /// sealing with it.
    ///
    /// # Errors
    /// `invalidConfig` for a bad `now`.
    #[wasm_bindgen(js_name = keySeen)]
    pub fn key_seen(&mut self, group: &str, key_id: u32, now: JsValue) -> Result<bool, JsValue> {
        let now = now_from_js(&now)?;
        Ok(self.agent.key_seen(group, key_id, now))
    }

    /// Scheduled switches: `{ changed, wakeAt }` (rebuild sealers and
    /// keyrings when `changed`; call again at `wakeAt`).
    ///
    /// # Errors
    /// `invalidConfig` for a bad `now`.
    pub fn tick(&mut self, now: JsValue) -> Result<JsValue, JsValue> {
        let t = self.agent.tick(now_from_js(&now)?);
        let out = js_sys::Object::new();
        set_prop(&out, "changed", &JsValue::from(t.changed));
        set_prop(&out, "wakeAt", &wake_to_js(t.wake_at));
        Ok(out.into())
    }

    /// When to call [`RawMember::tick`] next after `now` (`null`: never).
    ///
    /// # Errors
    /// `invalidConfig` for a bad `now`.
    #[wasm_bindgen(js_name = wakeAt)]
    pub fn wake_at(&self, now: JsValue) -> Result<JsValue, JsValue> {
        Ok(wake_to_js(self.agent.wake_at(now_from_js(&now)?)))
    }
}
