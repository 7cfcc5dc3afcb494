/**
 * Thread-local scratch buffers for kernels and linear algebra: each pool thread has its own
 * module instance, so a buffer handed out here is never shared between threads. Callers
 * name a slot (unique per use site, e.g. 'lora-apply.delta') and get a view of exactly `n`
 * elements; the steady state allocates nothing. Contents are unspecified on return.
 */

const f32 = new Map<string, Float32Array>();
const f64 = new Map<string, Float64Array>();

export function scratchF32(slot: string, n: number): Float32Array {
  const cur = f32.get(slot);
  if (cur && cur.length >= n) return cur.subarray(0, n);
  const next = new Float32Array(Math.max(n, cur?.length ?? 0));
  f32.set(slot, next);
  return next.subarray(0, n);
}

export function scratchF64(slot: string, n: number): Float64Array {
  const cur = f64.get(slot);
  if (cur && cur.length >= n) return cur.subarray(0, n);
  const next = new Float64Array(Math.max(n, cur?.length ?? 0));
  f64.set(slot, next);
  return next.subarray(0, n);
}
