// Values the package reads from the WebAssembly core once it is loaded.
// The entry points (index.js, node.js) load the module and then call
// wasmReady(); api.js fills its exported constants (the core's
// DEFAULT_RESERVATION_BLOCK, ...) from onWasmReady. ES modules evaluate
// api.js before the entry's own body, so these constants cannot be read
// from the core at api.js's top level.
const pending = [];
let ready = false;

export function onWasmReady(fn) {
  if (ready) fn();
  else pending.push(fn);
}

export function wasmReady() {
  ready = true;
  for (const fn of pending.splice(0)) fn();
}
