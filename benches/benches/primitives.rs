//! mqseal against the raw primitives, in the same run.
//!
//! Groups (Criterion ids `group/function/parameter`, parameter = payload
//! bytes; `scripts/bench.sh` turns the results into the tables of
//! `BENCHMARKS.md`):
//!
//! * `chacha20poly1305/*`: raw AEAD encrypt / decrypt / both, against
//!   mqseal seal / open / both with group and pairwise keys, through the
//!   in-place, `seal_in_place` and `Vec` APIs.
//!   `ring_encrypt_decrypt_aad41` is the raw fast backend (ring).
//! * `hmac-sha256/*`: raw HMAC-SHA256 sign / sign+verify (RustCrypto, and
//!   `ring_sign_verify`), against the integrity-only suite.
//!
//! mqseal rows use whichever backend the build has: ring by default,
//! RustCrypto when built with `--cfg mqseal_backend="rustcrypto"`
//! (`scripts/bench.sh` runs both).
//! * `typed/*`: postcard payloads (`seal_value_into` / `open_value`).
//! * `replay_window/*`: `ReplayWindow::check_and_update` alone.
//! * `keys/*`: pairwise key derivation (X25519 + HKDF), sealer setup.
//!
//! Seal+open runs the full receiver path (header parse, keyring lookup,
//! topic binding, replay window) on every message: counters increase, so
//! every open succeeds.

use core::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mqseal::{Key, Keyring, MemoryCounterStore, Opener, ReplayWindow, Sealer, StaticKeyPair, Suite, MAX_OVERHEAD};
use mqseal_benches::{
    payload, raw_hmac, raw_hmac_verify, reading, ring_hmac_key, ring_hmac_sign_verify, RawAead, Reading, RingAead,
    KEY_BYTES, SIZES, TOPIC, TYPICAL_AAD_LEN,
};

const SENDER: u32 = 7;

fn group_key() -> Key {
    Key::from_bytes(1, KEY_BYTES)
}

/// Pairwise keys are ordinary keys once derived: the sender's `send` key
/// and the receiver's matching `recv` key.
fn pairwise_keys() -> (Key, Key) {
    let device = StaticKeyPair::from_secret_bytes([1; 32]);
    let server = StaticKeyPair::from_secret_bytes([2; 32]);
    let (Ok(d), Ok(s)) = (device.pairwise(&server.public(), 100), server.pairwise(&device.public(), 100)) else {
        unreachable!("fixed test keys are valid")
    };
    (d.send, s.recv)
}

fn pair(seal_key: &Key, open_key: Key, suite: Suite) -> (Sealer<MemoryCounterStore>, Opener) {
    let sealer = Sealer::new(seal_key, SENDER, suite, MemoryCounterStore::new());
    let ring = Keyring::with_primary(open_key);
    match (sealer, ring) {
        (Ok(s), Ok(r)) => (s, Opener::new(r)),
        _ => unreachable!("fixed keys and memory store cannot fail"),
    }
}

/// Seals into `buf` and opens in place: the whole per-message cost on both
/// sides.
fn seal_open(sealer: &mut Sealer<MemoryCounterStore>, opener: &mut Opener, msg: &[u8], buf: &mut [u8]) {
    let n = sealer.seal_into(TOPIC, msg, buf).unwrap_or(0);
    let opened = opener.open_in_place(TOPIC, &mut buf[..n]);
    assert!(opened.is_ok_and(|o| o.payload.len() == msg.len()), "seal+open failed");
}

