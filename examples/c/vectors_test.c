/*
 * The shared mqseal test vectors through the C API (libmqseal.a):
 * positive vectors must seal to the exact envelope bytes and open to the
 * plaintext; negative vectors must fail with the expected error code name.
 * Then misuse: NULL pointers, short buffers, uninitialized handles must
 * give statuses, never crashes. No heap is used. Run it under Valgrind or
 * AddressSanitizer (see Makefile and scripts/test-parts/30-embedded.sh).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mqseal.h"
#include "vectors.h"

static unsigned passed, failed;

static void check(int ok, const char *what, const char *name) {
  if (ok) {
    passed++;
  } else {
    failed++;
    printf("FAIL %s: %s\n", name, what);
  }
}

/* A counter store in memory, starting at a given counter (tests only). */
typedef struct {
  int has;
  uint64_t limit;
  unsigned persists;
} mem_store_t;

static int32_t mem_load(void *ctx, uint64_t *limit) {
  mem_store_t *m = ctx;
  if (!m->has) return MQSEAL_STORE_EMPTY;
  *limit = m->limit;
  return MQSEAL_STORE_LOADED;
}

static int32_t mem_persist(void *ctx, uint64_t limit) {
  mem_store_t *m = ctx;
  m->has = 1;
  m->limit = limit;
  m->persists++;
  return 0;
}

static uint8_t buf[4096 + MQSEAL_MAX_OVERHEAD];
static MqsealSealer sealer;
static MqsealOpener opener;

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
  mem_store_t mem = {1, p->counter, 0};
  MqsealCounterStore store = {&mem, mem_load, mem_persist};
  MqsealStatus rc = mqseal_sealer_init(&sealer, p->sender_key, p->sender_id, p->suite, &store, 0);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), p->name);
  if (rc != MQSEAL_STATUS_OK) return;
  size_t n = 0;
  rc = mqseal_seal_at(&sealer, p->topic, p->has_timestamp ? &p->timestamp : NULL, p->plaintext.bytes,
                      p->plaintext.len, buf, sizeof buf, &n);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), p->name);
  check(n == p->envelope.len && memcmp(buf, p->envelope.bytes, n) == 0, "sealed envelope differs", p->name);
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "sealer deinit", p->name);

  rc = mqseal_opener_init(&opener, p->open_key, NULL);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), p->name);
  MqsealHeader h;
  size_t off = 0, len = 0;
  rc = mqseal_open(&opener, p->topic, buf, n, NULL, &h, &off, &len);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), p->name);
  check(len == p->plaintext.len && (len == 0 || memcmp(buf + off, p->plaintext.bytes, len) == 0),
        "opened payload differs", p->name);
  check(h.counter == p->counter && h.sender_id == p->sender_id && h.suite == p->suite &&
            h.has_timestamp == (p->has_timestamp ? 1 : 0) && (!p->has_timestamp || h.timestamp == p->timestamp),
        "opened header differs", p->name);
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", p->name);
}

static void negative(const negative_t *t) {
  MqsealOpenerConfig cfg;
  mqseal_opener_config_default(&cfg);
  cfg.window = t->window;
  if (t->has_max_age) {
    cfg.flags |= MQSEAL_OPENER_MAX_AGE;
    cfg.max_age_secs = t->max_age;
  }
  if (t->has_max_skew) {
    cfg.flags |= MQSEAL_OPENER_MAX_SKEW;
    cfg.max_skew_secs = t->max_skew;
  }
  const uint64_t *now = t->has_now ? &t->now : NULL;
  MqsealStatus rc = mqseal_opener_init(&opener, t->open_key, &cfg);
  check(rc == MQSEAL_STATUS_OK, mqseal_error_message(rc), t->name);
  if (rc != MQSEAL_STATUS_OK) return;
  size_t off, len;
  for (size_t i = 0; i < t->n_preopen; i++) {
    memcpy(buf, t->preopen[i].bytes, t->preopen[i].len);
    rc = mqseal_open(&opener, t->topic, buf, t->preopen[i].len, now, NULL, &off, &len);
    check(rc == MQSEAL_STATUS_OK, "preopen envelope did not open", t->name);
  }
  if (t->envelope.len) memcpy(buf, t->envelope.bytes, t->envelope.len);
  rc = mqseal_open(&opener, t->topic, buf, t->envelope.len, now, NULL, &off, &len);
  const char *got = mqseal_error_code_name(rc);
  if (strcmp(got, t->error) != 0) printf("    expected %s, got %s\n", t->error, got);
  check(strcmp(got, t->error) == 0, "wrong error", t->name);
  check(off == 0 && len == 0, "outputs not cleared on error", t->name);
  check(mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK, "opener deinit", t->name);
}

