/*
 * The shared mqseal test vectors through the C API (libmqseal.a):
 * positive vectors must seal to the exact envelope bytes and open to the
 * plaintext; negative vectors must fail with the expected error code name;
 * key-text and pairwise vectors must be accepted or refused as stated.
 * Then the C API's own checks: misuse (NULL pointers, short buffers,
 * uninitialized handles), copied handles, overlapping buffers, topics with
 * U+0000 through the length form, counter-store callbacks that break the
 * rule, failing and empty stores, the receiver configuration and
 * snapshot/restore. Everything must give statuses, never crashes. No heap
 * is used. Run it under Valgrind and AddressSanitizer (see Makefile and
 * scripts/test-parts/31-c.sh) and on a Cortex-M4F (make m4).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mqseal.h"
#include "vectors.h"

/* ---- a counter store in memory, with the compare-and-swap the contract asks of persist ---- */

enum fault { OK, LOAD_ERROR, LOAD_CORRUPT, PERSIST_ERROR, PERSIST_CONFLICT, PERSIST_LOWERS, PERSIST_IGNORES, PERSIST_BLIND };

typedef struct {
  int has;
  uint64_t limit;
  unsigned persists, loads;
  enum fault fault;
  int last_had_current; /* the last persist's current was not NULL */
  uint64_t last_current;
} mem_store_t;

static int32_t mem_load(void *ctx, uint64_t *limit) {
  mem_store_t *m = ctx;
  m->loads++;
  if (m->fault == LOAD_ERROR) return MQSEAL_STORE_ERROR;
  if (m->fault == LOAD_CORRUPT) return MQSEAL_STORE_CORRUPT;
  if (!m->has) return MQSEAL_STORE_EMPTY;
  *limit = m->limit;
  return MQSEAL_STORE_LOADED;
}

static int32_t mem_persist(void *ctx, const uint64_t *current, uint64_t limit) {
  mem_store_t *m = ctx;
  m->last_had_current = current != NULL;
  m->last_current = current ? *current : 0;
  switch (m->fault) {
    case PERSIST_ERROR:
      return MQSEAL_STORE_ERROR;
    case PERSIST_CONFLICT: /* claims another writer holds the store */
      return MQSEAL_STORE_CONFLICT;
    case PERSIST_LOWERS: /* claims success, stores a lower value */
      m->limit = limit > 100 ? limit - 100 : 0;
      return MQSEAL_STORE_OK;
    case PERSIST_IGNORES: /* claims success, stores nothing */
      return MQSEAL_STORE_OK;
    case PERSIST_BLIND: /* stores without comparing */
      break;
    default:
      /* The compare-and-swap: the store must hold *current (nothing when NULL). */
      if (current ? !(m->has && m->limit == *current) : m->has) return MQSEAL_STORE_CONFLICT;
  }
  m->has = 1;
  m->limit = limit;
  m->persists++;
  return MQSEAL_STORE_OK;
}

static mem_store_t holding(int has, uint64_t limit) {
  mem_store_t m;
  memset(&m, 0, sizeof m);
  m.has = has;
  m.limit = limit;
  return m;
}

static uint8_t buf[4096 + MQSEAL_MAX_OVERHEAD];
static MqsealSealer sealer, sealer_copy;
static MqsealOpener opener, opener2;

static int all_zero(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

/* ---- the vectors ---- */

/* Pairwise vectors: the keys derived from the X25519 secrets are the ones
 * the vector seals and opens with. */
static void pairwise(const positive_t *p) {
  char s_pub[MQSEAL_KEY_TEXT_MAX], r_pub[MQSEAL_KEY_TEXT_MAX], send[MQSEAL_KEY_TEXT_MAX], recv[MQSEAL_KEY_TEXT_MAX];
  check(mqseal_x25519_public_text(p->sender_secret, s_pub, sizeof s_pub) == MQSEAL_STATUS_OK, "sender public",
        p->name);
  check(mqseal_x25519_public_text(p->receiver_secret, r_pub, sizeof r_pub) == MQSEAL_STATUS_OK, "receiver public",
        p->name);
  MqsealStatus rc = mqseal_pairwise_keys(p->sender_secret, r_pub, p->pair_key_id, send, sizeof send, recv, sizeof recv);
  check(rc == MQSEAL_STATUS_OK && strcmp(send, p->sender_key) == 0, "sender's send key", p->name);
  rc = mqseal_pairwise_keys(p->receiver_secret, s_pub, p->pair_key_id, send, sizeof send, recv, sizeof recv);
  check(rc == MQSEAL_STATUS_OK && strcmp(recv, p->open_key) == 0, "receiver's recv key", p->name);
  rc = mqseal_pairwise_keys(p->sender_secret, s_pub, p->pair_key_id, send, sizeof send, recv, sizeof recv);
  check(rc == MQSEAL_STATUS_SELF_PAIRING, "self pairing refused", p->name);
}

static void positive(const positive_t *p) {
  if (p->has_pairwise) pairwise(p);
  mem_store_t mem = holding(1, p->counter);
  MqsealCounterStore store = {&mem, mem_load, mem_persist};
  MqsealStatus rc = mqseal_sealer_init(&sealer, p->sender_key, p->sender_id, p->suite, &store, 0);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), p->name);
  if (rc != MQSEAL_STATUS_OK) return;
  size_t n = 0;
  /* The length form: topics are passed whole. */
  rc = mqseal_seal_n(&sealer, p->topic, p->topic_len, p->has_timestamp ? &p->timestamp : NULL, p->plaintext.bytes,
                     p->plaintext.len, buf, sizeof buf, &n);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), p->name);
  check(n == p->envelope.len && memcmp(buf, p->envelope.bytes, n) == 0, "sealed envelope differs", p->name);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "sealer deinit", p->name);

  rc = mqseal_opener_init(&opener, p->open_key, NULL);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), p->name);
  MqsealHeader h;
  size_t off = 0, len = 0;
  rc = mqseal_open_n(&opener, p->topic, p->topic_len, buf, n, NULL, &h, &off, &len);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), p->name);
  check(len == p->plaintext.len && (len == 0 || memcmp(buf + off, p->plaintext.bytes, len) == 0),
        "opened payload differs", p->name);
  check(h.counter == p->counter && h.sender_id == p->sender_id && h.suite == p->suite &&
            h.has_timestamp == (p->has_timestamp ? 1 : 0) && (!p->has_timestamp || h.timestamp == p->timestamp),
        "opened header differs", p->name);
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", p->name);
}

