/** Types for event-contracts.cjs (plain CommonJS: `npm run contracts:check|update` and the jest spec share it). */

export interface ContractsOptions {
  /** Repository (or fixture) root holding libs/<module>/src/{module.manifest.ts,contracts/}; default: this repository. */
  root?: string;
}

export interface ContractsResult {
  /** Sentences naming the event type, the field (JSON path) and the change; empty when all is well. */
  problems: string[];
  /** Schema files written (update only), relative to the root, with `/` separators. */
  written: string[];
  /** Event versions whose payload schema was generated and compared. */
  compared: number;
}

export interface SchemaChange {
  /** JSON path of the field: `$`, `$.email`, `$.lines[*].sku`. */
  at: string;
  change: string;
  breaking: boolean;
}

/** Schema of a payload, as generated and committed (JSON Schema draft-07 subset). */
export type JsonSchema = Record<string, unknown>;

export const REPO_ROOT: string;
/** Compares only: what `npm run contracts:check` and CI run. */
export function checkContracts(options?: ContractsOptions): ContractsResult;
/** Writes missing schemas and compatible changes; never a breaking change, never a deletion. */
export function updateContracts(options?: ContractsOptions): ContractsResult;
export function compareSchemas(before: JsonSchema, after: JsonSchema): SchemaChange[];
/** The version to publish a breaking change as: one above the highest published of that event. */
export function nextVersion(type: string, published: readonly string[]): string;
