import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TSchema } from '@sinclair/typebox';
// js-yaml is installed through @nestjs/swagger (a runtime dependency); merge keys (`<<`)
// are YAML 1.1, which compose files use, so the merge tag is switched on.
import { CORE_SCHEMA, load, loadAll, mergeTag } from 'js-yaml';
import { MODULE_MANIFESTS } from '@app/manifests';
import { ConfigError, EnvSchema, loadConfig, ModuleOverrideSchema, type LoadConfigOptions } from '@app/platform';
import { keyPairEnv } from '../support/token-keys';

/**
 * docker/compose.yaml and deploy/k8s/*.yaml must boot in production. What production
 * requires is not listed here by hand: it is found by asking the real config loader
 * (the platform schema, every manifest's config schema and the production rules) what is
 * missing from an empty production environment, one variable at a time. A renamed or
 * new required variable is then required of the deployment files at once.
 */
const ROOT = path.resolve(__dirname, '../..');
const YAML_SCHEMA = CORE_SCHEMA.withTags(mergeTag);
type Purpose = NonNullable<LoadConfigOptions['purpose']>;

/** Same rule as the platform's describeRejectedValue: these values are secrets. */
const SECRET_NAME = /(SECRET|PASSWORD|PASSPHRASE|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIALS?)$/;

function schemaOf(variable: string): (TSchema & Record<string, unknown>) | undefined {
  const platform = (EnvSchema.properties as Record<string, TSchema>)[variable];
  if (platform) return platform as TSchema & Record<string, unknown>;
  for (const manifest of MODULE_MANIFESTS) {
    const own = (manifest.config?.properties as Record<string, TSchema> | undefined)?.[variable];
    if (own) return own as TSchema & Record<string, unknown>;
    const prefix = `${manifest.name.toUpperCase()}_`;
    const override = variable.startsWith(prefix) && (ModuleOverrideSchema.properties as Record<string, TSchema>)[variable.slice(prefix.length)];
    if (override) return override as TSchema & Record<string, unknown>;
  }
  return undefined;
}

/** A value the schema of `variable` accepts, standing in for what a secret store holds. */
/** One real key pair: the loader parses token keys, and the public half must match the private one. */
const TOKEN_KEYS = keyPairEnv().signer;

function placeholder(variable: string): string {
  if (TOKEN_KEYS[variable] !== undefined) return TOKEN_KEYS[variable];
  const schema = schemaOf(variable);
  if (!schema) throw new Error(`${variable} is named by the config loader but declared by no schema`);
  const pattern = String(schema.pattern ?? '');
  if (pattern.startsWith('^postgres')) return `postgres://placeholder_${variable.toLowerCase()}:placeholder0123456789@db:5432/app`;
  if (pattern.startsWith('^redis')) return 'redis://cache:6379';
  if (schema.type === 'integer' || schema.type === 'number') return String(schema.default ?? schema.minimum ?? 1);
  if (schema.type === 'boolean') return 'true';
  return 'p'.repeat(Math.max(64, Number(schema.minLength ?? 0)));
}

/**
 * Groups of variables production requires (one of each group: "USERS_DATABASE_URL or
 * USERS_DB_PASSWORD"), derived by loading an empty production environment and filling in
 * whatever the loader names, until it loads.
 */
function requiredInProduction(purpose: Purpose, modulesEnabled?: string): string[][] {
  const env: Record<string, string> = { NODE_ENV: 'production', ...(modulesEnabled ? { MODULES_ENABLED: modulesEnabled } : {}) };
  const groups: string[][] = [];
  for (let round = 0; round < 100; round++) {
    try {
      loadConfig(env, MODULE_MANIFESTS, { purpose });
      return groups;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const subject = error.message.replace(/^Invalid configuration: /, '').split(/ (?:is|are) required| must | has /)[0];
      const names = subject.match(/\b[A-Z][A-Z0-9_]{2,}\b/g) ?? [];
      const [first] = names;
      if (first === undefined || env[first] !== undefined) throw new Error(`cannot derive requirements from: ${error.message}`);
      groups.push(names);
      env[first] = placeholder(first);
    }
  }
  throw new Error('no end to the required variables');
}

interface Service {
  where: string;
  purpose: Purpose;
  /** The value as written, or `undefined` for a value taken from a secret. */
  env: Map<string, { value?: string; fromSecret: boolean }>;
}

/** Compose interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?error}`; `$$` is a dollar. */
const INTERPOLATION = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g;

function composeServices(): Service[] {
  const file = 'docker/compose.yaml';
  const doc = load(readFileSync(path.join(ROOT, file), 'utf8'), { schema: YAML_SCHEMA }) as {
    services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string | number | boolean> }>;
  };
  return Object.entries(doc.services)
    .filter(([, service]) => service.image?.startsWith('modular-monolith'))
    .map(([name, service]) => ({
      where: `${file} service ${name}`,
      purpose: service.command?.some((part) => part.includes('db-bootstrap')) ? 'bootstrap' : 'serve',
      env: new Map(
        Object.entries(service.environment ?? {}).map(([key, raw]) => {
          const value = String(raw);
          const secrets = [...value.matchAll(INTERPOLATION)].filter((m) => m[2] !== ':-' && m[2] !== '-');
          return [key, { value, fromSecret: secrets.length > 0 }];
        }),
      ),
    }));
}

