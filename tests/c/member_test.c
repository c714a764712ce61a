/*
 * The key-distribution vectors (core/tests/vectors/control-v1.json,
 * docs/PROTOCOL.md 14.11) through the C member agent (libmqseal.a): the
 * positive control envelopes must give the exact member-state records and
 * ack envelopes of the file, in order, and a record must resume; the
 * negative ones must be refused with their status and invalidControl
 * reason, with nothing saved and no ack. Then what the C API adds: a
 * failing save callback gives no ack and changes nothing (and no ack
 * counter is used), a saved record that does not validate is refused
 * (invalidSnapshot, never a fresh start), the sealer and opener built from
 * the agent's keys talk to each other, key_seen switches and saves.
 * No heap. Run it under Valgrind too (make test).
 */
#include <stdio.h>
#include <string.h>

#include "control_vectors.h"
#include "memory_store.h"
#include "check.h"
#include "mqseal.h"

/* ---- the save callback: a record in memory, or a failure ---- */

typedef struct {
  uint8_t bytes[MQSEAL_MEMBER_STATE_MAX_LEN];
  size_t len;
  unsigned saves;
  int fail;
} saved_t;

static int32_t save(void *ctx, const uint8_t *record, size_t len) {
  saved_t *s = ctx;
  s->saves++;
  if (s->fail) return MQSEAL_STORE_ERROR;
  if (len > sizeof s->bytes) return MQSEAL_STORE_ERROR;
  memcpy(s->bytes, record, len);
  s->len = len;
  return MQSEAL_STORE_OK;
}

static MqsealMember member, member2;
static MqsealSealer sealer;
static MqsealOpener opener;
static uint8_t env[MQSEAL_CONTROL_ENVELOPE_MAX_LEN];
static uint8_t ack[MQSEAL_MEMBER_ACK_MAX_LEN];
static saved_t saved;

static MqsealStatus init(MqsealMember *m, const uint8_t *record, size_t len) {
  return mqseal_member_init(m, CTL_MEMBER_SECRET, CTL_AUTHORITY_PUBLIC, CTL_MEMBER_ID, NULL, NULL, record, len);
}

/* Handles `e` on `topic` (copied: the agent wipes its buffer). */
static MqsealStatus handle(MqsealMember *m, const char *topic, const bytes_t *e, size_t *ack_len,
                           const char **reason) {
  memcpy(env, e->bytes, e->len);
  return mqseal_member_handle(m, topic, strlen(topic), env, e->len, NULL, save, &saved, ack, sizeof ack, ack_len,
                              reason);
}