/* A replay record for (key_id, sender_id) that accepted counter 0: it takes
 * a sender-table slot, so that the 32-sender C opener behaves as one with
 * the vector's smaller table. */
static void filler(uint8_t rec[MQSEAL_SNAPSHOT_LEN], uint32_t key_id, uint32_t sender_id) {
  memset(rec, 0, MQSEAL_SNAPSHOT_LEN);
  for (int i = 0; i < 4; i++) {
    rec[i] = (uint8_t)(key_id >> (8 * i));
    rec[4 + i] = (uint8_t)(sender_id >> (8 * i));
  }
  rec[8] = 128; /* width */
  rec[20] = 1;  /* bit 0: counter `highest` (0) accepted */
}

/* Takes (again) every slot but `senders`; restored before each open, the
 * fillers are never the least recently heard. */
static void refill(const negative_t *t) {
  uint8_t rec[MQSEAL_SNAPSHOT_LEN];
  for (uint32_t i = 0; t->senders && i < MQSEAL_OPENER_SENDERS - t->senders; i++) {
    filler(rec, t->key_id, 0xF0000000u + i);
    if (mqseal_opener_restore(&opener, rec, sizeof rec) != MQSEAL_STATUS_OK) check(0, "filler restore", t->name);
  }
}

static unsigned skipped_rewrite;

static void negative(const negative_t *t) {
  if (t->has_rewrite) {
    /* The C API has no prefix rewrite (topic bridging). */
    skipped_rewrite++;
    return;
  }
  MqsealOpenerConfig cfg;
  mqseal_opener_config_default(&cfg);
  cfg.window = t->window;
  cfg.has_max_age = (uint8_t)t->has_max_age;
  cfg.max_age = t->max_age;
  cfg.has_max_skew = (uint8_t)t->has_max_skew;
  cfg.max_skew = t->max_skew;
  cfg.require_timestamp = (uint8_t)t->require_timestamp;
  if (t->has_suites) cfg.suites = t->suites;
  cfg.eviction = t->eviction;
  const uint64_t *now = t->has_now ? &t->now : NULL;
  MqsealStatus rc = mqseal_opener_init(&opener, t->open_key, &cfg);
  if (rc != MQSEAL_STATUS_OK) {
    /* A configuration the receiver refuses. */
    check(strcmp(mqseal_error_code_name(rc), t->error) == 0, "configuration", t->name);
    return;
  }
  size_t off, len;
  for (size_t i = 0; i < t->n_preopen; i++) {
    refill(t);
    memcpy(buf, t->preopen[i].bytes, t->preopen[i].len);
    rc = mqseal_open_n(&opener, t->topic, t->topic_len, buf, t->preopen[i].len, now, NULL, &off, &len);
    check(rc == MQSEAL_STATUS_OK, "preopen envelope did not open", t->name);
  }
  refill(t);
  if (t->envelope.len) memcpy(buf, t->envelope.bytes, t->envelope.len);
  rc = mqseal_open_n(&opener, t->topic, t->topic_len, buf, t->envelope.len, now, NULL, &off, &len);
  const char *got = mqseal_error_code_name(rc);
  if (strcmp(got, t->error) != 0) printf("    expected %s, got %s\n", t->error, got);
  check(strcmp(got, t->error) == 0, "wrong error", t->name);
  check(off == 0 && len == 0, "outputs not cleared on error", t->name);
  if (rc == MQSEAL_STATUS_AUTH)
    check(t->envelope.len == 0 || memcmp(buf, t->envelope.bytes, t->envelope.len) == 0, "buffer changed on auth",
          t->name);
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", t->name);
}

/* The gap sequences: one receiver, each envelope with its expected result
 * (NULL: opens). */
static void sequence(const sequence_t *q) {
  MqsealOpenerConfig cfg;
  mqseal_opener_config_default(&cfg);
  cfg.window = q->window;
  cfg.gaps = q->gaps;
  cfg.has_max_age = (uint8_t)q->has_max_age;
  cfg.max_age = q->max_age;
  cfg.has_max_skew = (uint8_t)q->has_max_skew;
  cfg.max_skew = q->max_skew;
  MqsealStatus rc = mqseal_opener_init(&opener, q->open_key, &cfg);
  if (q->config_error) {
    check(rc != MQSEAL_STATUS_OK && strcmp(mqseal_error_code_name(rc), q->config_error) == 0, "configuration",
          q->name);
    return;
  }
  check(rc == MQSEAL_STATUS_OK, "configuration refused", q->name);
  for (size_t i = 0; rc == MQSEAL_STATUS_OK && i < q->n_steps; i++) {
    const step_t *t = &q->steps[i];
    size_t off, len;
    MqsealHeader h;
    memcpy(buf, t->envelope.bytes, t->envelope.len);
    MqsealStatus got =
        mqseal_open_n(&opener, q->topic, q->topic_len, buf, t->envelope.len, t->has_now ? &t->now : NULL, &h, &off,
                      &len);
    const char *want = t->expect ? t->expect : "ok";
    const char *name = got == MQSEAL_STATUS_OK ? "ok" : mqseal_error_code_name(got);
    if (strcmp(name, want) != 0) printf("    step %u: expected %s, got %s\n", (unsigned)i, want, name);
    check(strcmp(name, want) == 0, "wrong result", q->name);
    if (got == MQSEAL_STATUS_OK) check(h.counter == t->counter, "counter", q->name);
  }
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", q->name);
}

static unsigned skipped_nul_keys;

/* Key texts: accepted (and written back canonically from the bytes) or
 * refused with the stated error. */
