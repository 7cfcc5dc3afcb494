/**
 * A whole cluster on loopback, as child processes: nats-server (JetStream, a temporary
 * store, a free port), a coordinator and N workers, each a separate
 * `node bin/weightspace.js` process. Used by `weightspace cluster up`, the integration
 * tests and the bench. Children get a lifeline (stdin) so none outlives its parent; their
 * logs go to files under the cluster's directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeightspaceError, q } from '../core/errors.js';

export type ProcessState = 'starting' | 'running' | 'exited';

export interface LocalClusterOptions {
  readonly workers: number;
  /** kernel threads per worker (default 1) */
  readonly threadsPerWorker?: number;
  readonly maxTasks?: number;
  /** directory for the NATS store, the coordinator's data and the logs (default: a new temporary one, removed on stop) */
  readonly dir?: string;
  /** the nats-server binary (default $WEIGHTSPACE_NATS_SERVER, else nats-server on PATH, else /usr/sbin/nats-server) */
  readonly natsServer?: string;
  /** extra environment for workers (e.g. the test-only block delay) */
  readonly workerEnv?: Readonly<Record<string, string>>;
  readonly logLevel?: string;
  /** worker storage roots (default '/') */
  readonly roots?: string;
  /** workers write output into the coordinator's staging directory (default true; false: --no-shared-staging) */
  readonly sharedStaging?: boolean;
  /** how long to wait for a process to come up (default 20 s) */
  readonly startTimeoutMs?: number;
}

/** Finds a free TCP port on loopback (for nats-server, which needs a port it can keep across restarts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function binPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'bin', 'weightspace.js');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new WeightspaceError('internal', 'bin/weightspace.js is missing from this installation');
}

function natsBinary(explicit?: string): string {
  if (explicit) return explicit;
  const env = process.env['WEIGHTSPACE_NATS_SERVER'];
  if (env) return env;
  for (const d of (process.env['PATH'] ?? '').split(':')) if (d && existsSync(join(d, 'nats-server'))) return join(d, 'nats-server');
  if (existsSync('/usr/sbin/nats-server')) return '/usr/sbin/nats-server';
  throw new WeightspaceError('cluster-unavailable', 'nats-server not found: install it (Debian: apt-get install nats-server) or set WEIGHTSPACE_NATS_SERVER');
}

/** One child process with its log file, and the address it announced. */
export class ManagedProcess {
  private stateValue: ProcessState = 'starting';
  readonly exited: Promise<number | null>;
  address = '';

