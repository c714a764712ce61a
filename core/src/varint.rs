//! Canonical unsigned LEB128 varints, as in postcard's wire format.
//!
//! Seven bits per byte, least significant group first, high bit set on every
//! byte but the last. Decoding is strict: at most 5 bytes for a `u32` and 10
//! for a `u64`, no bits beyond the type's width, and no overlong forms (the
//! last byte of a multi-byte varint is never zero), so every value has
//! exactly one encoding and the header bytes are canonical.

use crate::Error;

/// Longest encoding of a `u64`.
pub(crate) const MAX_LEN_U64: usize = 10;
/// Longest encoding of a `u32`.
pub(crate) const MAX_LEN_U32: usize = 5;

/// Number of bytes `value` takes.
pub(crate) const fn encoded_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes `value` into the front of `out`, returns the bytes written.
/// `out` must hold at least [`encoded_len`] bytes (callers size it first).
pub(crate) fn encode(mut value: u64, out: &mut [u8]) -> usize {
    let mut i = 0;
    loop {
        // Truncation to the low seven bits is the point of the encoding.
        #[allow(clippy::cast_possible_truncation)]
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[i] = byte;
            return i + 1;
        }
        out[i] = byte | 0x80;
        i += 1;
    }
}

/// Reads a canonical varint of at most `max_len` bytes whose value fits in
/// `bits` bits. Returns the value and the number of bytes consumed.
fn decode(input: &[u8], max_len: usize, bits: u32) -> Result<(u64, usize), Error> {
    let mut value: u64 = 0;
    for i in 0..max_len {
        let Some(&byte) = input.get(i) else {
            return Err(Error::Truncated);
        };
        let shift = 7 * i as u32;
        let group = u64::from(byte & 0x7f);
        // Bits that would land beyond the type's width.
        if shift + 7 > bits && (group >> (bits - shift)) != 0 {
            return Err(Error::BadVarint);
        }
        value |= group << shift;
        if byte & 0x80 == 0 {
            // Overlong: a final zero byte after at least one other byte.
            if byte == 0 && i > 0 {
                return Err(Error::BadVarint);
            }
            return Ok((value, i + 1));
        }
    }
    Err(Error::BadVarint)
}

/// Reads a canonical `u64` varint.
pub(crate) fn decode_u64(input: &[u8]) -> Result<(u64, usize), Error> {
    decode(input, MAX_LEN_U64, 64)
}

/// Reads a canonical `u32` varint.
pub(crate) fn decode_u32(input: &[u8]) -> Result<(u32, usize), Error> {
    let (v, n) = decode(input, MAX_LEN_U32, 32)?;
    let v = u32::try_from(v).map_err(|_| Error::BadVarint)?;
    Ok((v, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    #[test]
    fn known_encodings() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (u64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for (v, bytes) in cases {
            let mut buf = [0u8; MAX_LEN_U64];
            let n = encode(*v, &mut buf);
            assert_eq!(&buf[..n], *bytes, "encoding {v}");
            assert_eq!(encoded_len(*v), n);
            assert_eq!(decode_u64(bytes), Ok((*v, n)));
        }
    }

    #[test]
    fn matches_postcard() {
        for v in [0u64, 1, 127, 128, 255, 300, 1 << 21, u64::from(u32::MAX), u64::MAX] {
            let mut ours = [0u8; MAX_LEN_U64];
            let n = encode(v, &mut ours);
            let mut theirs = [0u8; 16];
            let used = postcard::to_slice(&v, &mut theirs).map(|s| s.len());
            assert_eq!(used, Ok(n));
            assert_eq!(&ours[..n], &theirs[..n]);
        }
    }

    #[test]
    fn rejects_overlong_and_overflow() {
        assert_eq!(decode_u64(&[0x80, 0x00]), Err(Error::BadVarint));
        assert_eq!(decode_u64(&[0x81, 0x80, 0x00]), Err(Error::BadVarint));
        assert_eq!(decode_u64(&[0xff; 10]), Err(Error::BadVarint));
        assert_eq!(decode_u64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), Err(Error::BadVarint));
        assert_eq!(decode_u32(&[0xff, 0xff, 0xff, 0xff, 0x10]), Err(Error::BadVarint));
        assert_eq!(decode_u32(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok((u32::MAX, 5)));
        assert_eq!(decode_u32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), Err(Error::BadVarint));
        assert_eq!(decode_u64(&[]), Err(Error::Truncated));
        assert_eq!(decode_u64(&[0x80]), Err(Error::Truncated));
    }

    proptest! {
        #[test]
        fn round_trip(v: u64) {
            let mut buf = [0u8; MAX_LEN_U64];
            let n = encode(v, &mut buf);
            prop_assert_eq!(n, encoded_len(v));
            prop_assert_eq!(decode_u64(&buf[..n]), Ok((v, n)));
        }

        #[test]
        fn decoding_is_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            if let Ok((v, n)) = decode_u64(&bytes) {
                let mut buf = [0u8; MAX_LEN_U64];
                let m = encode(v, &mut buf);
                prop_assert_eq!(&buf[..m], &bytes[..n]);
            }
        }
    }
}
