/*
 * A sensor in C with libmosquitto and libmqseal: publishes sealed readings
 * (ChaCha20-Poly1305) that any mqseal receiver verifies (e.g. `mqseal sub`),
 * and accepts only sealed commands (e.g. from `mqseal pub`). The counter
 * limit is kept in a counter file in the format of docs/STATE.md
 * (`mqseal-counter v1 <limit>`, encoded and checked by the library's
 * mqseal_counter_file_encode / _decode, so the Rust CLI, Python and Node
 * read the same file), replaced atomically (tmp + fsync + rename + fsync of
 * the directory) as a compare-and-swap, the way a device would keep it in
 * NVS or EEPROM. One process per counter file: the sensor holds an
 * exclusive flock on COUNTER_FILE.lock (with its pid) while it runs, as
 * the Rust FileCounterStore does, and refuses to start when another holds it.
 *
 *   sensor HOST PORT KEY_FILE SENDER_ID COUNTER_FILE UP_TOPIC CMD_TOPIC MIN_READINGS [--new-sender]
 *
 * A missing counter file is refused (lost state would reuse counters)
 * unless --new-sender says this is a new sender: the file is then created
 * holding 0.
 *
 * Publishes a reading every 200 ms; exits 0 once it has published
 * MIN_READINGS readings and received one verified command, 2 after 30 s.
 *
 *   sensor --member DIR HOST PORT UP_TOPIC MIN_READINGS [SECONDS]
 *
 * Member mode (key distribution, docs/PROTOCOL.md 14; C API in
 * docs/PORTING.md): DIR holds `secret` (the member's X25519 secret key
 * text), `authority.public` and `id` (the member id). The sensor keeps its
 * member-state record in DIR/state (replaced durably, as the counter file;
 * a state file that does not validate is refused), subscribes to its
 * control topic, saves each new state before it publishes the ack, and
 * seals readings under the key and sender id assigned for group
 * "telemetry" (counter file DIR/counter-<key id>-<sender id>). No clock:
 * it seals with the seal-now key. Exits 0 once it has published
 * MIN_READINGS readings, 2 after 30 s. With SECONDS, it stays connected
 * after its readings (still applying and acking control messages) until
 * SECONDS have passed or SIGTERM, then exits 0 if it published them all
 * (the fleet test, scripts/test-parts/36-fleet.sh).
 */
#define _DEFAULT_SOURCE /* flock(2) */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "mqseal.h"

/* ---- counter store in a file ---- */

typedef struct {
  const char *path;
  char tmp[512];
  char dir[512];
} file_store_t;

/* Sets the tmp and directory paths of a file store over `path`. */
static void file_store_at(file_store_t *fs, const char *path) {
  fs->path = path;
  snprintf(fs->tmp, sizeof fs->tmp, "%s.tmp", path);
  snprintf(fs->dir, sizeof fs->dir, "%s", path);
  char *slash = strrchr(fs->dir, '/');
  if (slash)
    slash[slash == fs->dir ? 1 : 0] = 0;
  else
    snprintf(fs->dir, sizeof fs->dir, ".");
}

/* Replaces the file by `n` bytes, durably and atomically: after a power
 * loss it holds the old or the new contents (tmp file created 0600,
 * fsync, rename, fsync of the directory). */
static int32_t durable_replace(const file_store_t *fs, const uint8_t *bytes, size_t n) {
  int fd = open(fs->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return MQSEAL_STORE_ERROR;
  int ok = write(fd, bytes, n) == (ssize_t)n && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(fs->tmp, fs->path) != 0) return MQSEAL_STORE_ERROR;
  /* Make the rename itself durable. */
  int dfd = open(fs->dir, O_RDONLY);
  if (dfd < 0) return MQSEAL_STORE_ERROR;
  ok = fsync(dfd) == 0;
  close(dfd);
  return ok ? MQSEAL_STORE_OK : MQSEAL_STORE_ERROR;
}