fn bench_aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("chacha20poly1305");
    for &size in &SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let msg = payload(size);
        let mut buf = vec![0u8; size + MAX_OVERHEAD];

        // --- raw baseline ---
        let mut raw = RawAead::new();
        g.bench_with_input(BenchmarkId::new("raw_encrypt", size), &msg, |b, msg| {
            buf[..size].copy_from_slice(msg);
            b.iter(|| black_box(raw.encrypt(black_box(&mut buf[..size]))))
        });
        let mut raw_sender = RawAead::new();
        g.bench_with_input(BenchmarkId::new("raw_decrypt", size), &msg, |b, msg| {
            b.iter_batched_ref(
                || {
                    let mut ct = msg.clone();
                    let t = raw_sender.encrypt(&mut ct);
                    (ct, t)
                },
                |(ct, t)| {
                    let ok = t.as_ref().is_ok_and(|(c, tag)| raw.decrypt(*c, ct, tag).is_ok());
                    assert!(ok, "raw decrypt failed");
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_with_input(BenchmarkId::new("raw_encrypt_decrypt", size), &msg, |b, msg| {
            buf[..size].copy_from_slice(msg);
            b.iter(|| {
                let body = black_box(&mut buf[..size]);
                let ok = raw.encrypt(body).is_ok_and(|(c, tag)| raw.decrypt(c, body, &tag).is_ok());
                assert!(ok, "raw round trip failed");
            })
        });

        // The same with associated data as long as mqseal's: the AEAD crate
        // then processes the body unaligned to its 4-block Poly1305 batches.
        let mut raw_aad = RawAead::with_aad(TYPICAL_AAD_LEN);
        g.bench_with_input(BenchmarkId::new("raw_encrypt_decrypt_aad41", size), &msg, |b, msg| {
            buf[..size].copy_from_slice(msg);
            b.iter(|| {
                let body = black_box(&mut buf[..size]);
                let ok = raw_aad.encrypt(body).is_ok_and(|(c, tag)| raw_aad.decrypt(c, body, &tag).is_ok());
                assert!(ok, "raw round trip failed");
            })
        });

        // The raw fast backend: ring, key set up once, same associated data.
        let mut ring_aead = RingAead::new().ok();
        g.bench_with_input(BenchmarkId::new("ring_encrypt_decrypt_aad41", size), &msg, |b, msg| {
            buf[..size].copy_from_slice(msg);
            b.iter(|| {
                let ok = ring_aead.as_mut().is_some_and(|r| r.encrypt_decrypt(black_box(&mut buf[..size])).is_ok());
                assert!(ok, "ring round trip failed");
            })
        });

        // --- mqseal, group key ---
        let key = group_key();
        let (mut sealer, mut opener) = pair(&key, key.clone(), Suite::ChaCha20Poly1305);
        g.bench_with_input(BenchmarkId::new("seal_into", size), &msg, |b, msg| {
            b.iter(|| black_box(sealer.seal_into(TOPIC, black_box(msg), &mut buf)))
        });
        g.bench_with_input(BenchmarkId::new("open_in_place", size), &msg, |b, msg| {
            b.iter_batched_ref(
                || {
                    let mut env = vec![0u8; size + MAX_OVERHEAD];
                    let n = sealer.seal_into(TOPIC, msg, &mut env).unwrap_or(0);
                    env.truncate(n);
                    env
                },
                |env| assert!(opener.open_in_place(TOPIC, env).is_ok(), "open failed"),
                BatchSize::SmallInput,
            )
        });
        g.bench_with_input(BenchmarkId::new("seal_open", size), &msg, |b, msg| {
            b.iter(|| seal_open(&mut sealer, &mut opener, black_box(msg), &mut buf))
        });
        g.bench_with_input(BenchmarkId::new("seal_in_place_open", size), &msg, |b, msg| {
            b.iter(|| {
                buf[..size].copy_from_slice(msg);
                let n = sealer.seal_in_place(TOPIC, &mut buf, size).unwrap_or(0);
                let opened = opener.open_in_place(TOPIC, &mut buf[..n]);
                assert!(opened.is_ok(), "in-place open failed");
            })
        });
        g.bench_with_input(BenchmarkId::new("seal_open_vec", size), &msg, |b, msg| {
            b.iter(|| {
                let env = sealer.seal_to_vec(TOPIC, black_box(msg)).unwrap_or_default();
                let opened = opener.open_to_vec(TOPIC, &env);
                assert!(opened.is_ok(), "vec open failed");
                opened
            })
        });

        // --- mqseal, pairwise key (derived once, outside the loop) ---
        let (send, recv) = pairwise_keys();
        let (mut psealer, mut popener) = pair(&send, recv, Suite::ChaCha20Poly1305);
        g.bench_with_input(BenchmarkId::new("seal_open_pairwise", size), &msg, |b, msg| {
            b.iter(|| seal_open(&mut psealer, &mut popener, black_box(msg), &mut buf))
        });
    }
    g.finish();
}

fn bench_hmac(c: &mut Criterion) {
    let mut g = c.benchmark_group("hmac-sha256");
    for &size in &SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let msg = payload(size);
        let mut buf = vec![0u8; size + MAX_OVERHEAD];

        g.bench_with_input(BenchmarkId::new("raw_sign", size), &msg, |b, msg| {
            b.iter(|| black_box(raw_hmac(black_box(msg))))
        });
        g.bench_with_input(BenchmarkId::new("raw_sign_verify", size), &msg, |b, msg| {
            b.iter(|| {
                let tag = raw_hmac(black_box(msg));
                assert!(raw_hmac_verify(msg, &tag[..16]), "raw verify failed");
            })
        });

        let ring_key = ring_hmac_key();
        g.bench_with_input(BenchmarkId::new("ring_sign_verify", size), &msg, |b, msg| {
            b.iter(|| assert!(ring_hmac_sign_verify(&ring_key, black_box(msg)), "ring verify failed"))
        });

        let key = group_key();
        let (mut sealer, mut opener) = pair(&key, key.clone(), Suite::HmacSha256);
        g.bench_with_input(BenchmarkId::new("seal_into", size), &msg, |b, msg| {
            b.iter(|| black_box(sealer.seal_into(TOPIC, black_box(msg), &mut buf)))
        });
        g.bench_with_input(BenchmarkId::new("seal_open", size), &msg, |b, msg| {
            b.iter(|| seal_open(&mut sealer, &mut opener, black_box(msg), &mut buf))
        });
        g.bench_with_input(BenchmarkId::new("seal_open_vec", size), &msg, |b, msg| {
            b.iter(|| {
                let env = sealer.seal_to_vec(TOPIC, black_box(msg)).unwrap_or_default();
                let opened = opener.open_to_vec(TOPIC, &env);
                assert!(opened.is_ok(), "vec open failed");
                opened
            })
        });

        let (send, recv) = pairwise_keys();
        let (mut psealer, mut popener) = pair(&send, recv, Suite::HmacSha256);
        g.bench_with_input(BenchmarkId::new("seal_open_pairwise", size), &msg, |b, msg| {
            b.iter(|| seal_open(&mut psealer, &mut popener, black_box(msg), &mut buf))
        });
    }
    g.finish();
}

fn bench_typed(c: &mut Criterion) {
    let mut g = c.benchmark_group("typed");
    let value = reading();
    let encoded_len = {
        let mut tmp = [0u8; 256];
        let (mut s, _) = pair(&group_key(), group_key(), Suite::ChaCha20Poly1305);
        s.seal_value_into(TOPIC, &value, &mut tmp).unwrap_or(0) - s.envelope_len(0).unwrap_or(0)
    };
    g.throughput(Throughput::Bytes(encoded_len as u64));
    for suite in [Suite::ChaCha20Poly1305, Suite::HmacSha256] {
        let name = match suite {
            Suite::HmacSha256 => "hmac-sha256",
            _ => "chacha20poly1305",
        };
        let key = group_key();
        let (mut sealer, mut opener) = pair(&key, key.clone(), suite);
        let mut buf = [0u8; 256 + MAX_OVERHEAD];
        g.bench_function(BenchmarkId::new(format!("seal_value_into_open_value/{name}"), encoded_len), |b| {
            b.iter(|| {
                let n = sealer.seal_value_into(TOPIC, black_box(&value), &mut buf).unwrap_or(0);
                let got: Result<(_, Reading<'_>), _> = opener.open_value(TOPIC, &mut buf[..n]);
                assert!(got.is_ok_and(|(_, r)| r.ok), "typed open failed");
            })
        });
        g.bench_function(BenchmarkId::new(format!("seal_value_to_vec_open_value/{name}"), encoded_len), |b| {
            b.iter(|| {
                let mut env = sealer.seal_value_to_vec(TOPIC, black_box(&value)).unwrap_or_default();
                let got: Result<(_, Reading<'_>), _> = opener.open_value(TOPIC, &mut env);
                assert!(got.is_ok(), "typed vec open failed");
            })
        });
    }
    g.finish();
}

fn bench_replay_window(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay_window");
    g.throughput(Throughput::Elements(1));
    g.bench_function("check_and_update/in_order", |b| {
        let mut w = ReplayWindow::default();
        let mut ctr = 0u64;
        b.iter(|| {
            ctr += 1;
            black_box(w.check_and_update(black_box(ctr)))
        })
    });
    g.bench_function("check_and_update/reordered", |b| {
        // Pairs arrive swapped (1 0 3 2 5 4 ...), with a jump of 100
        // every 64 messages: the shift path as well as the bitmap.
        let mut w = ReplayWindow::default();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let base = (i / 64) * 100 + i;
            black_box(w.check_and_update(black_box(base ^ 1)))
        })
    });
    g.bench_function("check/duplicate", |b| {
        let mut w = ReplayWindow::default();
        for ctr in 0..100 {
            let _ = w.check_and_update(ctr);
        }
        b.iter(|| black_box(w.check(black_box(90))))
    });
    g.finish();
}

fn bench_keys(c: &mut Criterion) {
    let mut g = c.benchmark_group("keys");
    let device = StaticKeyPair::from_secret_bytes([1; 32]);
    let server = StaticKeyPair::from_secret_bytes([2; 32]).public();
    g.bench_function("pairwise_derivation", |b| b.iter(|| black_box(device.pairwise(black_box(&server), 100))));
    let key = group_key();
    for suite in [Suite::ChaCha20Poly1305, Suite::HmacSha256] {
        let name = match suite {
            Suite::HmacSha256 => "sealer_new/hmac-sha256",
            _ => "sealer_new/chacha20poly1305",
        };
        g.bench_function(name, |b| b.iter(|| black_box(Sealer::new(&key, SENDER, suite, MemoryCounterStore::new()))));
    }
    g.bench_function("key_from_text", |b| {
        let text = key.to_text();
        b.iter(|| black_box(Key::from_text(black_box(text.as_str()))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(core::time::Duration::from_millis(500))
        .measurement_time(core::time::Duration::from_secs(2));
    targets = bench_aead, bench_hmac, bench_typed, bench_replay_window, bench_keys
}
criterion_main!(benches);
