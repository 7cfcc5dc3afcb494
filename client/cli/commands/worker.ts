import { availableParallelism } from 'node:os';
import { WeightspaceError } from '../../../core/errors.js';
import type { Command } from '../command.js';
import { int, str } from '../spec-options.js';
import { SERVER_OPTIONS_HELP, releaseProcess, serverLogger, untilStopRequested } from './server-lifecycle.js';

/** TEST ONLY: milliseconds a worker sleeps before each block, so tests can act in the middle of a job. */
export const TEST_BLOCK_DELAY_ENV = 'WEIGHTSPACE_TEST_BLOCK_DELAY_MS';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run a cluster worker (computes layer tasks for a coordinator)',
  usage: `worker --nats URL [--port 7071] [--threads N] [--roots DIR,...] [--advertise HOST:PORT] [--no-shared-staging]

Registers in NATS with its capacity and a heartbeat every second, reads its tasks' input
byte ranges straight from storage (local paths under --roots, or http(s) URLs), computes
with the same kernels as embedded mode and hands the output back (written into the
coordinator's staging directory when it is shared, else streamed). SIGTERM drains: no
new tasks, running ones finish, then it deregisters and exits 0.

  --nats URL           nats-server with JetStream
  --port P             gRPC port (default 7071; 0 picks a free one)
  --host H             address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  --advertise H:P      address the coordinator dials (default HOST:PORT as bound)
  --threads N          kernel threads (default: all cores)
  --max-tasks N        tasks run at once, sharing the threads (default 2)
  --roots DIRS         comma-separated directories tasks may read (default /: anything)
  --no-shared-staging  always stream output bytes to the coordinator over gRPC. By default
                       (--shared-staging), when the coordinator's staging directory is
                       visible here at the same path (same host, or a shared volume; proven
                       by a token file), output bytes are written straight into it and only
                       offsets and CRCs cross gRPC
${SERVER_OPTIONS_HELP}`,
  options: {
    nats: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    advertise: { type: 'string' },
    threads: { type: 'string' },
    'max-tasks': { type: 'string' },
    roots: { type: 'string' },
    'shared-staging': { type: 'boolean' },
    'no-shared-staging': { type: 'boolean' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    'parent-lifeline': { type: 'boolean' },
  },
  async run(args) {
    if (args.positionals.length > 0) throw new WeightspaceError('usage', 'worker takes no positional arguments');
    const natsUrl = str(args, 'nats') ?? process.env['WEIGHTSPACE_NATS'];
    if (!natsUrl) throw new WeightspaceError('usage', 'missing --nats URL');
    if (args.values['shared-staging'] === true && args.values['no-shared-staging'] === true) {
      throw new WeightspaceError('usage', '--shared-staging and --no-shared-staging contradict each other');
    }
    const delay = Number(process.env[TEST_BLOCK_DELAY_ENV] ?? 0);
    const advertise = str(args, 'advertise');
    const logger = await serverLogger(args, 'worker');
    const stop = untilStopRequested(args.values['parent-lifeline'] === true);
    if (delay > 0) logger.warn({ delayMs: delay }, `${TEST_BLOCK_DELAY_ENV} is set: every block is slowed down (test only)`);
    const { WorkerNode } = await import('../../../worker/worker-node.js');
    const node = await WorkerNode.start({
      host: str(args, 'host') ?? '127.0.0.1',
      port: int(args, 'port') ?? 7071,
      ...(advertise ? { advertise } : {}),
      natsUrl,
      threads: int(args, 'threads') ?? availableParallelism(),
      maxTasks: int(args, 'max-tasks') ?? 2,
      roots: (str(args, 'roots') ?? '/').split(',').map((r) => r.trim()).filter((r) => r.length > 0),
      sharedStaging: args.values['no-shared-staging'] !== true,
      ...(Number.isFinite(delay) && delay > 0 ? { blockDelayMs: delay } : {}),
      logger,
    });
    const why = await stop;
    logger.info({ why }, 'worker stopping');
    await node.drain();
    releaseProcess();
    return 0;
  },
};
