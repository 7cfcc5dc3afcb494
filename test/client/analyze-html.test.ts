/**
 * The analysis report renders: headless Chromium screenshots it and the picture has the
 * charts' colours (not a blank page), and the rendered DOM holds the SVG charts. Needs
 * Debian's `chromium` (.ci/apt-packages); skipped with a message where it is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { family, tmp } from '../helpers/models.js';
import { decodePng } from '../helpers/png-pixels.js';

function findChromium(): string | undefined {
  for (const c of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('which', [c], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim();
  }
  return undefined;
}

const chromium = findChromium();
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--hide-scrollbars'];

let html: string;
let work: string;
beforeAll(async () => {
  const fam = await family();
  work = tmp('ws-html-');
  html = join(work, 'report.html');
  const r = cli(['analyze', '--base', fam.base, '--model', `a=${fam.a}`, '--model', `b=${fam.b}`, '--report', html, '--json', join(work, 'report.json'), '--ranks', '4,16']);
  expect(r.code, r.stderr).toBe(0);
});

describe('analyze --report', () => {
  it('is one self-contained file: no scripts, stylesheets, images or fonts fetched', () => {
    const text = readFileSync(html, 'utf8');
    expect(text).toMatch(/^<!doctype html>/);
    expect(text).not.toMatch(/<script|<link|<img|src=|href=|url\(|@import/i);
    // the only URL is the SVG namespace, which is never fetched
    expect(text.match(/https?:\/\/[^"'\s)]+/g)?.every((u) => u === 'http://www.w3.org/2000/svg')).toBe(true);
  });

  it.skipIf(!chromium)('draws: Chromium renders charts (colourful pixels) and SVG elements', () => {
    const png = join(work, 'shot.png');
    execFileSync(chromium!, [...FLAGS, '--window-size=1280,2000', `--screenshot=${png}`, `file://${html}`], { stdio: 'ignore', timeout: 60_000 });
    const img = decodePng(readFileSync(png));
    expect(img.width).toBe(1280);
    const colours = new Set<number>();
    let nonWhite = 0;
    let blue = 0;
    const n = img.width * img.height;
    for (let p = 0; p < n; p++) {
      const o = p * img.channels;
      const r = img.data[o]!;
      const g = img.data[o + 1]!;
      const b = img.data[o + 2]!;
      colours.add((r << 16) | (g << 8) | b);
      if (r + g + b < 720) nonWhite++;
      if (b > 90 && b > r + 40) blue++; // heatmap cells and the first model's lines
    }
    expect(colours.size).toBeGreaterThan(200);
    expect(nonWhite / n).toBeGreaterThan(0.05);
    expect(blue / n).toBeGreaterThan(0.01);
    const dom = execFileSync(chromium!, [...FLAGS, '--dump-dom', `file://${html}`], { encoding: 'utf8', timeout: 60_000 });
    expect((dom.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(6);
    expect((dom.match(/<rect/g) ?? []).length).toBeGreaterThan(50);
    expect((dom.match(/<polyline/g) ?? []).length).toBeGreaterThanOrEqual(2 * 7); // two models × seven kinds with spectra
  });
});
