/** The lab's load: iolab's own load generator (src/loadgen), called as a module with the same options as `iolab load`. */
import { runLoad } from '../loadgen/index.js';
import type { LoadFn, LoadOutcome, LoadRequest } from './measure.js';

const RESP_COMMANDS = ['SET key:__rand_int__ __data__', 'GET key:__rand_int__'];

export const loadgen: LoadFn = async (r: LoadRequest): Promise<LoadOutcome> => {
  const hold = r.mode === 'hold';
  const res = await runLoad({
    mode: hold ? 'hold' : 'closed',
    targets: r.url,
    protocol: r.protocol,
    connections: r.connections,
    pipeline: r.pipeline,
    duration: r.durationS,
    ...(r.cpu !== null ? { cpus: [r.cpu] } : {}),
    ...(r.procs !== undefined ? { procs: r.procs } : {}),
    ...(r.signal ? { signal: r.signal } : {}),
    ...(r.backend ? { backend: r.backend } : {}),
    ...(r.protocol === 'resp' ? { commands: RESP_COMMANDS, keyspace: 10_000 } : {}),
    ...(r.protocol === 'echo' ? { size: r.size ?? 64 } : {}),
    // A lab window must end: whatever happens, give up a few seconds after the planned time.
    deadline: r.durationS + 15 + r.connections / 1000,
    maxErrors: '100%',
  });
  const errorsByKind: Record<string, number> = {};
  for (const k of ['refused', 'reset', 'timeout', 'protocol', 'wrong-reply', 'other'] as const) {
    const v = (res.errors as unknown as Record<string, number>)[k];
    if (v) errorsByKind[k] = v;
  }
  const l = res.latency;
  return {
    rps: res.requests.perSec,
    requests: res.requests.completed,
    errors: res.errors.total,
    errorsByKind,
    latencyUs: l.count > 0 ? { p50: l.p50, p90: l.p90, p99: l.p99, p999: l['p99.9'], max: l.max } : null,
    connected: hold ? res.connections.open || res.connections.established : res.connections.established,
    bytesPerSec: hold ? null : res.bytes.receivedPerSec,
    bytes: hold ? null : res.bytes.received,
  };
};
