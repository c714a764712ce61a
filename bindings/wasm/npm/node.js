// Entry point for Node (>= 20): loads the WebAssembly from the package
// directory synchronously, then exports the API and the file counter store.
import { readFileSync } from 'node:fs';
import { initSync } from './wasm/mqseal_wasm.js';
import { wasmReady } from './ready.js';

initSync({ module: readFileSync(new URL('./wasm/mqseal_wasm_bg.wasm', import.meta.url)) });
wasmReady();

export * from './api.js';
export { FileCounterStore } from './file-store.js';
