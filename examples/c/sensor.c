/*
 * A sensor in C with libmosquitto and libmqseal: publishes sealed readings
 * (ChaCha20-Poly1305) that any mqseal receiver verifies (e.g. `mqseal sub`),
 * and accepts only sealed commands (e.g. from `mqseal pub`). The counter
 * limit is kept in a file, replaced atomically (tmp + fsync + rename +
 * fsync of the directory) as a compare-and-swap, the way a device would
 * keep it in NVS or EEPROM. One sensor process per counter file.
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
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
  char line[32] = {0};
  int read_ok = fgets(line, sizeof line, f) != NULL || feof(f);
  int io_error = ferror(f);
  fclose(f);
  if (!read_ok || io_error) return MQSEAL_STORE_ERROR;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(line, &end, 10);
  if (end == line || errno != 0 || (*end != '\n' && *end != 0)) return MQSEAL_STORE_CORRUPT;
  *limit = (uint64_t)v;
  return MQSEAL_STORE_LOADED;
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
  char line[32];
  int n = snprintf(line, sizeof line, "%" PRIu64 "\n", limit);
  int ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
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
