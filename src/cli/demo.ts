/**
 * `iolab demo`: serve `hello` on the epoll engine in a child process, drive it with keep-alive
 * requests for a few seconds, and print what the server asked of the kernel per request.
 * The load comes from Node's own http client here, so req/s shows the client's pace; the
 * figures that do not depend on the client are the syscalls and wakeups per request.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import type { EngineStats } from '../engines/types.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export async function demo(seconds: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iolab-demo-'));
  const statsFile = join(dir, 'stats.json');
  const child = spawn(process.execPath, [MAIN, 'serve', '--engine', 'epoll', '--app', 'hello', '--port', '0', '--json', '--stats-file', statsFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const cleanup = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const lines = createInterface({ input: child.stdout! });
    const listening = await new Promise<{ port: number; engine: string }>((resolve, reject) => {
      lines.once('line', (l) => resolve(JSON.parse(l)));
      child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
    });
    process.stdout.write(`iolab demo: ${listening.engine} serving hello on 127.0.0.1:${listening.port}, driving it for ${seconds}s with 32 keep-alive connections\n`);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    const until = Date.now() + seconds * 1000;
    let ok = 0, bad = 0;
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: listening.port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) ok++;
            else bad++;
            resolve();
          });
        });
        req.on('error', () => {
          bad++;
          resolve();
        });
      });
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (Date.now() < until) await one();
    }));
    const elapsed = (performance.now() - t0) / 1000;
    agent.destroy();
    await new Promise((r) => setTimeout(r, 600)); // let the stats file catch up
    const s = JSON.parse(readFileSync(statsFile, 'utf8')) as EngineStats;
    const per = (n: number | undefined): string => ((n ?? 0) / Math.max(1, s.requests)).toFixed(2);
    const total = Object.values(s.syscalls).reduce((a, b) => a + b, 0);
    process.stdout.write(
      [
        `  requests         ${ok} ok, ${bad} failed, ${(ok / elapsed).toFixed(0)} req/s (paced by Node's http client)`,
        `  server saw       ${s.requests} requests on ${s.connections.total} connections`,
        `  per request      ${per(total)} syscalls: read ${per(s.syscalls.read)}, write ${per(s.syscalls.write)}, epoll_wait ${per(s.syscalls.epoll_wait)}`,
        `  wakeups          ${s.wakeups} returns from epoll_wait, ${per(s.wakeups)} per request (one wakeup serves many ready connections)`,
        `  next             npm run bench:http (wrk against epoll, node:http and nginx)`,
      ].join('\n') + '\n',
    );
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    if (bad > 0) process.exitCode = 1;
  } finally {
    cleanup();
  }
}
