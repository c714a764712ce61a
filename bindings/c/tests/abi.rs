//! The C ABI exercised from Rust: the shared vectors through the exported
//! functions, and misuse (NULL, short buffers, uninitialized handles) that
//! must give statuses, not crashes. The C vector test in tests/c runs the
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

/// How a test store misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// `load` fails (a transient read error).
    LoadError,
    /// `load` reports a corrupt record.
    LoadCorrupt,
    /// `persist` fails.
    PersistError,
    /// `persist` claims success and stores a lower value.
    PersistLowers,
    /// `persist` claims success and stores nothing.
    PersistIgnores,
    /// `persist` claims success without comparing: the careless callback
    /// the library's re-reads must catch.
    PersistBlind,
}

/// Counter store for tests: a u64 in memory behind `ctx`, with the
/// compare-and-swap the contract asks of `persist`.
struct Mem {
    limit: Option<u64>,
    persists: u32,
    loads: u32,
    fault: Fault,
    /// The `current` of the last persist call.
    last_current: Option<Option<u64>>,
}

impl Mem {
    fn holding(limit: Option<u64>) -> Self {
        Mem { limit, persists: 0, loads: 0, fault: Fault::None, last_current: None }
    }
}

unsafe extern "C" fn mem_load(ctx: *mut c_void, limit: *mut u64) -> i32 {
    let m = unsafe { &mut *ctx.cast::<Mem>() };
    m.loads += 1;
    match (m.fault, m.limit) {
        (Fault::LoadError, _) => mqseal::MQSEAL_STORE_ERROR,
        (Fault::LoadCorrupt, _) => mqseal::MQSEAL_STORE_CORRUPT,
        (_, Some(l)) => {
            unsafe { *limit = l };
            mqseal::MQSEAL_STORE_LOADED
        }
        (_, None) => mqseal::MQSEAL_STORE_EMPTY,
    }
}

unsafe extern "C" fn mem_persist(ctx: *mut c_void, current: *const u64, limit: u64) -> i32 {
    let m = unsafe { &mut *ctx.cast::<Mem>() };
    let current = unsafe { current.as_ref() }.copied();
    m.last_current = Some(current);
    match m.fault {
        Fault::PersistError => return -5,
        Fault::PersistLowers => {
            m.limit = Some(limit.saturating_sub(100));
            return mqseal::MQSEAL_STORE_OK;
        }
        Fault::PersistIgnores => return mqseal::MQSEAL_STORE_OK,
        Fault::PersistBlind => {}
        _ => {
            if m.limit != current {
                return mqseal::MQSEAL_STORE_CONFLICT;
            }
        }
    }
    m.limit = Some(limit);
    m.persists += 1;
    mqseal::MQSEAL_STORE_OK
}

fn store(m: &mut Mem) -> MqsealCounterStore {
    MqsealCounterStore { ctx: (m as *mut Mem).cast(), load: Some(mem_load), persist: Some(mem_persist) }
}

fn default_config() -> MqsealOpenerConfig {
    let mut c = std::mem::MaybeUninit::<MqsealOpenerConfig>::uninit();
    assert_eq!(unsafe { mqseal::mqseal_opener_config_default(c.as_mut_ptr()) }, S::Ok);
    unsafe { c.assume_init() }
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

/// `mqseal_open_n` of the `len` bytes at `buf` on the `topic_len` bytes at
/// `topic`, without a time or a header output (raw pointers: the topic may
/// lie in `buf`).
unsafe fn open_n(
    o: *mut MqsealOpener,
    topic: *const u8,
    topic_len: usize,
    buf: *mut u8,
    len: usize,
    off: &mut usize,
    plen: &mut usize,
) -> S {
    unsafe { mqseal::mqseal_open_n(o, topic.cast(), topic_len, buf, len, ptr::null(), ptr::null_mut(), off, plen) }
}

/// An opener with `KEY` and the default configuration, checked to
/// initialize.
fn new_opener() -> Box<MqsealOpener> {
    let mut opener = zeroed::<MqsealOpener>();
    assert_eq!(unsafe { mqseal::mqseal_opener_init(&mut *opener, KEY.as_ptr(), ptr::null()) }, S::Ok);
    opener
}

fn name(s: S) -> &'static str {
    unsafe { CStr::from_ptr(mqseal::mqseal_error_code_name(s as i32)) }.to_str().unwrap()
}

/// A u64 field of a vector, read from its exact decimal string (`<k>_dec`).
fn u64_of(v: &serde_json::Value, k: &str) -> Option<u64> {
    let d = v[format!("{k}_dec")].as_str().map(|d| d.parse::<u64>().unwrap());
    assert_eq!(d, v[k].as_u64(), "{k}");
    d
}

