/**
 * Files for the zero-copy measurements (the `static` app, and nginx serving the same tree): one file
 * of random bytes per size in a temp dir, and a check that a server sends exactly those bytes,
 * since a throughput figure for the wrong bytes is worthless.
 */
import { randomFillSync } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { makeTempDir } from './peers.js';

export interface StaticFiles {
  dir: string;
  /** Request path of the file of `bytes` bytes, e.g. `/64KB.bin`. */
  path(bytes: number): string;
  /** The file's bytes (read back from disk). */
  content(bytes: number): Buffer;
  remove(): void;
}

/** `4KB`, `64KB`, `1MB`, `16MB`: the size in binary units, as a name. */
export function sizeName(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes >> 20}MB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes >> 10}KB`;
  return `${bytes}B`;
}

/** Parse `4k`, `64KB`, `1m`, `16MB`, `1000` into bytes (binary units). */
export function parseSize(s: string): number {
  const m = /^(\d+)\s*(k|kb|kib|m|mb|mib|b)?$/i.exec(s.trim());
  if (!m) throw new Error(`not a size: ${JSON.stringify(s)} (use e.g. 4KB, 64KB, 1MB)`);
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  return Number(m[1]) * (unit === 'm' ? 1 << 20 : unit === 'k' ? 1 << 10 : 1);
}

/** A temp dir with one file of random bytes per size (random: no page of it compresses or dedups). */
export function makeStaticFiles(sizes: number[]): StaticFiles {
  const tmp = makeTempDir('static');
  // Readable by others: nginx's worker runs as nobody when the lab runs as root.
  chmodSync(tmp.dir, 0o755);
  const name = (bytes: number): string => `${sizeName(bytes)}.bin`;
  for (const bytes of new Set(sizes)) {
    const b = Buffer.allocUnsafe(bytes);
    randomFillSync(b);
    writeFileSync(join(tmp.dir, name(bytes)), b, { mode: 0o644 });
  }
  return {
    dir: tmp.dir,
    path: (bytes) => `/${name(bytes)}`,
    content: (bytes) => readFileSync(join(tmp.dir, name(bytes))),
    remove: tmp.remove,
  };
}

/**
 * GET `url` once (a fresh connection) and compare status, Content-Length and every body byte with
 * `expected`. Resolves with null when they match, or with what differs.
 */
export function checkBody(url: string, expected: Buffer, timeoutMs = 10_000): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => resolve(`GET ${url}: ${e.message}`));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        if (res.statusCode !== 200) return resolve(`GET ${url}: status ${res.statusCode}, expected 200`);
        const cl = res.headers['content-length'];
        if (cl !== String(expected.length)) return resolve(`GET ${url}: Content-Length ${cl ?? 'missing'}, expected ${expected.length}`);
        if (body.length !== expected.length) return resolve(`GET ${url}: ${body.length} body bytes, expected ${expected.length}`);
        const at = firstDifference(body, expected);
        resolve(at < 0 ? null : `GET ${url}: body differs from the file at byte ${at}`);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no complete response in ${timeoutMs} ms`)));
    req.on('error', (e) => resolve(`GET ${url}: ${e.message}`));
  });
}

function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
