/** Types for migration-checker.js (plain CommonJS so that .mjs scripts can use it too). */

export interface MigrationFinding {
  /** The file as given (repository-relative for the repository's migrations). */
  file: string;
  line: number;
  rule: 'migration-own-schema' | 'migration-no-cross-schema-fk';
  /** `[<rule>] <file>:<line> (module <module>) <what and why>` */
  message: string;
}

export interface CheckOptions {
  file: string;
  /** The module the migration belongs to, i.e. the only schema it may touch. */
  module: string;
  /** Every domain module; defaults to the folders under libs/ except platform. */
  modules?: string[];
}

export const RULES: MigrationFinding['rule'][];
export function knownModules(root?: string): string[];
export function migrationFiles(root?: string): { module: string; file: string }[];
export function checkMigrationSource(source: string, options: CheckOptions): MigrationFinding[];
export function checkMigrationFile(fullPath: string, options: Omit<CheckOptions, 'file'> & { file?: string }): MigrationFinding[];
export function checkRepository(root?: string): { files: string[]; findings: MigrationFinding[] };
/** The string and template literals of a source file (`${...}` parts read as a space), with the line each starts on. */
export function literals(source: string, file: string): { text: string; line: number; whole: boolean }[];