/// A replay record for (`key_id`, `sender_id`) that accepted counter 0: a
/// sender-table slot taken, so that a 32-sender C opener behaves as one
/// with fewer slots.
fn filler(key_id: u32, sender_id: u32) -> [u8; mqseal::MQSEAL_SNAPSHOT_LEN] {
    let mut r = [0u8; mqseal::MQSEAL_SNAPSHOT_LEN];
    r[0..4].copy_from_slice(&key_id.to_le_bytes());
    r[4..8].copy_from_slice(&sender_id.to_le_bytes());
    r[8..12].copy_from_slice(&128u32.to_le_bytes());
    r[20] = 1;
    r
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
        let counter = u64_of(p, "counter").unwrap();
        let mut mem = Mem::holding(Some(counter));
        let st = store(&mut mem);
        let mut sealer = zeroed::<MqsealSealer>();
        let key = CString::new(p["sender_key"].as_str().unwrap()).unwrap();
        let topic = p["topic"].as_str().unwrap();
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
        let ts = u64_of(p, "timestamp");
        let mut out = vec![0u8; mqseal::mqseal_max_envelope_len(plain.len())];
        let mut len = 0usize;
        let rc = unsafe {
            mqseal::mqseal_seal_n(
                &mut *sealer,
                topic.as_ptr().cast(),
                topic.len(),
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
            mqseal::mqseal_open_n(
                &mut *opener,
                topic.as_ptr().cast(),
                topic.len(),
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
        assert_eq!(h.counter, counter);
        assert_eq!(h.has_timestamp == 1, ts.is_some());
        assert_eq!(h.timestamp, ts.unwrap_or(0));
        assert_eq!(unsafe { mqseal::mqseal_opener_deinit(&mut *opener) }, S::Ok);
        n += 1;
    }
    let mut skipped = Vec::new();
    for t in v["negative"].as_array().unwrap() {
        let name_ = t["name"].as_str().unwrap();
        // The C API has no prefix rewrite (topic bridging).
        if !t["rewrite"].is_null() {
            skipped.push(name_);
            continue;
        }
        let mut cfg = default_config();
        cfg.window = t["window"].as_u64().unwrap() as u32;
        if let Some(a) = u64_of(t, "max_age") {
            cfg.has_max_age = 1;
            cfg.max_age = a;
        }
        if let Some(s) = u64_of(t, "max_skew") {
            cfg.has_max_skew = 1;
            cfg.max_skew = s;
        }
        cfg.require_timestamp = u8::from(t["require_timestamp"].as_bool().unwrap());
        if let Some(list) = t["suites"].as_array() {
            cfg.suites = list
                .iter()
                .map(|s| match s.as_str().unwrap() {
                    "chacha20poly1305" => 1 << mqseal::MQSEAL_SUITE_CHACHA20_POLY1305,
                    "hmac-sha256" => 1 << mqseal::MQSEAL_SUITE_HMAC_SHA256,
                    other => panic!("suite {other}"),
                })
                .sum();
        }
        cfg.eviction = match t["eviction"].as_str().unwrap() {
            "rejectNew" => mqseal::MQSEAL_EVICTION_REJECT_NEW,
            "leastRecentlyUsed" => mqseal::MQSEAL_EVICTION_LEAST_RECENTLY_USED,
            other => panic!("eviction {other}"),
        };
        let now = u64_of(t, "now");
        let now_p = now.as_ref().map_or(ptr::null(), |x| x as *const u64);
        let mut opener = zeroed::<MqsealOpener>();
        let okey = CString::new(t["open_key"].as_str().unwrap()).unwrap();
        let topic = t["topic"].as_str().unwrap();
        let rc = unsafe { mqseal::mqseal_opener_init(&mut *opener, okey.as_ptr(), &cfg) };
        if rc != S::Ok {
            assert_eq!(name(rc), t["error"].as_str().unwrap(), "{name_}: configuration");
            n += 1;
            continue;
        }
        // A smaller sender table: the other slots are taken by fillers,
        // restored again before each open so that they are never the least
        // recently heard.
        let key_id: u32 = t["open_key"].as_str().unwrap().split(':').nth(3).unwrap().parse().unwrap();
        let fillers: Vec<_> = match t["senders"].as_u64() {
            None => Vec::new(),
            Some(k) => {
                (0..mqseal::MQSEAL_OPENER_SENDERS as u32 - k as u32).map(|i| filler(key_id, 0xF000_0000 + i)).collect()
            }
        };
        let refill = |o: &mut MqsealOpener| {
            for f in &fillers {
                assert_eq!(unsafe { mqseal::mqseal_opener_restore(o, f.as_ptr(), f.len()) }, S::Ok, "{name_}: filler");
            }
        };
        let open_n = |o: &mut MqsealOpener, b: &mut [u8], off: &mut usize, plen: &mut usize| unsafe {
            mqseal::mqseal_open_n(
                o,
                topic.as_ptr().cast(),
                topic.len(),
                b.as_mut_ptr(),
                b.len(),
                now_p,
                ptr::null_mut(),
                off,
                plen,
            )
        };
        let (mut off, mut plen) = (0usize, 0usize);
        for pre in t["preopen"].as_array().unwrap() {
            refill(&mut opener);
            let mut b = hex::decode(pre.as_str().unwrap()).unwrap();
            assert_eq!(open_n(&mut opener, &mut b, &mut off, &mut plen), S::Ok, "{name_} preopen");
        }
        refill(&mut opener);
        let envelope = hex::decode(t["envelope_hex"].as_str().unwrap()).unwrap();
        let mut b = envelope.clone();
        let rc = open_n(&mut opener, &mut b, &mut off, &mut plen);
        assert_eq!(name(rc), t["error"].as_str().unwrap(), "{name_}");
        assert_eq!((off, plen), (0, 0), "{name_}: outputs must be cleared");
        if name(rc) == "auth" {
            assert_eq!(b, envelope, "{name_}: buffer changed on a failed open");
        }
        assert_eq!(unsafe { mqseal::mqseal_opener_deinit(&mut *opener) }, S::Ok);
        n += 1;
    }
    assert_eq!(skipped.len(), 5, "only the prefix-rewrite vectors are skipped: {skipped:?}");
    assert!(n >= 26 + 108, "only {n} vectors");
}

/// The `keys` section: key texts the C API accepts or refuses, and the
/// canonical texts it writes from the bytes.
#[test]
fn key_text_vectors() {
    let v = vectors();
    let mut out = [0u8; KT];
    let (mut send, mut recv) = ([0u8; KT], [0u8; KT]);
    // A valid own secret, to try public keys with.
    let own = c"mqseal:x25519-secret:v1:paKrsLmGj5SdmuPo8f7HzNXS2yApNj8EDQoTGGFud3w";
    let (mut n, mut with_nul) = (0, 0);
    for k in v["keys"].as_array().unwrap() {
        let name_ = k["name"].as_str().unwrap();
        // The C API takes key texts NUL-terminated: a text holding U+0000
        // cannot be passed whole.
        let Ok(text) = CString::new(k["text"].as_str().unwrap()) else {
            with_nul += 1;
            continue;
        };
        let error = k["error"].as_str();
        let rc = unsafe {
            match k["kind"].as_str().unwrap() {
                "key" => {
                    let mut o = zeroed::<MqsealOpener>();
                    let rc = mqseal::mqseal_opener_init(&mut *o, text.as_ptr(), ptr::null());
                    if rc == S::Ok {
                        mqseal::mqseal_opener_deinit(&mut *o);
                        let bytes = hex::decode(k["bytes_hex"].as_str().unwrap()).unwrap();
                        let id = k["key_id"].as_u64().unwrap() as u32;
                        assert_eq!(mqseal::mqseal_key_text(id, bytes.as_ptr(), out.as_mut_ptr().cast(), KT), S::Ok);
                        assert_eq!(c_text(&out), k["canonical_text"].as_str().unwrap(), "{name_}");
                    }
                    rc
                }
                "x25519-secret" => {
                    let rc = mqseal::mqseal_x25519_public_text(text.as_ptr(), out.as_mut_ptr().cast(), KT);
                    if rc == S::Ok {
                        assert_eq!(c_text(&out), k["public_text"].as_str().unwrap(), "{name_}");
                        let bytes = hex::decode(k["bytes_hex"].as_str().unwrap()).unwrap();
                        assert_eq!(
                            mqseal::mqseal_x25519_secret_text(bytes.as_ptr(), out.as_mut_ptr().cast(), KT),
                            S::Ok
                        );
                        assert_eq!(c_text(&out), k["canonical_text"].as_str().unwrap(), "{name_}");
                    }
                    rc
                }
                "x25519-public" => mqseal::mqseal_pairwise_keys(
                    own.as_ptr(),
                    text.as_ptr(),
                    1,
                    send.as_mut_ptr().cast(),
                    KT,
                    recv.as_mut_ptr().cast(),
                    KT,
                ),
                other => panic!("kind {other}"),
            }
        };
        match error {
            None => assert!(rc == S::Ok || rc == S::WeakSharedSecret || rc == S::SelfPairing, "{name_}: {rc:?}"),
            Some(code) => assert_eq!(name(rc), code, "{name_}"),
        }
        n += 1;
    }
    assert!(n >= 60);
    assert!(with_nul <= 2, "{with_nul} key texts with U+0000");
    for p in v["pairwise"].as_array().unwrap() {
        let name_ = p["name"].as_str().unwrap();
        let secret = CString::new(p["secret"].as_str().unwrap()).unwrap();
        let peer = CString::new(p["peer_public"].as_str().unwrap()).unwrap();
        let id = p["key_id"].as_u64().unwrap() as u32;
        let rc = unsafe {
            mqseal::mqseal_pairwise_keys(
                secret.as_ptr(),
                peer.as_ptr(),
                id,
                send.as_mut_ptr().cast(),
                KT,
                recv.as_mut_ptr().cast(),
                KT,
            )
        };
        match p["error"].as_str() {
            None => {
                assert_eq!(rc, S::Ok, "{name_}");
                assert_eq!(c_text(&send), p["send_key"].as_str().unwrap(), "{name_}");
                assert_eq!(c_text(&recv), p["recv_key"].as_str().unwrap(), "{name_}");
            }
            Some(code) => assert_eq!(name(rc), code, "{name_}"),
        }
    }
}

const KEY: &CStr = c"mqseal:key:v1:1:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4";

/// `mqseal_seal` of `payload` for `topic` into `out`.
unsafe fn seal(sealer: *mut MqsealSealer, topic: &CStr, payload: &[u8], out: &mut [u8], len: &mut usize) -> S {
    unsafe {
        mqseal::mqseal_seal(sealer, topic.as_ptr(), payload.as_ptr(), payload.len(), out.as_mut_ptr(), out.len(), len)
    }
}

#[test]
fn misuse_gives_statuses_not_crashes() {
    let mut mem = Mem::holding(Some(0));
    let st = store(&mut mem);
    let mut sealer = zeroed::<MqsealSealer>();
    let mut out = [0u8; 64];
    let mut len = 0usize;
    unsafe {
        // Uninitialized (all-zero) handle, NULL handle.
        assert_eq!(seal(&mut *sealer, c"t", &[], &mut out, &mut len), S::NotInitialized);
        assert_eq!(seal(ptr::null_mut(), c"t", &[], &mut out, &mut len), S::NullPointer);
        // Init with NULL key, bad key, bad suite, missing callback.
        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, ptr::null(), 1, 1, &st, 0), S::NullPointer);
        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, c"nope".as_ptr(), 1, 1, &st, 0), S::InvalidKey);
        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, KEY.as_ptr(), 1, 7, &st, 0), S::InvalidArgument);
        let half = MqsealCounterStore { persist: None, ..st };
        assert_eq!(mqseal::mqseal_sealer_init(&mut *sealer, KEY.as_ptr(), 1, 1, &half, 0), S::NullPointer);
        assert_eq!(mem.loads, 0, "nothing is read from the store before the arguments are checked");
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
        assert_eq!(seal(&mut *sealer, c"\xff", &[], &mut out, &mut len), S::InvalidTopic);
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), ptr::null(), 0, out.as_mut_ptr(), 64, ptr::null_mut()),
            S::NullPointer
        );
        // Invalid topic names are the core's: empty, wildcards.
        for t in [c"", c"a/+", c"a/#"] {
            assert_eq!(seal(&mut *sealer, t, &[1], &mut out, &mut len), S::InvalidTopic, "{t:?}");
        }
        // Short buffer: status, needed size, and no counter used.
        let payload = [1u8; 30];
        assert_eq!(seal(&mut *sealer, c"t", &payload, &mut out[..20], &mut len), S::BufferTooSmall);
        assert!(len > 30 && len <= 30 + mqseal::MQSEAL_MAX_OVERHEAD);
        let mut next = 99u64;
        assert_eq!(mqseal::mqseal_sealer_next_counter(&mut *sealer, &mut next), S::Ok);
        assert_eq!(next, 0);
        assert_eq!(mem.persists, 0);
        // Overlapping payload and output.
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, c"t".as_ptr(), out.as_ptr(), 4, out.as_mut_ptr(), 64, &mut len),
            S::BuffersOverlap
        );
        // A failing store fails sealing.
        mem.fault = Fault::PersistError;
        assert_eq!(seal(&mut *sealer, c"t", &payload, &mut out, &mut len), S::CounterStore);
        assert_eq!(name(S::CounterStore), "counterStore");
        assert_eq!(CStr::from_ptr(mqseal::mqseal_error_reason(S::CounterStore as i32)).to_str().unwrap(), "write");
        mem.fault = Fault::None;
        assert_eq!(seal(&mut *sealer, c"t", &payload, &mut out, &mut len), S::Ok);
        assert_eq!(mem.limit, Some(16));
        assert_eq!(mem.last_current, Some(Some(0)), "persist is told the value it replaces");
        // Double deinit.
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::NotInitialized);
        assert!(all_zero(&*sealer));

        // Opener misuse.
        let mut opener = zeroed::<MqsealOpener>();
        let (mut off, mut plen) = (0usize, 0usize);
        let mut buf = [0u8; 8];
        assert_eq!(open(&mut *opener, c"t", &mut buf, ptr::null(), &mut off, &mut plen), S::NotInitialized);
        let bad = MqsealOpenerConfig { window: 1000, ..default_config() };
        assert_eq!(mqseal::mqseal_opener_init(&mut *opener, KEY.as_ptr(), &bad), S::InvalidConfig);
        let bad = MqsealOpenerConfig { suites: 1 << 5, ..default_config() };
        assert_eq!(mqseal::mqseal_opener_init(&mut *opener, KEY.as_ptr(), &bad), S::InvalidConfig);
        let only_hmac = MqsealOpenerConfig { suites: 1 << mqseal::MQSEAL_SUITE_HMAC_SHA256, ..default_config() };
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

