#!/usr/bin/env node
/** iolab's command line. Exit codes: 0 ok, 1 runtime failure, 2 usage error. */
import { Command, CommanderError, Option } from 'commander';
import { serve, UsageError, type ServeFlags } from './serve.js';
import { ENGINES, ENGINE_INFO } from '../engines/index.js';
import { BUILTIN_APPS } from '../apps/index.js';
import { SyscallError } from '../sys/errno.js';
import { loadCommand } from './load.js';
import { traceCommand } from './trace.js';
import { registerCompareCommand, registerReportCommand } from './report.js';

// `iolab ... | head`: the reader has gone. Stop quietly with 0, as a pipeline expects, not with an
// unhandled EPIPE and a stack trace; 'exit' handlers still reap any servers the command started.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

const program = new Command();
program
  .name('iolab')
  .description(
    'See and measure how network servers do I/O: blocking, non-blocking, select/poll/epoll and io_uring ' +
      'engines over real Linux syscalls, running the same apps (echo, HTTP/1.1, a Redis-compatible store).\n\n' +
      'Start with `iolab bench` (the lab), `iolab serve --help` or `iolab doctor`.',
  )
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('serve')
  .description('run one engine serving one app until Ctrl-C (then drain and exit 0)')
  .addOption(new Option('-e, --engine <name>', 'I/O engine').choices([...ENGINES]).default('epoll'))
  .option('-a, --app <app>', `app: ${BUILTIN_APPS.join(' | ')} | path to an app module`, 'hello')
  .option('-p, --port <n>', 'TCP port (0 picks a free one)', '8080')
  .option('-H, --host <addr>', 'address to listen on (IPv4 or IPv6, e.g. ::1)', '127.0.0.1')
  .option('-w, --workers <n>', 'event loops sharing the port with SO_REUSEPORT (one thread each)', '1')
  .option('--edge', 'epoll: edge-triggered (EPOLLET) instead of level-triggered')
  .option('--sqpoll', 'io_uring: a kernel thread polls the submission queue (IORING_SETUP_SQPOLL), where allowed')
  .option('--backoff <how>', 'busypoll: between empty passes none (spin), yield (sched_yield), or sleep:<us> (nanosleep)')
  .option('--max-threads <n>', 'threads: a bounded pool (Apache worker); the excess waits in the listen backlog')
  .option('--spare-threads <n>', 'threads: connection threads started before listening and kept idle (default 4; Apache\'s MinSpareThreads)')
  .option('--procs <n>', 'prefork: child processes, each serving one connection at a time (default 4)')
  .option('--work <spec>', 'simulated cost per request: blocking:1ms (nanosleep) or async:1ms (timer)')
  .option('--stall-ms <ms>', 'warn when one app call holds the event loop this long (0: off)', '5')
  .option('--sendfile <on|off>', 'file bodies (--app static:DIR): on = sendfile(2), zero-copy; off = pread + write, copied through user space', 'on')
  .option('--max-header <bytes>', 'HTTP: largest header section before 431 (default 16384)')
  .option('--max-body <bytes>', 'HTTP: largest request body before 413 (default 1048576)')
  .option('--drain-ms <ms>', 'on SIGINT/SIGTERM, how long in-flight requests may finish', '5000')
  .option('--max-connections <n>', 'refuse connections past this many (HTTP 503, RESP -ERR max number of clients reached)')
  .option('--header-timeout <ms>', 'a request still incomplete this long after its first byte gets 408 and a close (default 20000)')
  .option('--idle-timeout <ms>', 'close keep-alive connections idle this long (default 60000)')
  .option('--send-timeout <ms>', 'close a connection whose output has not moved this long (default 30000)')
  .option('--stats-file <path>', 'write the engine stats as JSON to this file twice a second')
  .option('--cpus <list>', 'pin the server to these CPUs, e.g. 0 or 0-1')
  .option('--json', 'print events (listening, stopped + stats) as JSON lines on stdout')
  .option('-q, --quiet', 'no notices on stderr')
  .addHelpText(
    'after',
    `\nEngines:\n${ENGINES.map((e) => `  ${e.padEnd(10)} ${ENGINE_INFO[e]!.model}: ${ENGINE_INFO[e]!.summary}`).join('\n')}\n\n` +
      'Examples:\n' +
      '  iolab serve --app hello --port 8080          # then: curl localhost:8080/\n' +
      '  iolab serve --app kv --port 6380              # then: redis-cli -p 6380 set a 1\n' +
      '  iolab serve --app echo --port 7000 --edge     # then: nc localhost 7000\n',
  )
  .action(async (flags: ServeFlags) => {
    await serve(flags);
  });

program
  .command('bench')
  .description('the lab: run every engine and installed peer through the scenarios; print each claim of the article beside the number measured here')
  .option('--quick', 'the short tour (default): about 2-3 minutes on 2 cores')
  .option('--full', 'repeats, longer windows, ramps to 10k connections (as long as it needs)')
  .option('--engines <list>', 'engines to run (comma list, all, none)', 'all')
  .option('--peers <list>', 'peers to run when installed: nginx, apache2-prefork, apache2-worker, apache2-event, redis-server (comma list, all, none)', 'all')
  .option('--scenarios <list>', 'throughput, scaling, idle, blocking-handler, breaking-point, zero-copy (static files, sendfile vs copy), trace (comma list; default all)')
  .option('-o, --out <dir>', 'where results.json, report.md and report.html go (default ./iolab-results/<time>)')
  .option('--server-cpu <n>', 'CPU for the servers (default 0)')
  .option('--client-cpu <n>', 'CPU for the load generator (default 1)')
  .option('--memory-share <f>', 'stop a server that takes more than this share of RAM', '0.5')
  .option('--budget <s>', 'time budget in seconds (quick: 180); steps past it are recorded as skipped')
  .option('--duration <s>', 'seconds per measured window')
  .option('--repeats <n>', 'measured windows per step (the median is reported)')
  .option('--no-cache-probe', 'skip the L3 cache probe before each window (it notes windows measured while another tenant of the host held the cache)')
  .option('--json', 'print results.json to stdout instead of the terminal report')
  .action(async (flags) => {
    const { bench } = await import('./bench.js');
    await bench(flags, program.version() ?? '0');
  });

program
  .command('doctor')
  .description('what this machine lets the lab do: kernel, io_uring, fd limits, backlog, ports, CPUs, memory, a shared L3 cache, peers')
  .option('--json', 'print the checks as JSON')
  .action(async (flags: { json?: boolean }) => {
    const { doctor } = await import('./doctor.js');
    await doctor(!!flags.json);
  });

program
  .command('demo')
  .description('a short tour: serve hello on epoll, drive it for a few seconds, print what the kernel was asked')
  .option('-s, --seconds <n>', 'how long to drive it', '3')
  .action(async (flags: { seconds: string }) => {
    const { demo } = await import('./demo.js');
    await demo(Number(flags.seconds));
  });

program.addCommand(loadCommand());
program.addCommand(traceCommand());
registerReportCommand(program);
registerCompareCommand(program);

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`iolab: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (e instanceof SyscallError) {
      process.stderr.write(`iolab: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`iolab: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}

await main();
