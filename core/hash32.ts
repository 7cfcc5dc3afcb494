/**
 * 32-bit hashing for keys and counter-based noise: FNV-1a over a string's UTF-16 code units,
 * and murmur3's 32-bit finaliser (fmix32) to spread the bits. Used to key RNG streams by
 * tensor name; pure functions, so every thread and node derives the same keys.
 */

/** murmur3's finaliser: a bijective 32-bit mix. */
export function fmix32(h0: number): number {
  let h = h0 >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string. */
export function fnv1a(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
