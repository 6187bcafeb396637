/**
 * `iolab load [mode] <target...>`: the load generator's command line. I/O: io_uring (IORING_OP_CONNECT, multishot recv from a provided-buffer ring, one io_uring_enter
per turn) when the kernel allows it, else epoll with a one-line notice (--backend chooses; the
result's "backend" names the one that ran).

Exit codes: 0 ok, 1 errors
 * above --max-errors (or the run failed), 2 usage, 130 interrupted by Ctrl-C (the partial result is
 * printed first).
 */
import { Command, Option } from 'commander';
import {
  LOAD_BACKENDS, LOAD_MODES, LOAD_PROTOCOLS, LoadUsageError, type LoadBackend, type LoadMode, type LoadOptions, type LoadProtocol,
} from '../loadgen/options.js';
import { formatProgress, formatSummary } from '../loadgen/result.js';
import { runLoad } from '../loadgen/index.js';

interface LoadFlags {
  connections?: string;
  pipeline?: string;
  duration?: string;
  requests?: string;
  rate?: string;
  connectRate?: string;
  interval?: string;
  timeout?: string;
  connectTimeout?: string;
  deadline?: string;
  protocol?: LoadProtocol;
  method?: string;
  header?: string[];
  body?: string;
  expectStatus?: string;
  command?: string[];
  keyspace?: string;
  dataSize?: string;
  size?: string;
  procs?: string;
  cpus?: string;
  sources?: string;
  steps?: string;
  rampBy?: 'connections' | 'rate';
  stepDuration?: string;
  sloP99?: string;
  sloErrors?: string;
  maxErrors?: string;
  hdrLog?: string;
  backend?: LoadBackend;
  json?: boolean;
  progress: boolean;
  quiet?: boolean;
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

const EXAMPLES = `
Modes:
  closed   C connections, each with --pipeline requests in flight, as fast as replies come (wrk)
  rate     --rate R requests/s in total, latency from each request's intended send time (wrk2)
  hold     open C connections at --connect-rate and keep them, idle or one request every --interval
  ramp     steps of connections (or rates) until the SLO (--slo-p99, --slo-errors) breaks

Targets: http://host:port/path (HTTP/1.1), redis://host:port (RESP), tcp://host:port (echo).
Several targets spread the connections over them. Times: 500ms, 10s, 2m (bare numbers: seconds
for --duration/--interval/--step-duration/--deadline, milliseconds for --timeout/--slo-p99).

Examples:
  iolab load http://127.0.0.1:8080/ -c 100 -d 10s
  iolab load closed http://127.0.0.1:8080/ -c 100 -p 16 --cpus 1 --json > result.json
  iolab load rate http://127.0.0.1:8080/ -R 20000 -c 100 -d 30s
  iolab load redis://127.0.0.1:6379 -c 50 -p 16 --command 'SET key:__rand_int__ __data__' --command 'GET key:__rand_int__'
  iolab load tcp://127.0.0.1:7000 --size 1024 -c 10 -n 100000
  iolab load hold http://127.0.0.1:8080/ -c 50000 --connect-rate 10000 -d 30s --procs 3
  iolab load ramp http://127.0.0.1:8080/ --steps 10,100,1k,10k --slo-p99 50ms
  iolab load http://127.0.0.1:8080/ -c 100 --backend epoll      # readiness instead of io_uring

I/O: io_uring (IORING_OP_CONNECT, multishot recv from a provided-buffer ring, one io_uring_enter
per turn) when the kernel allows it, else epoll with a one-line notice (--backend chooses; the
result's "backend" names the one that ran).

Exit codes: 0 ok, 1 errors above --max-errors or the run failed, 2 usage error, 130 Ctrl-C (partial result printed).
JSON output: schema iolab.load/1, see docs/load-json.md.
`;

export function loadCommand(): Command {
  return new Command('load')
    .description('generate load against a server (HTTP/1.1, RESP, echo) and report throughput, latency percentiles and errors')
    .argument('[mode-and-targets...]', `optional mode (${LOAD_MODES.join(' | ')}; default closed), then one or more target URLs`)
    .option('-c, --connections <n>', 'connections in total, e.g. 100 or 10k', '50')
    .option('-p, --pipeline <n>', 'requests in flight per connection', '1')
    .option('-d, --duration <time>', 'measure for this long (default 10s)')
    .option('-n, --requests <n>', 'stop after this many replies instead of a duration')
    .option('-R, --rate <n>', 'rate mode: requests per second in total')
    .option('--connect-rate <n>', 'new connections per second (default: 5000 in hold mode, unpaced otherwise)')
    .option('--interval <time>', 'hold mode: one request per connection every <time> (default idle)')
    .option('--timeout <time>', 'a request unanswered this long is a timeout error (default 5000ms)')
    .option('--connect-timeout <time>', 'a connect taking longer is a timeout error (default 5000ms)')
    .option('--deadline <time>', 'hard cap on the whole run (default: the plan plus a margin)')
    .addOption(new Option('--protocol <name>', 'override the protocol the URL implies').choices([...LOAD_PROTOCOLS]))
    .option('-m, --method <method>', 'HTTP method (default GET)')
    .option('-H, --header <line>', 'HTTP header "Name: value" (repeatable)', collect)
    .option('--body <text>', 'HTTP request body')
    .option('--expect-status <list>', 'HTTP statuses that count as success: 200, 200,204, 2xx (default 2xx)')
    .option('--command <template>', "RESP command (repeatable, cycled): 'SET key:__rand_int__ __data__', 'GET key:__rand_int__', PING", collect)
    .option('--keyspace <n>', 'RESP: __rand_int__ ranges over [0, n) (default 100000)')
    .option('--data-size <bytes>', 'RESP: size of __data__ (default 3)')
    .option('--size <bytes>', 'echo: payload per request, every byte verified (default 64)')
    .option('--procs <n>', 'worker processes sharing the connections (auto-raised past ~19k connections each)')
    .option('--cpus <list>', 'pin to these CPUs, e.g. 1 or 0-1 (process i gets cpus[i % n])')
    .option('--sources <addrs>', 'local source addresses, e.g. 127.0.0.1-127.0.0.32 (auto on loopback past 6k connections per target)')
    .option('--steps <list>', 'ramp: step values, e.g. 10,100,1k,10k')
    .addOption(new Option('--ramp-by <what>', 'ramp: what the steps count').choices(['connections', 'rate']))
    .option('--step-duration <time>', 'ramp: seconds per step (default 5s)')
    .option('--slo-p99 <time>', 'ramp SLO: p99 bound (default 100ms)')
    .option('--slo-errors <fraction>', 'ramp SLO: error bound, e.g. 1% or 0.01 (default 1%)')
    .option('--max-errors <n>', 'errors tolerated before exit 1: a count or a fraction like 0.1% (default 0)')
    .option('--hdr-log <file>', 'write an HdrHistogram interval log (one interval a second)')
    .addOption(
      new Option('--backend <name>', 'I/O backend: auto (io_uring when the kernel allows it, else epoll with a notice), io_uring, epoll')
        .choices([...LOAD_BACKENDS])
        .default('auto'),
    )
    .option('--json', 'print the result as JSON (schema iolab.load/1) instead of the summary')
    .option('--no-progress', 'no live progress line (shown on stderr only when it is a terminal)')
    .option('-q, --quiet', 'no notices or progress on stderr')
    .addHelpText('after', EXAMPLES)
    // Commands added with addCommand() do not inherit the program's settings: throw CommanderError
    // (main.ts turns it into exit 2) instead of exiting from inside commander.
    .exitOverride()
    .showHelpAfterError('(run iolab load --help for usage)')
    .action(async (args: string[], flags: LoadFlags) => {
      await load(args, flags);
    });
}

function num(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmM])?\s*$/.exec(v);
  if (!m) throw new LoadUsageError(`expected a number, got ${JSON.stringify(v)}`);
  return Number(m[1]) * (m[2] === 'k' || m[2] === 'K' ? 1e3 : m[2] === 'm' || m[2] === 'M' ? 1e6 : 1);
}

