/**
 * `iolab trace`: start `iolab serve` with tracing on, drive a scripted client (connect, N requests,
 * close), stop the server, and print the server's syscalls for one connection's life, by phase.
 * `--all` does it for every engine and prints them side by side. `--json`: docs/trace-json.md.
 */
import { Command, Option } from 'commander';
import { ENGINES } from '../engines/index.js';
import { renderAll, renderTrace, runTrace, traceEngines, type TraceApp } from '../trace/index.js';
import { UsageError, parseIntFlag } from './serve.js';

export const TRACE_JSON_SCHEMA = 'iolab.trace/1';

interface TraceFlags {
  engine: string;
  app: TraceApp;
  requests: string;
  connections: string;
  pauseMs: string;
  all?: boolean;
  engines?: string;
  json?: boolean;
  raw?: boolean;
}

export function traceCommand(): Command {
  return new Command('trace')
    .exitOverride() // usage errors become exit code 2 in main.ts, as for every other command
    .showHelpAfterError('(run with --help for usage)')
    .description("trace one connection's syscalls in the server: connect, N requests, close; by phase (accept, wait, read, app, write, close)")
    .addOption(new Option('-e, --engine <name>', 'I/O engine').choices([...ENGINES]).default('epoll'))
    .addOption(new Option('-a, --app <app>', 'app (and protocol) to drive').choices(['hello', 'kv', 'echo']).default('hello'))
    .option('-n, --requests <n>', 'requests on each connection', '3')
    .option('-c, --connections <n>', 'connections (each makes N requests; the first accepted is shown)', '1')
    .option('--pause-ms <ms>', 'the client pauses this long before each request, so the server visibly waits', '5')
    .option('--all', 'trace every engine in turn and print them side by side')
    .option('--engines <list>', 'with --all: which engines (comma list)')
    .option('--json', 'print JSON (schema in docs/trace-json.md)')
    .option('--raw', 'with --json: include every raw record of the server (all threads and processes)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  iolab trace --engine threads                # a blocking read() that returns the request\n' +
        '  iolab trace --engine busypoll               # EAGAIN, EAGAIN, ... then the data\n' +
        '  iolab trace --engine io_uring --app kv      # SQEs submitted, CQEs that carry the bytes\n' +
        '  iolab trace --all                           # every model side by side\n' +
        '\nThe server runs with IOLAB_TRACE=<file>; `IOLAB_TRACE=t.ndjson iolab serve ...` does the same by hand\n' +
        '(records are appended as NDJSON; SIGUSR2 flushes them).\n',
    )
    .action(async (f: TraceFlags) => {
      const requests = parseIntFlag('--requests', f.requests, 1);
      const connections = parseIntFlag('--connections', f.connections, 1);
      const pauseMs = parseIntFlag('--pause-ms', f.pauseMs, 0);
      if (connections > 64) throw new UsageError('--connections: at most 64 (this is a trace, not a load test)');
      if (requests > 1000) throw new UsageError('--requests: at most 1000');
      const o = { app: f.app, requests, connections, pauseMs };
      if (f.all || f.engines) {
        const engines = f.engines ? f.engines.split(',').map((s) => s.trim()).filter(Boolean) : [...ENGINES];
        for (const e of engines) if (!(ENGINES as readonly string[]).includes(e)) throw new UsageError(`unknown engine ${JSON.stringify(e)}; choose from: ${ENGINES.join(', ')}`);
        const ts = await traceEngines(engines, o, f.json ? undefined : (l) => process.stderr.write(`iolab: ${l}\n`));
        if (f.json) process.stdout.write(JSON.stringify({ schema: TRACE_JSON_SCHEMA, traces: ts }, null, 2) + '\n');
        else process.stdout.write(renderAll(ts, process.stdout.columns ? Math.max(80, process.stdout.columns) : 120));
        if (ts.some((t) => t.status === 'failed')) process.exitCode = 1;
        return;
      }
      const run = await runTrace({ ...o, engine: f.engine });
      if (f.json) {
        process.stdout.write(JSON.stringify({ schema: TRACE_JSON_SCHEMA, traces: [run.summary], ...(f.raw ? { records: run.records } : {}) }, null, 2) + '\n');
      } else process.stdout.write(renderTrace(run.summary, process.stdout.columns ? Math.max(80, process.stdout.columns) : 120));
      if (run.summary.status === 'failed') process.exitCode = 1;
    });
}
