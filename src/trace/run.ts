/**
 * One traced run: start `iolab serve` with IOLAB_TRACE=<file> (every thread and child process of the
 * server appends its records there, sys/trace.ts), drive the scripted client, stop the server (SIGTERM:
 * the records still buffered are flushed at exit), read the file back and analyze the first connection.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENGINE_INFO } from '../engines/index.js';
import type { Protocol, TraceSummary } from '../lab/results.js';
import { startEngine } from '../lab/targets.js';
import { parseTrace, type TraceRecord } from '../sys/trace.js';
import { analyze, emptySummary } from './analyze.js';
import { runClient, type TraceApp } from './client.js';

export interface TraceRunOptions {
  engine: string;
  app: TraceApp;
  /** Requests per connection (default 3) and connections (default 1). */
  requests?: number;
  connections?: number;
  /** The client's pause before each request, ms (default 5): the server's wait for data. */
  pauseMs?: number;
  /** Pin the server to this CPU (null: no pinning). */
  cpu?: number | null;
  /** More `iolab serve` flags. */
  extra?: string[];
}

export interface TraceRun {
  summary: TraceSummary;
  /** Every record of the server's threads and processes, as read from the trace file. */
  records: TraceRecord[];
}

const PROTOCOL: Record<TraceApp, Protocol> = { hello: 'http', kv: 'resp', echo: 'echo' };

export async function runTrace(o: TraceRunOptions): Promise<TraceRun> {
  const requests = o.requests ?? 3;
  const connections = o.connections ?? 1;
  const model = ENGINE_INFO[o.engine]?.model ?? 'unknown';
  const base = { engine: o.engine, ran: o.engine, model, app: o.app, requests, connections };
  const dir = mkdtempSync(join(tmpdir(), 'iolab-trace-'));
  const file = join(dir, 'trace.ndjson');
  // prefork: as many children as connections, so each connection's child is one of few processes.
  const extra = [...(o.engine === 'prefork' ? ['--procs', String(Math.max(1, connections))] : []), ...(o.extra ?? [])];
  try {
    let srv;
    try {
      srv = await startEngine({ engine: o.engine, protocol: PROTOCOL[o.app], cpu: o.cpu ?? null, extra, env: { IOLAB_TRACE: file } });
    } catch (e) {
      return { summary: emptySummary(base, 'failed', (e as Error).message), records: [] };
    }
    base.ran = srv.target.ran;
    let clientError: string | null = null;
    try {
      await runClient({ host: '127.0.0.1', port: srv.port, app: o.app, requests, connections, pauseMs: o.pauseMs ?? 5 });
    } catch (e) {
      clientError = (e as Error).message;
    } finally {
      await srv.stop();
    }
    let records: TraceRecord[] = [];
    try {
      records = parseTrace(readFileSync(file, 'utf8'));
    } catch {
      // no file: nothing was traced (the node engine never loads a traced binding... or the server died)
    }
    const summary = analyze(records, base);
    if (clientError) {
      summary.status = 'failed';
      summary.reason = `client: ${clientError}`;
    }
    return { summary, records };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
