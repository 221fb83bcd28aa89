import http from 'node:http';

/**
 * A minimal edge router for tests: `/v1/notifications*` goes to one upstream, the rest
 * to another; what nginx does in docker/nginx.conf.
 */
export function startRouter(routes: { prefix: string; port: number }[], fallbackPort: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const port = routes.find((r) => req.url?.startsWith(r.prefix))?.port ?? fallbackPort;
    const upstream = http.request({ host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers }, (response) => {
      res.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ type: 'about:blank', title: 'Bad Gateway', status: 502, detail: 'upstream unavailable' }));
    });
    req.pipe(upstream);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}
