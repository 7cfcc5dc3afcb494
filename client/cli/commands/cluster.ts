import { WeightspaceError, q } from '../../../core/errors.js';
import type { Command } from '../command.js';
import { int, str } from '../spec-options.js';
import { untilStopRequested } from './server-lifecycle.js';

export const clusterCommand: Command = {
  name: 'cluster',
  summary: 'cluster up: nats-server, a coordinator and N workers on loopback',
  usage: `cluster up [--workers 2] [--threads-per-worker N] [--dir DIR]

Starts nats-server (JetStream, a temporary store, a free port), a coordinator and N workers
as child processes on 127.0.0.1, and prints the --cluster address to submit to. Ctrl-C (or
SIGTERM) stops them all: workers drain, the coordinator stops, nats-server stops.

  --workers N             worker processes (default 2)
  --threads-per-worker N  kernel threads per worker (default 1)
  --dir DIR               keep the NATS store, coordinator data and logs here (default: a temporary directory, removed on exit)
  --log-level LEVEL       log level of the children (logs are in DIR/logs)`,
  options: {
    workers: { type: 'string' },
    'threads-per-worker': { type: 'string' },
    dir: { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
  },
  positionals: true,
  async run(args, io) {
    const [sub, ...extra] = args.positionals;
    if (sub !== 'up' || extra.length > 0) throw new WeightspaceError('usage', `cluster takes one subcommand: up (got ${q(args.positionals.join(' '))})`);
    const workers = int(args, 'workers') ?? 2;
    if (workers < 1 || workers > 64) throw new WeightspaceError('usage', `--workers must be from 1 to 64, got ${workers}`);
    const threads = int(args, 'threads-per-worker') ?? 1;
    const dir = str(args, 'dir');
    const logLevel = str(args, 'log-level');
    const stop = untilStopRequested(false);
    // the cluster modules (gRPC, NATS) load only for the commands that use them
    const { LocalCluster } = await import('../../local-cluster.js');
    const cluster = await LocalCluster.start({ workers, threadsPerWorker: threads, ...(dir ? { dir } : {}), ...(logLevel ? { logLevel } : {}) });
    const address = cluster.coordinatorAddress;
    if (io.json) {
      io.out(JSON.stringify({ event: 'cluster-up', coordinator: address, nats: cluster.natsUrl, workers: cluster.workers.map((w) => w.address), dir: cluster.dir }));
    } else {
      io.out(`weightspace cluster up: coordinator ${address}, nats ${cluster.natsUrl}, ${workers} worker${workers === 1 ? '' : 's'} (${threads} thread${threads === 1 ? '' : 's'} each)`);
      io.out(`logs: ${cluster.dir}/logs`);
      io.out('');
      io.out('submit jobs with --cluster, e.g.:');
      io.out(`  weightspace eval 'base + 0.5*(ft - base)' --model base=/abs/path/base --model ft=/abs/path/ft --out merged --cluster ${address}`);
      io.out(`  weightspace run job.yaml --cluster ${address}`);
      io.out('(checkpoint paths are read by the workers: use absolute paths or URLs)');
      io.out('');
      io.out('Ctrl-C stops the cluster.');
    }
    const why = await stop;
    io.err(`weightspace cluster: stopping (${why})`);
    await cluster.stop();
    return 0;
  },
};
