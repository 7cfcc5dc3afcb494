import { WeightspaceError } from '../../../core/errors.js';
import type { Command } from '../command.js';
import { int, str } from '../spec-options.js';
import { SERVER_OPTIONS_HELP, releaseProcess, serverLogger, untilStopRequested } from './server-lifecycle.js';

export const coordinatorCommand: Command = {
  name: 'coordinator',
  summary: 'run a cluster coordinator (gRPC for clients, NATS control plane)',
  usage: `coordinator --nats URL --data-dir DIR [--port 7070] [--host 127.0.0.1]

Plans jobs, places their layer tasks on the workers registered in NATS, assembles their
output in --data-dir and streams it to clients. Unfinished jobs survive a restart: their
state is in NATS and their staging in --data-dir, and the next coordinator resumes them.

  --nats URL           nats-server with JetStream (e.g. nats://127.0.0.1:4222; comma-separate several)
  --data-dir DIR       staging and finished outputs (keep it across restarts). Workers and
                       clients that see it at the same path (same host, or a shared volume)
                       write its staging and copy its outputs directly (docs/cluster.md)
  --port P             gRPC port (default 7070; 0 picks a free one, printed in the 'coordinator listening' log line)
  --host H             address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  --retain-jobs N      finished jobs whose output stays fetchable (default 32)
${SERVER_OPTIONS_HELP}`,
  options: {
    nats: { type: 'string' },
    'data-dir': { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'retain-jobs': { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    'parent-lifeline': { type: 'boolean' },
  },
  async run(args) {
    if (args.positionals.length > 0) throw new WeightspaceError('usage', 'coordinator takes no positional arguments');
    const natsUrl = str(args, 'nats') ?? process.env['WEIGHTSPACE_NATS'];
    if (!natsUrl) throw new WeightspaceError('usage', 'missing --nats URL');
    const dataDir = str(args, 'data-dir');
    if (!dataDir) throw new WeightspaceError('usage', 'missing --data-dir');
    const retainJobs = int(args, 'retain-jobs');
    const logger = await serverLogger(args, 'coordinator');
    const stop = untilStopRequested(args.values['parent-lifeline'] === true);
    const { CoordinatorNode } = await import('../../../coordinator/coordinator-node.js');
    const node = await CoordinatorNode.start({
      host: str(args, 'host') ?? '127.0.0.1',
      port: int(args, 'port') ?? 7070,
      natsUrl,
      dataDir,
      logger,
      ...(retainJobs !== undefined ? { retainJobs } : {}),
    });
    const why = await stop;
    logger.info({ why }, 'coordinator stopping');
    await node.stop();
    releaseProcess();
    return 0;
  },
};
