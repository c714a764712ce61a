// Event listeners of the package's classes (Member, SealedClient,
// MemberClient, MemberGroup): one copy, and their public `on`/`off`. A throwing handler must not stop the
// others, nor MQTT.js: its error is rethrown in a microtask.
export class Listeners {
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

/**
 * The base of the classes with events: chainable `on(event, fn)` and
 * `off(event, fn)` over the Listeners the subclass hands to `super` and
 * keeps, privately, to emit on.
 */
export class Evented {
  #listeners;

  constructor(listeners) {
    this.#listeners = listeners;
  }

  on(event, fn) {
    this.#listeners.on(event, fn);
    return this;
  }

  off(event, fn) {
    this.#listeners.off(event, fn);
    return this;
  }
}
