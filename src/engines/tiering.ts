/**
 * V8 tier-up thresholds for the engines that run one isolate per connection (`threads`, `prefork`).
 *
 * V8 compiles a function with TurboFan once it has executed about `--interrupt-budget` x
 * `--ticks-before-optimization` bytes of its own bytecode (67,584 x 3 in Node 20), and it counts that
 * per isolate. An event loop is one isolate that sees every request, so its hot path is optimised
 * within a fraction of a second. A thread- or process-per-connection server in Node is one isolate per
 * connection (a worker_thread or a child process is a whole V8 instance), each seeing 1/N of the
 * requests: at 50 connections on one core each isolate served ~80 requests a second, and after 30 s
 * the connection loop (BlockingConn.serve), writeAll and the app's handler had still not been
 * optimised in any of them (`--trace-opt`); the requests ran in the interpreter and baseline code,
 * whose inline-cache builtins (LoadIC, KeyedLoadIC, Call*) led the CPU profile. A C server has no such
 * phase: its code is compiled once, for every thread.
 *
 * So these engines lower the threshold ~50x (what the JVM's -XX:CompileThreshold is for), in every
 * isolate of the process: per isolate it then takes about as many requests to optimise the hot path as
 * it takes an event loop's single isolate with the defaults. `IOLAB_V8_TIERING=default` keeps V8's
 * own thresholds, for comparison.
 */
import { setFlagsFromString } from 'node:v8';

/** What the blocking engines set; see the comment above for why. */
export const BLOCKING_TIERING_FLAGS = ['--interrupt-budget=4096', '--ticks-before-optimization=1'];

/** The flags to apply, or none when IOLAB_V8_TIERING=default asks for V8's own thresholds. */
export function tieringFlags(): string[] {
  const v = process.env.IOLAB_V8_TIERING;
  if (v === undefined || v === '' || v === 'fast') return BLOCKING_TIERING_FLAGS;
  if (v === 'default') return [];
  throw new Error(`IOLAB_V8_TIERING must be "fast" or "default" (got ${JSON.stringify(v)})`);
}

let applied = false;

/**
 * Apply the flags to this process (a prefork child, or the threads engine's process once its spare
 * threads have started). V8's flags are process-wide and these two are read whenever a function's
 * budget is reset, so functions not yet hot in any isolate, and isolates created afterwards, use them.
 * Applied after start-up: under them start-up code (module loading) is compiled too, which made a
 * child's start ~50% more CPU (30 prefork children: 3.6-4.0 s of CPU with V8's thresholds, 5.7-6.2 s
 * with these from the command line). Returns the flags set.
 */
export function applyTiering(): string[] {
  const flags = tieringFlags();
  if (!applied) {
    for (const f of flags) setFlagsFromString(f);
    applied = true;
  }
  return flags;
}