static void key_vector(const key_vector_t *k) {
  char out[MQSEAL_KEY_TEXT_MAX], send[MQSEAL_KEY_TEXT_MAX], recv[MQSEAL_KEY_TEXT_MAX];
  if (strlen(k->text) != k->text_len) {
    /* The C API takes key texts NUL-terminated: this one cannot be passed whole. */
    skipped_nul_keys++;
    return;
  }
  /* A valid own secret to try public keys with. */
  const char *own = "mqseal:x25519-secret:v1:paKrsLmGj5SdmuPo8f7HzNXS2yApNj8EDQoTGGFud3w";
  MqsealStatus rc;
  if (k->kind == 0) {
    rc = mqseal_opener_init(&opener2, k->text, NULL);
    if (rc == MQSEAL_STATUS_OK) {
      mqseal_opener_deinit(&opener2);
      check(mqseal_key_text(k->key_id, k->bytes.bytes, out, sizeof out) == MQSEAL_STATUS_OK &&
                strcmp(out, k->canonical_text) == 0,
            "canonical key text", k->name);
    }
  } else if (k->kind == 1) {
    rc = mqseal_x25519_public_text(k->text, out, sizeof out);
    if (rc == MQSEAL_STATUS_OK) {
      check(strcmp(out, k->public_text) == 0, "public key of the secret", k->name);
      check(mqseal_x25519_secret_text(k->bytes.bytes, out, sizeof out) == MQSEAL_STATUS_OK &&
                strcmp(out, k->canonical_text) == 0,
            "canonical secret text", k->name);
    }
  } else {
    rc = mqseal_pairwise_keys(own, k->text, 1, send, sizeof send, recv, sizeof recv);
    /* A valid public key may still be a low-order point. */
    if (!k->error && (rc == MQSEAL_STATUS_WEAK_SHARED_SECRET || rc == MQSEAL_STATUS_SELF_PAIRING))
      rc = MQSEAL_STATUS_OK;
  }
  const char *want = k->error ? k->error : "ok";
  if (strcmp(mqseal_error_code_name(rc), want) != 0)
    printf("    expected %s, got %s\n", want, mqseal_error_code_name(rc));
  check(strcmp(mqseal_error_code_name(rc), want) == 0, "key text", k->name);
}

static void pairwise_vector(const pairwise_t *p) {
  char send[MQSEAL_KEY_TEXT_MAX], recv[MQSEAL_KEY_TEXT_MAX];
  MqsealStatus rc = mqseal_pairwise_keys(p->secret, p->peer_public, p->key_id, send, sizeof send, recv, sizeof recv);
  if (p->error) {
    check(strcmp(mqseal_error_code_name(rc), p->error) == 0, "pairwise error", p->name);
  } else {
    check(rc == MQSEAL_STATUS_OK && strcmp(send, p->send_key) == 0 && strcmp(recv, p->recv_key) == 0,
          "pairwise keys", p->name);
  }
}

/* ---- the C API's own checks ---- */

static const char *KEY = "mqseal:key:v1:1:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4";

static MqsealStatus init_over(mem_store_t *mem) {
  MqsealCounterStore store = {mem, mem_load, mem_persist};
  return mqseal_sealer_init(&sealer, KEY, 1, MQSEAL_SUITE_CHACHA20_POLY1305, &store, 16);
}

static MqsealStatus seal1(MqsealSealer *s, uint8_t *out, size_t cap, size_t *n) {
  return mqseal_seal(s, "t", (const uint8_t *)"x", 1, out, cap, n);
}

static uint64_t next_counter(MqsealSealer *s) {
  uint64_t c = 0;
  if (mqseal_sealer_next_counter(s, &c) != MQSEAL_STATUS_OK) return UINT64_MAX;
  return c;
}

