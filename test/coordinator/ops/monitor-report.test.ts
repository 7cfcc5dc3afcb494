import { describe, it, expect } from 'vitest';
import { monitorReport, type MonitorEntry } from '../../../coordinator/ops/monitor-report.js';

const e = (name: string, vv: number, dot: number[], dd: number[], numel = 10): MonitorEntry => ({ name, sums: { numel, vv, dot, dd } });

describe('monitorReport', () => {
  const entries = [
    e('model.embed_tokens.weight', 4, [2, 0], [1, 1]),
    e('model.layers.0.self_attn.q_proj.weight', 1, [1, -1], [1, 1]),
    e('model.layers.0.mlp.down_proj.weight', 1, [0, 0], [4, 1]),
    e('model.layers.1.self_attn.q_proj.weight', 9, [3, 0], [1, 9]),
    e('model.layers.1.input_layernorm.weight', 0, [0, 0], [0, 0]),
    e('model.norm.weight', 0, [0, 0], [0, 0]),
    e('lm_head.weight', 1, [0, 1], [0, 1]),
  ];

  it('sums in order and forms cosines globally, per layer and per module kind', () => {
    const r = monitorReport(entries, ['ft', 'steered']);
    const ft = r.afters.find((a) => a.name === 'ft')!;
    // global: dot 6, ‖Δ‖² 7, ‖v‖² 16 → 6 / (√7·4)
    expect(ft.global.dot).toBe(6);
    expect(ft.global.cosine).toBeCloseTo(6 / (Math.sqrt(7) * 4), 12);
    expect(ft.layers.map((l) => l.key)).toEqual(['embed', 'layer.0', 'layer.1', 'final', 'head']);
    // layer.0: dot 1, dd 5, vv 2
    expect(ft.layers[1]!.cosine).toBeCloseTo(1 / Math.sqrt(10), 12);
    // final norm: zero norms → undefined cosine
    expect(ft.layers[3]!.cosine).toBeNull();
    // module kinds in fixed order; q sums two layers: dot 4, dd 2, vv 10
    expect(ft.modules.map((m) => m.key)).toEqual(['q', 'down', 'embed', 'head', 'norms']);
    expect(ft.modules[0]!.cosine).toBeCloseTo(4 / Math.sqrt(20), 12);
    expect(ft.modules[0]!.tensors).toBe(2);
    expect(ft.modules[3]!.cosine).toBeNull(); // head: ‖Δ‖ = 0 for ft
  });

  it('ranks afters by global cosine, highest first', () => {
    const r = monitorReport(entries, ['ft', 'steered']);
    // steered: dot 0, so cosine 0 < ft's
    expect(r.afters.map((a) => [a.name, a.rank])).toEqual([['ft', 1], ['steered', 2]]);
    const flipped = monitorReport(entries.map((x) => e(x.name, x.sums.vv, [...x.sums.dot].reverse(), [...x.sums.dd].reverse())), ['a', 'b']);
    expect(flipped.afters[0]!.name).toBe('b');
  });

  it('puts undefined cosines last', () => {
    const r = monitorReport([e('x.weight', 1, [1, 0], [1, 0])], ['zero', 'one'].reverse());
    expect(r.afters.map((a) => a.name)).toEqual(['one', 'zero']);
    expect(r.afters[1]!.global.cosine).toBeNull();
  });
});
