/** Builds safetensors files byte by byte for format tests (independent of the writer under test). */
export function stFile(header: unknown, data: Uint8Array | number = 0, opts: { rawHeader?: Uint8Array; lengthOverride?: bigint } = {}): Uint8Array {
  const h = opts.rawHeader ?? new TextEncoder().encode(JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, opts.lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}