static void misuse(void) {
  const char *key = POSITIVE[0].sender_key;
  mem_store_t mem = holding(1, 0);
  MqsealCounterStore store = {&mem, mem_load, mem_persist};
  MqsealCounterStore no_persist = {&mem, mem_load, NULL};
  uint8_t out[64];
  size_t n = 0;
  const uint8_t payload[30] = {0};
  MqsealSealer fresh;
  memset(&fresh, 0, sizeof fresh);

  check(mqseal_seal(&fresh, "t", payload, 4, out, sizeof out, &n) == MQSEAL_STATUS_NOT_INITIALIZED, "uninitialized",
        "misuse");
  check(mqseal_seal(NULL, "t", payload, 4, out, sizeof out, &n) == MQSEAL_STATUS_NULL_POINTER, "NULL sealer", "misuse");
  check(mqseal_sealer_init(&sealer, NULL, 1, MQSEAL_SUITE_CHACHA20_POLY1305, &store, 0) == MQSEAL_STATUS_NULL_POINTER,
        "NULL key", "misuse");
  check(mqseal_sealer_init(&sealer, "mqseal:key:v1:1:short", 1, 1, &store, 0) == MQSEAL_STATUS_INVALID_KEY, "bad key",
        "misuse");
  check(mqseal_sealer_init(&sealer, key, 1, 9, &store, 0) == MQSEAL_STATUS_INVALID_ARGUMENT, "bad suite", "misuse");
  check(mqseal_sealer_init(&sealer, key, 1, 1, NULL, 0) == MQSEAL_STATUS_NULL_POINTER, "NULL store", "misuse");
  check(mqseal_sealer_init(&sealer, key, 1, 1, &no_persist, 0) == MQSEAL_STATUS_NULL_POINTER, "NULL callback",
        "misuse");
  check(mem.loads == 0, "store not read before the arguments are checked", "misuse");
  check(mqseal_sealer_init(&sealer, key, 1, 1, &store, 8) == MQSEAL_STATUS_OK, "init", "misuse");
  check(mqseal_seal(&sealer, "t", NULL, 4, out, sizeof out, &n) == MQSEAL_STATUS_NULL_POINTER, "NULL payload",
        "misuse");
  check(mqseal_seal(&sealer, "t", payload, 4, NULL, 64, &n) == MQSEAL_STATUS_NULL_POINTER, "NULL out", "misuse");
  check(mqseal_seal(&sealer, "t", payload, 4, out, sizeof out, NULL) == MQSEAL_STATUS_NULL_POINTER, "NULL out_len",
        "misuse");
  expect(mqseal_seal(&sealer, "\xff\xfe", payload, 4, out, sizeof out, &n), MQSEAL_STATUS_INVALID_TOPIC,
         "non-UTF-8 topic", "misuse");
  expect(mqseal_seal(&sealer, "", payload, 4, out, sizeof out, &n), MQSEAL_STATUS_INVALID_TOPIC, "empty topic",
         "misuse");
  expect(mqseal_seal(&sealer, "a/+/b", payload, 4, out, sizeof out, &n), MQSEAL_STATUS_INVALID_TOPIC,
         "wildcard topic", "misuse");
  expect(mqseal_seal(&sealer, "plant/#", payload, 4, out, sizeof out, &n), MQSEAL_STATUS_INVALID_TOPIC,
         "multi-level wildcard topic", "misuse");
  expect(mqseal_seal(&sealer, "+", payload, 4, out, sizeof out, &n), MQSEAL_STATUS_INVALID_TOPIC,
         "single-level wildcard topic", "misuse");
  expect(mqseal_seal(&sealer, "a+b", payload, 4, out, sizeof out, &n), MQSEAL_STATUS_INVALID_TOPIC,
         "wildcard character inside a level", "misuse");
  check(strcmp(mqseal_error_code_name(MQSEAL_STATUS_INVALID_TOPIC), "invalidTopic") == 0 &&
            strcmp(mqseal_error_code_name(MQSEAL_STATUS_TOPIC_TOO_LONG), "topicTooLong") == 0,
        "topic code names (the Rust and JS codes)", "misuse");
  {
    /* 65,535 bytes is the MQTT limit; one more is TOPIC_TOO_LONG. */
    static char long_topic[65536 + 1];
    static uint8_t long_out[65536 + 64 + MQSEAL_MAX_OVERHEAD];
    memset(long_topic, 'a', 65536);
    expect(mqseal_seal_n(&sealer, long_topic, 65536, NULL, payload, 4, long_out, sizeof long_out, &n),
           MQSEAL_STATUS_TOPIC_TOO_LONG, "topic of 65,536 bytes", "misuse");
    expect(mqseal_seal(&sealer, long_topic, payload, 4, long_out, sizeof long_out, &n), MQSEAL_STATUS_TOPIC_TOO_LONG,
           "NUL-terminated topic of 65,536 bytes", "misuse");
  }
  /* The receive buffer an open needs: MQSEAL_RECV_BUF_LEN(max payload). */
  {
    static uint8_t rx[MQSEAL_RECV_BUF_LEN(sizeof payload)];
    check(sizeof rx == mqseal_max_envelope_len(sizeof payload) &&
              MQSEAL_MAX_OVERHEAD == MQSEAL_MAX_HEADER_LEN + MQSEAL_TAG_LEN,
          "MQSEAL_RECV_BUF_LEN", "misuse");
  }
  MqsealStatus rc = mqseal_seal(&sealer, "t", payload, sizeof payload, out, 20, &n);
  check(rc == MQSEAL_STATUS_BUFFER_TOO_SMALL && n > sizeof payload && n <= mqseal_max_envelope_len(sizeof payload),
        "short buffer reports the size needed", "misuse");
  check(mem.persists == 0, "no counter reserved by a failed seal", "misuse");
  rc = mqseal_seal(&sealer, "t", payload, sizeof payload, out, n, &n);
  check(rc == MQSEAL_STATUS_OK && mem.limit == 8, "seal into the size reported", "misuse");
  check(mem.last_had_current && mem.last_current == 0, "persist is told the value it replaces", "misuse");
  expect(mqseal_seal(&sealer, "t", out, 4, out, sizeof out, &n), MQSEAL_STATUS_BUFFERS_OVERLAP, "payload overlap",
         "misuse");
  check(next_counter(&sealer) == 1, "next counter", "misuse");
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", "misuse");
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_NOT_INITIALIZED, "double deinit", "misuse");

  size_t off, len;
  MqsealOpenerConfig bad;
  mqseal_opener_config_default(&bad);
  bad.window = 1000;
  check(mqseal_opener_init(&opener, key, &bad) == MQSEAL_STATUS_INVALID_CONFIG, "bad window", "misuse");
  check(mqseal_opener_init(&opener, key, NULL) == MQSEAL_STATUS_OK, "opener init", "misuse");
  check(mqseal_open(&opener, "t", NULL, 30, NULL, NULL, &off, &len) == MQSEAL_STATUS_NULL_POINTER, "NULL buf",
        "misuse");
  check(mqseal_open(&opener, NULL, buf, 30, NULL, NULL, &off, &len) == MQSEAL_STATUS_NULL_POINTER, "NULL topic",
        "misuse");
  check(mqseal_open(&opener, "t", buf, 30, NULL, NULL, NULL, &len) == MQSEAL_STATUS_NULL_POINTER, "NULL offset",
        "misuse");
  check(mqseal_open(&opener, "t", buf, 0, NULL, NULL, &off, &len) == MQSEAL_STATUS_TRUNCATED, "empty", "misuse");
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", "misuse");

  check(strcmp(mqseal_error_code_name(MQSEAL_STATUS_DUPLICATE), "duplicate") == 0, "code name", "misuse");
  check(strcmp(mqseal_error_code_name(12345), "other") == 0, "unknown code name", "misuse");
  check(strlen(mqseal_error_message(-7)) > 0, "unknown code message", "misuse");
  check(strcmp(mqseal_error_reason(MQSEAL_STATUS_AUTH), "") == 0, "no reason", "misuse");
}

/* A copy of an initialized handle (struct assignment, memcpy) never seals
 * or opens; deinit of the original wipes it; deinit of the copy wipes the
 * copy. */
