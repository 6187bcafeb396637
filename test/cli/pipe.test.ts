/** `iolab ... | head`: a reader that goes away early ends the command quietly, not with an EPIPE trace. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI } from '../helpers/server.js';

/** Run the CLI with its stdout a pipe whose read end we close at once; resolve with its exit and stderr. */
function withClosedStdout(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Closed before the child has started (Node takes ~100 ms to load it): every write it makes fails with EPIPE.
  child.stdout!.destroy();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })));
}

describe('cli: stdout closed by its reader', () => {
  for (const args of [['serve', '--help'], ['--help'], ['bench', '--help']]) {
    it(`iolab ${args.join(' ')}: exits 0 without a stack trace`, async () => {
      const r = await withClosedStdout(args);
      assert.equal(r.signal, null);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|at /);
    });
  }
});
