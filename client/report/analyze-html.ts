/**
 * The analysis report as one self-contained HTML file: inline CSS and SVG, no script, no
 * network. Charts a person reads at a glance: the cosine and sign-conflict matrices between
 * task vectors, per-layer heatmaps of ‖δ‖/‖θ₀‖ (module kind × layer) and of pairwise cosines,
 * spectra per module kind (σ̂ₖ/σ̂₁, log scale), and the rank statistics.
 */
import type { AnalyzeReport, TensorStats } from '../../coordinator/ops/analyze-report.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toFixed(digits));

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

/** Sequential colour, white → deep blue, for t in [0, 1]. */
function seq(t: number): string {
  const u = Math.max(0, Math.min(1, t));
  const r = Math.round(247 - u * (247 - 8));
  const g = Math.round(251 - u * (251 - 48));
  const b = Math.round(255 - u * (255 - 107));
  return `rgb(${r},${g},${b})`;
}

/** Diverging colour for t in [-1, 1]: red (−1), white (0), blue (+1). */
function div(t: number): string {
  const u = Math.max(-1, Math.min(1, t));
  if (u >= 0) return `rgb(${Math.round(255 - u * 222)},${Math.round(255 - u * 153)},${Math.round(255 - u * 83)})`;
  const v = -u;
  return `rgb(${Math.round(255 - v * 41)},${Math.round(255 - v * 216)},${Math.round(255 - v * 216)})`;
}

interface Heatmap {
  readonly title: string;
  readonly rows: readonly string[];
  readonly cols: readonly string[];
  /** values[row][col]; null cells are hatched grey */
  readonly values: readonly (readonly (number | null)[])[];
  readonly color: (v: number) => string;
  readonly label?: (v: number) => string;
  readonly cell?: number;
  /** cell width when labels need more room than the height */
  readonly cellWidth?: number;
}

