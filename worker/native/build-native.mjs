// Builds the native AVX-512 loops (kernels.c) with node-gyp, which npm puts on the PATH of its
// scripts, and copies the addon beside kernels.wasm. A machine that cannot build it (no compiler,
// no Node headers) still gets a working weightspace: the WebAssembly loops run instead, so a
// failure here is a warning, not an error (`npm run bench` prints which loops ran).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const built = join(here, 'build', 'Release', 'weightspace_kernels.node');
const target = join(here, '..', 'simd', 'build', 'weightspace_kernels.node');
// an earlier configure is reused (make rebuilds what changed); a first build configures
const verb = existsSync(join(here, 'build', 'Makefile')) ? 'build' : 'rebuild';
const args = [verb, '--directory', here, '--loglevel', 'warn'];
// the running Node's own headers where it ships them (official builds, Debian's), so that
// node-gyp need not download them, unless npm was told where they are (nodedir)
const prefix = dirname(dirname(process.execPath));
if (!process.env['npm_config_nodedir'] && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push('--nodedir', prefix);
const run = spawnSync('node-gyp', args, { stdio: 'inherit', shell: process.platform === 'win32' });
if (run.status !== 0 || !existsSync(built)) {
  const why = run.error ? run.error.message : `node-gyp exited with ${run.status}`;
  console.warn(`weightspace: the native kernels were not built (${why}); the WebAssembly loops will run instead`);
  process.exit(0);
}
mkdirSync(dirname(target), { recursive: true });
copyFileSync(built, target);
