// `import wasmUrl from "klaviyo-wasm/klaviyo_wasm_bg.wasm"`: what a bundler's file
// loader gives for the .wasm (esbuild's `--loader:.wasm=file`), a URL as text. esbuild's
// is relative to the bundle: pass `new URL(wasmUrl, import.meta.url)` (README, Bundlers).
declare const wasmUrl: string;
export default wasmUrl;
