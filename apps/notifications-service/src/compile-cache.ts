import * as nodeModule from 'node:module';

// Imported first by main.ts, before any other module is loaded: V8 reuses the code it
// compiled for the same files in an earlier start (on disk under NODE_COMPILE_CACHE, else
// the OS temp directory). Node >= 22.1 has it; on older Node this does nothing. The
// container image ships a warmed cache (docker/Dockerfile). README, "Design notes",
// "Start-up time".
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