static void misuse(void) {
  const char *key = POSITIVE[0].sender_key;
  mem_store_t mem = {0, 0, 0};
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
  check(mqseal_sealer_init(&sealer, key, 1, 1, &store, 8) == MQSEAL_STATUS_OK, "init", "misuse");
  check(mqseal_seal(&sealer, "t", NULL, 4, out, sizeof out, &n) == MQSEAL_STATUS_NULL_POINTER, "NULL payload",
        "misuse");
  check(mqseal_seal(&sealer, "t", payload, 4, NULL, 64, &n) == MQSEAL_STATUS_NULL_POINTER, "NULL out", "misuse");
  check(mqseal_seal(&sealer, "t", payload, 4, out, sizeof out, NULL) == MQSEAL_STATUS_NULL_POINTER, "NULL out_len",
        "misuse");
  check(mqseal_seal(&sealer, "\xff\xfe", payload, 4, out, sizeof out, &n) == MQSEAL_STATUS_INVALID_ARGUMENT,
        "non-UTF-8 topic", "misuse");
  MqsealStatus rc = mqseal_seal(&sealer, "t", payload, sizeof payload, out, 20, &n);
  check(rc == MQSEAL_STATUS_BUFFER_TOO_SMALL && n > sizeof payload && n <= mqseal_max_envelope_len(sizeof payload),
        "short buffer reports the size needed", "misuse");
  check(mem.persists == 0, "no counter reserved by a failed seal", "misuse");
  rc = mqseal_seal(&sealer, "t", payload, sizeof payload, out, n, &n);
  check(rc == MQSEAL_STATUS_OK && mem.limit == 8, "seal into the size reported", "misuse");
  check(mqseal_seal(&sealer, "t", out, 4, out, sizeof out, &n) == MQSEAL_STATUS_INVALID_ARGUMENT, "overlap",
        "misuse");
  uint64_t next = 0;
  check(mqseal_sealer_next_counter(&sealer, &next) == MQSEAL_STATUS_OK && next == 1, "next counter", "misuse");
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK, "deinit", "misuse");
  check(mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_NOT_INITIALIZED, "double deinit", "misuse");

  size_t off, len;
  MqsealOpenerConfig bad = {.window = 1000};
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
}

int main(void) {
  /* %u and casts: some embedded printf implementations lack %zu. */
  printf("mqseal %s C API: %u positive, %u negative vectors\n", mqseal_version(), (unsigned)N_POSITIVE,
         (unsigned)N_NEGATIVE);
  unsigned vectors_ok = 0, before;
  for (size_t i = 0; i < N_POSITIVE; i++) {
    before = failed;
    positive(&POSITIVE[i]);
    vectors_ok += failed == before;
  }
  for (size_t i = 0; i < N_NEGATIVE; i++) {
    before = failed;
    negative(&NEGATIVE[i]);
    vectors_ok += failed == before;
  }
  misuse();
  printf("%u of %u vectors ok\n", vectors_ok, (unsigned)(N_POSITIVE + N_NEGATIVE));
  printf("checks: %u passed, %u failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