function heatmap(h: Heatmap): string {
  const cell = h.cell ?? (h.cols.length > 24 ? 18 : 34);
  const cw = h.cellWidth ?? cell;
  const left = 12 + 7 * Math.max(4, ...h.rows.map((r) => r.length));
  const top = 30 + (h.cols.some((c) => c.length > 3) ? 40 : 12);
  const w = Math.max(left + cw * h.cols.length + 10, 12 + 8 * h.title.length);
  const hh = top + cell * h.rows.length + 10;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${hh}" role="img" aria-label="${esc(h.title)}">`, `<text x="4" y="16" class="t">${esc(h.title)}</text>`];
  h.cols.forEach((c, j) => {
    const x = left + j * cw + cw / 2;
    parts.push(c.length > 3 ? `<text x="${x}" y="${top - 6}" class="l" transform="rotate(-50 ${x} ${top - 6})">${esc(c)}</text>` : `<text x="${x}" y="${top - 6}" class="l" text-anchor="middle">${esc(c)}</text>`);
  });
  h.rows.forEach((r, i) => {
    parts.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" class="l" text-anchor="end">${esc(r)}</text>`);
    h.cols.forEach((_, j) => {
      const v = h.values[i]?.[j] ?? null;
      const x = left + j * cw;
      const y = top + i * cell;
      const fill = v === null || !Number.isFinite(v) ? '#e5e5e5' : h.color(v);
      parts.push(`<rect x="${x}" y="${y}" width="${cw - 1}" height="${cell - 1}" fill="${fill}"><title>${esc(`${r} / ${h.cols[j]}: ${num(v, 4)}`)}</title></rect>`);
      // dark cells get light text
      const dark = fill.startsWith('rgb(') && fill.slice(4, -1).split(',').map(Number).reduce((a, b) => a + b, 0) < 330;
      if (h.label && v !== null && Number.isFinite(v) && cell >= 30) parts.push(`<text x="${x + cw / 2}" y="${y + cell / 2 + 4}" class="v${dark ? ' vw' : ''}" text-anchor="middle">${esc(h.label(v))}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('');
}

interface Series {
  readonly name: string;
  readonly ys: readonly number[];
  readonly color: string;
}

/** A line chart with a log-scaled y axis (for spectra σ̂ₖ/σ̂₁). */
function logLines(title: string, series: readonly Series[], xLabel: string): string {
  const W = 360;
  const H = 220;
  const L = 46;
  const B = 30;
  const pos = series.flatMap((s) => s.ys.filter((y) => y > 0));
  const lo = Math.max(1e-6, Math.min(1, ...pos));
  const decades = Math.max(1, Math.ceil(-Math.log10(lo)));
  const n = Math.max(2, ...series.map((s) => s.ys.length));
  const x = (k: number): number => L + (k / (n - 1)) * (W - L - 10);
  const y = (v: number): number => 20 + (Math.min(decades, -Math.log10(Math.max(v, 10 ** -decades))) / decades) * (H - B - 20);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`, `<text x="4" y="14" class="t">${esc(title)}</text>`];
  for (let d = 0; d <= decades; d++) {
    const yy = y(10 ** -d);
    parts.push(`<line x1="${L}" x2="${W - 10}" y1="${yy}" y2="${yy}" stroke="#ddd"/><text x="${L - 4}" y="${yy + 4}" class="l" text-anchor="end">1e-${d}</text>`);
  }
  parts.push(`<line x1="${L}" x2="${L}" y1="20" y2="${H - B}" stroke="#888"/><line x1="${L}" x2="${W - 10}" y1="${H - B}" y2="${H - B}" stroke="#888"/>`);
  parts.push(`<text x="${(L + W) / 2}" y="${H - 6}" class="l" text-anchor="middle">${esc(xLabel)}</text>`);
  for (const s of series) {
    const pts = s.ys.map((v, k) => `${x(k).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"><title>${esc(s.name)}</title></polyline>`);
  }
  series.forEach((s, i) => parts.push(`<rect x="${W - 120}" y="${24 + i * 14}" width="10" height="10" fill="${s.color}"/><text x="${W - 106}" y="${33 + i * 14}" class="l">${esc(s.name)}</text>`));
  parts.push('</svg>');
  return parts.join('');
}

/** ‖δ‖/‖θ₀‖ per (module kind, layer) for model i, combined from the per-tensor sums. */
function layerKindGrid(tensors: readonly TensorStats[], i: number, layers: readonly number[], kinds: readonly string[]): (number | null)[][] {
  return kinds.map((k) => layers.map((l) => {
    let d2 = 0;
    let b2 = 0;
    let seen = false;
    for (const t of tensors) {
      if (t.kind !== k || t.layer !== l) continue;
      seen = true;
      d2 += t.deltaNorm[i]! ** 2;
      b2 += t.baseNorm ** 2;
    }
    return seen && b2 > 0 ? Math.sqrt(d2 / b2) : null;
  }));
}

export interface AnalyzeHtmlMeta {
  readonly base: string;
  readonly models: Readonly<Record<string, string>>;
  readonly generated?: string;
}

export function renderAnalyzeHtml(r: AnalyzeReport, meta: AnalyzeHtmlMeta): string {
  const m = r.models.length;
  const layerIdx = [...new Set(r.tensors.map((t) => t.layer).filter((l): l is number => l !== null))].sort((a, b) => a - b);
  const kindsInLayers = [...new Set(r.tensors.filter((t) => t.layer !== null).map((t) => t.kind))];
  const kindOrder = ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'norms', 'other'].filter((k) => kindsInLayers.includes(k));
  const sections: string[] = [];

  const rows = r.models.map((name, i) => `<tr><td><span class="sw" style="background:${PALETTE[i % PALETTE.length]}"></span>${esc(name)}</td><td>${esc(meta.models[name] ?? '')}</td><td>${num(r.global.deltaNorm[i])}</td><td>${num(r.global.relative[i], 5)}</td></tr>`).join('');
  sections.push(`<h2>Task vectors δ = θ − θ₀</h2><table><tr><th>model</th><th>checkpoint</th><th>‖δ‖</th><th>‖δ‖ / ‖θ₀‖</th></tr>${rows}</table><p class="n">‖θ₀‖ = ${num(r.global.baseNorm)} over ${r.global.tensors} tensors (${r.global.numel.toLocaleString('en')} parameters), base ${esc(meta.base)}.</p>`);

  const charts: string[] = [];
  if (m > 1) {
    charts.push(heatmap({ title: 'cosine between task vectors', rows: r.models, cols: r.models, values: r.global.cosine, color: div, label: (v) => v.toFixed(2) }));
    charts.push(heatmap({ title: 'TIES sign-conflict rate', rows: r.models, cols: r.models, values: r.global.conflictRate, color: (v) => seq(v * 2), label: (v) => v.toFixed(2) }));
  }
  charts.push(heatmap({
    title: '‖δ‖ / ‖θ₀‖ by module kind', rows: r.modules.map((g) => g.key), cols: r.models,
    values: r.modules.map((g) => g.relative), color: (v) => seq(v / Math.max(1e-30, ...r.modules.flatMap((g) => g.relative.filter((x): x is number => x !== null)))), label: (v) => num(v, 3), cellWidth: 58,
  }));
  sections.push(`<h2>Between task vectors</h2><div class="row">${charts.join('')}</div>`);

  if (layerIdx.length > 0) {
    const maps = r.models.map((name, i) => {
      const grid = layerKindGrid(r.tensors, i, layerIdx, kindOrder);
      const max = Math.max(1e-30, ...grid.flat().filter((x): x is number => x !== null));
      return heatmap({ title: `‖δ‖/‖θ₀‖ per layer — ${name} (max ${num(max, 4)})`, rows: kindOrder, cols: layerIdx.map(String), values: grid, color: (v) => seq(v / max) });
    });
    sections.push(`<h2>Where the change is: per layer and module kind</h2><div class="row">${maps.join('')}</div>`);
    if (m > 1) {
      const pairs: string[] = [];
      const vals: (number | null)[][] = [];
      const layerStats = new Map(r.layers.map((g) => [g.key, g]));
      for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) {
        pairs.push(`${r.models[i]}·${r.models[j]}`);
        vals.push(layerIdx.map((l) => layerStats.get(`layer.${l}`)?.cosine[i]?.[j] ?? null));
      }
      sections.push(`<h2>Cosine between task vectors per layer</h2><div class="row">${heatmap({ title: 'cosine per layer (red −1, white 0, blue +1)', rows: pairs, cols: layerIdx.map(String), values: vals, color: div })}</div>`);
    }
  }

  if (r.spectra.length > 0) {
    const charts2 = r.spectra.map((s) => logLines(`spectrum of δ: ${s.kind} (σ̂ₖ/σ̂₁, mean over layers)`, r.models.map((name, i) => ({ name, ys: s.normalized[i] ?? [], color: PALETTE[i % PALETTE.length]! })), 'k'));
    const head = `<tr><th>kind</th><th>model</th><th>effective rank</th><th>stable rank</th>${r.ranks.map((k) => `<th>energy @${k}</th>`).join('')}</tr>`;
    const body = r.spectra.flatMap((s) => r.models.map((name, i) => `<tr><td>${esc(s.kind)}</td><td>${esc(name)}</td><td>${num(s.effectiveRank[i], 1)}</td><td>${num(s.stableRank[i], 2)}</td>${r.ranks.map((k) => `<td>${num(s.energy[String(k)]?.[i], 3)}</td>`).join('')}</tr>`)).join('');
    sections.push(`<h2>Spectra of 2-D task vectors</h2><div class="row">${charts2.join('')}</div><table>${head}${body}</table>
<p class="n">Randomized SVD with power iterations, block by block. ‖δ‖_F is exact; σ̂ are lower bounds of the top singular values; energy at rank k = Σ_{i≤k} σ̂ᵢ²/‖δ‖_F² (a lower bound; n/a beyond the sketch); stable rank = ‖δ‖_F²/σ̂₁²; effective rank (Roy &amp; Vetterli 2007) models the unseen tail as flat, so it errs high unless the sketch covered the whole spectrum.</p>`);
  }

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weightspace analyze</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}svg{background:#fff}
svg .t{font-size:13px;font-weight:600}svg .l{font-size:11px;fill:#444}svg .v{font-size:10px;fill:#111}svg .vw{fill:#fff}
.sw{display:inline-block;width:10px;height:10px;margin-right:6px}.n{color:#555;font-size:12px;max-width:900px}
</style></head><body>
<h1>Task-vector analysis</h1>
<p class="n">${m} model${m === 1 ? '' : 's'} against base ${esc(meta.base)}${meta.generated ? ` — ${esc(meta.generated)}` : ''}. Generated by weightspace analyze; self-contained (no network).</p>
${sections.join('\n')}
</body></html>
`;
}