  private constructor(readonly name: string, readonly child: ChildProcess, readonly logPath: string, private readonly log: WriteStream) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.stateValue = 'exited';
        this.log.end();
        resolve(code ?? (signal ? -1 : null));
      });
    });
  }

  /** Spawns and waits until a line of its output passes `ready` (which returns the address, or '' for none). */
  static async spawn(
    name: string,
    command: string,
    args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; logPath: string; ready: (line: string) => string | undefined; timeoutMs: number; cwd?: string },
  ): Promise<ManagedProcess> {
    const log = createWriteStream(options.logPath, { flags: 'a' });
    const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env, cwd: options.cwd ?? process.cwd() });
    const p = new ManagedProcess(name, child, options.logPath, log);
    let tail: string[] = [];
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => finish(new WeightspaceError('cluster-unavailable', `${name} did not start within ${options.timeoutMs} ms (log: ${options.logPath})`)), options.timeoutMs);
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          child.kill('SIGKILL');
          reject(err);
        } else {
          p.stateValue = 'running';
          resolve();
        }
      };
      const onData = (buf: Buffer): void => {
        log.write(buf);
        if (settled) return;
        for (const line of buf.toString('utf8').split('\n')) {
          if (!line) continue;
          tail = [...tail.slice(-20), line];
          const address = options.ready(line);
          if (address !== undefined) {
            p.address = address;
            finish();
            return;
          }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (err) => finish(new WeightspaceError('cluster-unavailable', `cannot start ${name} (${q(command)}): ${err.message}`)));
      child.once('exit', (code) => finish(new WeightspaceError('cluster-unavailable', `${name} exited with code ${code} while starting:\n${tail.join('\n')}`)));
    });
    return p;
  }

  get state(): ProcessState {
    return this.stateValue;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.stateValue !== 'exited') this.child.kill(signal);
  }

  /** Sends `signal` (default SIGTERM), waits up to `timeoutMs`, then SIGKILL. Resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    if (this.stateValue === 'exited') return this.exited;
    this.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      this.exited,
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (code !== 'timeout') return code;
    this.kill('SIGKILL');
    return this.exited;
  }
}

function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export class LocalCluster {
  readonly workers: ManagedProcess[] = [];
  private coordinatorProc: ManagedProcess | undefined;
  private natsProc: ManagedProcess | undefined;
  private workerCount = 0;
  private coordinatorCount = 0;
  private natsCount = 0;

  private constructor(
    readonly dir: string,
    private readonly ownsDir: boolean,
    readonly natsPort: number,
    private readonly options: LocalClusterOptions,
  ) {}

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'weightspace-cluster-'));
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const cluster = new LocalCluster(dir, ownsDir, await freePort(), options);
    try {
      await cluster.startNats();
      await cluster.startCoordinator();
      await Promise.all(Array.from({ length: options.workers }, () => cluster.startWorker()));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get natsUrl(): string {
    return `nats://127.0.0.1:${this.natsPort}`;
  }

  get coordinator(): ManagedProcess {
    if (!this.coordinatorProc) throw new WeightspaceError('cluster-unavailable', 'the local coordinator is not running');
    return this.coordinatorProc;
  }

  get nats(): ManagedProcess {
    if (!this.natsProc) throw new WeightspaceError('cluster-unavailable', 'the local nats-server is not running');
    return this.natsProc;
  }

  /** The address to pass as --cluster. */
  get coordinatorAddress(): string {
    return this.coordinator.address;
  }

  get dataDir(): string {
    return join(this.dir, 'coordinator-data');
  }

  /** Starts nats-server (again, on the same port and store after a restart). */
  async startNats(): Promise<ManagedProcess> {
    const store = join(this.dir, 'nats-store');
    mkdirSync(store, { recursive: true });
    this.natsProc = await ManagedProcess.spawn(
      'nats-server',
      natsBinary(this.options.natsServer),
      ['-a', '127.0.0.1', '-p', String(this.natsPort), '-js', '-sd', store],
      {
        logPath: join(this.dir, 'logs', `nats-${++this.natsCount}.log`),
        ready: (line) => (line.includes('Server is ready') ? `127.0.0.1:${this.natsPort}` : undefined),
        timeoutMs: this.options.startTimeoutMs ?? 20_000,
      },
    );
    return this.natsProc;
  }

  /** Starts a coordinator on a free port with the cluster's data dir (again, after a kill). */
  async startCoordinator(): Promise<ManagedProcess> {
    this.coordinatorProc = await ManagedProcess.spawn(
      'coordinator',
      process.execPath,
      [
        binPath(), 'coordinator', '--host', '127.0.0.1', '--port', '0', '--nats', this.natsUrl, '--data-dir', this.dataDir,
        '--parent-lifeline', ...(this.options.logLevel ? ['--log-level', this.options.logLevel] : []),
      ],
      {
        logPath: join(this.dir, 'logs', `coordinator-${++this.coordinatorCount}.log`),
        ready: (line) => {
          const j = jsonLine(line);
          return j?.['msg'] === 'coordinator listening' ? String(j['address']) : undefined;
        },
        timeoutMs: this.options.startTimeoutMs ?? 20_000,
      },
    );
    return this.coordinatorProc;
  }

  /** Starts one more worker (options override the cluster's); resolves once it is registered in NATS. */
  async startWorker(options: { env?: Readonly<Record<string, string>>; sharedStaging?: boolean } = {}): Promise<ManagedProcess> {
    const n = ++this.workerCount;
    const sharedStaging = options.sharedStaging ?? this.options.sharedStaging ?? true;
    const w = await ManagedProcess.spawn(
      `worker-${n}`,
      process.execPath,
      [
        binPath(), 'worker', '--host', '127.0.0.1', '--port', '0', '--nats', this.natsUrl,
        '--threads', String(this.options.threadsPerWorker ?? 1),
        '--max-tasks', String(this.options.maxTasks ?? 2),
        '--roots', this.options.roots ?? '/',
        ...(sharedStaging ? [] : ['--no-shared-staging']),
        '--parent-lifeline', ...(this.options.logLevel ? ['--log-level', this.options.logLevel] : []),
      ],
      {
        env: { ...process.env, ...this.options.workerEnv, ...options.env },
        logPath: join(this.dir, 'logs', `worker-${n}.log`),
        ready: (line) => {
          const j = jsonLine(line);
          return j?.['msg'] === 'worker registered' ? String(j['address']) : undefined;
        },
        timeoutMs: this.options.startTimeoutMs ?? 20_000,
      },
    );
    this.workers.push(w);
    return w;
  }

  /** Stops everything: workers drain, then the coordinator, then nats-server; removes a temporary directory. */
  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop('SIGTERM', 15_000)));
    await this.coordinatorProc?.stop('SIGTERM', 10_000);
    await this.natsProc?.stop('SIGTERM', 5_000);
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
