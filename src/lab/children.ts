/**
 * Every process the lab starts is registered here and reaped: on normal exit, on Ctrl-C / SIGTERM,
 * and on an uncaught failure. Killing walks the whole tree (nginx master -> workers, prefork parent ->
 * children), so no stray process survives a run.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { processTree } from '../probe/index.js';

const live = new Set<ChildProcess>();
let installed = false;

function killTree(pid: number, signal: NodeJS.Signals): void {
  // Children first, so a master cannot respawn a worker we just killed.
  for (const p of processTree(pid).reverse()) {
    try {
      process.kill(p, signal);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Peers start in a process group of their own (targets.ts: `detached`), so a worker whose master died
 * first — reparented to init, out of reach of a walk from the master's pid — is still in the group.
 * (Seen: an nginx worker that outlived its bench run by an hour.) ESRCH when there is no such group.
 */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* not a group leader, or the group is empty */
  }
}

export function reapAll(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const c of live) {
    if (c.pid === undefined) continue;
    if (c.exitCode === null && c.signalCode === null) killTree(c.pid, signal);
    killGroup(c.pid, 'SIGKILL');
  }
  live.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => reapAll());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\niolab: ${sig}: stopping every server and load process...\n`);
      reapAll();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/** spawn(), registered for reaping. `IOLAB_EXIT_WITH_PARENT` makes iolab children exit if the lab dies. */
export function spawnChild(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  install();
  const c = spawn(cmd, args, { ...opts, env: { ...process.env, ...opts.env, IOLAB_EXIT_WITH_PARENT: String(process.pid) } });
  live.add(c);
  c.once('exit', () => live.delete(c));
  return c;
}

/** Stop a child and its tree: `signal` first, SIGKILL after `graceMs`. Resolves when it has exited. */
export async function stopChild(c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  killTree(c.pid, signal);
  const t = setTimeout(() => c.pid !== undefined && killTree(c.pid, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
  // A daemonising peer may leave grandchildren that outlive the parent's exit.
  killTree(c.pid, 'SIGKILL');
  killGroup(c.pid, 'SIGKILL');
  live.delete(c);
}

export function liveChildren(): number {
  return live.size;
}
