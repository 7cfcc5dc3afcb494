/**
 * Cluster vs embedded: the same job (two models, BF16; an eval and a TIES merge) run embedded with 2 threads
 * and on a loopback cluster of a coordinator + 2 workers with 1 thread each (the same
 * 2 cores of compute), end to end from submit to the output verified and renamed on the
 * client side, which is what `--cluster` costs a user. Two data paths: shared staging (the
 * default on one host: workers write into the coordinator's staging directory, the client
 * copies the files) and gRPC only (workers with --no-shared-staging, the client with
 * localCopy false: every output byte crosses gRPC twice). Also the CPU time of each (every
 * process, read from /proc: the ratio to trust when other work shares the machine), the
 * job's output rate, the gRPC data plane alone (a finished job's output fetched with one
 * stream and with several) and a local copy alone. Each cluster starts from a fresh
 * directory. Runs are interleaved and the best of each is kept (a shared machine is noisy).
 * Target: cluster ≤ 1.5 × embedded.
 *
 *   npm run bench:cluster        (BENCH_DIR=.bench, BENCH_CLUSTER_LAYERS=12, BENCH_REPS=2, BENCH_CLUSTER_JOBS=eval,merge)
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runEmbedded } from '../client/embedded-runner.js';
import { LocalCluster } from '../client/local-cluster.js';
import { WeightspaceClient } from '../client/weightspace-client.js';
import { parseJobSpec, type JobSpec } from '../core/job-spec.js';

export type DataPath = 'shared' | 'grpc';

export interface ClusterPathResult {
  /** end to end: submit → output verified and renamed on the client */
  readonly seconds: number;
  /** submit → job done on the cluster */
  readonly jobSeconds: number;
  readonly ratio: number;
  /** CPU seconds of the best run: this process + coordinator, workers, nats-server (NaN without /proc) */
  readonly cpuSeconds: number;
  /** share of the output the client had (fetched or copied) before the job was done */
  readonly earlyFraction: number;
}

export interface ClusterBenchResult {
  readonly job: string;
  readonly outputMB: number;
  readonly inputMB: number;
  readonly embeddedSeconds: number;
  /** CPU seconds of the best embedded run (this process) */
  readonly embeddedCpuSeconds: number;
  readonly paths: Readonly<Record<DataPath, ClusterPathResult>>;
  /** output MB per second of the job with workers streaming over gRPC (compute included) */
  readonly workerToCoordinatorMBps: number;
  readonly fetchOneStreamMBps: number;
  readonly fetchStreams: number;
  readonly fetchManyStreamsMBps: number;
  /** a finished job's output copied from the coordinator's data dir (copy + sha256) */
  readonly localCopyMBps: number;
}

const PATHS: readonly DataPath[] = ['shared', 'grpc'];

/** CPU seconds (user + system) of the given processes, from /proc (NaN elsewhere). */
function processCpuSeconds(pids: readonly (number | undefined)[]): number {
  if (!existsSync('/proc/self/stat')) return NaN;
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of pids) {
    if (pid === undefined) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) / tick;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

