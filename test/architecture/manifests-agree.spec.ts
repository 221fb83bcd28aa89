import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { MODULE_MANIFESTS } from '@app/manifests';
import { DOMAIN_MODULE_CATALOGUE } from '../../apps/api/src/modules';
import { ROOT } from '../support/processes';

/**
 * The manifests are where a module is declared (docs/architecture.md, "Module
 * manifests"). The files that cannot read them (JSON: tsconfig paths, nest-cli projects)
 * or that keep a list for now (the API's catalogue) must agree with them; the JavaScript
 * tools (ESLint, dependency-cruiser, jest) read them through scripts/module-manifests.cjs.
 */
describe('the tools and the module manifests agree', () => {
  const json = (file: string) => JSON.parse(readFileSync(path.join(ROOT, file), 'utf8'));
  const names = MODULE_MANIFESTS.map((m) => m.name).sort();

  it('every manifest lives in libs/<name> and owns the schema of that name', () => {
    for (const manifest of MODULE_MANIFESTS) {
      expect(readFileSync(path.join(ROOT, 'libs', manifest.name, 'src/module.manifest.ts'), 'utf8')).toContain(`name: '${manifest.name}'`);
      expect(manifest.schema).toBe(manifest.name);
    }
  });

  it('tsconfig.base.json has exactly the entry point, contracts and manifest alias of every module', () => {
    const paths = json('tsconfig.base.json').compilerOptions.paths as Record<string, string[]>;
    // The platform's own entry points (its index, the tracing preload) and the manifests list are not modules.
    const domainAliases = Object.keys(paths).filter((alias) => !/^@app\/(platform|manifests)(\/|$)/.test(alias)).sort();
    expect(domainAliases).toEqual(names.flatMap((m) => [`@app/${m}`, `@app/${m}/contracts`, `@app/${m}/manifest`]).sort());
    for (const m of names) {
      expect(paths[`@app/${m}`]).toEqual([`./libs/${m}/src/index`]);
      expect(paths[`@app/${m}/contracts`]).toEqual([`./libs/${m}/src/contracts/index`]);
      expect(paths[`@app/${m}/manifest`]).toEqual([`./libs/${m}/src/module.manifest`]);
    }
  });

  it('nest-cli.json has a library project for every module', () => {
    const projects = json('nest-cli.json').projects as Record<string, { type: string; root: string }>;
    for (const m of names) expect(projects[m]).toMatchObject({ type: 'library', root: `libs/${m}` });
  });

  it("jest's module map resolves every module's aliases", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mapper = require(path.join(ROOT, 'jest.config.js')).moduleNameMapper as Record<string, string>;
    const resolve = (request: string) => {
      for (const [pattern, target] of Object.entries(mapper)) {
        const match = new RegExp(pattern).exec(request);
        if (match) return target.replace('$1', match[1] ?? '');
      }
      return undefined;
    };
    for (const m of names) {
      expect(resolve(`@app/${m}`)).toBe(`<rootDir>/libs/${m}/src/index.ts`);
      expect(resolve(`@app/${m}/contracts`)).toBe(`<rootDir>/libs/${m}/src/contracts/index.ts`);
      expect(resolve(`@app/${m}/manifest`)).toBe(`<rootDir>/libs/${m}/src/module.manifest.ts`);
    }
  });

  it("the API's module catalogue has every module with the database of the same name", () => {
    expect(Object.keys(DOMAIN_MODULE_CATALOGUE).sort()).toEqual(names);
    for (const [name, entry] of Object.entries(DOMAIN_MODULE_CATALOGUE)) expect(entry.database.module).toBe(name);
  });

  it('libs/platform names no domain module: no import, no string, no variable prefix of one', () => {
    const files = (readdirSync(path.join(ROOT, 'libs/platform/src'), { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'));
    expect(files.length).toBeGreaterThan(20);
    const findings: string[] = [];
    for (const file of files) {
      const source = readFileSync(path.join(ROOT, 'libs/platform/src', file), 'utf8');
      for (const name of names) {
        const patterns = [new RegExp(`['"\`]${name}['"\`.:]`), new RegExp(`\\b${name.toUpperCase()}_`), new RegExp(`@app/${name}\\b`)];
        for (const pattern of patterns) if (pattern.test(source)) findings.push(`${file}: ${pattern}`);
      }
    }
    expect(findings).toEqual([]);
  });
});
