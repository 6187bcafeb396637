/** `iolab serve`: run one engine with one app until Ctrl-C / SIGTERM, then drain and exit 0. */
import { writeFileSync, renameSync } from 'node:fs';
import { resolve } from 'node:path';
import { createEngine, engineOptions } from '../engines/index.js';
import { DEFAULT_LIMITS, type EngineStats } from '../engines/types.js';
import { parseWork } from '../apps/work.js';
import { raiseNofile, setAffinity } from '../sys/index.js';
import { flushTrace } from '../sys/trace.js';

export interface ServeFlags {
  engine: string;
  app: string;
  host: string;
  port: string;
  workers: string;
  edge?: boolean;
  sqpoll?: boolean;
  backoff?: string;
  maxThreads?: string;
  spareThreads?: string;
  procs?: string;
  work?: string;
  stallMs: string;
  sendfile?: string;
  maxHeader?: string;
  maxBody?: string;
  drainMs: string;
  maxConnections?: string;
  headerTimeout?: string;
  idleTimeout?: string;
  sendTimeout?: string;
  statsFile?: string;
  cpus?: string;
  json?: boolean;
  quiet?: boolean;
}

export function parseIntFlag(name: string, v: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be an integer ${max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `>= ${min}`} (got ${JSON.stringify(v)})`);
  }
  return n;
}

/** --stall-ms: milliseconds, 0 turns the warning off. */
function parseStallMs(v: string): number | null {
  const n = Number(v);
  if (!(Number.isFinite(n) && n >= 0)) throw new UsageError(`--stall-ms must be a number of milliseconds >= 0, 0 for off (got ${JSON.stringify(v)})`);
  return n > 0 ? n : null;
}

/** --work, as a usage error when malformed. */
function workFlag(v: string | undefined): ReturnType<typeof parseWork> {
  try {
    return parseWork(v);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function parseCpus(v: string): number[] {
  const out: number[] = [];
  for (const part of v.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new UsageError(`--cpus takes a list like 0 or 0,1 or 0-1 (got ${JSON.stringify(v)})`);
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

export class UsageError extends Error {}

const PROTOCOL_URL: Record<string, string> = { http: 'http', resp: 'redis', echo: 'tcp' };

export async function serve(f: ServeFlags): Promise<void> {
  const limits = raiseNofile();
  if (f.cpus) setAffinity(parseCpus(f.cpus));
  if (f.sendfile !== undefined && f.sendfile !== 'on' && f.sendfile !== 'off') throw new UsageError('--sendfile is on or off');
  // Threads and child processes load the app again: give them the directory as an absolute path.
  const app = f.app.startsWith('static:') ? `static:${resolve(f.app.slice(7))}` : f.app;
  const opts = engineOptions({
    app,
    host: f.host,
    port: parseIntFlag('--port', f.port, 0, 65535),
    workers: parseIntFlag('--workers', f.workers, 1),
    edge: !!f.edge,
    drainMs: parseIntFlag('--drain-ms', f.drainMs),
    limits: {
      ...DEFAULT_LIMITS,
      ...(f.maxConnections ? { maxConnections: parseIntFlag('--max-connections', f.maxConnections) } : {}),
      ...(f.headerTimeout ? { headerTimeoutMs: parseIntFlag('--header-timeout', f.headerTimeout, 1) } : {}),
      ...(f.idleTimeout ? { idleTimeoutMs: parseIntFlag('--idle-timeout', f.idleTimeout, 1) } : {}),
      ...(f.sendTimeout ? { sendTimeoutMs: parseIntFlag('--send-timeout', f.sendTimeout, 1) } : {}),
    },
    quiet: !!f.quiet,
    service: {
      work: workFlag(f.work),
      stallMs: parseStallMs(f.stallMs),
      sendfile: f.sendfile !== 'off',
      http: {
        ...(f.maxHeader ? { maxHeaderBytes: parseIntFlag('--max-header', f.maxHeader, 256) } : {}),
        ...(f.maxBody ? { maxBody: parseIntFlag('--max-body', f.maxBody) } : {}),
      },
    },
  });
  if (f.engine !== 'epoll' && f.edge) throw new UsageError('--edge applies to the epoll engine only');
  if (f.sqpoll) {
    if (f.engine !== 'io_uring') throw new UsageError('--sqpoll applies to the io_uring engine only');
    process.env.IOLAB_SQPOLL = '1'; // read by the ring setup, in every loop's thread
  }
  const only = (flag: string, engine: string): void => {
    if (f.engine !== engine) throw new UsageError(`${flag} applies to the ${engine} engine only`);
  };
  if (f.backoff !== undefined) {
    only('--backoff', 'busypoll');
    if (!/^(none|yield|sleep:\d+)$/.test(f.backoff)) throw new UsageError('--backoff is none, yield or sleep:<microseconds>');
    opts.backoff = f.backoff;
  }
  if (f.maxThreads !== undefined) {
    only('--max-threads', 'threads');
    opts.maxThreads = parseIntFlag('--max-threads', f.maxThreads, 1);
  }
  if (f.spareThreads !== undefined) {
    only('--spare-threads', 'threads');
    opts.spareThreads = parseIntFlag('--spare-threads', f.spareThreads, 0);
  }
  if (f.procs !== undefined) {
    only('--procs', 'prefork');
    opts.procs = parseIntFlag('--procs', f.procs, 1);
  }
  const engine = await createEngine(f.engine, opts);
  const at = await engine.start();
  let statsTimer: NodeJS.Timeout | null = null;
  let seq = 0;
  const writeStats = async (): Promise<void> => {
    if (!f.statsFile) return;
    const s = await engine.stats();
    const tmp = `${f.statsFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ ...s, time: Date.now(), seq: ++seq }) + '\n');
    renameSync(tmp, f.statsFile); // readers never see a half-written file
  };
  if (f.statsFile) {
    await writeStats();
    statsTimer = setInterval(() => void writeStats().catch(() => {}), 500);
  }

  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`iolab: second ${sig}, exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    if (!f.quiet && !f.json) process.stderr.write(`iolab: ${sig}: draining (up to ${opts.drainMs} ms)...\n`);
    void engine.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // SIGUSR2: stats on demand, without stopping (like nginx's stub_status). With --stats-file the file is
  // rewritten at once (with a new `seq`), so a lab can take exact counters at the edges of a window.
  process.on('SIGUSR2', () => {
    flushTrace(); // IOLAB_TRACE=<path>: this thread's records so far (a no-op when not tracing)
    if (f.statsFile) void writeStats().catch(() => {});
    else void engine.stats().then((s) => process.stderr.write(JSON.stringify(s) + '\n'));
  });

  // Started by the lab: exit if the lab dies (even by SIGKILL, which gives it no chance to reap us).
  const parent = Number(process.env.IOLAB_EXIT_WITH_PARENT ?? 0);
  delete process.env.IOLAB_EXIT_WITH_PARENT; // not for our own children
  if (parent > 0) {
    setInterval(() => {
      if (process.ppid !== parent) process.exit(1);
    }, 500).unref();
  }

  const first = await engine.stats();
  const scheme = PROTOCOL_URL[first.protocol] ?? 'tcp';
  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  if (f.json) {
    process.stdout.write(JSON.stringify({ event: 'listening', engine: at.engine, app: first.app, protocol: first.protocol, host: at.host, port: at.port, pid: process.pid, workers: opts.workers }) + '\n');
  } else {
    process.stdout.write(
      `iolab: ${at.engine} serving ${first.app} (${first.protocol}) on ${scheme}://${host}:${at.port}` +
        ` (pid ${process.pid}, ${opts.workers} loop${opts.workers > 1 ? 's' : ''}, open-file limit ${limits.soft}); Ctrl-C to stop\n`,
    );
  }

  await engine.done;
  flushTrace();
  if (statsTimer) clearInterval(statsTimer);
  const last: EngineStats = await engine.stats();
  if (f.statsFile) await writeStats();
  if (f.json) process.stdout.write(JSON.stringify({ event: 'stopped', stats: last }) + '\n');
  else if (!f.quiet) {
    process.stderr.write(
      `iolab: stopped after ${last.connections.total} connections, ${last.requests} requests, ` +
        `${last.bytesIn} bytes in, ${last.bytesOut} bytes out\n`,
    );
  }
}
