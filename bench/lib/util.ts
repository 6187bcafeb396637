/** Shared by the bench scripts: process stats from /proc, spawning pinned servers, medians. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { processTree, sampleTree, sockstat } from '../../src/probe/index.js';

export { socketSlabBytes } from '../../src/probe/index.js';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** CPU seconds (user + system) of a process tree (all threads and children). */
export function cpuSeconds(pid: number): number {
  const t = sampleTree(pid);
  return t.cpuUserS + t.cpuSysS;
}

/** Resident set size of a process tree, in bytes. */
export function rssBytes(pid: number): number {
  return sampleTree(pid).rssBytes;
}

/** Descendants of a process (nginx master -> workers). */
export function childPids(pid: number): number[] {
  return processTree(pid).filter((p) => p !== pid);
}

/** Kernel TCP buffer memory, system-wide. */
export function tcpMemBytes(): number {
  return sockstat().tcpMemBytes;
}


export function waitPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tryOnce = (): void => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        if (Date.now() > until) reject(new Error(`nothing listening on ${port} after ${timeoutMs} ms`));
        else setTimeout(tryOnce, 50);
      });
    };
    tryOnce();
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** wrk's -d argument: wrk takes whole seconds only (`-d31.5s` prints its usage and exits 1). */
export function wrkDuration(seconds: number): string {
  return `-d${Math.max(1, Math.round(seconds))}s`;
}

/** Spawn a command pinned to a CPU list with taskset (when present). */
export function spawnPinned(cpus: string, cmd: string, args: string[], opts: { stdio?: 'ignore' | 'pipe' } = {}): ChildProcess {
  const [c, a] = has('taskset') ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
  return spawn(c, a as string[], { stdio: ['ignore', opts.stdio ?? 'ignore', 'inherit'] });
}

/** Start `iolab serve` pinned to `cpus`; resolves with its port once it listens. */
export async function startIolab(cpus: string, args: string[]): Promise<{ child: ChildProcess; port: number; engine: string }> {
  const child = spawnPinned(cpus, process.execPath, [CLI, 'serve', '--port', '0', '--json', '--quiet', ...args], { stdio: 'pipe' });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`iolab serve exited with ${code}`)));
  });
  const j = JSON.parse(line) as { port: number; engine: string };
  return { child, port: j.port, engine: j.engine };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** Reap children on Ctrl-C or any exit. */
export function reapOnExit(children: () => ChildProcess[]): void {
  const kill = (): void => {
    for (const c of children()) if (c.exitCode === null) c.kill('SIGKILL');
  };
  process.on('exit', kill);
  process.on('SIGINT', () => {
    kill();
    process.exit(130);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Busy and total CPU time of the whole machine so far (/proc/stat "cpu" line), in seconds: two readings give how busy every core was between them. */
export function machineCpu(): { busyS: number; totalS: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3]! + f[4]!;
  return { busyS: (total - idle) / 100, totalS: total / 100 }; // USER_HZ: 100 on Linux (proc(5))
}

/** `--help` / `-h`: print the script's opening comment (its usage) and exit. Call before parseArgs. */
export function usageOnHelp(metaUrl: string): void {
  if (!process.argv.includes('--help') && !process.argv.includes('-h')) return;
  const text = readFileSync(fileURLToPath(metaUrl), 'utf8');
  const m = /\/\*\*([\s\S]*?)\*\//.exec(text);
  process.stdout.write((m ? m[1]!.split('\n').map((l) => l.replace(/^\s*\* ?/, '')).join('\n').trim() : 'no usage comment') + '\n');
  process.exit(0);
}