static void handle_copy(void) {
  const char *T = "handle copy";
  uint8_t out[64];
  size_t n = 0;
  mem_store_t mem = holding(1, 0);
  check(init_over(&mem) == MQSEAL_STATUS_OK, "init", T);
  check(seal1(&sealer, out, sizeof out, &n) == MQSEAL_STATUS_OK, "original seals", T);
  sealer_copy = sealer; /* struct assignment */
  expect(seal1(&sealer_copy, out, sizeof out, &n), MQSEAL_STATUS_HANDLE_MOVED, "copy seals", T);
  check(strcmp(mqseal_error_code_name(MQSEAL_STATUS_HANDLE_MOVED), "handleMoved") == 0, "code name", T);
  uint64_t c;
  expect(mqseal_sealer_next_counter(&sealer_copy, &c), MQSEAL_STATUS_HANDLE_MOVED, "copy's counter", T);
  check(next_counter(&sealer) == 1, "the copy used no counter", T);
  check(seal1(&sealer, out, sizeof out, &n) == MQSEAL_STATUS_OK, "original still seals", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK && all_zero(&sealer, sizeof sealer),
        "deinit of the original wipes it", T);
  expect(seal1(&sealer_copy, out, sizeof out, &n), MQSEAL_STATUS_HANDLE_MOVED, "copy after deinit", T);
  expect(mqseal_sealer_deinit(&sealer_copy), MQSEAL_STATUS_HANDLE_MOVED, "deinit of the copy", T);
  check(all_zero(&sealer_copy, sizeof sealer_copy), "deinit of the copy wipes it", T);
  expect(seal1(&sealer_copy, out, sizeof out, &n), MQSEAL_STATUS_NOT_INITIALIZED, "wiped copy", T);
  /* memcpy of an opener. */
  mem = holding(1, 0);
  check(init_over(&mem) == MQSEAL_STATUS_OK && seal1(&sealer, out, sizeof out, &n) == MQSEAL_STATUS_OK, "seal", T);
  check(mqseal_opener_init(&opener, KEY, NULL) == MQSEAL_STATUS_OK, "opener init", T);
  memcpy(&opener2, &opener, sizeof opener);
  size_t off, len;
  memcpy(buf, out, n);
  expect(mqseal_open(&opener2, "t", buf, n, NULL, NULL, &off, &len), MQSEAL_STATUS_HANDLE_MOVED, "copy opens", T);
  check(memcmp(buf, out, n) == 0, "buf untouched", T);
  expect(mqseal_opener_deinit(&opener2), MQSEAL_STATUS_HANDLE_MOVED, "deinit of the opener copy", T);
  check(all_zero(&opener2, sizeof opener2), "opener copy wiped", T);
  expect(mqseal_open(&opener, "t", buf, n, NULL, NULL, &off, &len), MQSEAL_STATUS_OK, "original opens", T);
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK && all_zero(&opener, sizeof opener), "opener deinit", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);
}

/* A topic inside `out` (seal) or `buf` (open) is refused before anything
 * is read or written; the length form passes U+0000 to the core, which
 * refuses it. */
