/**
 * A load process started by run.ts for `--procs`: receives its share over IPC, connects, reports
 * ready, waits for the go signal (so all processes measure the same window), runs, and sends its
 * result (histograms encoded) back. SIGINT (a Ctrl-C reaches the whole process group) and a
 * 'stop' message both end the run early with a partial result; losing the parent ends it too.
 */
import { raiseNofile } from '../sys/index.js';
import { LoadLoop } from './loop.js';
import { pinProcess, type ChildMessage, type ParentMessage } from './run.js';

let loop: LoadLoop | null = null;
let resolveGo!: () => void;
const go = new Promise<void>((r) => (resolveGo = r));

function send(m: ChildMessage): Promise<void> {
  if (!process.connected) return Promise.resolve();
  // Resolves once the message is handed to the channel, so a disconnect after it cannot drop it.
  return new Promise((resolve) => process.send!(m, undefined, undefined, () => resolve()));
}

process.on('SIGINT', () => loop?.stop());
process.on('SIGTERM', () => loop?.stop());
process.on('disconnect', () => {
  // The parent is gone: nobody will read a result, so stop now.
  if (loop) loop.stop();
  else process.exit(1);
});

process.on('message', (m: ParentMessage) => {
  if (m.type === 'go') resolveGo();
  else if (m.type === 'stop') {
    resolveGo();
    loop?.stop();
  } else if (m.type === 'run') {
    void (async () => {
      try {
        raiseNofile();
        pinProcess(m.options.cpus);
        loop = new LoadLoop(m.options, m.share, {
          go,
          progressMs: m.progressMs,
          hdrIntervals: m.hdrIntervals,
          onReady: (r) => void send({ type: 'ready', ...r }),
          onProgress: (p) => void send({ type: 'progress', p }),
        });
        const result = await loop.run();
        await send({ type: 'result', result });
      } catch (e) {
        await send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
        process.exitCode = 1;
      } finally {
        if (process.connected) process.disconnect();
      }
    })();
  }
});