/// A sealer over `mem` for sender 1 (block 16), or the init status.
unsafe fn sealer_over(sealer: *mut MqsealSealer, mem: &mut Mem) -> S {
    let st = store(mem);
    unsafe { mqseal::mqseal_sealer_init(sealer, KEY.as_ptr(), 1, mqseal::MQSEAL_SUITE_CHACHA20_POLY1305, &st, 16) }
}

/// A new sealer over `mem` (as `sealer_over`), checked to initialize. `mem`
/// must stay where it is while the sealer is used (its `ctx`).
unsafe fn new_sealer(mem: &mut Mem) -> Box<MqsealSealer> {
    let mut sealer = zeroed::<MqsealSealer>();
    assert_eq!(unsafe { sealer_over(&mut *sealer, mem) }, S::Ok);
    sealer
}

#[test]
fn counter_store_rule_for_callbacks() {
    let mut sealer = zeroed::<MqsealSealer>();
    let mut out = [0u8; 64];
    let mut len = 0usize;
    unsafe {
        // A store with no counter is refused (lost state), and init leaves
        // the handle not initialized.
        let mut mem = Mem::holding(None);
        assert_eq!(sealer_over(&mut *sealer, &mut mem), S::CounterStoreMissing);
        assert_eq!(name(S::CounterStoreMissing), "counterStore");
        assert_eq!(
            CStr::from_ptr(mqseal::mqseal_error_reason(S::CounterStoreMissing as i32)).to_str().unwrap(),
            "missing"
        );
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::NotInitialized);
        assert_eq!(mem.persists, 0);
        // A transient load failure is a read error, never "empty".
        let mut mem = Mem::holding(Some(40));
        mem.fault = Fault::LoadError;
        assert_eq!(sealer_over(&mut *sealer, &mut mem), S::CounterStoreRead);
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::NotInitialized);
        mem.fault = Fault::LoadCorrupt;
        assert_eq!(sealer_over(&mut *sealer, &mut mem), S::CounterStoreCorrupt);
        // A failed init over a live sealer leaves none (wiped, not
        // initialized).
        mem.fault = Fault::None;
        assert_eq!(sealer_over(&mut *sealer, &mut mem), S::Ok);
        mem.fault = Fault::LoadError;
        assert_eq!(sealer_over(&mut *sealer, &mut mem), S::CounterStoreRead);
        assert!(all_zero(&*sealer));

        // A new sender, explicitly: the store is set to 0 first.
        let mut mem = Mem::holding(None);
        let st = store(&mut mem);
        let init_new = |s: *mut MqsealSealer, st: &MqsealCounterStore| {
            mqseal::mqseal_sealer_init_new_sender(s, KEY.as_ptr(), 1, 1, st, 16)
        };
        assert_eq!(init_new(&mut *sealer, &st), S::Ok);
        assert_eq!((mem.limit, mem.last_current), (Some(0), Some(None)));
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::Ok);
        assert_eq!((mem.limit, mem.last_current), (Some(16), Some(Some(0))));
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        // ...but not over a store that holds a counter.
        assert_eq!(init_new(&mut *sealer, &st), S::CounterStoreConflict);
        assert_eq!(mem.limit, Some(16));
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::NotInitialized);

        // A clock floor: an empty store is accepted, the first counter is
        // unix_millis * 1024.
        let mut mem = Mem::holding(None);
        let st = store(&mut mem);
        let ms = 1_767_225_600_000u64;
        assert_eq!(mqseal::mqseal_sealer_init_clock_floor(&mut *sealer, KEY.as_ptr(), 1, 1, &st, 0, ms), S::Ok);
        let mut next = 0u64;
        assert_eq!(mqseal::mqseal_sealer_next_counter(&mut *sealer, &mut next), S::Ok);
        assert_eq!(next, ms * mqseal::MQSEAL_CLOCK_FLOOR_PER_MILLI);
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::Ok);
        assert_eq!(mem.last_current, Some(None));
        assert_eq!(mem.limit, Some(next + mqseal::MQSEAL_DEFAULT_RESERVATION_BLOCK));
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);

        // Persist callbacks that break the rule are refused: one that lowers
        // the value, one that stores nothing.
        for fault in [Fault::PersistLowers, Fault::PersistIgnores] {
            let mut mem = Mem::holding(Some(1000));
            assert_eq!(sealer_over(&mut *sealer, &mut mem), S::Ok);
            mem.fault = fault;
            assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::CounterStoreConflict, "{fault:?}");
            let mut next = 0u64;
            assert_eq!(mqseal::mqseal_sealer_next_counter(&mut *sealer, &mut next), S::Ok);
            assert_eq!(next, 1000, "no counter used");
            // With a working callback again: a lowered store stays refused
            // (it no longer holds what this sealer last saw); an untouched
            // one is simply written now.
            mem.fault = Fault::None;
            let want = if fault == Fault::PersistLowers { S::CounterStoreConflict } else { S::Ok };
            assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), want, "{fault:?}");
            assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        }
        // A second writer moved the store: the wrapper refuses before it
        // calls persist, even with a callback that does not compare.
        let mut mem = Mem::holding(Some(1000));
        assert_eq!(sealer_over(&mut *sealer, &mut mem), S::Ok);
        mem.limit = Some(1010);
        mem.fault = Fault::PersistBlind;
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::CounterStoreConflict);
        assert_eq!((mem.persists, mem.limit), (0, Some(1010)));
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        // A callback that refuses (its own compare-and-swap) gives conflict.
        let mut mem = Mem::holding(Some(1000));
        assert_eq!(sealer_over(&mut *sealer, &mut mem), S::Ok);
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::Ok);
        assert_eq!(mem.limit, Some(1016));
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
    }
}