function clusterPids(cluster: LocalCluster): (number | undefined)[] {
  return [cluster.coordinator.pid, cluster.nats.pid, ...cluster.workers.map((w) => w.pid)];
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function ensureSynth(dir: string, fields: Record<string, unknown>): Promise<void> {
  if (existsSync(join(dir, 'weightspace.json'))) return;
  rmSync(dir, { recursive: true, force: true });
  await runEmbedded(parseJobSpec({ op: 'synth', out: dir, ...fields }), { threads: 2 });
}

/** Threads per worker (default 1: two workers with one thread each have the cores embedded mode has). */
function workerThreads(): number {
  return Number(process.env['BENCH_WORKER_THREADS'] ?? 1);
}

/** The benchmark jobs: an I/O-bound one (eval: a few flops per byte) and a compute-bound one (TIES: a selection per tensor). */
function benchJobs(base: string, ft: string, out: string): { name: string; spec: JobSpec }[] {
  return [
    { name: 'eval (I/O-bound)', spec: parseJobSpec({ op: 'eval', expr: 'base + 0.5*(ft - base)', models: { base, ft }, out, shardSize: 64_000_000, force: true }) },
    {
      name: 'merge ties (compute-bound)',
      spec: parseJobSpec({
        op: 'merge', recipe: { merge_method: 'ties', base_model: base, models: [{ model: ft, parameters: { weight: 1, density: 0.5 } }] }, out, shardSize: 64_000_000, force: true,
      }),
    },
  ];
}

export async function clusterBench(root: string): Promise<ClusterBenchResult[]> {
  const layers = Number(process.env['BENCH_CLUSTER_LAYERS'] ?? 12);
  const dir = join(root, `cluster-bench-l${layers}`);
  mkdirSync(dir, { recursive: true });
  const base = join(dir, 'base');
  const ft = join(dir, 'ft');
  await ensureSynth(base, { layers, hidden: 1024, intermediate: 2816, vocab: 8192, seed: 0 });
  await ensureSynth(ft, { like: base, deltaScale: 0.01, seed: 1 });
  const out = join(dir, 'out');
  const only = (process.env['BENCH_CLUSTER_JOBS'] ?? '').split(',').filter(Boolean);
  const results: ClusterBenchResult[] = [];
  for (const job of benchJobs(base, ft, out)) {
    if (only.length > 0 && !only.some((o) => job.name.startsWith(o))) continue;
    process.stderr.write(`${job.name}\n`);
    results.push(await benchOne(dir, job.name, job.spec, out));
  }
  return results;
}

interface PathRun {
  readonly cluster: LocalCluster;
  readonly client: WeightspaceClient;
  best: number;
  jobBest: number;
  cpu: number;
  early: number;
}

async function benchOne(dir: string, name: string, spec: JobSpec, out: string): Promise<ClusterBenchResult> {
  const reps = Number(process.env['BENCH_REPS'] ?? 2);
  // fresh clusters each time: no earlier run's jobs in NATS or outputs in the data dir
  const runs = {} as Record<DataPath, PathRun>;
  try {
    for (const path of PATHS) {
      const clusterDir = join(dir, `cluster-${path}`);
      rmSync(clusterDir, { recursive: true, force: true });
      const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: workerThreads(), maxTasks: 2, dir: clusterDir, sharedStaging: path === 'shared' });
      runs[path] = { cluster, client: await WeightspaceClient.connect(cluster.coordinatorAddress), best: Infinity, jobBest: Infinity, cpu: NaN, early: 0 };
    }
    let embeddedBest = Infinity;
    let embeddedCpu = NaN;
    let outputBytes = 0;
    let inputBytes = 0;
    let lastJob: Awaited<ReturnType<WeightspaceClient['submit']>> | undefined;
    // one warm-up of each (page cache, JIT), then interleaved timed runs
    for (let rep = 0; rep <= reps; rep++) {
      rmSync(out, { recursive: true, force: true });
      const c0 = selfCpuSeconds();
      const t0 = performance.now();
      const r = await runEmbedded(spec, { threads: 2 });
      const embedded = (performance.now() - t0) / 1000;
      const embeddedCpuNow = selfCpuSeconds() - c0;
      outputBytes = r.bytesWritten;
      if (rep > 0 && embedded < embeddedBest) {
        embeddedBest = embedded;
        embeddedCpu = embeddedCpuNow;
      }
      let line = `  rep ${rep}${rep === 0 ? ' (warm-up)' : ''}: embedded ${embedded.toFixed(2)} s (cpu ${embeddedCpuNow.toFixed(2)} s)`;
      for (const path of PATHS) {
        const run = runs[path];
        rmSync(out, { recursive: true, force: true });
        const c1 = selfCpuSeconds();
        const k1 = processCpuSeconds(clusterPids(run.cluster));
        const t1 = performance.now();
        const job = await run.client.submit(spec);
        // as the CLI does: the download starts with the job (finished tasks' bytes come early)
        const downloading = job.download(out, { force: true, localCopy: path === 'shared' });
        const result = await job.result();
        const jobSeconds = (performance.now() - t1) / 1000;
        const got = await downloading;
        const seconds = (performance.now() - t1) / 1000;
        const cpu = selfCpuSeconds() - c1 + processCpuSeconds(clusterPids(run.cluster)) - k1;
        inputBytes = result.bytesRead;
        if (path === 'grpc') lastJob = job;
        if (rep > 0) {
          if (seconds < run.best) {
            run.best = seconds;
            run.cpu = cpu;
            run.early = got.transfer.early / Math.max(1, got.transfer.bytes + got.transfer.copied + got.transfer.linked);
          }
          run.jobBest = Math.min(run.jobBest, jobSeconds);
        }
        line += `, ${path} ${seconds.toFixed(2)} s (job ${jobSeconds.toFixed(2)} s; cpu ${cpu.toFixed(2)} s)`;
      }
      process.stderr.write(`${line}\n`);
    }
    rmSync(out, { recursive: true, force: true });

    // the gRPC data plane alone (FetchOutput, CRC checks, writes by offset, sha256): one stream, then several at once
    const download = async (concurrency: number, localCopy: boolean): Promise<number> => {
      const target = join(dir, `fetch-${concurrency}`);
      rmSync(target, { recursive: true, force: true });
      const t0 = performance.now();
      const got = await lastJob!.download(target, { concurrency, localCopy });
      const s = (performance.now() - t0) / 1000;
      rmSync(target, { recursive: true, force: true });
      return (got.transfer.bytes + got.transfer.copied + got.transfer.linked) / 1e6 / s;
    };
    const streams = 4;
    let one = 0;
    let many = 0;
    let local = 0;
    for (let i = 0; i < 2; i++) {
      one = Math.max(one, await download(1, false));
      many = Math.max(many, await download(streams, false));
      local = Math.max(local, await download(2, true));
    }
    const result = (run: PathRun): ClusterPathResult => ({
      seconds: run.best, jobSeconds: run.jobBest, ratio: run.best / embeddedBest, cpuSeconds: run.cpu, earlyFraction: run.early,
    });
    return {
      job: name,
      outputMB: outputBytes / 1e6,
      inputMB: inputBytes / 1e6,
      embeddedSeconds: embeddedBest,
      embeddedCpuSeconds: embeddedCpu,
      paths: { shared: result(runs.shared), grpc: result(runs.grpc) },
      workerToCoordinatorMBps: outputBytes / 1e6 / runs.grpc.jobBest,
      fetchOneStreamMBps: one,
      fetchStreams: streams,
      fetchManyStreamsMBps: many,
      localCopyMBps: local,
    };
  } finally {
    for (const run of Object.values(runs)) {
      run.client.close();
      await run.cluster.stop();
    }
    rmSync(out, { recursive: true, force: true });
  }
}

