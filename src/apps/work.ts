/**
 * Simulated per-request cost, for the "never block the event loop" experiment:
 *  - `blocking:1ms` holds the thread in nanosleep(2), a real blocking syscall;
 *  - `async:1ms` waits on a timer and lets the loop serve others meanwhile.
 */
export interface WorkSpec {
  kind: 'blocking' | 'async';
  ms: number;
}

export function parseWork(spec: string | undefined): WorkSpec | null {
  if (!spec || spec === 'none') return null;
  const m = /^(blocking|async):(\d+(?:\.\d+)?)(ms|us|s)?$/.exec(spec);
  if (!m) throw new Error(`--work must look like blocking:1ms or async:1ms (got ${JSON.stringify(spec)})`);
  const n = Number(m[2]);
  const ms = m[3] === 's' ? n * 1000 : m[3] === 'us' ? n / 1000 : n;
  return { kind: m[1] as WorkSpec['kind'], ms };
}

export function formatWork(w: WorkSpec | null): string {
  return w ? `${w.kind}:${w.ms}ms` : 'none';
}
