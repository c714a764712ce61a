//! The C ABI exercised from Rust: the shared vectors through the exported
//! functions, and misuse (NULL, short buffers, uninitialized handles) that
//! must give statuses, not crashes. The C programs in examples/c run the
//! same vectors from C under Valgrind.
#![allow(clippy::unwrap_used, clippy::panic, clippy::std_instead_of_core, clippy::undocumented_unsafe_blocks)]
#![allow(unsafe_code, clippy::multiple_unsafe_ops_per_block)]

use std::ffi::{c_void, CStr, CString};
use std::ptr;

use mqseal::{MqsealCounterStore, MqsealHeader, MqsealOpener, MqsealOpenerConfig, MqsealSealer, MqsealStatus as S};

fn vectors() -> serde_json::Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../core/tests/vectors/v1.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Counter store for tests: a u64 in memory behind `ctx`.
struct Mem {
    limit: Option<u64>,
    persists: u32,
    fail: bool,
}

unsafe extern "C" fn mem_load(ctx: *mut c_void, limit: *mut u64) -> i32 {
    let m = unsafe { &mut *ctx.cast::<Mem>() };
    match m.limit {
        Some(l) => {
            unsafe { *limit = l };
            mqseal::MQSEAL_STORE_LOADED
        }
        None => mqseal::MQSEAL_STORE_EMPTY,
    }
}

unsafe extern "C" fn mem_persist(ctx: *mut c_void, limit: u64) -> i32 {
    let m = unsafe { &mut *ctx.cast::<Mem>() };
    if m.fail {
        return -5;
    }
    m.limit = Some(limit);
    m.persists += 1;
    0
}

fn store(m: &mut Mem) -> MqsealCounterStore {
    MqsealCounterStore { ctx: (m as *mut Mem).cast(), load: Some(mem_load), persist: Some(mem_persist) }
}

fn zeroed<T>() -> Box<T> {
    // The handles are plain integer arrays: all-zero is a valid value.
    unsafe { Box::new(std::mem::zeroed()) }
}

/// `mqseal_open` of `buf` on `topic` without a header output.
unsafe fn open(
    o: *mut MqsealOpener,
    topic: &CStr,
    buf: &mut [u8],
    now: *const u64,
    off: &mut usize,
    len: &mut usize,
) -> S {
    unsafe { mqseal::mqseal_open(o, topic.as_ptr(), buf.as_mut_ptr(), buf.len(), now, ptr::null_mut(), off, len) }
}

fn name(s: S) -> &'static str {
    unsafe { CStr::from_ptr(mqseal::mqseal_error_code_name(s as i32)) }.to_str().unwrap()
}

