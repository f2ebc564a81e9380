// The deployment files as an operator uses them: every Kubernetes document validates against the
// Kubernetes schemas (kubernetes-models), and the invariants that made them fail on first use are
// checked — secrets readable by the non-root user, shutdown timing, selectors, no secret in a
// ConfigMap, the admin port fenced off, the audit log on a volume that survives a rollout — and the
// compose file and the Dockerfile's `docker run` example publish only listeners that bind 0.0.0.0.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const k8sText = read('config/kubernetes.yaml');
const docs: Doc[] = parseAllDocuments(k8sText).map((d) => d.toJS() as Doc);
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x['kind'] === kind && x['metadata']?.['name'] === name);
  if (!d) throw new Error(`config/kubernetes.yaml has no ${kind} ${name}`);
  return d;
};
const containerConfig: Config = loadConfig(join(ROOT, 'config/aigate.container.yaml'), { AIGATE_FINGERPRINT_KEY: 'k', REDIS_URL: 'redis://:p@redis:6379/0' });

/** Pod templates with where they are, for the per-pod checks. */
function podSpecs(): Array<{ where: string; spec: Doc; labels: Record<string, string> }> {
  const out: Array<{ where: string; spec: Doc; labels: Record<string, string> }> = [];
  for (const d of docs) {
    const where = `${d['kind']} ${d['metadata']['name']}`;
    const tpl = d['kind'] === 'CronJob' ? d['spec']['jobTemplate']['spec']['template'] : d['spec']?.['template'];
    if (tpl) out.push({ where, spec: tpl['spec'], labels: tpl['metadata']?.['labels'] ?? {} });
  }
  return out;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('config/kubernetes.yaml', () => {
  it('every document validates against the Kubernetes schemas', async () => {
    expect(docs.length).toBeGreaterThanOrEqual(8);
    for (const d of docs) {
      const [group, version] = String(d['apiVersion']).includes('/') ? String(d['apiVersion']).split('/') : ['', String(d['apiVersion'])];
      const mod = (await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${d['kind']}`)) as Record<string, new (data: Doc) => { validate(): void }>;
      const Model = mod[String(d['kind'])]!;
      expect(() => new Model(d).validate(), `${d['kind']} ${d['metadata']['name']}`).not.toThrow();
    }
  });

  it('pods run as non-root, and every mounted secret is readable by that user', () => {
    for (const { where, spec } of podSpecs()) {
      const pod = spec['securityContext'] ?? {};
      expect(pod['runAsNonRoot'], where).toBe(true);
      for (const volume of spec['volumes'] ?? []) {
        const secretMode: number | undefined = volume['secret']?.['defaultMode'] ?? (volume['projected']?.['sources']?.some((s: Doc) => s['secret']) ? volume['projected']['defaultMode'] : undefined);
        if (secretMode === undefined || (secretMode & 0o004) !== 0) continue;
        // Not world-readable: the files belong to root and to fsGroup, so the pod needs fsGroup
        // and a group-read bit (a 0400 secret under uid 1000 is EACCES).
        expect(pod['fsGroup'], `${where}: volume ${volume['name']} needs fsGroup`).toBeDefined();
        expect(secretMode & 0o040, `${where}: volume ${volume['name']} mode ${secretMode.toString(8)} is not group-readable`).not.toBe(0);
      }
      for (const c of spec['containers']) expect(c['securityContext']?.['allowPrivilegeEscalation'], `${where} ${c['name']}`).toBe(false);
    }
  });

  it('shutdown: preStop outlasts the endpoint update, and the grace period covers preStop + drain', () => {
    const pod = find('StatefulSet', 'aigate')['spec']['template']['spec'];
    const aigate = pod['containers'][0];
    const preStop = aigate['lifecycle']['preStop']['exec']['command'] as string[];
    expect(preStop[0]).toBe('sleep');
    const preStopS = Number(preStop[1]);
    expect(preStopS).toBeGreaterThanOrEqual(5);
    expect(pod['terminationGracePeriodSeconds']).toBeGreaterThan(preStopS + containerConfig.timeouts.drain / 1000);
    expect(aigate['readinessProbe']['httpGet']['path']).toBe('/readyz');
  });

  it('the audit log is on a volume that survives a rollout, and no secret goes through a ConfigMap', () => {
    const set = find('StatefulSet', 'aigate');
    const mount = set['spec']['template']['spec']['containers'][0]['volumeMounts'].find((m: Doc) => m['mountPath'] === '/app/logs');
    expect(set['spec']['volumeClaimTemplates'].map((t: Doc) => t['metadata']['name'])).toContain(mount['name']);
    expect(containerConfig.audit.file?.startsWith('/app/logs/')).toBe(true);
    expect(docs.filter((d) => d['kind'] === 'ConfigMap' || d['kind'] === 'Secret')).toEqual([]); // created by the commands in the header
    const createConfigMap = k8sText.split('\n').filter((l) => l.includes('create configmap')).join('\n');
    expect(createConfigMap).not.toMatch(/htpasswd|\.key|PASSWORD|FINGERPRINT/);
    // The users file the config names comes from a Secret, beside the config.
    expect(containerConfig.auth.usersFile).toBe('/app/config/users.htpasswd');
    const config = set['spec']['template']['spec']['volumes'].find((v: Doc) => v['name'] === 'config');
    expect(config['projected']['sources']).toContainEqual({ secret: { name: 'aigate-users' } });
  });

  it('selectors: the Service, PDB and HPA reach aigate\'s pods and only them; Redis requires a password', () => {
    const pods = podSpecs();
    const aigateLabels = pods.find((p) => p.where === 'StatefulSet aigate')!.labels;
    for (const [kind, selector] of [
      ['Service', find('Service', 'aigate')['spec']['selector']],
      ['PodDisruptionBudget', find('PodDisruptionBudget', 'aigate')['spec']['selector']['matchLabels']],
      ['NetworkPolicy', find('NetworkPolicy', 'aigate')['spec']['podSelector']['matchLabels']],
    ] as const) {
      expect(matches(selector, aigateLabels), kind).toBe(true);
      for (const other of pods.filter((p) => p.where !== 'StatefulSet aigate')) expect(matches(selector, other.labels), `${kind} selects ${other.where}`).toBe(false);
    }
    expect(find('HorizontalPodAutoscaler', 'aigate')['spec']['scaleTargetRef']).toMatchObject({ kind: 'StatefulSet', name: 'aigate' });
    const redis = find('Deployment', 'aigate-redis')['spec']['template']['spec']['containers'][0];
    expect(redis['args']).toContain('--requirepass');
    expect(redis['readinessProbe']).toBeDefined();
    const env = find('StatefulSet', 'aigate')['spec']['template']['spec']['containers'][0]['env'] as Doc[];
    expect(env.find((e) => e['name'] === 'REDIS_URL')?.['value']).toContain(':$(REDIS_PASSWORD)@');
  });

  it('the admin port (no authentication) is open only to the monitoring namespace', () => {
    const policy = find('NetworkPolicy', 'aigate');
    const rules = policy['spec']['ingress'] as Doc[];
    const adminPort = containerConfig.listen.admin!.port;
    for (const rule of rules) {
      const ports = (rule['ports'] ?? []).map((p: Doc) => p['port']);
      if (ports.includes(adminPort)) expect(rule['from'], 'admin ingress needs a from').toBeDefined();
      else expect(ports.length, 'an ingress rule without ports would open the admin port').toBeGreaterThan(0);
    }
    expect(find('Service', 'aigate')['spec']['ports'].map((p: Doc) => p['port'])).not.toContain(adminPort);
  });
});

/** Container ports of `-p`/`ports:` entries with the host address they are published on. */
function published(specs: string[]): Array<{ hostIp: string; port: number }> {
  return specs.map((s) => {
    const parts = s.split(':');
    return { hostIp: parts.length === 3 ? parts[0]! : '0.0.0.0', port: Number(parts[parts.length - 1]) };
  });
}

function checkPublished(where: string, ports: Array<{ hostIp: string; port: number }>): void {
  const listeners = Object.entries(containerConfig.listen) as Array<[string, { host: string; port: number }]>;
  for (const p of ports) {
    const l = listeners.find(([, v]) => v.port === p.port);
    expect(l, `${where} publishes ${p.port}, which no listener uses`).toBeDefined();
    expect(['0.0.0.0', '::'], `${where}: listen.${l![0]} binds ${l![1].host}; a published port cannot reach it`).toContain(l![1].host);
    if (l![0] === 'admin') expect(p.hostIp, `${where}: the admin listener is published beyond the host's loopback`).toBe('127.0.0.1');
  }
}

describe('config/compose.yaml and the Dockerfile example', () => {
  it('compose publishes only listeners bound to 0.0.0.0, the admin one on loopback; grace > drain; Redis with a password', () => {
    const compose = parseYaml(read('config/compose.yaml')) as Doc;
    const aigate = compose['services']['aigate'];
    expect(aigate['volumes']).toContain('./aigate.container.yaml:/app/config/aigate.yaml:ro');
    checkPublished('compose', published(aigate['ports']));
    expect(parseInt(aigate['stop_grace_period'], 10)).toBeGreaterThan(containerConfig.timeouts.drain / 1000);
    expect(compose['services']['redis']['command']).toContain('--requirepass');
    expect(aigate['environment']['REDIS_URL']).toMatch(/^redis:\/\/:\$\{REDIS_PASSWORD/);
  });

  it('the Dockerfile\'s docker run example mounts the container config and publishes what it binds', () => {
    const example = read('Dockerfile').split('\n').filter((l) => l.startsWith('#   ')).join(' ').replace(/\\/g, ' ');
    const run = example.slice(example.indexOf('docker run'));
    expect(run).toContain('config/aigate.container.yaml:/app/config/aigate.yaml');
    checkPublished('Dockerfile', published([...run.matchAll(/-p (\S+)/g)].map((m) => m[1]!)));
  });
});
