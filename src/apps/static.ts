/**
 * `static`: files from a directory, the body sent by the engine straight from the page cache
 * (sendfile(2), as nginx's `sendfile on`) or copied through user space (`--sendfile off`), so the lab
 * can measure what the copy costs (CLAIMS.md C9).
 *
 *   GET/HEAD /<path>  -> 200 with the file (a directory: its index.html), 404, 403, 405
 *
 * Per request: openat + statx + (sendfile ... ) + close, as nginx without open_file_cache. Paths are
 * decoded once, `.` segments dropped and any `..` segment refused, so nothing outside the root is
 * named; symlinks inside the root are followed, as nginx does by default (disable_symlinks off).
 * No ranges, no conditional requests: the app exists to move file bytes, not to be a web server.
 *
 * Try: iolab serve --app static:./public --port 8080 & curl -O localhost:8080/big.bin
 */
import { resolve } from 'node:path';
import type { HttpApp } from './types.js';
import type { HttpRequest, HttpResponse } from '../protocols/http/types.js';
import { prepareResponse } from '../protocols/http/response.js';
import * as ffi from '../sys/ffi.js';
import { AT_FDCWD, S_IFDIR, S_IFREG, fileInfo } from '../sys/file.js';
import { O_CLOEXEC, O_RDONLY } from '../sys/constants.js';
import { EACCES, EMFILE, ENFILE } from '../sys/errno.js';

const TEXT: ReadonlyArray<readonly [string, string]> = [['Content-Type', 'text/plain']];
const NOT_FOUND = prepareResponse({ status: 404, headers: TEXT, body: Buffer.from('Not Found\n') });
const FORBIDDEN = prepareResponse({ status: 403, headers: TEXT, body: Buffer.from('Forbidden\n') });
const BAD_REQUEST = prepareResponse({ status: 400, headers: TEXT, body: Buffer.from('Bad Request\n') });
const NOT_ALLOWED = prepareResponse({ status: 405, headers: [['Content-Type', 'text/plain'], ['Allow', 'GET, HEAD']], body: Buffer.from('Method Not Allowed\n') });
const UNAVAILABLE = prepareResponse({ status: 503, headers: TEXT, body: Buffer.from('Service Unavailable\n') });

const TYPES: Record<string, string> = {
  html: 'text/html', htm: 'text/html', css: 'text/css', js: 'text/javascript', mjs: 'text/javascript', json: 'application/json',
  txt: 'text/plain', md: 'text/markdown', svg: 'image/svg+xml', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg',
  gif: 'image/gif', webp: 'image/webp', ico: 'image/x-icon', wasm: 'application/wasm', pdf: 'application/pdf',
  xml: 'application/xml', mp4: 'video/mp4', woff2: 'font/woff2',
};
const OCTETS = 'application/octet-stream';
// One frozen header list per type: nothing allocated per request for headers.
const HEADERS = new Map<string, ReadonlyArray<readonly [string, string]>>();
function headersFor(path: string): ReadonlyArray<readonly [string, string]> {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  const type = (dot > slash && TYPES[path.slice(dot + 1).toLowerCase()]) || OCTETS;
  let h = HEADERS.get(type);
  if (h === undefined) HEADERS.set(type, (h = Object.freeze([Object.freeze(['Content-Type', type] as const)])));
  return h;
}

/**
 * The request target as a path under the root, or null when it must be refused: not origin-form,
 * bad percent-encoding, a NUL, or a `..` segment.
 */
export function safePath(target: string): string | null {
  const q = target.indexOf('?');
  let p = q < 0 ? target : target.slice(0, q);
  if (p.charCodeAt(0) !== 47 /* / */) return null;
  if (p.includes('%')) {
    try {
      p = decodeURIComponent(p);
    } catch {
      return null;
    }
  }
  if (p.includes('\0')) return null;
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return null;
    parts.push(seg);
  }
  const dir = p.endsWith('/') || parts.length === 0;
  return parts.join('/') + (dir ? '/' : '');
}

export function createStatic(root: string): HttpApp {
  const base = resolve(root);
  const info = fileInfoOf(base);
  if (info === null || info !== S_IFDIR) throw new Error(`static: ${base} is not a directory (use --app static:<dir>)`);
  return {
    protocol: 'http',
    name: 'static',
    handle(req: HttpRequest): HttpResponse {
      if (req.method !== 'GET' && req.method !== 'HEAD') return NOT_ALLOWED;
      let rel = safePath(req.target);
      if (rel === null) return BAD_REQUEST; // as nginx answers a `..` that would climb out of the root
      if (rel === '' || rel.endsWith('/')) rel += 'index.html';
      return serve(`${base}/${rel}`, rel, true);
    },
  };

  function serve(path: string, rel: string, tryIndex: boolean): HttpResponse {
    const fd = ffi.openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return openFailed(-fd);
    const st = fileInfo(fd);
    if (typeof st === 'number') {
      ffi.close(fd);
      return NOT_FOUND;
    }
    if (st.type === S_IFDIR && tryIndex) {
      ffi.close(fd);
      return serve(`${path}/index.html`, `${rel}/index.html`, false);
    }
    if (st.type !== S_IFREG) {
      ffi.close(fd);
      return NOT_FOUND;
    }
    return { status: 200, headers: headersFor(rel), file: { fd, offset: 0, length: st.size } };
  }
}

function openFailed(e: number): HttpResponse {
  if (e === EACCES) return FORBIDDEN;
  if (e === EMFILE || e === ENFILE) return UNAVAILABLE; // out of fds: the client may retry
  return NOT_FOUND; // ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP ...
}

function fileInfoOf(path: string): number | null {
  const fd = ffi.openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return null;
  const st = fileInfo(fd);
  ffi.close(fd);
  return typeof st === 'number' ? null : st.type;
}