#[test]
fn handle_copies_are_refused() {
    let mut mem = Mem::holding(Some(0));
    let mut copy = zeroed::<MqsealSealer>();
    let mut out = [0u8; 64];
    let mut len = 0usize;
    unsafe {
        let mut sealer = new_sealer(&mut mem);
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::Ok);
        ptr::copy_nonoverlapping(&*sealer, &mut *copy, 1);
        // The copy never seals, and does not even say its counter.
        assert_eq!(seal(&mut *copy, c"t", b"x", &mut out, &mut len), S::HandleMoved);
        let mut next = 0u64;
        assert_eq!(mqseal::mqseal_sealer_next_counter(&mut *copy, &mut next), S::HandleMoved);
        assert_eq!(name(S::HandleMoved), "handleMoved");
        // The original carries on; its deinit wipes it.
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::Ok);
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        assert!(all_zero(&*sealer));
        assert_eq!(seal(&mut *copy, c"t", b"x", &mut out, &mut len), S::HandleMoved);
        // Deinit of the copy wipes the copy (it holds the subkey's bytes).
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *copy), S::HandleMoved);
        assert!(all_zero(&*copy));
        assert_eq!(seal(&mut *copy, c"t", b"x", &mut out, &mut len), S::NotInitialized);

        let mut opener = new_opener();
        let mut ocopy = zeroed::<MqsealOpener>();
        ptr::copy_nonoverlapping(&*opener, &mut *ocopy, 1);
        let (mut off, mut plen) = (0usize, 0usize);
        let mut env = out[..len].to_vec();
        assert_eq!(open(&mut *ocopy, c"t", &mut env, ptr::null(), &mut off, &mut plen), S::HandleMoved);
        assert_eq!(env, out[..len], "buf untouched");
        let mut n = 0usize;
        assert_eq!(mqseal::mqseal_opener_snapshot_count(&mut *ocopy, &mut n), S::HandleMoved);
        assert_eq!(mqseal::mqseal_opener_add_key(&mut *ocopy, KEY.as_ptr()), S::HandleMoved);
        assert_eq!(open(&mut *opener, c"t", &mut env, ptr::null(), &mut off, &mut plen), S::Ok);
        assert_eq!(mqseal::mqseal_opener_deinit(&mut *ocopy), S::HandleMoved);
        assert!(all_zero(&*ocopy));
        assert_eq!(mqseal::mqseal_opener_deinit(&mut *opener), S::Ok);
        assert!(all_zero(&*opener));
    }
}