static void overlap_and_nul(void) {
  const char *T = "overlap and NUL";
  static uint8_t out[96];
  size_t n = 0, off, len;
  mem_store_t mem = holding(1, 0);
  check(init_over(&mem) == MQSEAL_STATUS_OK, "init", T);
  check(mqseal_opener_init(&opener, KEY, NULL) == MQSEAL_STATUS_OK, "opener init", T);
  const uint8_t *x = (const uint8_t *)"x";
  memcpy(out, "a/b", 4);
  expect(mqseal_seal(&sealer, (const char *)out, x, 1, out, sizeof out, &n), MQSEAL_STATUS_BUFFERS_OVERLAP,
         "topic at the start of out", T);
  memcpy(out + 90, "a/b", 4);
  expect(mqseal_seal(&sealer, (const char *)out + 90, x, 1, out, 91, &n), MQSEAL_STATUS_BUFFERS_OVERLAP,
         "topic overlapping the end of out", T);
  expect(mqseal_seal_n(&sealer, (const char *)out + 10, 3, NULL, x, 1, out, 11, &n), MQSEAL_STATUS_BUFFERS_OVERLAP,
         "length form", T);
  check(strcmp(mqseal_error_code_name(MQSEAL_STATUS_BUFFERS_OVERLAP), "buffersOverlap") == 0, "code name", T);
  check(next_counter(&sealer) == 0 && mem.persists == 0, "no counter used", T);
  /* Adjacent is fine. */
  expect(mqseal_seal_n(&sealer, (const char *)out + 90, 3, NULL, x, 1, out, 90, &n), MQSEAL_STATUS_OK,
         "topic right after out", T);
  memcpy(buf, out, n);
  expect(mqseal_open(&opener, "a/b", buf, n, NULL, NULL, &off, &len), MQSEAL_STATUS_OK, "opens on a/b", T);

  /* The topic inside buf when opening. */
  check(mqseal_seal(&sealer, "a/b", x, 1, out, sizeof out, &n) == MQSEAL_STATUS_OK, "seal", T);
  memcpy(buf, out, n);
  memcpy(buf + n, "a/b", 4);
  expect(mqseal_open(&opener, (const char *)buf + n, buf, n + 4, NULL, NULL, &off, &len),
         MQSEAL_STATUS_BUFFERS_OVERLAP, "topic inside buf", T);
  check(memcmp(buf, out, n) == 0 && off == 0 && len == 0, "buf untouched, outputs cleared", T);
  expect(mqseal_open_n(&opener, (const char *)buf + n, 3, buf, n + 1, NULL, NULL, &off, &len),
         MQSEAL_STATUS_BUFFERS_OVERLAP, "length form inside buf", T);
  expect(mqseal_open_n(&opener, (const char *)buf + n, 3, buf, n, NULL, NULL, &off, &len), MQSEAL_STATUS_OK,
         "topic right after buf", T);

  /* U+0000 inside a topic: the length form reaches the core's check. */
  static const char nul_topic[] = {'a', 0, 'b'};
  uint64_t before = next_counter(&sealer);
  expect(mqseal_seal_n(&sealer, nul_topic, 3, NULL, x, 1, out, sizeof out, &n), MQSEAL_STATUS_INVALID_TOPIC,
         "seal with U+0000", T);
  check(strcmp(mqseal_error_code_name(MQSEAL_STATUS_INVALID_TOPIC), "invalidTopic") == 0, "code name", T);
  check(next_counter(&sealer) == before, "no counter used", T);
  expect(mqseal_seal_n(&sealer, nul_topic, 0, NULL, x, 1, out, sizeof out, &n), MQSEAL_STATUS_INVALID_TOPIC,
         "empty topic (length 0)", T);
  check(mqseal_seal(&sealer, nul_topic, x, 1, out, sizeof out, &n) == MQSEAL_STATUS_OK,
        "the NUL-terminated form seals for \"a\"", T);
  memcpy(buf, out, n);
  expect(mqseal_open_n(&opener, nul_topic, 3, buf, n, NULL, NULL, &off, &len), MQSEAL_STATUS_INVALID_TOPIC,
         "open with U+0000", T);
  expect(mqseal_open_n(&opener, "a", 1, buf, n, NULL, NULL, &off, &len), MQSEAL_STATUS_OK, "opens on \"a\"", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", T);
}

/* The counter rule for callback stores. */
static void store_rule(void) {
  const char *T = "counter store";
  uint8_t out[64];
  size_t n = 0;
  /* Empty: refused (lost state must not restart at 0); not initialized. */
  mem_store_t mem = holding(0, 0);
  expect(init_over(&mem), MQSEAL_STATUS_COUNTER_STORE_MISSING, "empty store", T);
  check(strcmp(mqseal_error_code_name(MQSEAL_STATUS_COUNTER_STORE_MISSING), "counterStore") == 0 &&
            strcmp(mqseal_error_reason(MQSEAL_STATUS_COUNTER_STORE_MISSING), "missing") == 0,
        "name and reason", T);
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_NOT_INITIALIZED, "after a failed init", T);
  /* A transient read failure is an error, not "empty". */
  mem = holding(1, 40);
  mem.fault = LOAD_ERROR;
  expect(init_over(&mem), MQSEAL_STATUS_COUNTER_STORE_READ, "load fails", T);
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_NOT_INITIALIZED, "after a failed load", T);
  mem.fault = LOAD_CORRUPT;
  expect(init_over(&mem), MQSEAL_STATUS_COUNTER_STORE_CORRUPT, "corrupt record", T);
  /* A failed init over a live sealer leaves none. */
  mem.fault = OK;
  check(init_over(&mem) == MQSEAL_STATUS_OK, "init", T);
  mem.fault = LOAD_ERROR;
  expect(init_over(&mem), MQSEAL_STATUS_COUNTER_STORE_READ, "re-init fails", T);
  check(all_zero(&sealer, sizeof sealer), "failed init wipes the handle", T);

  /* A new sender, explicitly: persist(NULL, 0) first, then counter 0. */
  mem = holding(0, 0);
  MqsealCounterStore store = {&mem, mem_load, mem_persist};
  expect(mqseal_sealer_init_new_sender(&sealer, KEY, 1, 1, &store, 16), MQSEAL_STATUS_OK, "new sender", T);
  check(mem.has && mem.limit == 0 && !mem.last_had_current, "store set to 0 from nothing", T);
  check(seal1(&sealer, out, sizeof out, &n) == MQSEAL_STATUS_OK && mem.limit == 16 && mem.last_had_current &&
            mem.last_current == 0,
        "first block", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);
  expect(mqseal_sealer_init_new_sender(&sealer, KEY, 1, 1, &store, 16), MQSEAL_STATUS_COUNTER_STORE_CONFLICT,
         "new sender over a stored counter", T);
  check(mem.limit == 16, "stored counter untouched", T);
  /* A clock floor. */
  mem = holding(0, 0);
  const uint64_t ms = 1767225600000ULL;
  expect(mqseal_sealer_init_clock_floor(&sealer, KEY, 1, 1, &store, 0, ms), MQSEAL_STATUS_OK, "clock floor", T);
  check(next_counter(&sealer) == ms * MQSEAL_CLOCK_FLOOR_PER_MILLI, "starts at ms * 1024", T);
  check(seal1(&sealer, out, sizeof out, &n) == MQSEAL_STATUS_OK && !mem.last_had_current &&
            mem.limit == ms * MQSEAL_CLOCK_FLOOR_PER_MILLI + MQSEAL_DEFAULT_RESERVATION_BLOCK,
        "first block from nothing", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);

  /* A persist callback that lowers the value: refused, and stays refused. */
  mem = holding(1, 1000);
  check(init_over(&mem) == MQSEAL_STATUS_OK, "init", T);
  mem.fault = PERSIST_LOWERS;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_COUNTER_STORE_CONFLICT, "persist lowers", T);
  check(strcmp(mqseal_error_reason(MQSEAL_STATUS_COUNTER_STORE_CONFLICT), "conflict") == 0, "reason", T);
  check(next_counter(&sealer) == 1000, "no counter used", T);
  mem.fault = OK;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_COUNTER_STORE_CONFLICT, "lowered store", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);
  /* One that stores nothing. */
  mem = holding(1, 1000);
  check(init_over(&mem) == MQSEAL_STATUS_OK, "init", T);
  mem.fault = PERSIST_IGNORES;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_COUNTER_STORE_CONFLICT, "persist ignores", T);
  check(next_counter(&sealer) == 1000, "no counter used", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);
  /* A second writer moved the store: refused before persist is called,
   * even with a callback that does not compare. */
  mem = holding(1, 1000);
  check(init_over(&mem) == MQSEAL_STATUS_OK, "init", T);
  mem.limit = 1010;
  mem.fault = PERSIST_BLIND;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_COUNTER_STORE_CONFLICT, "second writer", T);
  check(mem.persists == 0 && mem.limit == 1010, "persist not called", T);
  /* A failing persist. */
  mem.limit = 1000;
  mem.fault = PERSIST_ERROR;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_COUNTER_STORE, "persist fails", T);
  check(strcmp(mqseal_error_reason(MQSEAL_STATUS_COUNTER_STORE), "write") == 0, "reason", T);
  mem.fault = OK;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_OK, "persist works again", T);
  check(mem.limit == 1016, "new limit", T);
  /* MQSEAL_STORE_ERROR or _CORRUPT from load inside a seal (the re-read
   * before persist): the seal fails with _READ / _CORRUPT, the sealer stays
   * initialized and seals once the store reads again. */
  while (next_counter(&sealer) < 1016) check(seal1(&sealer, out, sizeof out, &n) == MQSEAL_STATUS_OK, "use block", T);
  mem.fault = LOAD_ERROR;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_COUNTER_STORE_READ, "load fails inside a seal", T);
  check(strcmp(mqseal_error_reason(MQSEAL_STATUS_COUNTER_STORE_READ), "read") == 0, "reason", T);
  mem.fault = LOAD_CORRUPT;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_COUNTER_STORE_CORRUPT, "corrupt record inside a seal", T);
  check(next_counter(&sealer) == 1016 && mem.limit == 1016, "still initialized, no counter used", T);
  mem.fault = OK;
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_OK, "seals once the store reads again", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);

  /* MQSEAL_STORE_ERROR from persist inside mqseal_sealer_init_new_sender:
   * the init returns MQSEAL_STATUS_COUNTER_STORE (reason "write") and the
   * handle is not initialized, so a later seal gives NOT_INITIALIZED (the
   * behaviour the MQSEAL_STORE_ERROR comment in mqseal.h states). */
  mem = holding(0, 0);
  mem.fault = PERSIST_ERROR;
  expect(mqseal_sealer_init_new_sender(&sealer, KEY, 1, 1, &store, 16), MQSEAL_STATUS_COUNTER_STORE,
         "persist fails inside init_new_sender", T);
  check(strcmp(mqseal_error_reason(MQSEAL_STATUS_COUNTER_STORE), "write") == 0 && !mem.has, "reason, nothing stored",
        T);
  check(all_zero(&sealer, sizeof sealer), "handle wiped", T);
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_NOT_INITIALIZED, "seal after that init", T);
  /* MQSEAL_STORE_CONFLICT from persist there: _CONFLICT, not initialized. */
  mem = holding(0, 0);
  mem.fault = PERSIST_CONFLICT;
  expect(mqseal_sealer_init_new_sender(&sealer, KEY, 1, 1, &store, 16), MQSEAL_STATUS_COUNTER_STORE_CONFLICT,
         "persist conflict inside init_new_sender", T);
  expect(seal1(&sealer, out, sizeof out, &n), MQSEAL_STATUS_NOT_INITIALIZED, "seal after a conflicting init", T);
}

