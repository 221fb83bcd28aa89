/** Types for shard-readiness.js (plain CommonJS, like migration-checker.js). */
import type { TableDistribution } from '@app/platform';

export interface ShardFinding {
  rule: 'shard-user-id' | 'shard-stale-declaration';
  file: string;
  line: number;
  table: string;
  /** `[<rule>] <file>:<line> (module <module>) table <schema>.<table> ...` */
  message: string;
}

export const RULES: ShardFinding['rule'][];
export function createdTables(source: string, file: string): { schema: string | null; table: string; line: number; columns: string[] }[];
export function checkShardReadiness(input: { module: string; sources: { file: string; source: string }[]; distribution?: TableDistribution }): ShardFinding[];