#[test]
fn topics_overlap_and_embedded_nul() {
    let mut mem = Mem::holding(Some(0));
    let mut out = [0u8; 64];
    let mut len = 0usize;
    unsafe {
        let mut sealer = new_sealer(&mut mem);
        let mut opener = new_opener();
        // The topic inside `out`, whole or in part.
        out[..4].copy_from_slice(b"a/b\0");
        let o = out.as_mut_ptr();
        assert_eq!(mqseal::mqseal_seal(&mut *sealer, o.cast(), b"x".as_ptr(), 1, o, 64, &mut len), S::BuffersOverlap);
        out[60..64].copy_from_slice(b"a/b\0");
        assert_eq!(
            mqseal::mqseal_seal(&mut *sealer, o.add(60).cast(), b"x".as_ptr(), 1, o, 61, &mut len),
            S::BuffersOverlap
        );
        assert_eq!(
            mqseal::mqseal_seal_n(&mut *sealer, o.add(10).cast(), 3, ptr::null(), b"x".as_ptr(), 1, o, 11, &mut len),
            S::BuffersOverlap
        );
        // Touching but not overlapping is fine.
        assert_eq!(
            mqseal::mqseal_seal_n(&mut *sealer, o.add(60).cast(), 3, ptr::null(), b"x".as_ptr(), 1, o, 60, &mut len),
            S::Ok
        );
        let mut next = 0u64;
        assert_eq!(mqseal::mqseal_sealer_next_counter(&mut *sealer, &mut next), S::Ok);
        assert_eq!(next, 1, "only the valid call used a counter");
        // ...and it opens on "a/b".
        let mut env = out[..len].to_vec();
        let (mut off, mut plen) = (0usize, 0usize);
        assert_eq!(open(&mut *opener, c"a/b", &mut env, ptr::null(), &mut off, &mut plen), S::Ok);
        assert_eq!(&env[off..off + plen], b"x");

        // The topic inside `buf` when opening.
        assert_eq!(seal(&mut *sealer, c"a/b", b"yz", &mut out, &mut len), S::Ok);
        let mut big = vec![0u8; len + 4];
        big[..len].copy_from_slice(&out[..len]);
        big[len..].copy_from_slice(b"a/b\0");
        let b = big.as_mut_ptr();
        let rc = mqseal::mqseal_open(
            &mut *opener,
            b.add(len).cast(),
            b,
            len + 4,
            ptr::null(),
            ptr::null_mut(),
            &mut off,
            &mut plen,
        );
        assert_eq!(rc, S::BuffersOverlap);
        assert_eq!(&big[..len], &out[..len], "buf untouched");
        let rc = open_n(&mut *opener, b.add(len), 3, b, len, &mut off, &mut plen);
        assert_eq!(rc, S::Ok, "adjacent topic is fine");

        // Embedded U+0000 through the length form: invalidTopic on both
        // sides, and no counter used.
        let t = b"a\0b";
        let rc =
            mqseal::mqseal_seal_n(&mut *sealer, t.as_ptr().cast(), 3, ptr::null(), b"x".as_ptr(), 1, o, 64, &mut len);
        assert_eq!(rc, S::InvalidTopic);
        assert_eq!(name(rc), "invalidTopic");
        assert_eq!(mqseal::mqseal_sealer_next_counter(&mut *sealer, &mut next), S::Ok);
        assert_eq!(next, 2);
        assert_eq!(seal(&mut *sealer, c"a", b"x", &mut out, &mut len), S::Ok);
        let mut env = out[..len].to_vec();
        let rc = open_n(&mut *opener, t.as_ptr(), 3, env.as_mut_ptr(), len, &mut off, &mut plen);
        assert_eq!(rc, S::InvalidTopic);
        // An empty topic in the length form.
        let rc = open_n(&mut *opener, ptr::null(), 0, env.as_mut_ptr(), len, &mut off, &mut plen);
        assert_eq!(rc, S::InvalidTopic);
        // The NUL-terminated form of the same bytes is the topic "a".
        assert_eq!(open(&mut *opener, c"a", &mut env, ptr::null(), &mut off, &mut plen), S::Ok);
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        assert_eq!(mqseal::mqseal_opener_deinit(&mut *opener), S::Ok);
    }
}

