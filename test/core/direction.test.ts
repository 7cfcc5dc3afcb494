import { describe, it, expect } from 'vitest';
import { GLOBAL_DIRECTION, checkDirection, directionFromMeans, directionsFromMeans } from '../../core/direction.js';

/** Reference: plain loops, written independently of the source. */
function naiveDirection(harmful: number[], harmless: number[], orthogonalize: boolean): number[] {
  let r = harmful.map((x, i) => x - harmless[i]!);
  if (orthogonalize) {
    const hn = Math.hypot(...harmless);
    const u = harmless.map((x) => x / hn);
    const d = r.reduce((s, x, i) => s + x * u[i]!, 0);
    r = r.map((x, i) => x - d * u[i]!);
  }
  const n = Math.hypot(...r);
  return r.map((x) => x / n);
}

describe('directionFromMeans', () => {
  it('hand-computed: normalize(μ_harmful − μ_harmless)', () => {
    expect(Array.from(directionFromMeans([4, 3, 1], [1, -1, 1], 'layers.0'))).toEqual([0.6000000238418579, 0.800000011920929, 0]);
  });

  it('hand-computed orthogonalization: the component along the harmless mean is removed first', () => {
    // r = (1, 1) − (0, 2)... : harmful (1, 3), harmless (0, 2): r = (1, 1); μ̂ = (0, 1); r⊥ = (1, 0)
    const r = directionFromMeans([1, 3], [0, 2], 'layers.0', { orthogonalize: true });
    expect(Array.from(r)).toEqual([1, 0]);
  });

  it('matches the naive reference on random means, with and without orthogonalization', () => {
    const h = Array.from({ length: 257 }, (_, i) => Math.sin(i * 1.3) + 0.2);
    const a = Array.from({ length: 257 }, (_, i) => Math.cos(i * 0.7) * 0.5 + 0.1);
    for (const orth of [false, true]) {
      const got = directionFromMeans(h, a, 'layers.5', { orthogonalize: orth });
      const want = naiveDirection(h, a, orth);
      got.forEach((x, i) => expect(x).toBeCloseTo(want[i]!, 6));
      expect(Math.hypot(...got)).toBeCloseTo(1, 6);
      if (orth) expect(Math.abs(got.reduce((s, x, i) => s + x * a[i]!, 0))).toBeLessThan(1e-5);
    }
  });

  it('rejects zero directions, sizes that differ, non-finite means, parallel directions', () => {
    expect(() => directionFromMeans([1, 2], [1, 2], 'layers.3')).toThrow(expect.objectContaining({ code: 'invalid-spec', message: expect.stringMatching(/layer 'layers\.3'.*zero vector/) }));
    expect(() => directionFromMeans([1, 2, 3], [1, 2], 'layers.3')).toThrow(expect.objectContaining({ code: 'shape-mismatch' }));
    expect(() => directionFromMeans([1, Number.NaN], [1, 2], 'layers.3')).toThrow(expect.objectContaining({ code: 'invalid-spec' }));
    expect(() => directionFromMeans([2, 4], [1, 2], 'layers.1', { orthogonalize: true })).toThrow(expect.objectContaining({ code: 'invalid-spec', message: expect.stringMatching(/parallel/) }));
    expect(() => directionFromMeans([2, 4], [0, 0], 'layers.1', { orthogonalize: true })).toThrow(expect.objectContaining({ code: 'invalid-spec', message: expect.stringMatching(/harmless mean is a zero vector/) }));
  });
});

describe('directionsFromMeans', () => {
  const harmful = new Map([['layers.0', [1, 0]], ['layers.1', [0, 3]], ['layers.10', [2, 2]]]);
  const harmless = new Map([['layers.0', [0, 0]], ['layers.1', [0, 1]], ['layers.10', [1, 2]]]);

  it('one direction per layer, in layer order', () => {
    const out = directionsFromMeans(harmful, harmless);
    expect([...out.keys()]).toEqual(['layers.0', 'layers.1', 'layers.10']);
    expect(Array.from(out.get('layers.1')!)).toEqual([0, 1]);
  });

  it('--layer L gives the one global direction', () => {
    const out = directionsFromMeans(harmful, harmless, { layer: 10 });
    expect([...out.keys()]).toEqual([GLOBAL_DIRECTION]);
    expect(Array.from(out.get(GLOBAL_DIRECTION)!)).toEqual([1, 0]);
  });

  it('rejects missing layers, bad names, sizes that differ and an unknown --layer', () => {
    const missing = new Map(harmless);
    missing.delete('layers.1');
    expect(() => directionsFromMeans(harmful, missing)).toThrow(expect.objectContaining({ code: 'invalid-spec', message: "layer 'layers.1' is in the harmful means but missing from the harmless means" }));
    expect(() => directionsFromMeans(new Map([['layer0', [1]]]), harmless)).toThrow(expect.objectContaining({ code: 'invalid-spec' }));
    const wide = new Map(harmful);
    wide.set('layers.1', [0, 3, 1]);
    expect(() => directionsFromMeans(wide, harmless)).toThrow(expect.objectContaining({ code: 'shape-mismatch', message: expect.stringMatching(/'layers\.1' has 3 elements, expected 2/) }));
    expect(() => directionsFromMeans(harmful, harmless, { layer: 4 })).toThrow(expect.objectContaining({ code: 'invalid-spec', message: expect.stringMatching(/layer 4 has no means/) }));
    expect(() => directionsFromMeans(new Map(), harmless)).toThrow(expect.objectContaining({ code: 'invalid-spec' }));
  });
});

describe('checkDirection', () => {
  it('accepts a direction of the hidden size and rejects the wrong size or a zero vector', () => {
    expect(() => checkDirection([0, 1], 2, 'direction', 'dir.safetensors')).not.toThrow();
    expect(() => checkDirection([0, 1, 2], 2, 'direction', 'dir.safetensors')).toThrow(expect.objectContaining({ code: 'shape-mismatch', message: "direction 'direction' in 'dir.safetensors' has 3 elements, expected 2 (the model's hidden size)" }));
    expect(() => checkDirection([0, 0], 2, 'layers.0', 'd')).toThrow(expect.objectContaining({ code: 'invalid-spec' }));
  });
});
