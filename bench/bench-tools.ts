/**
 * Shared tools of the benchmarks: the I/O floor (read the inputs, write one output of the
 * same size, nothing else), running the real CLI with peak-RSS measurement, and printing.
 * Timings on a shared machine are noisy (±30%), so every ratio compares runs of the same
 * process, interleaved, and the best of each is used.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/weightspace.js', import.meta.url));
export const CHUNK = 8 << 20;

/** Seconds to read `inputs` completely and write `outBytes` to a new file at `outPath`. */
export function ioFloor(inputs: readonly string[], outPath: string, outBytes: number): number {
  const buf = Buffer.allocUnsafe(CHUNK);
  buf.fill(1);
  rmSync(outPath, { force: true });
  const t0 = performance.now();
  for (const file of inputs) {
    const fd = openSync(file, 'r');
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      if (n <= 0) break;
      pos += n;
    }
    closeSync(fd);
  }
  const out = openSync(outPath, 'w');
  for (let pos = 0; pos < outBytes; pos += CHUNK) writeSync(out, buf, 0, Math.min(CHUNK, outBytes - pos), pos);
  closeSync(out);
  const s = (performance.now() - t0) / 1000;
  rmSync(outPath, { force: true });
  return s;
}

export interface TimedRun {
  readonly seconds: number;
  readonly maxRssMB: number;
}

/** Runs `weightspace ARGS` under /usr/bin/time, returning wall seconds and peak RSS of the whole process (all threads). */
export function timedCli(args: readonly string[]): TimedRun {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, BIN, ...args, '--no-progress'], { encoding: 'utf8' });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`weightspace ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const m = /maxrss_kb=(\d+)/.exec(r.stderr);
  return { seconds, maxRssMB: m ? Number(m[1]) / 1024 : NaN };
}

export function cliOrThrow(args: readonly string[]): void {
  const r = spawnSync(process.execPath, [BIN, ...args, '--no-progress'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`weightspace ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
}

export function fileSizes(dir: string): number {
  return statSync(`${dir}/model.safetensors`).size;
}

export function ensureModel(dir: string, args: readonly string[]): void {
  if (existsSync(`${dir}/weightspace.json`)) return;
  rmSync(dir, { recursive: true, force: true });
  cliOrThrow(['synth', ...args, '--out', dir]);
}

export function row(label: string, cells: Record<string, string | number>): string {
  return `${label.padEnd(34)} ${Object.entries(cells).map(([k, v]) => `${k}=${typeof v === 'number' ? v.toFixed(2) : v}`).join('  ')}`;
}
