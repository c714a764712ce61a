//! Applying control messages in memory, for tests that play the authority
//! and its members without a store (the stores have their own tests).
//!
//! This file uses nothing but `mqseal`, so that the core's own tests can
//! include it by path (`core/tests/control.rs`) without depending on this
//! crate, whose default features of `mqseal` would unify with theirs.

use mqseal::{Error, MemberAgent};

/// What a test looks at of an applied state.
#[derive(Debug)]
pub struct Applied {
    /// The epoch now held.
    pub epoch: u64,
    /// The member-state record (which a real member persists first).
    pub state: Vec<u8>,
    /// The ack envelope to publish.
    pub ack: Vec<u8>,
    /// When the agent needs its next tick.
    pub wake_at: Option<u64>,
}

/// [`MemberAgent::stage`], then taken as persisted at once.
pub trait ApplyInMemory {
    /// Applies `envelope`, received on `topic`, at `now`.
    ///
    /// # Errors
    /// Those of [`MemberAgent::stage`].
    fn apply(&mut self, topic: &str, envelope: &[u8], now: Option<u64>) -> Result<Applied, Error>;
}

impl ApplyInMemory for MemberAgent {
    fn apply(&mut self, topic: &str, envelope: &[u8], now: Option<u64>) -> Result<Applied, Error> {
        let staged = self.stage(topic, envelope, now)?;
        let (epoch, state, wake_at) = (staged.epoch(), staged.state().to_vec(), staged.wake_at());
        let (agent, ack) = staged.persisted();
        *self = agent;
        Ok(Applied { epoch, state, ack, wake_at })
    }
}