interface K8sContainer {
  image?: string;
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
}

function kubernetesServices(): Service[] {
  const dir = 'deploy/k8s';
  return readdirSync(path.join(ROOT, dir))
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) =>
      (loadAll(readFileSync(path.join(ROOT, dir, f), 'utf8'), null, { schema: YAML_SCHEMA }) as { kind: string; metadata: { name: string }; spec: { template?: { spec: { containers: K8sContainer[] } } } }[])
        .filter((doc) => doc && (doc.kind === 'Deployment' || doc.kind === 'Job'))
        .flatMap((doc) =>
          doc.spec.template!.spec.containers
            .filter((c) => c.image?.startsWith('modular-monolith'))
            .map((c) => ({
              where: `${dir}/${f} ${doc.kind} ${doc.metadata.name}`,
              purpose: (c.command?.some((part) => part.includes('db-bootstrap')) ? 'bootstrap' : 'serve') as Purpose,
              env: new Map((c.env ?? []).map((e) => [e.name, { value: e.value, fromSecret: Boolean(e.valueFrom?.secretKeyRef) }])),
            })),
        ),
    );
}

/** The environment the container would see, secrets replaced by values their schema accepts. */
function resolved(service: Service): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, { value, fromSecret }] of service.env) {
    if (value === undefined) out[key] = placeholder(key);
    else if (fromSecret && value.replace(INTERPOLATION, '') === '') out[key] = placeholder(key);
    else out[key] = value.replace(INTERPOLATION, (_, name: string, op?: string, arg?: string) => (op?.endsWith('-') ? arg! : `${name.toLowerCase()}0123456789abcdef`));
  }
  return out;
}

const isSecret = (variable: string, value: string | undefined) => SECRET_NAME.test(variable) || /^\w+:\/\/[^/@]*:[^/@]*@/.test(value ?? '');

describe.each([
  ['docker/compose.yaml', composeServices],
  ['deploy/k8s', kubernetesServices],
])('%s boots in production', (_, services) => {
  const all = services();

  it('has serving containers and exactly one one-shot bootstrap', () => {
    expect(all.filter((s) => s.purpose === 'serve').length).toBeGreaterThanOrEqual(2);
    expect(all.filter((s) => s.purpose === 'bootstrap')).toHaveLength(1);
  });

  it.each(all.map((s) => [s.where, s] as const))('%s provides every variable production requires, secrets from a secret', (where, service) => {
    expect(service.env.get('NODE_ENV')?.value).toBe('production');
    const groups = requiredInProduction(service.purpose, service.env.get('MODULES_ENABLED')?.value);
    expect(groups.length).toBeGreaterThan(0);
    for (const group of groups) {
      const given = group.find((name) => service.env.has(name));
      expect({ where, missing: given ? undefined : group.join(' or ') }).toEqual({ where, missing: undefined });
      const entry = service.env.get(given!)!;
      if (isSecret(given!, entry.value)) expect({ where, variable: given, fromSecret: entry.fromSecret }).toEqual({ where, variable: given, fromSecret: true });
    }
    // With the secrets filled in, the real loader accepts the whole environment.
    expect(() => loadConfig(resolved(service), MODULE_MANIFESTS, { purpose: service.purpose })).not.toThrow();
  });

  it.each(all.filter((s) => s.purpose === 'serve').map((s) => [s.where, s] as const))(
    '%s serves with its module URLs only: no admin URL, no bootstrap at start',
    (_where, service) => {
      expect(service.env.get('DB_BOOTSTRAP_ON_START')?.value).toBe('false');
      expect(service.env.has('DATABASE_URL')).toBe(false);
      const config = loadConfig(resolved(service), MODULE_MANIFESTS);
      for (const module of config.enabledModules) expect(service.env.has(`${module.toUpperCase()}_DATABASE_URL`)).toBe(true);
    },
  );
});

describe('docker/compose.yaml start order', () => {
  it('starts the serving containers only after the bootstrap job completed', () => {
    const doc = load(readFileSync(path.join(ROOT, 'docker/compose.yaml'), 'utf8'), { schema: YAML_SCHEMA }) as {
      services: Record<string, { command?: string[]; restart?: string; depends_on?: Record<string, { condition: string }> }>;
    };
    const [bootstrap] = Object.entries(doc.services).find(([, s]) => s.command?.some((part) => part.includes('db-bootstrap')))!;
    expect(doc.services[bootstrap].restart).toBe('no');
    for (const service of composeServices().filter((s) => s.purpose === 'serve')) {
      const name = service.where.split(' ').pop()!;
      expect(doc.services[name].depends_on?.[bootstrap]).toEqual({ condition: 'service_completed_successfully' });
    }
  });
});
