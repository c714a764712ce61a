// The events of the package's classes (Member, SealedClient, MemberClient,
// MemberGroup): one copy of their listeners and their public `on`/`off`. A
// throwing handler must not stop the others, nor MQTT.js: its error is
// rethrown in a microtask.
class Listeners {
  #map = new Map();

  on(event, fn) {
    if (!this.#map.has(event)) this.#map.set(event, new Set());
    this.#map.get(event).add(fn);
  }

  off(event, fn) {
    this.#map.get(event)?.delete(fn);
  }

  emit(event, ...args) {
    for (const fn of [...(this.#map.get(event) ?? [])]) {
      try {
        fn(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}

// Each Evented object's Listeners, reachable from this module only.
const listenersOf = new WeakMap();

/**
 * The base of the classes with events: chainable `on(event, fn)` and
 * `off(event, fn)`. The subclass emits with `emit(this, event, ...args)`
 * (not part of the package's exports).
 */
export class Evented {
  constructor() {
    listenersOf.set(this, new Listeners());
  }

  on(event, fn) {
    listenersOf.get(this).on(event, fn);
    return this;
  }

  off(event, fn) {
    listenersOf.get(this).off(event, fn);
    return this;
  }
}

/** Calls `target`'s handlers of `event` with `args`. */
export function emit(target, event, ...args) {
  listenersOf.get(target).emit(event, ...args);
}
