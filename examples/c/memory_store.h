/*
 * A counter store in memory, with the compare-and-swap the persist contract
 * asks for (docs/PORTING.md): fine for a demo or a test, never for a device
 * (a restart would reuse counters; see docs/PORTING.md for durable ones).
 * Used by hello.c and by the stack probe of tests/c/mcu. C89.
 */
#ifndef MQSEAL_EXAMPLE_MEMORY_STORE_H
#define MQSEAL_EXAMPLE_MEMORY_STORE_H

#include "mqseal.h"

static uint64_t stored;
static int has_stored;

static int32_t load(void *ctx, uint64_t *limit) {
  (void)ctx;
  if (!has_stored) return MQSEAL_STORE_EMPTY;
  *limit = stored;
  return MQSEAL_STORE_LOADED;
}

static int32_t persist(void *ctx, const uint64_t *current, uint64_t limit) {
  (void)ctx;
  if (current ? !(has_stored && stored == *current) : has_stored) return MQSEAL_STORE_CONFLICT;
  stored = limit;
  has_stored = 1;
  return MQSEAL_STORE_OK;
}

#endif
