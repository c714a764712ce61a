//! The keyring: several keys at once, looked up by key id, one of them
//! primary for sealing, each accepted for opening until explicitly retired.

use core::fmt;

use crate::keys::Key;
use crate::Error;

/// Several keys at once, looked up by key id: one primary for sealing,
/// all of them accepted for opening, until explicitly retired.
///
/// Fixed capacity `N` (no allocator). Rotation: [`Keyring::insert`] the new
/// key on every receiver, then [`Keyring::set_primary`] on the senders, and
/// once no sender uses the old key, [`Keyring::retire`] it.
#[derive(Clone)]
pub struct Keyring<const N: usize = 8> {
    keys: [Option<Key>; N],
    primary: Option<u32>,
}

impl<const N: usize> Default for Keyring<N> {
    fn default() -> Self {
        Keyring::new()
    }
}

impl<const N: usize> Keyring<N> {
    /// An empty keyring.
    #[must_use]
    pub fn new() -> Self {
        Keyring { keys: core::array::from_fn(|_| None), primary: None }
    }

    /// A keyring holding one key, which is primary.
    ///
    /// # Errors
    /// [`Error::KeyringFull`] if `N` is zero.
    pub fn with_primary(key: Key) -> Result<Self, Error> {
        let mut ring = Keyring::new();
        let id = key.id();
        ring.insert(key)?;
        ring.set_primary(id)?;
        Ok(ring)
    }

    /// Adds a key. It is accepted for opening at once; it seals only once
    /// made primary.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`] if a key with that id is present (retire it
    /// first); [`Error::KeyringFull`] if all `N` slots are used.
    pub fn insert(&mut self, key: Key) -> Result<(), Error> {
        if self.get(key.id()).is_some() {
            return Err(Error::DuplicateKeyId(key.id()));
        }
        let slot = self.keys.iter_mut().find(|k| k.is_none()).ok_or(Error::KeyringFull)?;
        *slot = Some(key);
        Ok(())
    }

    /// Makes the key with this id the one that seals.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`] if no key has that id.
    pub fn set_primary(&mut self, id: u32) -> Result<(), Error> {
        if self.get(id).is_none() {
            return Err(Error::KeyNotFound(id));
        }
        self.primary = Some(id);
        Ok(())
    }

    /// Removes a key for good (its bytes are zeroized). Envelopes under its
    /// id are rejected from now on as [`Error::UnknownKey`].
    ///
    /// # Errors
    /// [`Error::KeyIsPrimary`] for the primary key; [`Error::KeyNotFound`]
    /// if no key has that id.
    pub fn retire(&mut self, id: u32) -> Result<(), Error> {
        if self.primary == Some(id) {
            return Err(Error::KeyIsPrimary(id));
        }
        let slot =
            self.keys.iter_mut().find(|k| k.as_ref().is_some_and(|k| k.id() == id)).ok_or(Error::KeyNotFound(id))?;
        *slot = None; // Key zeroizes on drop.
        Ok(())
    }

    pub(crate) fn clear_primary_if(&mut self, id: u32) {
        if self.primary == Some(id) {
            self.primary = None;
        }
    }

    /// The key with this id, if present.
    #[must_use]
    pub fn get(&self, id: u32) -> Option<&Key> {
        self.keys.iter().flatten().find(|k| k.id() == id)
    }

    /// The primary key, if one is set.
    #[must_use]
    pub fn primary(&self) -> Option<&Key> {
        self.primary.and_then(|id| self.get(id))
    }

    /// Ids of all keys held.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().flatten().map(Key::id)
    }

    /// Number of keys held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.iter().flatten().count()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<const N: usize> fmt::Debug for Keyring<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.iter().flatten().collect::<KeyList<'_>>())
            .field("primary", &self.primary)
            .finish()
    }
}

/// Debug helper listing keys without allocating.
struct KeyList<'a>([Option<&'a Key>; 16], usize);

impl<'a> FromIterator<&'a Key> for KeyList<'a> {
    fn from_iter<I: IntoIterator<Item = &'a Key>>(iter: I) -> Self {
        let mut list = KeyList([None; 16], 0);
        for k in iter {
            if list.1 < 16 {
                list.0[list.1] = Some(k);
            }
            list.1 += 1;
        }
        list
    }
}

impl fmt::Debug for KeyList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for k in self.0.iter().flatten() {
            l.entry(k);
        }
        if self.1 > 16 {
            l.entry(&"..");
        }
        l.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_rotation() {
        let mut ring: Keyring<2> = Keyring::with_primary(Key::from_bytes(1, [1; 32])).unwrap();
        ring.insert(Key::from_bytes(2, [2; 32])).unwrap();
        assert_eq!(ring.insert(Key::from_bytes(3, [3; 32])), Err(Error::KeyringFull));
        assert_eq!(ring.insert(Key::from_bytes(2, [3; 32])), Err(Error::DuplicateKeyId(2)));
        assert_eq!(ring.retire(1), Err(Error::KeyIsPrimary(1)));
        ring.set_primary(2).unwrap();
        ring.retire(1).unwrap();
        assert!(ring.get(1).is_none());
        assert_eq!(ring.retire(1), Err(Error::KeyNotFound(1)));
        assert_eq!(ring.primary().map(Key::id), Some(2));
        assert_eq!(ring.len(), 1);
    }
}
