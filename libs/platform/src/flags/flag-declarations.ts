/**
 * A runtime flag a module declares in its manifest (`flags`). Only declared keys can be
 * read (`Flags.isEnabled`) or changed (`npm run cli -- flags:set`), so a typo fails loudly
 * instead of silently reading a default (docs/architecture.md, "Feature flags").
 */
export interface FlagDeclaration {
  /** One line for `flags:list`: what turning it off does. */
  description: string;
  /** Value while no row in `platform.flags` overrides it (a kill switch: `true`). */
  default: boolean;
}

export interface DeclaredFlag extends FlagDeclaration {
  key: string;
  module: string;
}

/** The part of a module manifest this file reads (no import: the manifest type imports this file). */
interface DeclaringModule {
  name: string;
  flags?: Readonly<Record<string, FlagDeclaration>>;
}

/** Every flag of every manifest, by key. */
export type FlagDeclarations = ReadonlyMap<string, DeclaredFlag>;

/** `<module>.<kebab-case-purpose>`, like queue names. */
export const FLAG_KEY = /^[a-z][a-z0-9]*\.[a-z0-9]+(-[a-z0-9]+)*$/;

export function declaredFlags(manifests: readonly DeclaringModule[]): FlagDeclarations {
  const flags = new Map<string, DeclaredFlag>();
  for (const manifest of manifests) {
    for (const [key, declaration] of Object.entries(manifest.flags ?? {})) {
      flags.set(key, { key, module: manifest.name, ...declaration });
    }
  }
  return flags;
}

/** Declaration errors (reported with the other manifest problems). */
export function flagProblems(manifest: DeclaringModule): string[] {
  return Object.keys(manifest.flags ?? {})
    .filter((key) => !key.startsWith(`${manifest.name}.`) || !FLAG_KEY.test(key))
    .map((key) => `flag "${key}" declared by module "${manifest.name}" must be named "${manifest.name}.<kebab-case-purpose>"`);
}
