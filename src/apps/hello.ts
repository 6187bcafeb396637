/**
 * `hello`: the TechEmpower plaintext and JSON tests, plus a body echo.
 *   GET /      -> 200 "Hello, World!" (text/plain)
 *   GET /json  -> 200 {"message":"Hello, World!"} (serialised per request, as the benchmark requires)
 *   POST /echo -> 200 with the request body
 * Try: iolab serve --app hello --port 8080 & curl -i localhost:8080/
 */
import type { HttpApp } from './types.js';
import type { HttpRequest, HttpResponse } from '../protocols/http/types.js';
import { prepareResponse } from '../protocols/http/response.js';

const TEXT: ReadonlyArray<readonly [string, string]> = [['Content-Type', 'text/plain']];
const JSON_TYPE: ReadonlyArray<readonly [string, string]> = [['Content-Type', 'application/json']];
// Constant responses are pre-encoded once (all but Date and Connection): a few memcpys per request.
const HELLO = prepareResponse({ status: 200, headers: TEXT, body: Buffer.from('Hello, World!') });
const NOT_FOUND = prepareResponse({ status: 404, headers: TEXT, body: Buffer.from('Not Found\n') });
const NOT_ALLOWED = prepareResponse({ status: 405, headers: TEXT, body: Buffer.from('Method Not Allowed\n') });

function path(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

export function createHello(): HttpApp {
  return {
    protocol: 'http',
    name: 'hello',
    handle(req: HttpRequest): HttpResponse {
      const p = path(req.target);
      const get = req.method === 'GET' || req.method === 'HEAD';
      if (p === '/' || p === '/plaintext') return get ? HELLO : NOT_ALLOWED;
      if (p === '/json') {
        return get ? { status: 200, headers: JSON_TYPE, body: JSON.stringify({ message: 'Hello, World!' }) } : NOT_ALLOWED;
      }
      if (p === '/echo') {
        if (req.method !== 'POST' && req.method !== 'PUT') return NOT_ALLOWED;
        let type = 'application/octet-stream';
        for (let i = 0; i < req.headers.length; i += 2) if (req.headers[i] === 'content-type') type = req.headers[i + 1]!;
        return { status: 200, headers: [['Content-Type', type]], body: req.body };
      }
      return NOT_FOUND;
    },
  };
}
