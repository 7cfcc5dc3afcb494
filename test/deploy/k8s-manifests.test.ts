/**
 * deploy/k8s renders with kustomize (offline) and holds what a cluster needs: nats with
 * JetStream and a volume, the coordinator and workers with gRPC health probes on their
 * ports, checkpoints mounted read-only on workers, resources on every container, and a
 * grace period long enough for a worker to drain. The shared-staging component puts the
 * coordinator's data dir on a ReadWriteMany claim that workers mount at the same path.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { containerPort: number }[];
  readinessProbe?: { grpc?: { port: number }; httpGet?: unknown };
  livenessProbe?: { grpc?: { port: number }; httpGet?: unknown };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string }; persistentVolumeClaim?: unknown }[];
}
interface Resource {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { replicas?: number; ports?: { port: number }[]; template?: { spec: PodSpec }; volumeClaimTemplates?: unknown[] };
}

function render(dir: string): Resource[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Resource);
}

function find(rs: Resource[], kind: string, name: string): Resource {
  const r = rs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!r) throw new Error(`no ${kind} ${name} in the rendered manifests`);
  return r;
}

describe.skipIf(!hasKubectl)('kubernetes manifests (kubectl kustomize)', () => {
  it('renders the local overlay with every expected kind', () => {
    const rs = render('deploy/k8s/overlays/local');
    const kinds = rs.map((r) => `${r.kind}/${r.metadata.name}`).sort();
    expect(kinds).toEqual([
      'Deployment/weightspace-coordinator',
      'Deployment/weightspace-worker',
      'Namespace/weightspace',
      'PersistentVolumeClaim/weightspace-coordinator-data',
      'Service/weightspace-coordinator',
      'Service/weightspace-nats',
      'StatefulSet/weightspace-nats',
    ]);
    for (const r of rs) if (r.kind !== 'Namespace') expect(r.metadata.namespace).toBe('weightspace');
  });

  it('runs nats with JetStream on a volume, behind a Service on 4222', () => {
    const rs = render('deploy/k8s/overlays/local');
    const nats = find(rs, 'StatefulSet', 'weightspace-nats');
    const c = nats.spec!.template!.spec.containers[0]!;
    expect(c.args).toContain('-js');
    expect(c.volumeMounts?.some((m) => m.mountPath === '/data')).toBe(true);
    expect(nats.spec!.volumeClaimTemplates).toHaveLength(1);
    expect(c.readinessProbe?.httpGet).toBeDefined();
    expect(find(rs, 'Service', 'weightspace-nats').spec!.ports![0]!.port).toBe(4222);
  });

  it('probes coordinator and workers with gRPC health on their ports, with resources and a drain period', () => {
    const rs = render('deploy/k8s/overlays/local');
    const coord = find(rs, 'Deployment', 'weightspace-coordinator').spec!.template!.spec;
    const worker = find(rs, 'Deployment', 'weightspace-worker');
    const wspec = worker.spec!.template!.spec;
    expect(find(rs, 'Service', 'weightspace-coordinator').spec!.ports![0]!.port).toBe(7070);
    for (const [spec, port] of [[coord, 7070], [wspec, 7071]] as const) {
      const c = spec.containers[0]!;
      expect(c.image).toBe('weightspace:local');
      expect(c.ports?.[0]?.containerPort).toBe(port);
      expect(c.readinessProbe?.grpc?.port).toBe(port);
      expect(c.livenessProbe?.grpc?.port).toBe(port);
      expect(c.resources?.requests?.['cpu']).toBeDefined();
      expect(c.resources?.limits?.['memory']).toBeDefined();
      expect(c.args).toContain(`--port=${port}`);
      expect(c.args?.some((a) => a.startsWith('--nats=nats://weightspace-nats:4222'))).toBe(true);
    }
    expect(worker.spec!.replicas).toBe(2);
    expect(wspec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
    expect(wspec.containers[0]!.args).toContain('--advertise=$(POD_IP):7071');
    expect(wspec.containers[0]!.args).toContain('--roots=/models');
  });

  it('mounts checkpoint storage read-only on workers (a host path in the local overlay)', () => {
    const rs = render('deploy/k8s/overlays/local');
    const wspec = find(rs, 'Deployment', 'weightspace-worker').spec!.template!.spec;
    const mount = wspec.containers[0]!.volumeMounts!.find((m) => m.name === 'models');
    expect(mount).toMatchObject({ mountPath: '/models', readOnly: true });
    const vol = wspec.volumes!.find((v) => v.name === 'models');
    expect(vol?.hostPath?.path).toBe('/var/lib/weightspace/models');
    expect(vol?.persistentVolumeClaim).toBeUndefined();
  });

  it('shares the coordinator\'s data dir with the workers at the same path with the shared-staging component', () => {
    const rs = render('deploy/k8s/overlays/shared-staging');
    const claim = find(rs, 'PersistentVolumeClaim', 'weightspace-shared-data') as Resource & { spec: { accessModes: string[] } };
    expect(claim.spec.accessModes).toEqual(['ReadWriteMany']);
    expect(rs.some((r) => r.metadata.name === 'weightspace-coordinator-data')).toBe(false);
    const coord = find(rs, 'Deployment', 'weightspace-coordinator').spec!.template!.spec;
    const wspec = find(rs, 'Deployment', 'weightspace-worker').spec!.template!.spec;
    expect(coord.containers[0]!.args).toContain('--data-dir=/data');
    for (const spec of [coord, wspec]) {
      expect(spec.volumes!.find((v) => v.name === 'data')?.persistentVolumeClaim).toMatchObject({ claimName: 'weightspace-shared-data' });
      const mount = spec.containers[0]!.volumeMounts!.find((m) => m.name === 'data');
      expect(mount?.mountPath).toBe('/data');
      expect(mount?.readOnly).toBeUndefined();
    }
    // the checkpoints stay read-only
    expect(wspec.containers[0]!.volumeMounts!.find((m) => m.name === 'models')?.readOnly).toBe(true);
  });

  it('renders the base with a read-only claim for checkpoints', () => {
    const rs = render('deploy/k8s/base');
    const claim = find(rs, 'PersistentVolumeClaim', 'weightspace-models') as Resource & { spec: { accessModes: string[] } };
    expect(claim.spec.accessModes).toEqual(['ReadOnlyMany']);
    const wspec = find(rs, 'Deployment', 'weightspace-worker').spec!.template!.spec;
    expect(wspec.volumes!.find((v) => v.name === 'models')?.persistentVolumeClaim).toMatchObject({ claimName: 'weightspace-models', readOnly: true });
  });
});
