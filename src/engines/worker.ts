/** Worker-thread entry: runs one loop of a multi-loop engine and answers the parent's messages. */
import { parentPort, workerData } from 'node:worker_threads';
import { createEngine } from './index.js';
import type { EngineOptions } from './types.js';

const { engine, opts } = workerData as { engine: string; opts: EngineOptions };
const port = parentPort!;

try {
  const e = await createEngine(engine, { ...opts, workers: 1 }, { reusePort: true });
  const listening = await e.start();
  port.postMessage({ type: 'listening', listening });
  port.on('message', async (m: { type: string; id?: number }) => {
    if (m.type === 'stats') port.postMessage({ type: 'stats', id: m.id, stats: await e.stats() });
    if (m.type === 'stop') {
      await e.stop();
      port.postMessage({ type: 'final', stats: await e.stats() });
      port.close();
    }
  });
  e.done.catch((err: unknown) => {
    port.postMessage({ type: 'error', message: String(err) });
    port.close();
  });
} catch (err) {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  port.close();
}