static int32_t file_load(void *ctx, uint64_t *limit) {
  file_store_t *fs = ctx;
  FILE *f = fopen(fs->path, "r");
  /* Only "no such file" means no counter; any other failure is an error. */
  if (!f) return errno == ENOENT ? MQSEAL_STORE_EMPTY : MQSEAL_STORE_ERROR;
  uint8_t buf[MQSEAL_COUNTER_FILE_MAX_LEN + 1];
  size_t n = fread(buf, 1, sizeof buf, f);
  int io_error = ferror(f);
  fclose(f);
  if (io_error) return MQSEAL_STORE_ERROR;
  /* The format is the library's: one decoder for every language. */
  return mqseal_counter_file_decode(buf, n, limit) == MQSEAL_STATUS_OK ? MQSEAL_STORE_LOADED : MQSEAL_STORE_CORRUPT;
}

/* Compare-and-swap: replace *current (no file when NULL) by limit. */
static int32_t file_persist(void *ctx, const uint64_t *current, uint64_t limit) {
  file_store_t *fs = ctx;
  uint64_t stored = 0;
  int32_t r = file_load(ctx, &stored);
  if (r != MQSEAL_STORE_LOADED && r != MQSEAL_STORE_EMPTY) return MQSEAL_STORE_ERROR;
  int holds_current = current ? (r == MQSEAL_STORE_LOADED && stored == *current) : r == MQSEAL_STORE_EMPTY;
  if (!holds_current || (r == MQSEAL_STORE_LOADED && limit <= stored)) return MQSEAL_STORE_CONFLICT;
  uint8_t line[MQSEAL_COUNTER_FILE_MAX_LEN];
  size_t n = 0;
  if (mqseal_counter_file_encode(limit, line, sizeof line, &n) != MQSEAL_STATUS_OK) return MQSEAL_STORE_ERROR;
  return durable_replace(fs, line, n);
}

/* The lock of docs/STATE.md: an exclusive flock on COUNTER_FILE.lock, held
 * for the whole run (never on the counter file itself: the rename replaces
 * it), with our pid for messages. The OS releases it when we exit. */
static int lock_counter_file(const char *path) {
  char lock_path[520];
  snprintf(lock_path, sizeof lock_path, "%s.lock", path);
  int fd = open(lock_path, O_RDWR | O_CREAT, 0600);
  if (fd < 0) {
    fprintf(stderr, "cannot open lock file %s: %s\n", lock_path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    fprintf(stderr, "counter file %s is locked by another process (%s) [counterStore locked]\n", path, lock_path);
    close(fd);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n) {
    fprintf(stderr, "cannot write lock file %s\n", lock_path);
    close(fd);
    return -1;
  }
  return fd; /* kept open: the lock lasts as long as the process */
}

/* ---- state ---- */

static MqsealSealer sealer;
static MqsealOpener opener;
static int got_command;
static uint8_t rx[1024];

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
  (void)m;
  (void)ud;
  if (msg->payloadlen < 0 || (size_t)msg->payloadlen > sizeof rx) {
    printf("rejected message on %s: too large\n", msg->topic);
    return;
  }
  memcpy(rx, msg->payload, (size_t)msg->payloadlen);
  MqsealHeader h;
  size_t off, len;
  MqsealStatus rc =
      mqseal_open_n(&opener, msg->topic, strlen(msg->topic), rx, (size_t)msg->payloadlen, NULL, &h, &off, &len);
  if (rc != MQSEAL_STATUS_OK) {
    /* Forged, replayed, duplicate, or not an envelope: drop it. */
    printf("rejected message on %s: %s (%s)\n", msg->topic, mqseal_error_code_name(rc), mqseal_error_message(rc));
  } else {
    printf("verified command on %s from sender %" PRIu32 " (counter %" PRIu64 "): %.*s\n", msg->topic, h.sender_id,
           h.counter, (int)len, (const char *)rx + off);
    got_command = 1;
  }
  fflush(stdout);
}

static int read_key(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(out, 1, cap - 1, f);
  fclose(f);
  out[n] = 0;
  while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) out[--n] = 0;
  return n ? 0 : -1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- member mode: keys from the authority (docs/PROTOCOL.md 14) ---- */

static MqsealMember member;
static file_store_t state_fs, counter_fs;
static char member_dir[400], state_path[512], counter_path[512], ctl_topic[MQSEAL_CONTROL_TOPIC_MAX],
    ack_topic[MQSEAL_CONTROL_TOPIC_MAX];
static uint8_t ctl_rx[MQSEAL_CONTROL_ENVELOPE_MAX_LEN];
static int have_sealer, rebuild;

/* The member's save callback: the state record, replaced durably before
 * the agent acks or uses the new keys. */