#[test]
fn shared_vectors_through_the_c_abi() {
    let v = vectors();
    let mut n = 0;
    for p in v["positive"].as_array().unwrap() {
        let name_ = p["name"].as_str().unwrap();
        let suite = match p["suite"].as_str().unwrap() {
            "chacha20poly1305" => mqseal::MQSEAL_SUITE_CHACHA20_POLY1305,
            _ => mqseal::MQSEAL_SUITE_HMAC_SHA256,
        };
        let mut mem = Mem { limit: Some(p["counter"].as_u64().unwrap()), persists: 0, fail: false };
        let st = store(&mut mem);
        let mut sealer = zeroed::<MqsealSealer>();
        let key = CString::new(p["sender_key"].as_str().unwrap()).unwrap();
        let topic = CString::new(p["topic"].as_str().unwrap()).unwrap();
        let rc = unsafe {
            mqseal::mqseal_sealer_init(
                &mut *sealer,
                key.as_ptr(),
                p["sender_id"].as_u64().unwrap() as u32,
                suite,
                &st,
                0,
            )
        };
        assert_eq!(rc, S::Ok, "{name_}");
        let plain = hex::decode(p["plaintext_hex"].as_str().unwrap()).unwrap();
        let expected = hex::decode(p["envelope_hex"].as_str().unwrap()).unwrap();
        let ts = p["timestamp"].as_u64();
        let mut out = vec![0u8; mqseal::mqseal_max_envelope_len(plain.len())];
        let mut len = 0usize;
        let rc = unsafe {
            mqseal::mqseal_seal_at(
                &mut *sealer,
                topic.as_ptr(),
                ts.as_ref().map_or(ptr::null(), |t| t as *const u64),
                plain.as_ptr(),
                plain.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        assert_eq!(rc, S::Ok, "{name_}");
        assert_eq!(&out[..len], &expected[..], "{name_}");
        assert_eq!(unsafe { mqseal::mqseal_sealer_deinit(&mut *sealer) }, S::Ok);

        let mut opener = zeroed::<MqsealOpener>();
        let okey = CString::new(p["open_key"].as_str().unwrap()).unwrap();
        assert_eq!(unsafe { mqseal::mqseal_opener_init(&mut *opener, okey.as_ptr(), ptr::null()) }, S::Ok);
        let mut buf = expected.clone();
        let (mut off, mut plen) = (0usize, 0usize);
        let mut h = MqsealHeader::default();
        let rc = unsafe {
            mqseal::mqseal_open(
                &mut *opener,
                topic.as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                ptr::null(),
                &mut h,
                &mut off,
                &mut plen,
            )
        };
        assert_eq!(rc, S::Ok, "{name_}");
        assert_eq!(&buf[off..off + plen], &plain[..], "{name_}");
        assert_eq!(h.counter, p["counter"].as_u64().unwrap());
        assert_eq!(h.has_timestamp == 1, ts.is_some());
        assert_eq!(unsafe { mqseal::mqseal_opener_deinit(&mut *opener) }, S::Ok);
        n += 1;
    }
    for t in v["negative"].as_array().unwrap() {
        let name_ = t["name"].as_str().unwrap();
        let mut cfg = MqsealOpenerConfig::default();
        assert_eq!(unsafe { mqseal::mqseal_opener_config_default(&mut cfg) }, S::Ok);
        cfg.window = t["window"].as_u64().unwrap() as u32;
        if let Some(a) = t["max_age"].as_u64() {
            cfg.flags |= mqseal::MQSEAL_OPENER_MAX_AGE;
            cfg.max_age_secs = a;
        }
        if let Some(s) = t["max_skew"].as_u64() {
            cfg.flags |= mqseal::MQSEAL_OPENER_MAX_SKEW;
            cfg.max_skew_secs = s;
        }
        let now = t["now"].as_u64();
        let now_p = now.as_ref().map_or(ptr::null(), |x| x as *const u64);
        let mut opener = zeroed::<MqsealOpener>();
        let okey = CString::new(t["open_key"].as_str().unwrap()).unwrap();
        let topic = CString::new(t["topic"].as_str().unwrap()).unwrap();
        assert_eq!(unsafe { mqseal::mqseal_opener_init(&mut *opener, okey.as_ptr(), &cfg) }, S::Ok, "{name_}");
        let (mut off, mut plen) = (0usize, 0usize);
        for pre in t["preopen"].as_array().unwrap() {
            let mut b = hex::decode(pre.as_str().unwrap()).unwrap();
            let rc = unsafe { open(&mut *opener, &topic, &mut b, now_p, &mut off, &mut plen) };
            assert_eq!(rc, S::Ok, "{name_} preopen");
        }
        let mut b = hex::decode(t["envelope_hex"].as_str().unwrap()).unwrap();
        let rc = unsafe { open(&mut *opener, &topic, &mut b, now_p, &mut off, &mut plen) };
        assert_eq!(name(rc), t["error"].as_str().unwrap(), "{name_}");
        assert_eq!((off, plen), (0, 0), "{name_}: outputs must be cleared");
        assert_eq!(unsafe { mqseal::mqseal_opener_deinit(&mut *opener) }, S::Ok);
        n += 1;
    }
    assert!(n > 40, "only {n} vectors");
}

const KEY: &CStr = c"mqseal:key:v1:1:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4";

#[test]
fn misuse_gives_statuses_not_crashes() {
    let mut mem = Mem { limit: None, persists: 0, fail: false };
    let st = store(&mut mem);
    let mut sealer = zeroed::<MqsealSealer>();
    let mut out = [0u8; 64];
    let mut len = 0usize;
    unsafe {
        // Uninitialized (all-zero) handle, NULL handle.
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), ptr::null(), 0, out.as_mut_ptr(), 64, &mut len),
            S::NotInitialized
        );
        assert_eq!(
            mqseal::mqseal_seal(ptr::null_mut(), c"t".as_ptr(), ptr::null(), 0, out.as_mut_ptr(), 64, &mut len),
            S::NullPointer
        );
        // Init with NULL key, bad key, bad suite, missing callback.
        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, ptr::null(), 1, 1, &st, 0), S::NullPointer);
        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, c"nope".as_ptr(), 1, 1, &st, 0), S::InvalidKey);
        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, KEY.as_ptr(), 1, 7, &st, 0), S::InvalidArgument);
        let half = MqsealCounterStore { persist: None, ..st };
        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, KEY.as_ptr(), 1, 1, &half, 0), S::NullPointer);
        // Misaligned storage.
        let mut raw = vec![0u64; 64];
        let mis = raw.as_mut_ptr().cast::<u8>().add(1).cast::<MqsealSealer>();
        assert_eq!(mqseal::mqseal_sealer_init(mis, KEY.as_ptr(), 1, 1, &st, 0), S::InvalidArgument);

        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, KEY.as_ptr(), 1, 1, &st, 16), S::Ok);
        // Payload pointer NULL with a length, non-UTF-8 topic, NULL out_len.
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), ptr::null(), 3, out.as_mut_ptr(), 64, &mut len),
            S::NullPointer
        );
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"\xff".as_ptr(), ptr::null(), 0, out.as_mut_ptr(), 64, &mut len),
            S::InvalidArgument
        );
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), ptr::null(), 0, out.as_mut_ptr(), 64, ptr::null_mut()),
            S::NullPointer
        );
        // Short buffer: status, needed size, and no counter used.
        let payload = [1u8; 30];
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), payload.as_ptr(), 30, out.as_mut_ptr(), 20, &mut len),
            S::BufferTooSmall
        );
        assert!(len > 30 && len <= 30 + mqseal::MQSEAL_MAX_OVERHEAD);
        let mut next = 99u64;
        assert_eq!(mqseal::mqseal_sealer_next_counter(&mut *sealer, &mut next), S::Ok);
        assert_eq!(next, 0);
        assert_eq!(mem.persists, 0);
        // Overlapping payload and output.
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), out.as_ptr(), 4, out.as_mut_ptr(), 64, &mut len),
            S::InvalidArgument
        );
        // A failing store fails sealing.
        mem.fail = true;
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), payload.as_ptr(), 30, out.as_mut_ptr(), 64, &mut len),
            S::CounterStore
        );
        mem.fail = false;
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), payload.as_ptr(), 30, out.as_mut_ptr(), 64, &mut len),
            S::Ok
        );
        assert_eq!(mem.limit, Some(16));
        // Double deinit.
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::NotInitialized);
        assert!(sealer._opaque_is_zero());

        // Opener misuse.
        let mut opener = zeroed::<MqsealOpener>();
        let (mut off, mut plen) = (0usize, 0usize);
        let mut buf = [0u8; 8];
        assert_eq!(open(&mut *opener, c"t", &mut buf, ptr::null(), &mut off, &mut plen), S::NotInitialized);
        let bad = MqsealOpenerConfig { window: 1000, ..Default::default() };
        assert_eq!(mqseal::mqseal_opener_init(&mut *opener, KEY.as_ptr(), &bad), S::InvalidConfig);
        let bad = MqsealOpenerConfig { flags: 1 << 20, ..Default::default() };
        assert_eq!(mqseal::mqseal_opener_init(&mut *opener, KEY.as_ptr(), &bad), S::InvalidConfig);
        let only_hmac =
            MqsealOpenerConfig { allowed_suites: 1 << mqseal::MQSEAL_SUITE_HMAC_SHA256, ..Default::default() };
        assert_eq!(mqseal::mqseal_opener_init(&mut *opener, KEY.as_ptr(), &only_hmac), S::Ok);
        assert_eq!(
            mqseal::mqseal_open(
                &mut *opener,
                c"t".as_ptr(),
                ptr::null_mut(),
                8,
                ptr::null(),
                ptr::null_mut(),
                &mut off,
                &mut plen
            ),
            S::NullPointer
        );
        assert_eq!(
            mqseal::mqseal_open(
                &mut *opener,
                c"t".as_ptr(),
                buf.as_mut_ptr(),
                8,
                ptr::null(),
                ptr::null_mut(),
                ptr::null_mut(),
                &mut plen
            ),
            S::NullPointer
        );
        assert_eq!(open(&mut *opener, c"t", &mut buf, ptr::null(), &mut off, &mut plen), S::UnsupportedVersion);
        // The ChaCha envelope sealed above is refused by suite policy.
        let mut env = out[..len].to_vec();
        assert_eq!(open(&mut *opener, c"t", &mut env, ptr::null(), &mut off, &mut plen), S::SuiteNotAllowed);
        assert_eq!(mqseal::mqseal_opener_add_key(&mut *opener, KEY.as_ptr()), S::DuplicateKeyId);
        assert_eq!(
            mqseal::mqseal_opener_add_key(
                &mut *opener,
                c"mqseal:key:v1:2:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4".as_ptr()
            ),
            S::Ok
        );
        // An opener may retire any key, the first one included.
        assert_eq!(mqseal::mqseal_opener_retire_key(&mut *opener, 1), S::Ok);
        assert_eq!(mqseal::mqseal_opener_retire_key(&mut *opener, 2), S::Ok);
        assert_eq!(mqseal::mqseal_opener_retire_key(&mut *opener, 2), S::KeyNotFound);
        assert_eq!(mqseal::mqseal_opener_deinit(&mut *opener), S::Ok);
        assert_eq!(mqseal::mqseal_opener_deinit(ptr::null_mut()), S::NullPointer);
    }
}

