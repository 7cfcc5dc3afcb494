/**
 * Shared set-up of the fault tests: a family with enough layers for a job to last a few
 * seconds on workers slowed by the test-only block delay, one eval spec, its embedded
 * reference, and helpers to map worker ids to their processes.
 */
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { LocalCluster, ManagedProcess } from '../../../client/local-cluster.js';
import type { WeightspaceClient } from '../../../client/weightspace-client.js';
import { parseJobSpec, type JobSpec } from '../../../core/job-spec.js';
import { makeFamily, tensorNames, treeDigest, type Family } from './checkpoints.js';
import { runEmbeddedAside } from './cluster-env.js';
import { waitFor } from './wait.js';

/** TEST ONLY knob of `weightspace worker`: each block sleeps this long first. */
export const SLOW_WORKERS = { WEIGHTSPACE_TEST_BLOCK_DELAY_MS: '150' };

export interface FaultFixture {
  readonly fx: Family;
  readonly spec: JobSpec;
  readonly out: string;
  readonly reference: { readonly digest: Record<string, string>; readonly tensors: string[] };
}

export async function faultFixture(work: string): Promise<FaultFixture> {
  const fx = await makeFamily(join(work, 'models'), { layers: 8 });
  const out = join(work, 'out', 'merged');
  const spec = parseJobSpec({ op: 'eval', expr: 'base + 0.7*(a - base) + 0.3*(b - base)', models: { base: fx.base, a: fx.ft1, b: fx.ft2 }, out });
  const { dir } = await runEmbeddedAside(spec);
  if (!dir) throw new Error('the eval job wrote no output');
  return { fx, spec, out, reference: { digest: treeDigest(dir), tensors: await tensorNames(dir) } };
}

/** Checks a cluster output against the embedded reference: same files, same bytes, every tensor once. */
export async function expectLikeReference(f: FaultFixture, dir: string): Promise<void> {
  expect(treeDigest(dir)).toEqual(f.reference.digest);
  const names = await tensorNames(dir);
  expect(names).toEqual(f.reference.tensors);
  expect(new Set(names).size).toBe(names.length);
}

/** Moves a finished output aside so the same spec (same `out`) can run again. */
export function moveAside(f: FaultFixture, tag: string): string {
  renameSync(f.out, `${f.out}.${tag}`);
  return `${f.out}.${tag}`;
}

/** The process of a worker id (ids are in the registry, processes know their address). */
export async function processOf(cluster: LocalCluster, client: WeightspaceClient, workerId: string): Promise<ManagedProcess> {
  const info = (await client.workers()).find((w) => w.id === workerId);
  const proc = cluster.workers.find((p) => p.address === info?.address && p.state !== 'exited');
  if (!proc) throw new Error(`no running process for worker '${workerId}'`);
  return proc;
}

export async function readyWorkers(client: WeightspaceClient, n: number): Promise<void> {
  await waitFor(`${n} ready workers`, async () => ((await client.workers()).filter((w) => w.state === 'ready').length >= n ? true : undefined));
}
