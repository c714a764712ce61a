// Entry point for browsers and bundlers. Loads the WebAssembly (next to
// wasm/mqseal_wasm.js, resolved with `new URL(..., import.meta.url)`, which
// Vite, webpack 5, Rollup and esbuild understand) before exporting the API.
import init from './wasm/mqseal_wasm.js';
import { wasmReady } from './ready.js';

await init({ module_or_path: new URL('./wasm/mqseal_wasm_bg.wasm', import.meta.url) });
wasmReady();

export * from './api.js';
