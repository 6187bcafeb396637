/**
 * `iolab doctor`: what this machine lets the lab do, and what to change where something limits it.
 * Every line is read from the kernel or the PATH at run time.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { createShm, ffi, getrlimit } from '../sys/index.js';
import { probeIoUring } from '../sys/io_uring.js';
import { contended, sampleCache } from '../lab/cacheprobe.js';

export interface Check {
  name: string;
  value: string;
  ok: boolean;
  /** What to do when not ok (or a note). */
  advice?: string;
}

function readTrim(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Optional probes that other modules register (io_uring, when its engine is present). */
export const extraChecks: (() => Check | Promise<Check>)[] = [];

export async function doctorChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (c: Check): void => void checks.push(c);

  add({ name: 'kernel', value: `${os.type()} ${os.release()} (${os.arch()})`, ok: os.type() === 'Linux' });
  const cpus = os.cpus();
  add({
    name: 'CPUs',
    value: `${cpus.length} × ${cpus[0]?.model.trim() ?? '?'}`,
    ok: cpus.length >= 2,
    advice: cpus.length < 2 ? 'with one CPU the server and the load generator share it: results rank servers less well' : undefined,
  });
  add({ name: 'memory', value: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB total, ${(os.freemem() / 2 ** 30).toFixed(1)} GiB free`, ok: true });
  add({ name: 'node', value: process.version, ok: Number(process.versions.node.split('.')[0]) >= 20 });

  const nofile = getrlimit();
  add({
    name: 'open files (RLIMIT_NOFILE)',
    value: `soft ${nofile.soft}, hard ${nofile.hard}`,
    ok: nofile.hard >= 20000,
    advice: `each connection is an fd on both sides: one process holds at most ${nofile.hard} (iolab raises soft to hard); more connections need more processes (iolab load --procs) or a higher hard limit (limits.conf / systemd LimitNOFILE)`,
  });
  const nrOpen = readTrim('/proc/sys/fs/nr_open');
  const fileMax = readTrim('/proc/sys/fs/file-max');
  add({ name: 'fs.nr_open / fs.file-max', value: `${nrOpen ?? '?'} / ${fileMax ?? '?'}`, ok: true });
  const somaxconn = Number(readTrim('/proc/sys/net/core/somaxconn') ?? 0);
  add({
    name: 'net.core.somaxconn',
    value: String(somaxconn),
    ok: somaxconn >= 4096,
    advice: somaxconn < 4096 ? 'listen backlogs are capped here: connection bursts will see SYN drops (sysctl -w net.core.somaxconn=4096)' : undefined,
  });
  const synBacklog = readTrim('/proc/sys/net/ipv4/tcp_max_syn_backlog');
  add({ name: 'net.ipv4.tcp_max_syn_backlog', value: synBacklog ?? '?', ok: true });
  const range = (readTrim('/proc/sys/net/ipv4/ip_local_port_range') ?? '0 0').split(/\s+/).map(Number);
  const ports = range[1]! - range[0]! + 1;
  add({
    name: 'net.ipv4.ip_local_port_range',
    value: `${range[0]}-${range[1]} (${ports} ports per source address)`,
    ok: true,
    advice: `one source address reaches one listener with at most ~${ports} connections: the load generator spreads sources over 127.0.0.0/8 beyond that`,
  });
  const tw = readTrim('/proc/sys/net/ipv4/tcp_tw_reuse');
  add({ name: 'net.ipv4.tcp_tw_reuse', value: tw ?? '?', ok: true });
  const uringDisabled = readTrim('/proc/sys/kernel/io_uring_disabled');
  add({
    name: 'kernel.io_uring_disabled',
    value: uringDisabled ?? 'absent (kernel < 6.6: io_uring not restricted by sysctl)',
    ok: uringDisabled === null || uringDisabled === '0',
    advice: uringDisabled === '2' ? 'io_uring is disabled: the io_uring engine falls back to epoll (sysctl -w kernel.io_uring_disabled=0)' : uringDisabled === '1' ? 'io_uring is limited to the io_uring_group: run as root or join the group' : undefined,
  });
  const uring = probeIoUring();
  add(
    uring.ok
      ? {
          name: 'io_uring',
          value: `available: features 0x${uring.features.toString(16)} (${uring.featureNames.length} features), multishot recv ${uring.multishotRecv ? 'yes' : 'no'}`,
          ok: true,
        }
      : { name: 'io_uring', value: `refused: ${uring.reason}`, ok: false, advice: 'the io_uring engine falls back to epoll and says so; results record the engine that ran' },
  );
  add(sharedMemoryCheck());
  for (const c of extraChecks) add(await c());

  // Shared hosts: another tenant can hold the last-level cache for seconds at a time (lab/cacheprobe.ts).
  const t0 = Date.now();
  const readings = await sampleCache(8, 100);
  const hot = contended(readings).filter(Boolean).length;
  add({
    name: 'L3 cache (6 MB chase)',
    value: `${Math.min(...readings).toFixed(0)}-${Math.max(...readings).toFixed(0)} ns a load over ${readings.length} readings in ${((Date.now() - t0) / 1000).toFixed(1)} s` +
      (hot > 0 ? `; ${hot} above twice the best` : ', steady'),
    ok: hot === 0,
    advice: hot > 0
      ? 'another tenant of this host is using the last-level cache: thread- and process-per-connection results swing with it (3x CPU per request seen); the lab notes such windows, --repeats steadies the medians'
      : undefined,
  });

  const peers: [string, string, string][] = [
    ['nginx', 'nginx', 'nginx-light'],
    ['apache2', 'apache2', 'apache2'],
    ['redis-server', 'redis-server', 'redis-server'],
    ['wrk', 'wrk', 'wrk'],
    ['redis-benchmark', 'redis-benchmark', 'redis-tools'],
    ['redis-cli', 'redis-cli', 'redis-tools'],
    ['curl', 'curl', 'curl'],
    ['chromium (report test)', 'chromium', 'chromium'],
  ];
  for (const [label, cmd, pkg] of peers) {
    const path = which(cmd) ?? which(`/usr/sbin/${cmd}`);
    add({ name: `peer: ${label}`, value: path ?? 'not installed', ok: path !== null, advice: path ? undefined : `apt-get install ${pkg}` });
  }
  return checks;
}

export async function doctor(json: boolean): Promise<void> {
  const checks = await doctorChecks();
  if (json) {
    process.stdout.write(JSON.stringify({ version: 1, checks }, null, 2) + '\n');
    return;
  }
  const w = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) {
    process.stdout.write(`${c.ok ? ' ok ' : 'warn'}  ${c.name.padEnd(w)}  ${c.value}\n`);
    if (c.advice && !c.ok) process.stdout.write(`${' '.repeat(w + 8)}-> ${c.advice}\n`);
  }
}

/** kv's one keyspace on multi-isolate engines needs a memfd (apps/kv-shm.ts): make and size one. */
function sharedMemoryCheck(): Check {
  const name = 'shared memory (memfd)';
  try {
    ffi.close(createShm('iolab-doctor', 1 << 20));
    return { name, value: 'memfd_create + ftruncate: kv keeps one keyspace on threads, prefork and --workers N', ok: true };
  } catch (e) {
    return {
      name,
      value: `refused: ${(e as Error).message}`,
      ok: false,
      advice: 'kv on threads, prefork and --workers N falls back to a keyspace per thread, process or loop, and says so',
    };
  }
}
