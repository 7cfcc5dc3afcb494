/**
 * The WebAssembly SIMD backend of the hot loops (bf16 codecs, TIES' selection passes and fused
 * map), as tfjs has a wasm backend beside its cpu one: the same kernels, the same bits, several
 * times faster, because V8 does not vectorise JavaScript loops and WebAssembly SIMD gives
 * 4 × f32 per instruction. The loops are written in AssemblyScript (worker/simd/assembly/),
 * compiled by `npm run build`.
 *
 * Each thread instantiates the module once, with a memory of fixed size that never grows, so
 * the typed arrays viewing it stay valid. The block runner takes its scratch buffers from that
 * memory (`simdBytes`, `simdFloats`), and a kernel whose arrays all live there calls the
 * WebAssembly loop; given other arrays (or with WEIGHTSPACE_SIMD=0), it runs its JavaScript
 * loop, which is also the reference the tests compare the WebAssembly one with.
 *
 * Where the CPU has AVX-512, a native addon (worker/native/kernels.c, built by `npm run build`)
 * replaces the loops that dominate TIES (its window and candidate passes and fused map, over f32
 * or raw BF16 blocks, and the BF16 encode) with 16-lane ones over the same memory, giving the
 * same bits. Without the addon, on another CPU, or with WEIGHTSPACE_NATIVE=0, every loop runs in
 * WebAssembly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { WeightspaceError } from '../../core/errors.js';

// one signature for each family of loops: the f32 form and its BF16-input (and BF16-output) variants
type WindowAbove2 = (
  base: number, x0: number, x1: number, n: number, lo0: number, lo1: number, width: number, counts0: number, counts1: number,
  list0: number, list1: number, above: number,
) => void;
type WindowAbove1 = (base: number, x: number, n: number, lo: number, width: number, counts: number, list: number, above: number) => void;
type HistDeltas = (base: number, x: number, n: number, hist: number) => void;
type HistDeltas2 = (base: number, x0: number, x1: number, n: number, hist: number) => void;
type LowDeltas = (base: number, x: number, n: number, t: number, lo: number) => void;
type LowDeltas2 = (base: number, x0: number, x1: number, n: number, t0: number, t1: number, lo0: number, lo1: number) => void;
type TiesMap1 = (base: number, x0: number, out: number, n: number, f0: number, l0: number, g0: number, w0: number, norm: number, lambda: number) => void;
type TiesMap2 = (
  base: number, x0: number, x1: number, out: number, n: number,
  f0: number, f1: number, l0: number, l1: number, g0: number, g1: number, w0: number, w1: number, norm: number, lambda: number,
) => void;
type TiesMap3 = (
  base: number, x0: number, x1: number, x2: number, out: number, n: number,
  f0: number, f1: number, f2: number, l0: number, l1: number, l2: number, g0: number, g1: number, g2: number,
  w0: number, w1: number, w2: number, norm: number, lambda: number,
) => void;
type Linear4 = (
  x0: number, x1: number, x2: number, x3: number, terms: number, c0: number, c1: number, c2: number, c3: number, b: number, out: number, n: number,
) => void;
type Linear2Exact = (x0: number, x1: number, terms: number, c0: number, c1: number, out: number, n: number) => void;

/** The module's exports: pointers are byte offsets into its memory, n counts elements. */
export interface SimdKernels {
  decodeBf16(src: number, dst: number, n: number): void;
  encodeBf16(src: number, dst: number, n: number): void;
  histDeltas: HistDeltas;
  histDeltasBf16: HistDeltas;
  histDeltas2: HistDeltas2;
  histDeltas2Bf16: HistDeltas2;
  lowDeltas: LowDeltas;
  lowDeltasBf16: LowDeltas;
  lowDeltas2: LowDeltas2;
  lowDeltas2Bf16: LowDeltas2;
  windowAbove2: WindowAbove2;
  windowAbove2Bf16: WindowAbove2;
  windowAbove1: WindowAbove1;
  windowAbove1Bf16: WindowAbove1;
  takeTouched(counts: number, list: number, span: number, out: number): number;
  takeCounts(hist: number, len: number, out: number): number;
  localBucket(hist: number, need: number): number;
  tiesMap1: TiesMap1;
  tiesMap1Bf16: TiesMap1;
  tiesMap2: TiesMap2;
  tiesMap2Bf16: TiesMap2;
  tiesMap3: TiesMap3;
  tiesMap3Bf16: TiesMap3;
  linear4: Linear4;
  linear4Bf16: Linear4;
  linear4Bf16To16: Linear4;
  linear2ExactBf16: Linear2Exact;
  linear2ExactBf16To16: Linear2Exact;
}

/** 64 KiB pages: 128 MiB of address space per thread, resident only where touched. */
const PAGES = 2048;
/** The first page is the module's own (AssemblyScript's static area; the loops keep no data there). */
const ARENA_START = 1 << 16;
const ALIGN = 64;

interface Backend {
  /** the WebAssembly loops */
  readonly wasm: SimdKernels;
  /** the same with the native loops in place of those the addon has, if it loaded */
  readonly native: SimdKernels | undefined;
  readonly memory: WebAssembly.Memory;
  top: number;
}