static int32_t save_state(void *ctx, const uint8_t *record, size_t len) { return durable_replace(ctx, record, len); }

static void print_status(const char *what, MqsealStatus rc, const char *reason) {
  fprintf(stderr, "%s: %s [%s%s%s]\n", what, mqseal_error_message(rc), mqseal_error_code_name(rc),
          *reason ? " " : "", reason);
}

/* (Re)builds the sealer with the key the authority assigned for group
 * "telemetry": a (key id, sender id) seen for the first time right after a
 * control message is a new sender (its counter file is created holding 0);
 * otherwise its counter file must be there (lost state is refused). */
static int build_sealer(int after_control) {
  uint32_t key_id = 0, sender_id = 0;
  uint8_t suite = 0;
  if (have_sealer) mqseal_sealer_deinit(&sealer);
  have_sealer = 0;
  MqsealStatus rc = mqseal_member_sealing(&member, "telemetry", NULL, &key_id, &sender_id, &suite);
  if (rc == MQSEAL_STATUS_KEY_NOT_FOUND) {
    printf("no telemetry key assigned\n");
    return 0;
  }
  snprintf(counter_path, sizeof counter_path, "%s/counter-%" PRIu32 "-%" PRIu32, member_dir, key_id, sender_id);
  file_store_at(&counter_fs, counter_path);
  int new_sender = after_control && access(counter_path, F_OK) != 0 && errno == ENOENT;
  MqsealCounterStore store = {&counter_fs, file_load, file_persist};
  rc = mqseal_member_sealer_init(&member, "telemetry", NULL, &sealer, &store, 8, new_sender);
  if (rc != MQSEAL_STATUS_OK) {
    print_status("member sealer init", rc, mqseal_error_reason(rc));
    return -1;
  }
  have_sealer = 1;
  printf("sealing telemetry under key %" PRIu32 " as sender %" PRIu32 " (suite %u)\n", key_id, sender_id,
         (unsigned)suite);
  fflush(stdout);
  return 0;
}

static void on_member_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
  (void)ud;
  if (strcmp(msg->topic, ctl_topic) != 0) return;
  if (msg->payloadlen < 0 || (size_t)msg->payloadlen > sizeof ctl_rx) {
    printf("rejected control message: too large\n");
    return;
  }
  memcpy(ctl_rx, msg->payload, (size_t)msg->payloadlen);
  uint8_t ack[MQSEAL_MEMBER_ACK_MAX_LEN];
  size_t ack_len = 0;
  const char *reason = "";
  MqsealStatus rc = mqseal_member_handle(&member, msg->topic, strlen(msg->topic), ctl_rx, (size_t)msg->payloadlen,
                                         NULL, save_state, &state_fs, ack, sizeof ack, &ack_len, &reason);
  if (rc != MQSEAL_STATUS_OK) {
    /* A retained message seen again is a duplicate: nothing to do. */
    printf("rejected control message: %s%s%s\n", mqseal_error_code_name(rc), *reason ? " " : "", reason);
  } else {
    uint64_t epoch = 0;
    mqseal_member_epoch(&member, &epoch);
    /* The state is saved: now the ack may go out and the keys be used. */
    int prc = mosquitto_publish(m, NULL, ack_topic, (int)ack_len, ack, 1, false);
    printf("applied epoch %" PRIu64 "; ack %s\n", epoch, prc == MOSQ_ERR_SUCCESS ? "published" : "not published");
    rebuild = 1;
  }
  fflush(stdout);
}

/* Reads the whole (small) file at `path` into `out`: its length, 0 when
 * it does not exist, -1 on error or when it is larger than `cap`. */
static long read_file(const char *path, uint8_t *out, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? 0 : -1;
  size_t n = fread(out, 1, cap, f);
  int bad = ferror(f) || fgetc(f) != EOF;
  fclose(f);
  return bad ? -1 : (long)n;
}

static volatile sig_atomic_t terminated;
static void on_term(int sig) {
  (void)sig;
  terminated = 1;
}

