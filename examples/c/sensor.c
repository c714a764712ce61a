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
 */
#define _DEFAULT_SOURCE /* flock(2) */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
  int fd = open(fs->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return MQSEAL_STORE_ERROR;
  uint8_t line[MQSEAL_COUNTER_FILE_MAX_LEN];
  size_t n = 0;
  if (mqseal_counter_file_encode(limit, line, sizeof line, &n) != MQSEAL_STATUS_OK) {
    close(fd);
    return MQSEAL_STORE_ERROR;
  }
  int ok = write(fd, line, n) == (ssize_t)n && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  /* Atomic replace: after a power loss the file holds the old or the new limit. */
  if (!ok || rename(fs->tmp, fs->path) != 0) return MQSEAL_STORE_ERROR;
  /* Make the rename itself durable. */
  int dfd = open(fs->dir, O_RDONLY);
  if (dfd < 0) return MQSEAL_STORE_ERROR;
  ok = fsync(dfd) == 0;
  close(dfd);
  return ok ? MQSEAL_STORE_OK : MQSEAL_STORE_ERROR;
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

int main(int argc, char **argv) {
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
  fs.path = argv[5];
  snprintf(fs.tmp, sizeof fs.tmp, "%s.tmp", argv[5]);
  snprintf(fs.dir, sizeof fs.dir, "%s", argv[5]);
  char *slash = strrchr(fs.dir, '/');
  if (slash)
    slash[slash == fs.dir ? 1 : 0] = 0;
  else
    snprintf(fs.dir, sizeof fs.dir, ".");
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