#[test]
fn messages_and_names_for_any_integer() {
    for code in [-1000, -1, 0, 1, 2, 3, 4, 20, 31, 51, 99, 100, i32::MAX, i32::MIN] {
        let m = unsafe { CStr::from_ptr(mqseal::mqseal_error_message(code)) }.to_str().unwrap();
        let n = unsafe { CStr::from_ptr(mqseal::mqseal_error_code_name(code)) }.to_str().unwrap();
        assert!(!m.is_empty() && !n.is_empty());
    }
    assert_eq!(name(S::Auth), "auth");
    assert_eq!(name(S::Ok), "ok");
    assert_eq!(unsafe { CStr::from_ptr(mqseal::mqseal_error_code_name(4)) }.to_str().unwrap(), "other");
    let v = unsafe { CStr::from_ptr(mqseal::mqseal_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(mqseal::mqseal_max_envelope_len(usize::MAX), usize::MAX);
}

trait Zero {
    fn _opaque_is_zero(&self) -> bool;
}
impl Zero for MqsealSealer {
    fn _opaque_is_zero(&self) -> bool {
        let bytes = unsafe {
            std::slice::from_raw_parts((self as *const MqsealSealer).cast::<u8>(), std::mem::size_of::<MqsealSealer>())
        };
        bytes.iter().all(|&b| b == 0)
    }
}

const KT: usize = mqseal::MQSEAL_KEY_TEXT_MAX;

/// `mqseal_pairwise_keys` of `secret` with the public key text in `peer`.
unsafe fn pairwise(secret: &CStr, peer: &[u8; KT], key_id: u32, send: &mut [u8; KT], recv: &mut [u8; KT]) -> S {
    let (send, recv) = (send.as_mut_ptr().cast(), recv.as_mut_ptr().cast());
    unsafe { mqseal::mqseal_pairwise_keys(secret.as_ptr(), peer.as_ptr().cast(), key_id, send, KT, recv, KT) }
}

fn c_text(buf: &[u8]) -> String {
    CStr::from_bytes_until_nul(buf).unwrap().to_str().unwrap().to_owned()
}

#[test]
fn pairwise_vectors_and_key_texts() {
    let v = vectors();
    let mut n = 0;
    for p in v["positive"].as_array().unwrap() {
        let pw = &p["pairwise"];
        if pw.is_null() {
            continue;
        }
        let s_secret = CString::new(pw["sender_secret"].as_str().unwrap()).unwrap();
        let r_secret = CString::new(pw["receiver_secret"].as_str().unwrap()).unwrap();
        let key_id = pw["key_id"].as_u64().unwrap() as u32;
        let (mut s_pub, mut r_pub) = ([0u8; KT], [0u8; KT]);
        let (mut send, mut recv) = ([0u8; KT], [0u8; KT]);
        unsafe {
            assert_eq!(mqseal::mqseal_x25519_public_text(s_secret.as_ptr(), s_pub.as_mut_ptr().cast(), 96), S::Ok);
            assert_eq!(mqseal::mqseal_x25519_public_text(r_secret.as_ptr(), r_pub.as_mut_ptr().cast(), 96), S::Ok);
            // The sender's send key seals the vector...
            assert_eq!(pairwise(&s_secret, &r_pub, key_id, &mut send, &mut recv), S::Ok);
            assert_eq!(c_text(&send), p["sender_key"].as_str().unwrap());
            // ...and the receiver's recv key opens it.
            assert_eq!(pairwise(&r_secret, &s_pub, key_id, &mut send, &mut recv), S::Ok);
            assert_eq!(c_text(&recv), p["open_key"].as_str().unwrap());
            // Pairing with oneself is refused.
            assert_eq!(pairwise(&s_secret, &s_pub, key_id, &mut send, &mut recv), S::SelfPairing);
        }
        n += 1;
    }
    assert!(n >= 2);

    // Group key and secret key texts from bytes, and short buffers.
    let mut out = [0u8; mqseal::MQSEAL_KEY_TEXT_MAX];
    unsafe {
        assert_eq!(mqseal::mqseal_key_text(1, [0x1Fu8; 32].as_ptr(), out.as_mut_ptr().cast(), 96), S::Ok);
        let t = c_text(&out);
        assert!(t.starts_with("mqseal:key:v1:1:"), "{t}");
        assert_eq!(mqseal::mqseal_key_text(1, [0u8; 32].as_ptr(), out.as_mut_ptr().cast(), t.len()), S::BufferTooSmall);
        assert!(out.iter().all(|&b| b == 0), "a short buffer is wiped");
        assert_eq!(mqseal::mqseal_key_text(1, ptr::null(), out.as_mut_ptr().cast(), 96), S::NullPointer);
        assert_eq!(mqseal::mqseal_x25519_secret_text([3u8; 32].as_ptr(), out.as_mut_ptr().cast(), 96), S::Ok);
        assert!(c_text(&out).starts_with("mqseal:x25519-secret:v1:"));
        assert_eq!(mqseal::mqseal_x25519_public_text(c"nope".as_ptr(), out.as_mut_ptr().cast(), 96), S::InvalidKey);
    }
}
