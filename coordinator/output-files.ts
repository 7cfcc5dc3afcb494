/**
 * The files of a finished job's outputs as the client fetches them: every regular file of
 * every output directory, with its size and sha256 (shard digests come from the
 * assembler, which has just computed them; the small files are hashed here). Token files
 * (core/cluster/volume-token.ts) are the coordinator's, never part of an output.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isTokenFile } from '../core/cluster/volume-token.js';
import type { OutputFileMsg } from '../core/cluster/wire-messages.js';
import type { Plan } from '../core/plan.js';
import { sha256File, type FinishedOutput } from './output-assembler.js';

export async function describeOutputFiles(plan: Plan, outDir: string, finished?: readonly FinishedOutput[]): Promise<OutputFileMsg[]> {
  const files: OutputFileMsg[] = [];
  for (let i = 0; i < plan.outputs.length; i++) {
    const o = plan.outputs[i]!;
    const dir = join(outDir, o.subdir);
    const known = new Map((finished?.[i]?.shards ?? []).map((s) => [s.file, s]));
    const names = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isFile() && !isTokenFile(d.name)).map((d) => d.name).sort();
    for (const file of names) {
      const path = join(dir, file);
      const size = statSync(path).size;
      const k = known.get(file);
      const sha256 = k && k.size === size ? k.sha256 : await sha256File(path);
      files.push({ output: i, subdir: o.subdir, file, size, sha256 });
    }
  }
  return files;
}