#[test]
fn opener_config_is_the_core_config() {
    let c = default_config();
    let d = mqseal_core::OpenerConfig::default();
    assert_eq!(c.window, d.window);
    assert_eq!(c.suites, d.suites.bits());
    assert_eq!(c.suites, mqseal::MQSEAL_SUITES_ALL);
    assert_eq!((c.has_max_age, c.has_max_skew), (u8::from(d.max_age.is_some()), u8::from(d.max_skew.is_some())));
    assert_eq!(c.require_timestamp, u8::from(d.require_timestamp));
    assert_eq!(c.eviction, mqseal::MQSEAL_EVICTION_REJECT_NEW);
    assert_eq!(d.eviction, mqseal_core::Eviction::RejectNew);
    let mut opener = new_opener();
    unsafe {
        let mut got = MqsealOpenerConfig { window: 7, ..c };
        assert_eq!(mqseal::mqseal_opener_get_config(&mut *opener, &mut got), S::Ok);
        assert_eq!(got, c, "NULL config is the default");
        // LRU without a maximum age is refused by the core, in init and in
        // set_config (which then leaves the config unchanged).
        let lru = MqsealOpenerConfig { eviction: mqseal::MQSEAL_EVICTION_LEAST_RECENTLY_USED, ..c };
        assert_eq!(mqseal::mqseal_opener_set_config(&mut *opener, &lru), S::InvalidConfig);
        assert_eq!(mqseal::mqseal_opener_get_config(&mut *opener, &mut got), S::Ok);
        assert_eq!(got, c);
        let mut other = zeroed::<MqsealOpener>();
        assert_eq!(mqseal::mqseal_opener_init(&mut *other, KEY.as_ptr(), &lru), S::InvalidConfig);
        assert!(all_zero(&*other));
        // Zero is not the default: window 0 and an empty suite set are invalid.
        let zero: MqsealOpenerConfig = std::mem::zeroed();
        assert_eq!(mqseal::mqseal_opener_init(&mut *other, KEY.as_ptr(), &zero), S::InvalidConfig);
        // Flags other than 0 and 1, unknown eviction.
        for bad in [
            MqsealOpenerConfig { has_max_age: 2, ..c },
            MqsealOpenerConfig { require_timestamp: 0xff, ..c },
            MqsealOpenerConfig { eviction: 2, ..c },
        ] {
            assert_eq!(mqseal::mqseal_opener_set_config(&mut *opener, &bad), S::InvalidConfig);
        }
        // A maximum age bounds the future too: min(max_age, 300).
        let aged = MqsealOpenerConfig {
            has_max_age: 1,
            max_age: 60,
            eviction: mqseal::MQSEAL_EVICTION_LEAST_RECENTLY_USED,
            ..c
        };
        assert_eq!(mqseal::mqseal_opener_set_config(&mut *opener, &aged), S::Ok);
        let mut mem = Mem::holding(Some(0));
        let mut sealer = new_sealer(&mut mem);
        let mut out = [0u8; 64];
        let mut len = 0usize;
        let now = 1_800_000_000u64;
        for (ts, want) in [(now + 61, S::FromFuture), (now + 60, S::Ok), (now - 61, S::Expired)] {
            let rc = mqseal::mqseal_seal_at(
                &mut *sealer,
                c"t".as_ptr(),
                &ts,
                b"x".as_ptr(),
                1,
                out.as_mut_ptr(),
                64,
                &mut len,
            );
            assert_eq!(rc, S::Ok);
            let (mut off, mut plen) = (0usize, 0usize);
            assert_eq!(open(&mut *opener, c"t", &mut out[..len], &now, &mut off, &mut plen), want, "ts {ts}");
        }
        let (mut off, mut plen) = (0usize, 0usize);
        assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::Ok);
        assert_eq!(open(&mut *opener, c"t", &mut out[..len], &now, &mut off, &mut plen), S::TimestampRequired);
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        assert_eq!(mqseal::mqseal_opener_deinit(&mut *opener), S::Ok);
    }
}