export function flagsToOptions(args: string[], f: LoadFlags): LoadOptions {
  let mode: LoadMode | undefined;
  const rest = [...args];
  if (rest.length > 0 && (LOAD_MODES as readonly string[]).includes(rest[0]!)) mode = rest.shift() as LoadMode;
  if (rest.length === 0) throw new LoadUsageError('give a target URL, e.g. iolab load http://127.0.0.1:8080/ (see --help)');
  return {
    mode,
    targets: rest,
    protocol: f.protocol,
    connections: num(f.connections),
    pipeline: num(f.pipeline),
    duration: f.duration,
    requests: num(f.requests),
    rate: num(f.rate),
    connectRate: num(f.connectRate),
    interval: f.interval,
    timeout: f.timeout,
    connectTimeout: f.connectTimeout,
    deadline: f.deadline,
    method: f.method,
    headers: f.header,
    body: f.body,
    expectStatus: f.expectStatus,
    commands: f.command,
    keyspace: num(f.keyspace),
    dataSize: num(f.dataSize),
    size: num(f.size),
    procs: num(f.procs),
    cpus: f.cpus,
    sources: f.sources,
    steps: f.steps,
    rampBy: f.rampBy,
    stepDuration: f.stepDuration,
    sloP99: f.sloP99,
    sloErrors: f.sloErrors,
    maxErrors: f.maxErrors,
    hdrLog: f.hdrLog,
    backend: f.backend,
  };
}

async function load(args: string[], f: LoadFlags): Promise<void> {
  let opts: LoadOptions;
  try {
    opts = flagsToOptions(args, f);
  } catch (e) {
    return usage(e);
  }
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (): void => {
    if (++signals > 1) {
      process.stderr.write('iolab load: second interrupt, exiting now\n');
      process.exit(130);
    }
    if (!f.quiet) process.stderr.write('\niolab load: interrupted: stopping (Ctrl-C again to quit at once)...\n');
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tty = process.stderr.isTTY === true && f.progress && !f.quiet;
  let shown = false;
  // Notices go to stderr as they happen; with --json the result's notes are repeated at the end, minus these.
  const noticed = new Set<string>();
  try {
    const r = await runLoad({
      ...opts,
      signal: ac.signal,
      onNotice: (m) => {
        if (noticed.has(m)) return;
        noticed.add(m);
        if (f.quiet) return;
        process.stderr.write(`${shown ? '\r\x1b[K' : ''}iolab load: ${m}\n`);
      },
      onProgress: tty
        ? (p) => {
            process.stderr.write(`\r\x1b[K${formatProgress(p)}`);
            shown = true;
          }
        : undefined,
    });
    if (shown) process.stderr.write('\r\x1b[K');
    if (f.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else process.stdout.write(formatSummary(r));
    if (!f.quiet && f.json) for (const n of r.notes) if (!noticed.has(n)) process.stderr.write(`iolab load: note: ${n}\n`);
    process.exitCode = r.interrupted ? 130 : r.ok ? 0 : 1;
  } catch (e) {
    if (shown) process.stderr.write('\r\x1b[K');
    if (e instanceof LoadUsageError) return usage(e);
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

function usage(e: unknown): void {
  if (!(e instanceof LoadUsageError)) throw e;
  process.stderr.write(`iolab load: ${e.message}\n(run iolab load --help for usage)\n`);
  process.exitCode = 2;
}