let backend: Backend | undefined;
let enabled = process.env['WEIGHTSPACE_SIMD'] !== '0';
let nativeEnabled = process.env['WEIGHTSPACE_NATIVE'] !== '0';

export function wasmPath(): string {
  return fileURLToPath(new URL('./build/kernels.wasm', import.meta.url));
}

export function nativePath(): string {
  return fileURLToPath(new URL('./build/weightspace_kernels.node', import.meta.url));
}

/** The loops the addon can replace (it exports those its CPU runs). */
export const NATIVE_LOOPS = [
  'windowAbove1', 'windowAbove2', 'windowAbove1Bf16', 'windowAbove2Bf16',
  'lowDeltas', 'lowDeltas2', 'lowDeltasBf16', 'lowDeltas2Bf16',
  'tiesMap1', 'tiesMap2', 'tiesMap3', 'tiesMap1Bf16', 'tiesMap2Bf16', 'tiesMap3Bf16', 'encodeBf16',
] as const;

interface NativeAddon extends Partial<Pick<SimdKernels, (typeof NATIVE_LOOPS)[number]>> {
  readonly available: boolean;
  setMemory(buffer: ArrayBuffer): void;
}

/** Why the native loops are not in use, or undefined when they are (after the backend loaded). */
export let nativeUnavailable: string | undefined = 'the backend has not loaded';

function loadNative(wasm: SimdKernels, memory: WebAssembly.Memory): SimdKernels | undefined {
  const path = nativePath();
  if (!existsSync(path)) {
    nativeUnavailable = `${path} is missing (the addon was not built)`;
    return undefined;
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    nativeUnavailable = `${path} did not load: ${(err as Error).message}`;
    return undefined;
  }
  if (!addon.available) {
    nativeUnavailable = 'this CPU lacks AVX-512 (F, BW, VL, DQ)';
    return undefined;
  }
  addon.setMemory(memory.buffer);
  const kernels: SimdKernels = { ...wasm };
  for (const name of NATIVE_LOOPS) {
    const loop = addon[name];
    if (loop) Object.assign(kernels, { [name]: loop });
  }
  nativeUnavailable = undefined;
  return kernels;
}

function load(): Backend {
  if (backend) return backend;
  const path = wasmPath();
  if (!existsSync(path)) throw new WeightspaceError('internal', `simd kernels ${path} are missing: run 'npm run build' first`);
  const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES });
  const module = new WebAssembly.Module(readFileSync(path));
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort: () => {
        throw new WeightspaceError('internal', 'simd kernel aborted');
      },
    },
  });
  const wasm = instance.exports as unknown as SimdKernels;
  backend = { wasm, native: loadNative(wasm, memory), memory, top: ARENA_START };
  return backend;
}

/**
 * Turns the native loops off or on for this thread (tests compare them with the WebAssembly ones;
 * WEIGHTSPACE_NATIVE=0 starts off). Returns whether they will run: the addon loaded and is on.
 */
export function setNativeEnabled(on: boolean): boolean {
  nativeEnabled = on;
  return on && load().native !== undefined;
}

/** Turns the backend off or on for this thread (tests compare both; WEIGHTSPACE_SIMD=0 starts off). */
export function setSimdEnabled(on: boolean): void {
  enabled = on;
}

export function simdEnabled(): boolean {
  return enabled;
}

/** How many times this thread's kernels chose the SIMD loops (tests check that a path really ran there). */
export const simdUse = { calls: 0, rawBf16: 0, exactLinear: 0, rawHistogram: 0, rawCandidates: 0 };

/** The kernels, when every array given lives in the module's memory (and the backend is on). */
export function simdFor(...arrays: readonly ArrayBufferView[]): SimdKernels | undefined {
  if (!enabled || !backend) return undefined;
  const buf = backend.memory.buffer;
  for (const a of arrays) if (a.buffer !== buf) return undefined;
  simdUse.calls++;
  return (nativeEnabled && backend.native) || backend.wasm;
}

/** `bytes` bytes of the module's memory (aligned, zeroed on first use), or undefined when it is full or off. */
function alloc(bytes: number): number | undefined {
  if (!enabled) return undefined;
  const b = load();
  const at = b.top;
  const end = at + Math.ceil(bytes / ALIGN) * ALIGN;
  if (end > PAGES << 16) return undefined;
  b.top = end;
  return at;
}

/** Scratch bytes in the module's memory when there is room, else in a buffer of their own. Never freed: callers keep them. */
export function simdBytes(bytes: number): Uint8Array<ArrayBuffer> {
  const at = alloc(bytes);
  return at === undefined ? new Uint8Array(bytes) : new Uint8Array(backend!.memory.buffer, at, bytes);
}

export function simdFloats(n: number): Float32Array<ArrayBuffer> {
  const at = alloc(4 * n);
  return at === undefined ? new Float32Array(n) : new Float32Array(backend!.memory.buffer, at, n);
}

export function simdWords(n: number): Uint32Array<ArrayBuffer> {
  const at = alloc(4 * n);
  return at === undefined ? new Uint32Array(n) : new Uint32Array(backend!.memory.buffer, at, n);
}
