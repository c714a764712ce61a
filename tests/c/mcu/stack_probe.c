/*
 * Peak stack of the C API on a Cortex-M4F (QEMU mps2-an386), by stack
 * painting: paint the unused stack below the caller, call one function,
 * find the lowest word that changed.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mqseal.h"
/* load() and persist(): the counter store in memory of examples/c/hello.c. */
#include "memory_store.h"
/* The key-distribution vectors (tests/c/gen_control_vectors.py). */
#include "control_vectors.h"

#define DEPTH (64u * 1024u)
#define MARGIN 256u
#define PAINT 0xA5C35A3Cu

static MqsealSealer sealer;
static MqsealOpener opener;
static uint8_t env[256];
static size_t env_len;
static const char *KEY = "mqseal:key:v1:1:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4";
static uint8_t suite;
static int ok = 1;

static __attribute__((noinline)) void do_sealer_init(void) {
  MqsealCounterStore store = {NULL, load, persist};
  has_stored = 0; /* a new sender for each suite */
  ok &= mqseal_sealer_init_new_sender(&sealer, KEY, 42, suite, &store, 0) == MQSEAL_STATUS_OK;
}
static __attribute__((noinline)) void do_seal(void) {
  ok &= mqseal_seal(&sealer, "factory/line1/temp", (const uint8_t *)"21.5", 4, env, sizeof env, &env_len) ==
        MQSEAL_STATUS_OK;
}
static __attribute__((noinline)) void do_opener_init(void) {
  ok &= mqseal_opener_init(&opener, KEY, NULL) == MQSEAL_STATUS_OK;
}
static __attribute__((noinline)) void do_opener_init_config(void) {
  MqsealOpenerConfig cfg;
  mqseal_opener_config_default(&cfg);
  cfg.window = 64;
  cfg.has_max_age = 1;
  cfg.max_age = 300;
  cfg.has_max_skew = 1;
  cfg.max_skew = 30;
  ok &= mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK;
  ok &= mqseal_opener_init(&opener, KEY, &cfg) == MQSEAL_STATUS_OK;
  ok &= mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK;
  ok &= mqseal_opener_init(&opener, KEY, NULL) == MQSEAL_STATUS_OK;
}
static __attribute__((noinline)) void do_open(void) {
  size_t off, len;
  ok &= mqseal_open(&opener, "factory/line1/temp", env, env_len, NULL, NULL, &off, &len) == MQSEAL_STATUS_OK &&
        len == 4 && memcmp(env + off, "21.5", 4) == 0;
}

static MqsealMember member;
static uint8_t ctl[MQSEAL_CONTROL_ENVELOPE_MAX_LEN];
static uint8_t saved[MQSEAL_MEMBER_STATE_MAX_LEN];
static size_t saved_len;
static int32_t save_ok(void *ctx, const uint8_t *record, size_t len) {
  (void)ctx;
  if (len == 0 || len > sizeof saved) return MQSEAL_STORE_ERROR;
  memcpy(saved, record, len);
  saved_len = len;
  return MQSEAL_STORE_OK;
}
static __attribute__((noinline)) void do_member_init(void) {
  ok &= mqseal_member_init(&member, CTL_MEMBER_SECRET, CTL_AUTHORITY_PUBLIC, CTL_MEMBER_ID, NULL, NULL, NULL, 0) ==
        MQSEAL_STATUS_OK;
}
/* Resuming from the record do_member_handle saved (decoded in place). */
static __attribute__((noinline)) void do_member_init_saved(void) {
  ok &= mqseal_member_init(&member, CTL_MEMBER_SECRET, CTL_AUTHORITY_PUBLIC, CTL_MEMBER_ID, NULL, NULL, saved,
                           saved_len) == MQSEAL_STATUS_OK;
}
static __attribute__((noinline)) void do_member_handle(void) {
  uint8_t ack[MQSEAL_MEMBER_ACK_MAX_LEN];
  size_t ack_len = 0;
  const bytes_t *e = &CTL_POSITIVE[0].envelope;
  memcpy(ctl, e->bytes, e->len);
  ok &= mqseal_member_handle(&member, CTL_CONTROL_TOPIC, strlen(CTL_CONTROL_TOPIC), ctl, e->len, NULL, save_ok, NULL,
                             ack, sizeof ack, &ack_len, NULL) == MQSEAL_STATUS_OK &&
        ack_len == CTL_POSITIVE[0].ack_envelope.len;
}

static __attribute__((noinline)) void paint(uintptr_t top) {
  for (uintptr_t a = top - DEPTH; a < top - MARGIN; a += 4) *(volatile uint32_t *)a = PAINT;
}

static unsigned measure(void (*f)(void)) {
  uintptr_t top;
  __asm volatile("mov %0, sp" : "=r"(top));
  top &= ~(uintptr_t)7;
  paint(top);
  f();
  uintptr_t a = top - DEPTH;
  while (a < top - MARGIN && *(volatile uint32_t *)a == PAINT) a += 4;
  return (unsigned)(top - a);
}

int main(void) {
  const char *names[] = {"", "chacha20poly1305", "hmac-sha256"};
  for (suite = 1; suite <= 2; suite++) {
    unsigned si = measure(do_sealer_init), s = measure(do_seal), oi = measure(do_opener_init);
    unsigned oc = measure(do_opener_init_config), o = measure(do_open);
    printf("STACK C API %s: mqseal_sealer_init %u B, mqseal_seal %u B, mqseal_opener_init %u B (with a config: %u B), "
           "mqseal_open %u B\n",
           names[suite], si, s, oi, oc, o);
    ok &= mqseal_sealer_deinit(&sealer) == MQSEAL_STATUS_OK && mqseal_opener_deinit(&opener) == MQSEAL_STATUS_OK;
  }
  unsigned mi = measure(do_member_init), mh = measure(do_member_handle);
  ok &= saved_len > 0 && mqseal_member_deinit(&member) == MQSEAL_STATUS_OK;
  unsigned mr = measure(do_member_init_saved);
  printf("STACK C API member: mqseal_member_init %u B (resuming from a saved record: %u B), mqseal_member_handle %u B\n",
         mi, mr, mh);
  ok &= mqseal_member_deinit(&member) == MQSEAL_STATUS_OK;
  printf("stack probe: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