/* Field by field: the struct has tail padding. */
static int same_config(const MqsealOpenerConfig *a, const MqsealOpenerConfig *b) {
  return a->window == b->window && a->suites == b->suites && a->max_age == b->max_age && a->max_skew == b->max_skew &&
         a->has_max_age == b->has_max_age && a->has_max_skew == b->has_max_skew &&
         a->require_timestamp == b->require_timestamp && a->eviction == b->eviction && a->gaps == b->gaps;
}

/* The receiver configuration is the core's. */
static void config(void) {
  const char *T = "config";
  MqsealOpenerConfig c, got;
  check(mqseal_opener_config_default(&c) == MQSEAL_STATUS_OK, "default", T);
  check(c.window == 128 && c.gaps == 4 && c.suites == MQSEAL_SUITES_ALL && !c.has_max_age && !c.has_max_skew &&
            !c.require_timestamp && c.eviction == MQSEAL_EVICTION_REJECT_NEW,
        "default values", T);
  check(mqseal_opener_init(&opener, KEY, NULL) == MQSEAL_STATUS_OK, "init", T);
  check(mqseal_opener_get_config(&opener, &got) == MQSEAL_STATUS_OK && same_config(&got, &c),
        "NULL config is the default", T);
  MqsealOpenerConfig lru = c;
  lru.eviction = MQSEAL_EVICTION_LEAST_RECENTLY_USED;
  expect(mqseal_opener_set_config(&opener, &lru), MQSEAL_STATUS_INVALID_CONFIG, "LRU without max_age", T);
  check(mqseal_opener_get_config(&opener, &got) == MQSEAL_STATUS_OK && same_config(&got, &c),
        "unchanged on error", T);
  MqsealOpenerConfig zero;
  memset(&zero, 0, sizeof zero);
  expect(mqseal_opener_set_config(&opener, &zero), MQSEAL_STATUS_INVALID_CONFIG, "all-zero config", T);
  MqsealOpenerConfig many_gaps = c;
  many_gaps.gaps = 5;
  expect(mqseal_opener_set_config(&opener, &many_gaps), MQSEAL_STATUS_INVALID_CONFIG, "gaps 5", T);
  check(mqseal_opener_get_config(&opener, &got) == MQSEAL_STATUS_OK && same_config(&got, &c),
        "unchanged after gaps 5", T);
  /* max_age implies a future bound of min(max_age, 300). */
  lru.has_max_age = 1;
  lru.max_age = 60;
  expect(mqseal_opener_set_config(&opener, &lru), MQSEAL_STATUS_OK, "LRU with max_age", T);
  mem_store_t mem = holding(1, 0);
  check(init_over(&mem) == MQSEAL_STATUS_OK, "sealer", T);
  const uint64_t now = 1800000000ULL;
  const uint64_t ts[3] = {now + 61, now + 60, now - 61};
  const MqsealStatus want[3] = {MQSEAL_STATUS_FROM_FUTURE, MQSEAL_STATUS_OK, MQSEAL_STATUS_EXPIRED};
  for (int i = 0; i < 3; i++) {
    size_t n, off, len;
    check(mqseal_seal_at(&sealer, "t", &ts[i], (const uint8_t *)"x", 1, buf, sizeof buf, &n) == MQSEAL_STATUS_OK,
          "seal", T);
    expect(mqseal_open(&opener, "t", buf, n, &now, NULL, &off, &len), want[i], "timestamp bound", T);
  }
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", T);
  /* gaps 0 rejects a late message (counter 1 after 0 and 199: below the
   * window, in a gap) that the default accepts. */
  {
    static uint8_t late[3][64];
    size_t late_len[3] = {0, 0, 0}, off, len;
    mem_store_t m = holding(1, 0);
    check(init_over(&m) == MQSEAL_STATUS_OK, "sealer", T);
    for (int i = 0; i < 200; i++) {
      size_t n;
      check(seal1(&sealer, buf, sizeof buf, &n) == MQSEAL_STATUS_OK, "seal", T);
      int at = i == 0 ? 0 : i == 199 ? 1 : i == 1 ? 2 : -1;
      if (at >= 0) {
        memcpy(late[at], buf, n);
        late_len[at] = n;
      }
    }
    MqsealOpenerConfig plain = c;
    plain.gaps = 0;
    const MqsealOpenerConfig *cfgs[2] = {&c, &plain};
    const MqsealStatus want_late[2] = {MQSEAL_STATUS_OK, MQSEAL_STATUS_REPLAY};
    for (int k = 0; k < 2; k++) {
      check(mqseal_opener_init(&opener, KEY, cfgs[k]) == MQSEAL_STATUS_OK, "init", T);
      for (int j = 0; j < 3; j++) {
        memcpy(buf, late[j], late_len[j]);
        expect(mqseal_open(&opener, "t", buf, late_len[j], NULL, NULL, &off, &len), j < 2 ? MQSEAL_STATUS_OK : want_late[k],
               j < 2 ? "in order" : k ? "late with gaps 0" : "late with the default gaps", T);
      }
      check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", T);
    }
    check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);
  }
}