static int all_zero(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

static uint64_t epoch_of(MqsealMember *m) {
  uint64_t e = 99;
  if (mqseal_member_epoch(m, &e) != MQSEAL_STATUS_OK) return 99;
  return e;
}

static void topics(void) {
  char t[MQSEAL_CONTROL_TOPIC_MAX];
  expect(init(&member, NULL, 0), MQSEAL_STATUS_OK, "init", "topics");
  expect(mqseal_member_control_topic(&member, t, sizeof t), MQSEAL_STATUS_OK, "control topic", "topics");
  check(strcmp(t, CTL_CONTROL_TOPIC) == 0, "control topic is the file's", "topics");
  expect(mqseal_member_ack_topic(&member, t, sizeof t), MQSEAL_STATUS_OK, "ack topic", "topics");
  check(strcmp(t, CTL_ACK_TOPIC) == 0, "ack topic is the file's", "topics");
  expect(mqseal_member_ack_topic(&member, t, 5), MQSEAL_STATUS_BUFFER_TOO_SMALL, "short topic buffer", "topics");
  check(epoch_of(&member) == 0, "epoch 0 before any state", "topics");
  uint32_t id;
  expect(mqseal_member_sealing(&member, "telemetry", NULL, &id, NULL, NULL), MQSEAL_STATUS_KEY_NOT_FOUND,
         "no keys before the first state", "topics");
  bool has = true;
  uint64_t at;
  expect(mqseal_member_wake_at(&member, NULL, &at, &has), MQSEAL_STATUS_OK, "wake_at", "topics");
  check(!has, "no wake without a clock", "topics");
  expect(mqseal_member_deinit(&member), MQSEAL_STATUS_OK, "deinit", "topics");
  expect(mqseal_member_deinit(&member), MQSEAL_STATUS_NOT_INITIALIZED, "deinit twice", "topics");
}

static void positives(void) {
  size_t n = sizeof CTL_POSITIVE / sizeof CTL_POSITIVE[0];
  expect(init(&member, NULL, 0), MQSEAL_STATUS_OK, "init", "positive");
  for (size_t i = 0; i < n; i++) {
    const ctl_positive_t *p = &CTL_POSITIVE[i];
    size_t ack_len = 0;
    const char *reason = "unset";
    unsigned saves = saved.saves;
    MqsealStatus rc = handle(&member, CTL_CONTROL_TOPIC, &p->envelope, &ack_len, &reason);
    expect(rc, MQSEAL_STATUS_OK, "handle", p->name);
    check(reason && *reason == 0, "no reason on success", p->name);
    check(saved.saves == saves + 1, "saved once", p->name);
    check(saved.len == p->member_state.len && memcmp(saved.bytes, p->member_state.bytes, saved.len) == 0,
          "saved record is the file's", p->name);
    check(ack_len == p->ack_envelope.len && memcmp(ack, p->ack_envelope.bytes, ack_len) == 0,
          "ack envelope is the file's", p->name);
    check(all_zero(env, p->envelope.len), "envelope buffer wiped", p->name);
    check(epoch_of(&member) == p->epoch, "epoch", p->name);
    /* The record resumes. */
    expect(init(&member2, saved.bytes, saved.len), MQSEAL_STATUS_OK, "resume from the saved record", p->name);
    check(epoch_of(&member2) == p->epoch, "resumed epoch", p->name);
    for (size_t g = 0; g < p->n_groups; g++) {
      uint32_t key_id = 0, sender_id = 0;
      uint8_t suite = 0;
      rc = mqseal_member_sealing(&member2, p->groups[g].name, NULL, &key_id, &sender_id, &suite);
      expect(rc, MQSEAL_STATUS_OK, "sealing", p->name);
      check(key_id == p->groups[g].seal_now && sender_id == p->groups[g].now_sender_id &&
                suite == p->groups[g].now_suite,
            "sealing key, sender id and suite are the seal-now key's", p->name);
    }
    expect(mqseal_member_deinit(&member2), MQSEAL_STATUS_OK, "deinit", p->name);
  }
  /* The last state removed the member from every group. */
  expect(mqseal_member_sealing(&member, "telemetry", NULL, NULL, NULL, NULL), MQSEAL_STATUS_KEY_NOT_FOUND,
         "revoked: no telemetry key", "positive");
  expect(mqseal_member_deinit(&member), MQSEAL_STATUS_OK, "deinit", "positive");
}

static void negatives(void) {
  size_t n = sizeof CTL_NEGATIVE / sizeof CTL_NEGATIVE[0];
  check(n >= 25, "at least 25 negative vectors", "negative");
  for (size_t i = 0; i < n; i++) {
    const ctl_negative_t *v = &CTL_NEGATIVE[i];
    size_t ack_len = 1;
    const char *reason = NULL;
    expect(init(&member, NULL, 0), MQSEAL_STATUS_OK, "init", v->name);
    for (size_t j = 0; j < v->after_positive; j++)
      expect(handle(&member, CTL_CONTROL_TOPIC, &CTL_POSITIVE[j].envelope, &ack_len, &reason), MQSEAL_STATUS_OK,
             "apply positive", v->name);
    uint64_t before = epoch_of(&member);
    unsigned saves = saved.saves;
    memset(ack, 0xAA, sizeof ack);
    MqsealStatus rc = handle(&member, v->topic, &v->envelope, &ack_len, &reason);
    if (strcmp(mqseal_error_code_name(rc), v->error) != 0)
      printf("    expected %s, got %s (%d)\n", v->error, mqseal_error_code_name(rc), (int)rc);
    check(strcmp(mqseal_error_code_name(rc), v->error) == 0, "refused with the file's error", v->name);
    check(reason && strcmp(reason, v->reason) == 0, "invalidControl reason is the file's", v->name);
    check(ack_len == 0, "no ack", v->name);
    check(saved.saves == saves, "nothing saved", v->name);
    check(epoch_of(&member) == before, "epoch unchanged", v->name);
    expect(mqseal_member_deinit(&member), MQSEAL_STATUS_OK, "deinit", v->name);
  }
}

/* A save that fails: no ack, no change, and no ack counter used (the next
 * successful apply gives the file's ack, counter 0). */
static void save_failure(void) {
  const ctl_positive_t *p = &CTL_POSITIVE[0];
  size_t ack_len = 7;
  const char *reason = NULL;
  expect(init(&member, NULL, 0), MQSEAL_STATUS_OK, "init", "save failure");
  saved.fail = 1;
  unsigned saves = saved.saves;
  memset(ack, 0xAA, sizeof ack);
  MqsealStatus rc = handle(&member, CTL_CONTROL_TOPIC, &p->envelope, &ack_len, &reason);
  saved.fail = 0;
  expect(rc, MQSEAL_STATUS_COUNTER_STORE, "failing save", "save failure");
  check(strcmp(mqseal_error_reason(rc), "write") == 0, "store reason write", "save failure");
  check(saved.saves == saves + 1, "save was called", "save failure");
  check(ack_len == 0 && all_zero(ack, sizeof ack), "no ack handed out (buffer wiped)", "save failure");
  check(epoch_of(&member) == 0, "no key change", "save failure");
  expect(mqseal_member_sealing(&member, "telemetry", NULL, NULL, NULL, NULL), MQSEAL_STATUS_KEY_NOT_FOUND,
         "no keys", "save failure");
  /* The retained message comes again: now it applies, with the file's ack. */
  rc = handle(&member, CTL_CONTROL_TOPIC, &p->envelope, &ack_len, &reason);
  expect(rc, MQSEAL_STATUS_OK, "apply after the failure", "save failure");
  check(ack_len == p->ack_envelope.len && memcmp(ack, p->ack_envelope.bytes, ack_len) == 0,
        "the ack is the file's (counter 0 not used by the failed attempt)", "save failure");
  /* An ack buffer that is too small is refused before save runs. */
  expect(mqseal_member_deinit(&member), MQSEAL_STATUS_OK, "deinit", "save failure");
  expect(init(&member, NULL, 0), MQSEAL_STATUS_OK, "init", "short ack");
  saves = saved.saves;
  memcpy(env, p->envelope.bytes, p->envelope.len);
  rc = mqseal_member_handle(&member, CTL_CONTROL_TOPIC, strlen(CTL_CONTROL_TOPIC), env, p->envelope.len, NULL, save,
                            &saved, ack, 10, &ack_len, NULL);
  expect(rc, MQSEAL_STATUS_BUFFER_TOO_SMALL, "short ack buffer", "short ack");
  check(saved.saves == saves && epoch_of(&member) == 0, "nothing saved, nothing changed", "short ack");
  memcpy(env, p->envelope.bytes, p->envelope.len);
  rc = mqseal_member_handle(&member, CTL_CONTROL_TOPIC, strlen(CTL_CONTROL_TOPIC), env, p->envelope.len, NULL, NULL,
                            NULL, ack, sizeof ack, &ack_len, NULL);
  expect(rc, MQSEAL_STATUS_NULL_POINTER, "no save callback", "short ack");
  rc = mqseal_member_handle(&member, CTL_CONTROL_TOPIC, strlen(CTL_CONTROL_TOPIC), env, p->envelope.len, NULL, save,
                            &saved, env, sizeof ack, &ack_len, NULL);
  expect(rc, MQSEAL_STATUS_BUFFERS_OVERLAP, "ack over the envelope", "short ack");
  expect(mqseal_member_deinit(&member), MQSEAL_STATUS_OK, "deinit", "short ack");
}

/* A saved record that does not validate is refused, never a fresh start. */
static void corrupt_record(void) {
  static uint8_t record[MQSEAL_MEMBER_STATE_MAX_LEN];
  const bytes_t *good = &CTL_POSITIVE[0].member_state;
  expect(init(&member, good->bytes, good->len), MQSEAL_STATUS_OK, "the file's record", "corrupt record");
  expect(mqseal_member_deinit(&member), MQSEAL_STATUS_OK, "deinit", "corrupt record");
  memcpy(record, good->bytes, good->len);
  record[good->len / 2] ^= 1;
  expect(init(&member, record, good->len), MQSEAL_STATUS_INVALID_SNAPSHOT, "a flipped bit", "corrupt record");
  expect(mqseal_member_epoch(&member, &(uint64_t){0}), MQSEAL_STATUS_NOT_INITIALIZED, "no agent after the refusal",
         "corrupt record");
  expect(init(&member, good->bytes, good->len - 1), MQSEAL_STATUS_INVALID_SNAPSHOT, "truncated", "corrupt record");
  expect(init(&member, good->bytes, 0), MQSEAL_STATUS_INVALID_SNAPSHOT, "empty record (not NULL)", "corrupt record");
  expect(mqseal_member_init(&member, CTL_MEMBER_SECRET, CTL_AUTHORITY_PUBLIC, "sensor-8", NULL, NULL, good->bytes,
                            good->len),
         MQSEAL_STATUS_INVALID_SNAPSHOT, "another member's record", "corrupt record");
  expect(mqseal_member_init(&member, CTL_MEMBER_SECRET, CTL_AUTHORITY_PUBLIC, "sensor/7", NULL, NULL, NULL, 0),
         MQSEAL_STATUS_INVALID_CONTROL, "bad member id", "corrupt record");
  expect(mqseal_member_init(&member, CTL_MEMBER_SECRET, CTL_AUTHORITY_PUBLIC, CTL_MEMBER_ID, "a/#", NULL, NULL, 0),
         MQSEAL_STATUS_INVALID_CONFIG, "bad prefix", "corrupt record");
  expect(mqseal_member_init(&member, CTL_MEMBER_SECRET, NULL, CTL_MEMBER_ID, NULL, NULL, NULL, 0),
         MQSEAL_STATUS_NULL_POINTER, "no authority key", "corrupt record");
}

/* The sealer and the opener built from the agent's keys. */
static void sealer_and_opener(void) {
  static uint8_t out[64 + MQSEAL_MAX_OVERHEAD];
  const char *t = "sensors/sensor-7/up";
  size_t ack_len, n = 0, off = 0, len = 0;
  MqsealHeader h;
  expect(init(&member, NULL, 0), MQSEAL_STATUS_OK, "init", "sealer");
  expect(handle(&member, CTL_CONTROL_TOPIC, &CTL_POSITIVE[0].envelope, &ack_len, NULL), MQSEAL_STATUS_OK, "apply",
         "sealer");
  MqsealCounterStore store = {NULL, load, persist};
  has_stored = 0;
  expect(mqseal_member_sealer_init(&member, "telemetry", NULL, &sealer, &store, 0, true), MQSEAL_STATUS_OK,
         "sealer from the agent", "sealer");
  expect(mqseal_seal(&sealer, t, (const uint8_t *)"21.5", 4, out, sizeof out, &n), MQSEAL_STATUS_OK, "seal",
         "sealer");
  expect(mqseal_member_opener_init(&member, "telemetry", NULL, &opener, NULL), MQSEAL_STATUS_OK,
         "opener from the agent", "sealer");
  expect(mqseal_open(&opener, t, out, n, NULL, &h, &off, &len), MQSEAL_STATUS_OK, "open", "sealer");
  const ctl_group_t *g = &CTL_POSITIVE[0].groups[0];
  check(h.key_id == g->seal_now && h.sender_id == g->now_sender_id && len == 4 && memcmp(out + off, "21.5", 4) == 0,
        "opened under the assigned key id and sender id", "sealer");
  expect(mqseal_member_sealer_init(&member, "nope", NULL, &sealer, &store, 0, false), MQSEAL_STATUS_KEY_NOT_FOUND,
         "no such group", "sealer");
  expect(mqseal_seal(&sealer, t, NULL, 0, out, sizeof out, &n), MQSEAL_STATUS_NOT_INITIALIZED,
         "a failed init leaves no sealer", "sealer");
  /* Without a clock the member switches to the next key when it sees it. */
  bool switched = false;
  unsigned saves = saved.saves;
  expect(mqseal_member_key_seen(&member, "telemetry", g->seal_now, NULL, save, &saved, &switched), MQSEAL_STATUS_OK,
         "key_seen of the current key", "key seen");
  check(!switched && saved.saves == saves, "no switch, nothing saved", "key seen");
  expect(mqseal_member_key_seen(&member, "telemetry", g->seal_next, NULL, save, &saved, &switched), MQSEAL_STATUS_OK,
         "key_seen of the next key", "key seen");
  check(switched && saved.saves == saves + 1, "switched and saved", "key seen");
  uint32_t key_id = 0, sender_id = 0;
  expect(mqseal_member_sealing(&member, "telemetry", NULL, &key_id, &sender_id, NULL), MQSEAL_STATUS_OK, "sealing",
         "key seen");
  check(key_id == g->seal_next && sender_id == g->next_sender_id, "seals with the next key now", "key seen");
  expect(init(&member2, saved.bytes, saved.len), MQSEAL_STATUS_OK, "resume", "key seen");
  expect(mqseal_member_sealing(&member2, "telemetry", NULL, &key_id, NULL, NULL), MQSEAL_STATUS_OK, "sealing",
         "key seen");
  check(key_id == g->seal_next, "the switch was saved", "key seen");
  bool changed = true, has = true;
  uint64_t at = 0;
  expect(mqseal_member_tick(&member2, NULL, &changed, &at, &has), MQSEAL_STATUS_OK, "tick", "key seen");
  check(!has, "tick without a clock: no wake", "key seen");
  expect(mqseal_member_deinit(&member2), MQSEAL_STATUS_OK, "deinit", "key seen");
  /* With a clock: the first state's next key activates at a known time. */
  uint64_t now = 1767225600;
  expect(mqseal_member_wake_at(&member, &now, &at, &has), MQSEAL_STATUS_OK, "wake_at", "clock");
  check(has && at > now, "a wake time after now", "clock");
  expect(mqseal_sealer_deinit(&sealer), MQSEAL_STATUS_NOT_INITIALIZED, "sealer deinit", "sealer");
  expect(mqseal_opener_deinit(&opener), MQSEAL_STATUS_OK, "opener deinit", "sealer");
  expect(mqseal_member_deinit(&member), MQSEAL_STATUS_OK, "deinit", "sealer");
  MqsealMember copy;
  expect(init(&member, NULL, 0), MQSEAL_STATUS_OK, "init", "copy");
  memcpy(&copy, &member, sizeof copy);
  expect(mqseal_member_epoch(&copy, &(uint64_t){0}), MQSEAL_STATUS_HANDLE_MOVED, "a copied handle", "copy");
  expect(mqseal_member_deinit(&copy), MQSEAL_STATUS_HANDLE_MOVED, "deinit of the copy", "copy");
  expect(mqseal_member_deinit(&member), MQSEAL_STATUS_OK, "deinit", "copy");
}

int main(void) {
  topics();
  positives();
  negatives();
  save_failure();
  corrupt_record();
  sealer_and_opener();
  return check_summary("member checks");
}
