/** Run `iolab load` as a real child process (asynchronously, so servers in the test process keep serving). */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { CLI } from '../helpers/server.js';
import type { LoadResult } from '../../src/loadgen/index.js';

export interface LoadRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Parsed stdout when --json was given. */
  json: LoadResult | null;
}

/** `env` is added to this process's environment for the run (e.g. IOLAB_IO_URING=fail:EPERM). */
export function load(args: string[], timeoutMs = 60_000, env: Record<string, string> = {}): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'load', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`iolab load ${args.join(' ')} did not finish in ${timeoutMs} ms\n${err}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      let json: LoadResult | null = null;
      if (args.includes('--json')) {
        try {
          json = JSON.parse(out) as LoadResult;
        } catch {
          json = null;
        }
      }
      resolve({ status: code, stdout: out, stderr: err, json });
    });
  });
}

export function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

export function freePort(): Promise<number> {
  const s = net.createServer();
  return listen(s).then((p) => new Promise((r) => s.close(() => r(p))));
}

export function waitPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const once = (): void => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => (Date.now() > until ? reject(new Error(`nothing listening on ${port}`)) : setTimeout(once, 50)));
    };
    once();
  });
}