/* Snapshot, merging restore, forget. */
static void snapshot(void) {
  const char *T = "snapshot";
  static uint8_t env[5][64];
  size_t env_len[5], off, len, count = 99;
  mem_store_t mem = holding(1, 0);
  check(init_over(&mem) == MQSEAL_STATUS_OK, "sealer", T);
  for (int i = 0; i < 5; i++) check(seal1(&sealer, env[i], sizeof env[i], &env_len[i]) == MQSEAL_STATUS_OK, "seal", T);
  check(mqseal_opener_init(&opener, KEY, NULL) == MQSEAL_STATUS_OK, "opener", T);
  check(mqseal_opener_init(&opener2, KEY, NULL) == MQSEAL_STATUS_OK, "opener 2", T);
  for (int i = 0; i < 3; i++) {
    memcpy(buf, env[i], env_len[i]);
    check(mqseal_open(&opener, "t", buf, env_len[i], NULL, NULL, &off, &len) == MQSEAL_STATUS_OK, "open", T);
  }
  check(mqseal_opener_snapshot_count(&opener, &count) == MQSEAL_STATUS_OK && count == 1, "count", T);
  uint8_t rec[MQSEAL_SNAPSHOT_LEN], short_rec[MQSEAL_SNAPSHOT_LEN - 1];
  expect(mqseal_opener_snapshot(&opener, 0, rec, sizeof rec), MQSEAL_STATUS_OK, "snapshot", T);
  check(rec[0] == 1 && rec[4] == 1 && rec[12] == 2, "record: key 1, sender 1, highest 2", T);
  expect(mqseal_opener_snapshot(&opener, 1, rec, sizeof rec), MQSEAL_STATUS_INVALID_ARGUMENT, "index", T);
  expect(mqseal_opener_snapshot(&opener, 0, short_rec, sizeof short_rec), MQSEAL_STATUS_BUFFER_TOO_SMALL, "short", T);
  /* opener2 saw counter 4; restoring the older record merges. */
  memcpy(buf, env[4], env_len[4]);
  check(mqseal_open(&opener2, "t", buf, env_len[4], NULL, NULL, &off, &len) == MQSEAL_STATUS_OK, "open 4", T);
  expect(mqseal_opener_restore(&opener2, rec, sizeof rec), MQSEAL_STATUS_OK, "restore", T);
  const int order[4] = {0, 2, 4, 3};
  const MqsealStatus want[4] = {MQSEAL_STATUS_DUPLICATE, MQSEAL_STATUS_DUPLICATE, MQSEAL_STATUS_DUPLICATE,
                                MQSEAL_STATUS_OK};
  for (int i = 0; i < 4; i++) {
    memcpy(buf, env[order[i]], env_len[order[i]]);
    expect(mqseal_open(&opener2, "t", buf, env_len[order[i]], NULL, NULL, &off, &len), want[i], "after restore", T);
  }
  expect(mqseal_opener_restore(&opener2, rec, sizeof rec - 1), MQSEAL_STATUS_INVALID_SNAPSHOT, "length", T);
  uint8_t bad[MQSEAL_SNAPSHOT_LEN];
  memcpy(bad, rec, sizeof bad);
  memset(bad + 20, 0, sizeof bad - 20);
  expect(mqseal_opener_restore(&opener2, bad, sizeof bad), MQSEAL_STATUS_INVALID_SNAPSHOT, "no bits set", T);
  check(strcmp(mqseal_error_code_name(MQSEAL_STATUS_INVALID_SNAPSHOT), "invalidSnapshot") == 0, "code name", T);
  memcpy(bad, rec, sizeof bad);
  bad[0] = 9;
  expect(mqseal_opener_restore(&opener2, bad, sizeof bad), MQSEAL_STATUS_UNKNOWN_KEY, "unknown key", T);
  bool forgotten = false;
  check(mqseal_opener_forget_sender(&opener2, 1, 1, &forgotten) == MQSEAL_STATUS_OK && forgotten, "forget", T);
  check(mqseal_opener_forget_sender(&opener2, 1, 1, &forgotten) == MQSEAL_STATUS_OK && !forgotten, "forget again", T);
  check(mqseal_opener_snapshot_count(&opener2, &count) == MQSEAL_STATUS_OK && count == 0, "count 0", T);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", T);
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", T);
  check(mqseal_opener_deinit(&opener2) == MQSEAL_STATUS_OK, "opener 2 deinit", T);
}

int main(void) {
  /* %u and casts: some embedded printf implementations lack %zu. */
  printf("mqseal %s C API: %u positive, %u negative, %u key-text, %u pairwise, %u sequence vectors\n",
         mqseal_version(), (unsigned)N_POSITIVE, (unsigned)N_NEGATIVE, (unsigned)N_KEYS, (unsigned)N_PAIRWISE,
         (unsigned)N_SEQUENCES);
  unsigned vectors_ok = 0, before;
  for (size_t i = 0; i < N_POSITIVE; i++) {
    before = failed;
    positive(&POSITIVE[i]);
    vectors_ok += failed == before;
  }
  for (size_t i = 0; i < N_NEGATIVE; i++) {
    before = failed;
    negative(&NEGATIVE[i]);
    vectors_ok += failed == before && !NEGATIVE[i].has_rewrite;
  }
  for (size_t i = 0; i < N_KEYS; i++) {
    before = failed;
    key_vector(&KEYS[i]);
    vectors_ok += failed == before && strlen(KEYS[i].text) == KEYS[i].text_len;
  }
  for (size_t i = 0; i < N_PAIRWISE; i++) {
    before = failed;
    pairwise_vector(&PAIRWISE[i]);
    vectors_ok += failed == before;
  }
  for (size_t i = 0; i < N_SEQUENCES; i++) {
    before = failed;
    sequence(&SEQUENCES[i]);
    vectors_ok += failed == before;
  }
  unsigned total = (unsigned)(N_POSITIVE + N_NEGATIVE + N_KEYS + N_PAIRWISE + N_SEQUENCES);
  /* Only these are not expressible in the C API; anything else skipped is a failure. */
  check(skipped_rewrite == 5, "prefix-rewrite vectors skipped", "vectors");
  check(skipped_nul_keys <= 2, "key texts with U+0000 skipped", "vectors");
  printf("%u of %u vectors ok; skipped: %u prefix-rewrite (no rewrite in the C API), %u key texts with U+0000 "
         "(NUL-terminated)\n",
         vectors_ok, total, skipped_rewrite, skipped_nul_keys);
  misuse();
  handle_copy();
  overlap_and_nul();
  store_rule();
  config();
  snapshot();
  return check_summary("checks");
}
