/** Types for dependency-graph.js (plain CommonJS so that .mjs scripts can use it too). */

/** The parts of dependency-cruiser's JSON result that the checks read. */
export interface CruiseResult {
  modules: { source: string; dependencies: { module: string; resolved: string; dependencyTypes: string[] }[] }[];
  summary: { violations: { from: string; to: string; rule: { name: string; severity: string } }[]; error: number };
}

export interface Violation {
  rule: string;
  from: string;
  to: string;
}

export type Entrance = 'contracts' | 'entry point' | 'internals';

export interface ModuleGraph {
  nodes: string[];
  edges: { from: string; to: string; via: Entrance[] }[];
}

export interface CruiseOptions {
  /** Where the cruise runs; holds the tsconfig.json whose paths resolve the aliases. */
  cwd?: string;
  paths?: string[];
}

export const ROOT: string;
export const GRAPH_FILE: string;
export function cruise(options?: CruiseOptions): Promise<CruiseResult>;
export function cruiseSync(options?: CruiseOptions): CruiseResult;
export function violations(result: CruiseResult): Violation[];
export function ruleNames(): string[];
export function moduleGraph(result: CruiseResult): ModuleGraph;
export function moduleCycles(graph: ModuleGraph): string[];
export function renderMermaid(graph: ModuleGraph): string;