#[test]
fn snapshot_and_restore() {
    let mut mem = Mem::holding(Some(0));
    let mut a = new_opener();
    let mut b = new_opener();
    let mut envs = Vec::new();
    unsafe {
        let mut sealer = new_sealer(&mut mem);
        for _ in 0..5 {
            let mut out = [0u8; 64];
            let mut len = 0usize;
            assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::Ok);
            envs.push(out[..len].to_vec());
        }
        let (mut off, mut plen) = (0usize, 0usize);
        for e in &envs[..3] {
            assert_eq!(open(&mut *a, c"t", &mut e.clone(), ptr::null(), &mut off, &mut plen), S::Ok);
        }
        let mut n = 9usize;
        assert_eq!(mqseal::mqseal_opener_snapshot_count(&mut *a, &mut n), S::Ok);
        assert_eq!(n, 1);
        let mut rec = [0u8; mqseal::MQSEAL_SNAPSHOT_LEN];
        assert_eq!(mqseal::mqseal_opener_snapshot(&mut *a, 0, rec.as_mut_ptr(), rec.len()), S::Ok);
        assert_eq!(mqseal::mqseal_opener_snapshot(&mut *a, 1, rec.as_mut_ptr(), rec.len()), S::InvalidArgument);
        let mut short = [0u8; mqseal::MQSEAL_SNAPSHOT_LEN - 1];
        assert_eq!(mqseal::mqseal_opener_snapshot(&mut *a, 0, short.as_mut_ptr(), short.len()), S::BufferTooSmall);
        // The record is the core's, zero-padded to the slot size; without
        // gaps it is the 52-byte record of earlier releases.
        assert_eq!(rec[11], 0);
        assert!(rec[52..].iter().all(|b| *b == 0));
        let core = mqseal_core::SenderSnapshot::from_bytes(&rec[..52]).unwrap();
        assert_eq!((core.key_id, core.sender_id, core.highest), (1, 1, 2));
        // b saw counter 4 (later); restoring a's older record merges.
        assert_eq!(open(&mut *b, c"t", &mut envs[4].clone(), ptr::null(), &mut off, &mut plen), S::Ok);
        assert_eq!(mqseal::mqseal_opener_restore(&mut *b, rec.as_ptr(), rec.len()), S::Ok);
        for (i, want) in [(0, S::Duplicate), (2, S::Duplicate), (4, S::Duplicate), (3, S::Ok)] {
            assert_eq!(open(&mut *b, c"t", &mut envs[i].clone(), ptr::null(), &mut off, &mut plen), want, "env {i}");
        }
        // Validated by the core.
        assert_eq!(mqseal::mqseal_opener_restore(&mut *b, rec.as_ptr(), 51), S::InvalidSnapshot);
        let mut zero_bits = rec;
        zero_bits[20..].fill(0);
        assert_eq!(mqseal::mqseal_opener_restore(&mut *b, zero_bits.as_ptr(), 52), S::InvalidSnapshot);
        assert_eq!(name(S::InvalidSnapshot), "invalidSnapshot");
        let mut unknown = rec;
        unknown[0] = 9;
        assert_eq!(mqseal::mqseal_opener_restore(&mut *b, unknown.as_ptr(), 52), S::UnknownKey);
        assert_eq!(mqseal::mqseal_opener_restore(&mut *b, ptr::null(), 52), S::NullPointer);
        // Forget a sender.
        let mut forgotten = false;
        assert_eq!(mqseal::mqseal_opener_forget_sender(&mut *b, 1, 1, &mut forgotten), S::Ok);
        assert!(forgotten);
        assert_eq!(mqseal::mqseal_opener_forget_sender(&mut *b, 1, 1, &mut forgotten), S::Ok);
        assert!(!forgotten);
        assert_eq!(mqseal::mqseal_opener_snapshot_count(&mut *b, &mut n), S::Ok);
        assert_eq!(n, 0);
        assert_eq!(open(&mut *b, c"t", &mut envs[0].clone(), ptr::null(), &mut off, &mut plen), S::Ok);
        // A message far behind (more than the window of 128) is accepted
        // once, also after a snapshot and restore: the record carries the
        // gap of counters 1 to 176 below b's window.
        let mut late = Vec::new();
        for _ in 0..300 {
            let mut out = [0u8; 64];
            let mut len = 0usize;
            assert_eq!(seal(&mut *sealer, c"t", b"x", &mut out, &mut len), S::Ok);
            late.push(out[..len].to_vec());
        }
        assert_eq!(open(&mut *b, c"t", &mut late[299].clone(), ptr::null(), &mut off, &mut plen), S::Ok);
        assert_eq!(mqseal::mqseal_opener_snapshot(&mut *b, 0, rec.as_mut_ptr(), rec.len()), S::Ok);
        assert_eq!(rec[11], 1, "one gap");
        assert!(rec[68..].iter().all(|x| *x == 0));
        let core = mqseal_core::SenderSnapshot::from_bytes(&rec[..68]).unwrap();
        assert_eq!(core.gaps(), &[(1, 176)][..]);
        assert_eq!(mqseal::mqseal_opener_deinit(&mut *a), S::Ok);
        assert_eq!(mqseal::mqseal_opener_init(&mut *a, KEY.as_ptr(), ptr::null()), S::Ok);
        assert_eq!(mqseal::mqseal_opener_restore(&mut *a, rec.as_ptr(), rec.len()), S::Ok);
        assert_eq!(mqseal::mqseal_opener_restore(&mut *a, rec.as_ptr(), 68), S::Ok);
        for (e, want) in [(&late[0], S::Ok), (&late[0], S::Replay), (&envs[0], S::Replay), (&late[299], S::Duplicate)] {
            assert_eq!(open(&mut *a, c"t", &mut e.clone(), ptr::null(), &mut off, &mut plen), want);
        }
        let mut dirty = rec;
        dirty[100] = 1;
        assert_eq!(mqseal::mqseal_opener_restore(&mut *a, dirty.as_ptr(), dirty.len()), S::InvalidSnapshot);
        assert_eq!(mqseal::mqseal_sealer_deinit(&mut *sealer), S::Ok);
        assert_eq!(mqseal::mqseal_opener_deinit(&mut *a), S::Ok);
        assert_eq!(mqseal::mqseal_opener_deinit(&mut *b), S::Ok);
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
    assert_eq!(unsafe { CStr::from_ptr(mqseal::mqseal_error_code_name(9)) }.to_str().unwrap(), "other");
    assert_eq!(unsafe { CStr::from_ptr(mqseal::mqseal_error_reason(S::Auth as i32)) }.to_bytes(), b"");
    assert_eq!(unsafe { CStr::from_ptr(mqseal::mqseal_error_reason(-3)) }.to_bytes(), b"");
    let v = unsafe { CStr::from_ptr(mqseal::mqseal_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(mqseal::mqseal_max_envelope_len(usize::MAX), usize::MAX);
}

/// Whether every byte of a handle is zero (wiped).
fn all_zero<T>(h: &T) -> bool {
    let bytes = unsafe { std::slice::from_raw_parts((h as *const T).cast::<u8>(), std::mem::size_of::<T>()) };
    bytes.iter().all(|&b| b == 0)
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

/// `mqseal_plain_topic_allowed`: sealed unless allowlisted, `$` topics not
/// matched by a leading wildcard, a bad filter reported whatever the topic.
#[test]
fn plain_topic_allowlist() {
    let owned: Vec<CString> = ["$SYS/#", "status/+"].iter().map(|f| CString::new(*f).unwrap()).collect();
    let filters: Vec<*const std::ffi::c_char> = owned.iter().map(|f| f.as_ptr()).collect();
    let ask = |filters: &[*const std::ffi::c_char], topic: &str| {
        let mut allowed = true;
        let s = unsafe {
            mqseal::mqseal_plain_topic_allowed(
                filters.as_ptr(),
                filters.len(),
                topic.as_ptr().cast(),
                topic.len(),
                &mut allowed,
            )
        };
        (s, allowed)
    };
    for (topic, want) in
        [("$SYS/broker/uptime", true), ("status/dev1", true), ("status/dev1/cmd", false), ("plant/cmd", false)]
    {
        assert_eq!(ask(&filters, topic), (S::Ok, want), "{topic}");
    }
    let hash = CString::new("#").unwrap();
    assert_eq!(ask(&[hash.as_ptr()], "$SYS/x"), (S::Ok, false), "a leading wildcard never matches a $ topic");
    assert_eq!(ask(&[], "a"), (S::Ok, false), "no filters: everything sealed");
    let mut allowed = true;
    let s = unsafe { mqseal::mqseal_plain_topic_allowed(ptr::null(), 0, c"a".as_ptr(), 1, &mut allowed) };
    assert_eq!((s, allowed), (S::Ok, false));

    // A bad filter anywhere in the list, even after a matching one.
    for bad in [&b"a/#/b\0"[..], b"a+\0", b"\0", b"\xff/#\0"] {
        let bad = CStr::from_bytes_with_nul(bad).unwrap();
        let (s, allowed) = ask(&[filters[1], bad.as_ptr()], "status/dev1");
        assert_eq!((s, allowed), (S::InvalidFilter, false), "{bad:?}");
        assert_eq!(name(s), "invalidFilter");
    }
    // Misuse: statuses, not crashes.
    assert_eq!(ask(&[ptr::null()], "a").0, S::NullPointer);
    let s = unsafe { mqseal::mqseal_plain_topic_allowed(ptr::null(), 1, c"a".as_ptr(), 1, &mut allowed) };
    assert_eq!(s, S::NullPointer);
    let s = unsafe { mqseal::mqseal_plain_topic_allowed(filters.as_ptr(), 2, c"a".as_ptr(), 1, ptr::null_mut()) };
    assert_eq!(s, S::NullPointer);
    assert_eq!(ask(&filters, "\u{ff}").0, S::Ok);
    let s =
        unsafe { mqseal::mqseal_plain_topic_allowed(filters.as_ptr(), 2, b"\xff".as_ptr().cast(), 1, &mut allowed) };
    assert_eq!(s, S::InvalidTopic);
}

/// The counter file of docs/STATE.md through the C API: the core's one
/// encoder and decoder.
#[test]
fn counter_file_encode_decode() {
    let mut out = [0u8; mqseal::MQSEAL_COUNTER_FILE_MAX_LEN];
    let mut len = 0usize;
    for limit in [0u64, 1024, u64::MAX] {
        let s = unsafe { mqseal::mqseal_counter_file_encode(limit, out.as_mut_ptr(), out.len(), &mut len) };
        assert_eq!(s, S::Ok);
        assert_eq!(&out[..len], format!("mqseal-counter v1 {limit}\n").as_bytes());
        let mut back = 7u64;
        assert_eq!(unsafe { mqseal::mqseal_counter_file_decode(out.as_ptr(), len, &mut back) }, S::Ok);
        assert_eq!(back, limit);
    }
    let s = unsafe { mqseal::mqseal_counter_file_encode(1000, out.as_mut_ptr(), 10, &mut len) };
    assert_eq!((s, len), (S::BufferTooSmall, 23));
    for bad in [&b"17\n"[..], b"mqseal-counter v1 017\n", b"mqseal-counter v1 1", b""] {
        let mut v = 0u64;
        let s = unsafe { mqseal::mqseal_counter_file_decode(bad.as_ptr(), bad.len(), &mut v) };
        assert_eq!(s, S::CounterStoreCorrupt, "{bad:?}");
    }
    assert_eq!(unsafe { mqseal::mqseal_counter_file_decode(out.as_ptr(), 3, ptr::null_mut()) }, S::NullPointer);
    assert_eq!(unsafe { mqseal::mqseal_counter_file_encode(1, out.as_mut_ptr(), 39, ptr::null_mut()) }, S::NullPointer);
}
