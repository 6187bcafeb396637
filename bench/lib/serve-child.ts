/**
 * One server process of a group (server-group.ts): one loop of `engine` on a port it shares with its
 * siblings through SO_REUSEPORT. `iolab serve --workers N` runs N loops as threads of ONE process,
 * which share one fd table and one open-file limit (20000 here); separate processes each get their
 * own, which is what 100k+ connections need.
 *
 * argv: <engine> <app> <port> <idle-timeout-ms>. Talks to the parent over IPC:
 *   -> { type: 'listening', port, engine }      once listening (`engine` is what runs, after any fallback)
 *   <- { type: 'stats' }  -> { type: 'stats', current, peak, refused }
 *   <- { type: 'gc' }     -> { type: 'gc', heapBytes }  after a full collection (needs node --expose-gc):
 *                         JS heap + external memory still referenced, i.e. what the connections retain
 *   <- { type: 'stop' }   the engine drains and the process exits
 * and exits when the parent goes away (IPC disconnect), so no server outlives its bench.
 */
import { createEngine, engineOptions } from '../../src/engines/index.js';
import { DEFAULT_LIMITS } from '../../src/engines/types.js';
import { raiseNofile } from '../../src/sys/index.js';

const [engineName, app, portArg, idleArg] = process.argv.slice(2);
if (!engineName || !app || !portArg || !process.send) {
  process.stderr.write('serve-child: run by bench/lib/server-group.ts (argv: engine app port idle-timeout-ms, with an IPC channel)\n');
  process.exit(2);
}
raiseNofile();
// Held connections stay idle for the whole bench (connect phase + hold), which can pass the default
// 60 s keep-alive timeout; the timeout is the parent's to choose.
const limits = { ...DEFAULT_LIMITS, idleTimeoutMs: Number(idleArg ?? DEFAULT_LIMITS.idleTimeoutMs) };
const engine = await createEngine(engineName, engineOptions({ app, port: Number(portArg), quiet: true, limits }), { reusePort: true });
const at = await engine.start();
process.send({ type: 'listening', port: at.port, engine: at.engine });
process.on('message', (m: { type: string }) => {
  if (m.type === 'stats') {
    void engine.stats().then((s) => process.send?.({ type: 'stats', current: s.connections.current, peak: s.connections.peak, refused: s.connections.refused }));
  } else if (m.type === 'gc') {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const u = process.memoryUsage();
    process.send?.({ type: 'gc', heapBytes: gc ? u.heapUsed + u.external : NaN });
  } else if (m.type === 'stop') void engine.stop().then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
