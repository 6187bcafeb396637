/**
 * V8 tier-up for the engines that run one isolate per connection (`threads`, `prefork`).
 *
 * V8 compiles a function with TurboFan once it has executed about `--interrupt-budget` x
 * `--ticks-before-optimization` bytes of its own bytecode (67,584 x 3 in Node 20), and it counts that
 * per isolate. An event loop is one isolate that sees every request, so its hot path is optimised
 * within a fraction of a second. A thread- or process-per-connection server in Node is one isolate per
 * connection (a worker_thread or a child process is a whole V8 instance), each seeing 1/N of the
 * requests, each compiling its own copy of every hot function. Two things kept those copies from ever
 * being made, and this module sets a flag group against each:
 *
 *  1. Thresholds (`--interrupt-budget=4096 --ticks-before-optimization=1`, ~50x lower, what the JVM's
 *     -XX:CompileThreshold is for). At 50 connections on one core each isolate served ~80 requests a
 *     second, and after 30 s the connection loop (BlockingConn.serve), writeAll and the app's handler
 *     had not even been *chosen* for optimisation in any of them (`--trace-opt`).
 *  2. Compiling on the isolate's own thread (`--no-concurrent-recompilation --no-concurrent-osr`).
 *     V8 compiles optimised code on the platform's background threads (4 per process). With 100
 *     connection threads runnable on one core those 4 get ~4% of it between them (the scheduler is
 *     fair per thread), and each isolate needs ~0.2 s of TurboFan for its hot path (serve alone took
 *     62-82 ms): 100 isolates queued ~20 s of compiling behind a 4% share, so 25 s into a 100-connection
 *     run the functions were chosen but still not compiled, and `perf` showed 59% of the CPU in
 *     baseline code and its inline-cache builtins, 2% in optimised code. Compiled synchronously, each
 *     thread pays for its own copy in its own time slice: same run, 8.1k -> 15.7k req/s and 89 -> 41 us
 *     of user CPU per request; warmed 45 s, 20.8k at 30 us (`perf` then: 34% optimised code, 0.1%
 *     baseline). For prefork it is the same story per process (4 background threads each, all
 *     sharing the one core).
 *
 * Group 2 only takes effect in isolates created after it is set (an isolate makes its compile queue
 * when it starts), so the threads engine sets it before its first thread and prefork passes it on the
 * children's command line. Group 1 is read whenever a function's budget is reset, so it is set after
 * start-up (see applyTiering). A C server has neither phase: its code is compiled once, for every thread.
 * `IOLAB_V8_TIERING=default` keeps V8's own behaviour, for comparison.
 */
import { setFlagsFromString } from 'node:v8';

/** Group 1: lower tier-up thresholds, set once start-up is over (applyTiering). */
export const BLOCKING_TIERING_FLAGS = ['--interrupt-budget=4096', '--ticks-before-optimization=1'];
/** Group 2: compile on the isolate's own thread; must be set before the isolates are created. */
export const SYNC_COMPILE_FLAGS = ['--no-concurrent-recompilation', '--no-concurrent-osr'];

function fast(): boolean {
  const v = process.env.IOLAB_V8_TIERING;
  if (v === undefined || v === '' || v === 'fast') return true;
  if (v === 'default') return false;
  throw new Error(`IOLAB_V8_TIERING must be "fast" or "default" (got ${JSON.stringify(v)})`);
}

/** Every flag the engine runs its isolates with (both groups), or none with IOLAB_V8_TIERING=default. */
export function tieringFlags(): string[] {
  return fast() ? [...SYNC_COMPILE_FLAGS, ...BLOCKING_TIERING_FLAGS] : [];
}

/** Group 2 for a child's command line (prefork), or none. */
export function compileFlags(): string[] {
  return fast() ? SYNC_COMPILE_FLAGS : [];
}

/** V8 takes a flag set twice as set once, so these need no guard against a second call. */
function set(flags: readonly string[]): void {
  for (const f of flags) setFlagsFromString(f);
}

/** Group 2 in this process, for isolates created from now on (threads: before its first thread). */
export function applyCompileFlags(): void {
  set(compileFlags());
}

/**
 * Apply group 1 to this process (a prefork child, or the threads engine's process once its spare
 * threads have started). V8's flags are process-wide and these two are read whenever a function's
 * budget is reset, so functions not yet hot in any isolate, and isolates created afterwards, use them.
 * Applied after start-up: under them start-up code (module loading) is compiled too, which made a
 * child's start ~50% more CPU (30 prefork children: 3.6-4.0 s of CPU with V8's thresholds, 5.7-6.2 s
 * with these from the command line).
 */
export function applyTiering(): void {
  set(fast() ? BLOCKING_TIERING_FLAGS : []);
}
