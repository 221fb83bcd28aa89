import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * docker/nginx.conf, the public edge: which location nginx picks for a path, worked out
 * from the file itself with nginx's own rules, so a new or reordered location cannot
 * quietly expose /admin (Bull Board) or hide the API.
 */
const CONF = path.resolve(__dirname, '../../docker/nginx.conf');

interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
}

/** nginx's grammar, enough for this file: words, quoted strings, `;`, `{ }`, `#` comments. */
function parse(text: string): Directive[] {
  const tokens: string[] = [];
  const lexer = /\s+|#[^\n]*|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([{};])|([^\s{};'"#]+)/gy;
  while (lexer.lastIndex < text.length) {
    const at = lexer.lastIndex;
    const match = lexer.exec(text);
    if (!match) throw new Error(`nginx.conf: cannot read ${JSON.stringify(text.slice(at, at + 20))}`);
    const token = match[1] ?? match[2] ?? match[3] ?? match[4];
    if (token !== undefined) tokens.push(token);
  }
  let at = 0;
  const block = (): Directive[] => {
    const out: Directive[] = [];
    while (at < tokens.length && tokens[at] !== '}') {
      const [name, args] = [tokens[at++], [] as string[]];
      while (tokens[at] !== ';' && tokens[at] !== '{') args.push(tokens[at++]);
      if (tokens[at++] === '{') {
        out.push({ name, args, block: block() });
        at++; // '}'
      } else {
        out.push({ name, args });
      }
    }
    return out;
  };
  return block();
}

interface Location {
  modifier: '' | '=' | '^~' | '~' | '~*';
  pattern: string;
  body: Directive[];
}

function publicServer(): { locations: Location[]; named: Map<string, Directive[]> } {
  const http = parse(readFileSync(CONF, 'utf8')).find((d) => d.name === 'http')!;
  const server = http.block!.find((d) => d.name === 'server' && d.block!.some((l) => l.name === 'listen' && l.args[0] === '80'))!;
  const locations: Location[] = [];
  const named = new Map<string, Directive[]>();
  for (const d of server.block!.filter((x) => x.name === 'location')) {
    if (d.args[0].startsWith('@')) named.set(d.args[0], d.block!);
    else if (d.args.length === 2) locations.push({ modifier: d.args[0] as Location['modifier'], pattern: d.args[1], body: d.block! });
    else locations.push({ modifier: '', pattern: d.args[0], body: d.block! });
  }
  return { locations, named };
}

/** What nginx matches locations against: %XX decoded, slashes merged, `.` and `..` resolved. */
function normalise(uri: string): string {
  const decoded = uri.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return path.posix.normalize(decoded.replace(/\/+/g, '/'));
}

/** nginx's selection: exact `=`; else the longest prefix, final if `^~`; else the first matching regex; else that prefix. */
function select(locations: Location[], rawUri: string): Location | undefined {
  const uri = normalise(rawUri);
  const exact = locations.find((l) => l.modifier === '=' && l.pattern === uri);
  if (exact) return exact;
  const prefix = locations
    .filter((l) => (l.modifier === '' || l.modifier === '^~') && uri.startsWith(l.pattern))
    .sort((a, b) => b.pattern.length - a.pattern.length)[0];
  if (prefix?.modifier === '^~') return prefix;
  const regex = locations.find((l) => (l.modifier === '~' || l.modifier === '~*') && new RegExp(l.pattern, l.modifier === '~*' ? 'i' : '').test(uri));
  return regex ?? prefix;
}

const directive = (body: Directive[], name: string) => body.find((d) => d.name === name);

describe('docker/nginx.conf (public edge)', () => {
  const { locations, named } = publicServer();

  it.each([
    '/admin',
    '/admin/',
    '/admin/queues',
    '/admin/queues/',
    '/admin/queues/login',
    '/admin/queues/api/queues',
    '/admin/queues/queue/notifications.inbox',
    '/admin/queues/static/js/main.js',
    '//admin/queues',
    '/%61dmin/queues',
    '/v1/../admin/queues/api/queues',
    '/v1/notifications/../../admin/queues',
    // Served on the app's internal port only (INTERNAL_PORT), never through the edge.
    '/metrics',
    '/metrics/',
    '//metrics',
    '/%6detrics',
    '/v1/../metrics',
    '/docs',
    '/docs/',
    '/docs-json',
    '/docs/static/index.html',
    '/v1/notifications/../../docs-json',
  ])('does not proxy %s: 404 problem+json from nginx itself', (uri) => {
    const location = select(locations, uri);
    expect(location).toBeDefined();
    expect(directive(location!.body, 'proxy_pass')).toBeUndefined();
    expect(directive(location!.body, 'return')?.args).toEqual(['404']);
    const errorPage = directive(location!.body, 'error_page')!.args;
    expect(errorPage.slice(0, 2)).toEqual(['404', '=']);
    const target = named.get(errorPage[2])!;
    expect(directive(target, 'default_type')?.args).toEqual(['application/problem+json']);
    const [status, body] = directive(target, 'return')!.args;
    expect(status).toBe('404');
    expect(JSON.parse(body)).toMatchObject({ status: 404, title: 'Not Found' });
  });

  it.each([
    ['/v1/users', 'http://api_replicas'],
    ['/v1/orders/123', 'http://api_replicas'],
    ['/health/ready', 'http://api_replicas'],
    ['/health/live', 'http://api_replicas'],
    ['/administrator', 'http://api_replicas'],
    ['/v1/notifications', 'http://notifications_replicas'],
    ['/v1/notifications/stream', 'http://notifications_replicas'],
  ])('still proxies %s to %s', (uri, upstream) => {
    expect(directive(select(locations, uri)!.body, 'proxy_pass')?.args).toEqual([upstream]);
  });

  it('proxies only to upstream blocks that keep idle connections to the app open', () => {
    const http = parse(readFileSync(CONF, 'utf8')).find((d) => d.name === 'http')!.block!;
    const upstreams = new Map(http.filter((d) => d.name === 'upstream').map((d) => [d.args[0], d.block!]));
    const targets = new Set(locations.flatMap((l) => l.body.filter((d) => d.name === 'proxy_pass').map((d) => d.args[0])));
    expect(targets.size).toBeGreaterThan(0);
    for (const target of targets) {
      const upstream = upstreams.get(target.replace(/^http:\/\//, ''));
      expect(upstream).toBeDefined();
      expect(Number(directive(upstream!, 'keepalive')?.args[0])).toBeGreaterThan(0);
      // Re-resolved, so replicas added or restarted later are used (needs a shared zone).
      for (const server of upstream!.filter((d) => d.name === 'server')) expect(server.args).toContain('resolve');
      expect(directive(upstream!, 'zone')).toBeDefined();
    }
    // Upstream keepalive works only over HTTP/1.1 without "Connection: close".
    expect(directive(http, 'proxy_http_version')?.args).toEqual(['1.1']);
    expect(http.find((d) => d.name === 'proxy_set_header' && d.args[0] === 'Connection')?.args).toEqual(['Connection', '']);
  });
});
