// Entry point for Node (>= 20): loads the WebAssembly from the package
// directory synchronously, then exports the API and the file counter store.
//
// The file is found with `new URL('./wasm/mqseal_wasm_bg.wasm',
// import.meta.url)`: beside this module in the package, and beside the
// bundle when a bundler (esbuild, Rollup, webpack with target node) inlines
// this module. Bundlers do not copy it: the README's "Bundling for Node"
// says where it goes, and a missing file is reported with that advice.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initSync } from './wasm/mqseal_wasm.js';
import { wasmReady } from './ready.js';

const wasmUrl = new URL('./wasm/mqseal_wasm_bg.wasm', import.meta.url);
let wasm;
try {
  wasm = readFileSync(wasmUrl);
} catch (e) {
  if (e?.code !== 'ENOENT') throw e;
  throw new Error(
    `mqseal: the WebAssembly module is missing at ${fileURLToPath(wasmUrl)}. ` +
      'In a bundle, copy node_modules/mqseal/wasm/mqseal_wasm_bg.wasm to wasm/mqseal_wasm_bg.wasm ' +
      'beside the bundle (see "Bundling for Node" in the mqseal README).',
    { cause: e },
  );
}
initSync({ module: wasm });
wasmReady();

export * from './api.js';
export { FileCounterStore } from './file-store.js';
