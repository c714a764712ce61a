/*
 * The smallest host program over libmqseal.a: seal a reading, open it in a
 * receive buffer of MQSEAL_RECV_BUF_LEN bytes, print it. Written in C89
 * (the header is C89-clean), and built in CI with exactly the compile-and-
 * link line of docs/PORTING.md ("Host build").
 */
#include <stdio.h>
#include <string.h>

#include "mqseal.h"
/* load() and persist(): a counter store in memory, fine for a demo, never
 * for a device (a restart would reuse counters). */
#include "memory_store.h"

#define MAX_PAYLOAD 64

static const char *KEY = "mqseal:key:v1:1:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4";

int main(void) {
  static MqsealSealer sealer;
  static MqsealOpener opener;
  static uint8_t rx[MQSEAL_RECV_BUF_LEN(MAX_PAYLOAD)];
  MqsealCounterStore store;
  MqsealHeader header;
  const char *reading = "21.5 C";
  size_t n = 0, off = 0, len = 0;
  MqsealStatus rc;

  store.ctx = NULL;
  store.load = load;
  store.persist = persist;
  rc = mqseal_sealer_init_new_sender(&sealer, KEY, 17, MQSEAL_SUITE_CHACHA20_POLY1305, &store, 0);
  if (rc == MQSEAL_STATUS_OK) rc = mqseal_opener_init(&opener, KEY, NULL);
  if (rc == MQSEAL_STATUS_OK)
    rc = mqseal_seal(&sealer, "plant/t", (const uint8_t *)reading, strlen(reading), rx, sizeof rx, &n);
  /* rx now holds what the broker would deliver; open it in place. */
  if (rc == MQSEAL_STATUS_OK) rc = mqseal_open(&opener, "plant/t", rx, n, NULL, &header, &off, &len);
  if (rc != MQSEAL_STATUS_OK) {
    fprintf(stderr, "mqseal: %s (%s)\n", mqseal_error_message(rc), mqseal_error_code_name(rc));
    return 1;
  }
  printf("opened %u-byte envelope from sender %u (counter %lu): %.*s\n", (unsigned)n, (unsigned)header.sender_id,
         (unsigned long)header.counter, (int)len, (const char *)rx + off);
  mqseal_sealer_deinit(&sealer);
  mqseal_opener_deinit(&opener);
  return 0;
}
