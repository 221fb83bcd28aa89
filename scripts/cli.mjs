// `npm run cli -- <command>` and `npm run seed`: run an operator command against the same
// servers `npm start` uses. Without DATABASE_URL / REDIS_URL, it talks to the embedded
// Postgres and local redis-server that `npm start` runs (when they are up).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isListening } from './dev-services.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
if (!env.DATABASE_URL && (await isListening('127.0.0.1', 54329))) env.DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:54329/app';
if (!env.REDIS_URL && (await isListening('127.0.0.1', 63790))) env.REDIS_URL = 'redis://127.0.0.1:63790';
const child = spawn(process.execPath, [path.join(ROOT, 'dist/apps/api/src/cli.js'), ...process.argv.slice(2)], { cwd: ROOT, env, stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 1));
