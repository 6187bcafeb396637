/** Start `iolab serve` as a real child process on a free port, and stop it cleanly. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface Served {
  port: number;
  host: string;
  engine: string;
  child: ChildProcess;
  stderr: () => string;
  /** SIGTERM, wait for exit; returns the exit code (SIGKILL after 10 s). */
  stop: () => Promise<number | null>;
}

export async function startServer(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<{ port: number; host: string; engine: string }>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a half-started server behind
      reject(new Error(`server did not start in 20 s: ${err}`));
    }, 20_000);
    lines.once('line', (l) => {
      clearTimeout(t);
      resolve(JSON.parse(l));
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`server exited (${code}) before listening: ${err}`));
    });
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    ...first,
    child,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      // Generous: a thread-per-connection engine terminates an isolate per thread, slow on a loaded machine.
      const k = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(k);
      return code;
    },
  };
}

export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Run a command to completion with a time bound; returns stdout, stderr and status. */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): { stdout: string; stderr: string; status: number | null } {
  const input = typeof opts.input === 'string' ? Buffer.from(opts.input) : opts.input;
  const r = spawnSync(cmd, args, { input, timeout: opts.timeoutMs ?? 30_000, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  return { stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '', status: r.status };
}

/** Send raw bytes on a fresh connection; collect everything until the server closes (or timeout). */
export function exchange(port: number, data: Buffer | string, opts: { host?: string; timeoutMs?: number; end?: boolean } = {}): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, opts.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, opts.timeoutMs ?? 2000);
    s.on('data', (d) => chunks.push(d));
    s.on('error', (e) => {
      clearTimeout(t);
      if ((e as NodeJS.ErrnoException).code === 'ECONNRESET') resolve({ data: Buffer.concat(chunks), closed: true });
      else reject(e);
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
    s.write(data);
    if (opts.end) s.end();
  });
}