/* sensor --member DIR HOST PORT UP_TOPIC MIN_READINGS [SECONDS] */
static int member_main(int argc, char **argv) {
  if (argc != 7 && argc != 8) {
    fprintf(stderr, "usage: %s --member DIR HOST PORT UP_TOPIC MIN_READINGS [SECONDS]\n", argv[0]);
    return 64;
  }
  const char *host = argv[3], *up = argv[5];
  int port = atoi(argv[4]), min_readings = atoi(argv[6]);
  /* With SECONDS: stay for that long (or until SIGTERM) after the readings. */
  double seconds = argc == 8 ? atof(argv[7]) : 30.0;
  int linger = argc == 8;
  signal(SIGTERM, on_term);
  static char secret[256], authority[256], id[128], path[512];
  snprintf(member_dir, sizeof member_dir, "%s", argv[2]);
  const char *names[] = {"secret", "authority.public", "id"};
  char *texts[] = {secret, authority, id};
  size_t caps[] = {sizeof secret, sizeof authority, sizeof id};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", member_dir, names[i]);
    if (read_key(path, texts[i], caps[i]) != 0) {
      fprintf(stderr, "cannot read %s\n", path);
      return 1;
    }
  }
  snprintf(state_path, sizeof state_path, "%s/state", member_dir);
  file_store_at(&state_fs, state_path);
  if (lock_counter_file(state_path) < 0) return 1;
  static uint8_t record[MQSEAL_MEMBER_STATE_MAX_LEN];
  long n = read_file(state_path, record, sizeof record);
  if (n < 0) {
    fprintf(stderr, "cannot read member state %s\n", state_path);
    return 1;
  }
  /* No state file: a member just enrolled. A state file that does not
   * validate is refused (invalidSnapshot), never a fresh start. */
  MqsealStatus rc = mqseal_member_init(&member, secret, authority, id, NULL, NULL, n ? record : NULL, (size_t)n);
  memset(record, 0, sizeof record);
  memset(secret, 0, sizeof secret);
  if (rc != MQSEAL_STATUS_OK) {
    print_status("member init", rc, "");
    return 1;
  }
  mqseal_member_control_topic(&member, ctl_topic, sizeof ctl_topic);
  mqseal_member_ack_topic(&member, ack_topic, sizeof ack_topic);
  if (n && build_sealer(0) != 0) return 1;

  mosquitto_lib_init();
  struct mosquitto *mosq = mosquitto_new(NULL, true, NULL);
  if (!mosq) return 1;
  mosquitto_message_callback_set(mosq, on_member_message);
  if (mosquitto_connect(mosq, host, port, 30) != MOSQ_ERR_SUCCESS ||
      mosquitto_subscribe(mosq, NULL, ctl_topic, 1) != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "cannot connect/subscribe to %s:%d\n", host, port);
    return 1;
  }
  printf("member %s subscribed to %s\n", id, ctl_topic);
  fflush(stdout);
  int published = 0, status = 2;
  double start = now_s(), next = start;
  static uint8_t env[256];
  while (now_s() - start < seconds && status == 2 && !terminated) {
    if (rebuild) {
      rebuild = 0;
      if (build_sealer(1) != 0) status = 1;
    }
    if (published >= min_readings && !linger) status = 0;
    if (have_sealer && status == 2 && published < min_readings && now_s() >= next) {
      char reading[64];
      int len = snprintf(reading, sizeof reading, "reading %d temp=21.%d", published + 1, published % 10);
      size_t env_len = 0;
      rc = mqseal_seal(&sealer, up, (const uint8_t *)reading, (size_t)len, env, sizeof env, &env_len);
      if (rc != MQSEAL_STATUS_OK || mosquitto_publish(mosq, NULL, up, (int)env_len, env, 1, false) != MOSQ_ERR_SUCCESS) {
        print_status("seal/publish", rc, mqseal_error_reason(rc));
        status = 1;
      }
      published++;
      next += 0.2;
    }
    int lrc = mosquitto_loop(mosq, 50, 1);
    if (lrc != MOSQ_ERR_SUCCESS) mosquitto_reconnect(mosq);
  }
  if (linger && status == 2 && published >= min_readings) status = 0;
  for (int i = 0; i < 10; i++) mosquitto_loop(mosq, 50, 1);
  printf("published %d sealed readings as a member; %s\n", published, status == 0 ? "done" : "not done");
  mosquitto_disconnect(mosq);
  mosquitto_destroy(mosq);
  mosquitto_lib_cleanup();
  if (have_sealer) mqseal_sealer_deinit(&sealer);
  mqseal_member_deinit(&member);
  return status;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--member") == 0) return member_main(argc, argv);
  int new_sender = argc == 10 && strcmp(argv[9], "--new-sender") == 0;
  if (argc != 9 && !new_sender) {
    fprintf(stderr,
            "usage: %s HOST PORT KEY_FILE SENDER_ID COUNTER_FILE UP_TOPIC CMD_TOPIC MIN_READINGS [--new-sender]\n",
            argv[0]);
    return 64;
  }
  const char *host = argv[1], *up = argv[6], *cmd = argv[7];
  int port = atoi(argv[2]);
  uint32_t sender_id = (uint32_t)strtoul(argv[4], NULL, 10);
  int min_readings = atoi(argv[8]);
  static char key[256];
  if (read_key(argv[3], key, sizeof key) != 0) {
    fprintf(stderr, "cannot read key file %s\n", argv[3]);
    return 1;
  }

  static file_store_t fs;
  file_store_at(&fs, argv[5]);
  if (lock_counter_file(fs.path) < 0) return 1;
  MqsealCounterStore store = {&fs, file_load, file_persist};
  MqsealStatus rc = new_sender
                        ? mqseal_sealer_init_new_sender(&sealer, key, sender_id, MQSEAL_SUITE_CHACHA20_POLY1305, &store, 8)
                        : mqseal_sealer_init(&sealer, key, sender_id, MQSEAL_SUITE_CHACHA20_POLY1305, &store, 8);
  if (rc != MQSEAL_STATUS_OK) {
    fprintf(stderr, "mqseal sealer init (counter file %s): %s [%s%s%s]\n", fs.path, mqseal_error_message(rc),
            mqseal_error_code_name(rc), *mqseal_error_reason(rc) ? " " : "", mqseal_error_reason(rc));
    return 1;
  }
  rc = mqseal_opener_init(&opener, key, NULL);
  if (rc != MQSEAL_STATUS_OK) {
    fprintf(stderr, "mqseal opener init: %s\n", mqseal_error_message(rc));
    return 1;
  }

  mosquitto_lib_init();
  struct mosquitto *mosq = mosquitto_new(NULL, true, NULL);
  if (!mosq) return 1;
  mosquitto_message_callback_set(mosq, on_message);
  if (mosquitto_connect(mosq, host, port, 30) != MOSQ_ERR_SUCCESS ||
      mosquitto_subscribe(mosq, NULL, cmd, 1) != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "cannot connect/subscribe to %s:%d\n", host, port);
    return 1;
  }

  int published = 0, status = 2;
  double start = now_s(), next = start;
  static uint8_t env[256];
  while (now_s() - start < 30.0) {
    if (got_command && published >= min_readings) {
      status = 0;
      break;
    }
    if (now_s() >= next) {
      char reading[64];
      int n = snprintf(reading, sizeof reading, "reading %d temp=21.%d", published + 1, published % 10);
      size_t env_len = 0;
      rc = mqseal_seal(&sealer, up, (const uint8_t *)reading, (size_t)n, env, sizeof env, &env_len);
      if (rc != MQSEAL_STATUS_OK) {
        fprintf(stderr, "seal: %s [%s%s%s]\n", mqseal_error_message(rc), mqseal_error_code_name(rc),
                *mqseal_error_reason(rc) ? " " : "", mqseal_error_reason(rc));
        status = 1;
        break;
      }
      if (mosquitto_publish(mosq, NULL, up, (int)env_len, env, 1, false) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "publish failed\n");
        status = 1;
        break;
      }
      published++;
      next += 0.2;
    }
    int lrc = mosquitto_loop(mosq, 50, 1);
    if (lrc != MOSQ_ERR_SUCCESS) {
      fprintf(stderr, "mosquitto_loop: %s\n", mosquitto_strerror(lrc));
      mosquitto_reconnect(mosq);
    }
  }
  /* Let the last QoS 1 publishes complete before disconnecting. */
  for (int i = 0; i < 10; i++) mosquitto_loop(mosq, 50, 1);
  uint64_t counter = 0;
  mqseal_sealer_next_counter(&sealer, &counter);
  printf("published %d sealed readings; next counter %" PRIu64 "; %s\n", published, counter,
         status == 0 ? "done" : "no verified command");
  mosquitto_disconnect(mosq);
  mosquitto_destroy(mosq);
  mosquitto_lib_cleanup();
  mqseal_sealer_deinit(&sealer);
  mqseal_opener_deinit(&opener);
  return status;
}
