/**
 * Shared tools of the benchmarks: the I/O floor (read the inputs, write one output of the
 * same size, nothing else), running the real CLI with peak-RSS measurement, and printing.
 * Timings here are noisy (the floor itself moves severalfold between minutes, with the page
 * cache's state), so each run is paired with a floor measured just before it, and the median of
 * the per-pair ratios is reported, with every pair.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/weightspace.js', import.meta.url));
export const CHUNK = 8 << 20;

export interface FloorRun {
  readonly seconds: number;
  /** of which reading the inputs, and writing the output (the part that swings here: new page-cache pages) */
  readonly readSeconds: number;
  readonly writeSeconds: number;
  /** CPU seconds (user + system) the floor's reads and writes took */
  readonly cpuSeconds: number;
}

/** Seconds (wall and CPU) to read `inputs` completely and write `outBytes` to a new file at `outPath`. */
export function ioFloor(inputs: readonly string[], outPath: string, outBytes: number): FloorRun {
  const buf = Buffer.allocUnsafe(CHUNK);
  buf.fill(1);
  rmSync(outPath, { force: true });
  const c0 = process.cpuUsage();
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
  const t1 = performance.now();
  const out = openSync(outPath, 'w');
  for (let pos = 0; pos < outBytes; pos += CHUNK) writeSync(out, buf, 0, Math.min(CHUNK, outBytes - pos), pos);
  closeSync(out);
  const t2 = performance.now();
  const c = process.cpuUsage(c0);
  rmSync(outPath, { force: true });
  return { seconds: (t2 - t0) / 1000, readSeconds: (t1 - t0) / 1000, writeSeconds: (t2 - t1) / 1000, cpuSeconds: (c.user + c.system) / 1e6 };
}

export interface TimedRun {
  readonly seconds: number;
  readonly maxRssMB: number;
  /** CPU seconds (user + system) of the whole process, all threads */
  readonly cpuSeconds: number;
}

/**
 * Runs `weightspace ARGS` under /usr/bin/time, returning wall seconds, CPU seconds and peak RSS of
 * the whole process (all threads); env: variables set for the run (WEIGHTSPACE_NATIVE=0, say).
 */
export function timedCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): TimedRun {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'maxrss_kb=%M cpu_s=%U+%S', process.execPath, BIN, ...args, '--no-progress'], {
    encoding: 'utf8', env: { ...process.env, ...env },
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`weightspace ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const m = /maxrss_kb=(\d+) cpu_s=([\d.]+)\+([\d.]+)/.exec(r.stderr);
  return { seconds, maxRssMB: m ? Number(m[1]) / 1024 : NaN, cpuSeconds: m ? Number(m[2]) + Number(m[3]) : NaN };
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

export interface FloorComparison {
  readonly name: string;
  readonly gbPerInput: number;
  /** median of the per-pair ratios run / floor */
  readonly ratio: number;
  readonly ratios: readonly number[];
  /** every pair's floor and run, wall seconds, in the order they ran */
  readonly floors: readonly number[];
  readonly runs: readonly number[];
  readonly floorSeconds: number;
  /** medians of the floors' read and write parts, and the fastest floor of the comparison */
  readonly floorReadSeconds: number;
  readonly floorWriteSeconds: number;
  readonly floorMinSeconds: number;
  readonly seconds: number;
  readonly maxRssMB: number;
  /** medians of the CPU seconds of floors and runs: on this machine the wall ratio moves with the page cache's speed, the CPU spent says where the time goes */
  readonly floorCpuSeconds: number;
  readonly cpuSeconds: number;
}

/**
 * Runs `weightspace ARGS --out OUT` `reps` times, each right after an I/O floor over `inputs`
 * with an output of `outBytes`; returns the median ratio and the medians of both times.
 */
/**
 * Flushes dirty pages before a timed step, so that neither the floor nor the run pays for the
 * previous one's writeback (the main source of the floor's minute-to-minute swings here).
 */
export function settle(): void {
  spawnSync('sync');
}

/**
 * Reads the inputs once, untimed: this machine's memory manager reclaims cold page-cache
 * pages between runs, and whichever of floor and run came first would otherwise pay for
 * reading them back from disk (seen: floors from 2.2 to 9 s).
 */
export function warm(inputs: readonly string[]): void {
  const buf = Buffer.allocUnsafe(CHUNK);
  for (const file of inputs) {
    const fd = openSync(file, 'r');
    for (let pos = 0; ; pos += CHUNK) if (readSync(fd, buf, 0, CHUNK, pos) <= 0) break;
    closeSync(fd);
  }
}

/**
 * Pairs per comparison: five, since the floor on this machine ranges from 0.4 to 3.6 s within
 * minutes (the same copies costing that much more CPU: the VM's memory, not the disk) while the
 * runs move far less; a median of three rested on one or two lucky floors.
 */
export const PAIRS = 5;

export function compareToFloor(
  name: string, inputs: readonly string[], outBytes: number, args: readonly string[], out: string, reps = PAIRS, env: Readonly<Record<string, string>> = {},
): FloorComparison {
  const floors: number[] = [];
  const floorReads: number[] = [];
  const floorWrites: number[] = [];
  const floorCpu: number[] = [];
  const runs: number[] = [];
  const runCpu: number[] = [];
  let rss = 0;
  for (let r = 0; r < reps; r++) {
    warm(inputs);
    settle();
    const f = ioFloor(inputs, `${out}.floor.bin`, outBytes);
    floors.push(f.seconds);
    floorReads.push(f.readSeconds);
    floorWrites.push(f.writeSeconds);
    floorCpu.push(f.cpuSeconds);
    rmSync(out, { recursive: true, force: true });
    settle();
    const t = timedCli([...args, '--out', out], env);
    runs.push(t.seconds);
    runCpu.push(t.cpuSeconds);
    rss = Math.max(rss, t.maxRssMB);
  }
  rmSync(out, { recursive: true, force: true });
  const ratios = runs.map((t, i) => t / floors[i]!);
  return {
    name, gbPerInput: outBytes / 1e9, ratio: median(ratios), ratios, floors, runs, floorSeconds: median(floors),
    floorReadSeconds: median(floorReads), floorWriteSeconds: median(floorWrites), floorMinSeconds: Math.min(...floors), seconds: median(runs), maxRssMB: rss,
    floorCpuSeconds: median(floorCpu), cpuSeconds: median(runCpu),
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function printComparison(c: FloorComparison): void {
  console.log(row(`  ${c.name} (${c.gbPerInput.toFixed(2)} GB × 3)`, {
    floor_s: c.floorSeconds, run_s: c.seconds, ratio: c.ratio, ratios: c.ratios.map((r) => r.toFixed(2)).join('/'),
    pairs: c.floors.map((f, i) => `${f.toFixed(2)}:${c.runs[i]!.toFixed(2)}`).join('/'), peak_rss_MB: c.maxRssMB,
    floor_cpu_s: c.floorCpuSeconds, run_cpu_s: c.cpuSeconds,
    // the floor's swings are its writes (new page-cache pages), not its reads
    floor_read_s: c.floorReadSeconds, floor_write_s: c.floorWriteSeconds, floor_min_s: c.floorMinSeconds,
  }));
}
