// The project's WebAssembly modules: built from src/**/wasm/*.ts by `npm run build`
// (AssemblyScript, stub runtime) into dist/, loaded here by the code that uses them.
import { readFileSync } from 'node:fs';

// The few WebAssembly API types used (the project's lib settings declare no WebAssembly global).
export interface WasmModule {
  readonly __wasmModule?: never;
}
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
}
/** Undefined where WebAssembly is unavailable (e.g. node --jitless): the callers' JavaScript does the work. */
const WASM = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/**
 * The compiled module at `path` in dist/ (e.g. `inspect/wasm/keywords.wasm`): beside this file when
 * running from dist/, in dist/ when running from src/ (the tests); null when it is not built, or
 * WebAssembly (or the SIMD a module uses) is unavailable here.
 */
export function loadWasmModule(path: string): WasmModule | null {
  if (WASM === undefined) return null;
  for (const at of [`./${path}`, `../dist/${path}`]) {
    try {
      return new WASM.Module(readFileSync(new URL(at, import.meta.url)));
    } catch {
      // not there, or not compilable here: try the next place
    }
  }
  return null;
}

/** A new instance of `module`, its exports (an AssemblyScript stub runtime imports only `abort`). */
export function instantiate(module: WasmModule): Record<string, unknown> {
  return new WASM!.Instance(module, { env: { abort: () => {} } }).exports;
}