export function printClusterBench(r: ClusterBenchResult): void {
  const threads = `${workerThreads()} thread${workerThreads() === 1 ? '' : 's'}`;
  const path = (label: string, p: ClusterPathResult): string[] => [
    `  cluster, ${label}`,
    `    job done on the cluster                ${p.jobSeconds.toFixed(2)} s`,
    `    end to end (output verified on client) ${p.seconds.toFixed(2)} s  (${(p.earlyFraction * 100).toFixed(0)}% of the bytes on the client while the job ran)`,
    `    ratio cluster / embedded               ${p.ratio.toFixed(2)}×  (target ≤ 1.50×: ${p.ratio <= 1.5 ? 'met' : 'NOT met'})`,
    // CPU time does not depend on what else the machine runs: the ratio to trust on a shared machine
    `    CPU time (all processes)               ${p.cpuSeconds.toFixed(2)} s (${(p.cpuSeconds / r.embeddedCpuSeconds).toFixed(2)}× embedded)`,
  ];
  const lines = [
    `cluster bench: ${r.job}, 2 models, ${r.inputMB.toFixed(0)} MB read, ${r.outputMB.toFixed(0)} MB written; coordinator + 2 workers × ${threads}, loopback`,
    `  embedded (2 threads)                     ${r.embeddedSeconds.toFixed(2)} s, CPU ${r.embeddedCpuSeconds.toFixed(2)} s`,
    ...path('shared staging (workers write the staging, the client copies)', r.paths.shared),
    ...path('gRPC only (--no-shared-staging, localCopy false)', r.paths.grpc),
    `  data plane`,
    `    job output rate over gRPC (compute included)        ${r.workerToCoordinatorMBps.toFixed(0)} MB/s`,
    `    download (FetchOutput + write + sha256), 1 stream   ${r.fetchOneStreamMBps.toFixed(0)} MB/s`,
    `    download (FetchOutput + write + sha256), ${r.fetchStreams} streams  ${r.fetchManyStreamsMBps.toFixed(0)} MB/s (aggregate)`,
    `    local copy (copyFile + sha256), 2 at once           ${r.localCopyMBps.toFixed(0)} MB/s`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = resolve(process.env['BENCH_DIR'] ?? '.bench');
  mkdirSync(root, { recursive: true });
  for (const r of await clusterBench(root)) printClusterBench(r);
}
