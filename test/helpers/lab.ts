/** What the lab's tests share: a run's options with this machine's CPUs and the real load generator, and client sockets. */
import net from 'node:net';
import { defaultPlanOptions } from '../../src/lab/plan.js';
import { loadgen } from '../../src/lab/load.js';
import type { LabOptions } from '../../src/lab/lab.js';

/** A quick-tour run of `scenarios` (nothing else), server on CPU 0 and load on CPU 1; `o` overrides. */
export function labRun(o: Partial<LabOptions> & Pick<LabOptions, 'engines' | 'scenarios'>): LabOptions {
  return {
    ...defaultPlanOptions('quick'),
    peers: [],
    serverCpu: 0,
    clientCpu: 1,
    memoryShare: 0.5,
    budgetS: 60,
    load: loadgen,
    sloP99Ms: 2000,
    sloErrors: 0.01,
    progress: () => {},
    ioUring: { available: true },
    version: 'test',
    ...o,
  };
}

/** `n` client connections to 127.0.0.1:`port`, once all are connected. */
export async function openConnections(port: number, n: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    socks.push(s);
  }
  await Promise.all(socks.map((s) => new Promise((r) => s.once('connect', r))));
  return socks;
}
