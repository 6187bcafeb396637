/** Shapes shared by the HTTP/1.1 codecs (server request parser, response encoder, client parser). */

export interface HttpLimits {
  /** Longest request line (method SP target SP version) before 414. Default 8 KB. */
  maxRequestLine: number;
  /** Largest header section (request line + headers + CRLFCRLF) before 431. Default 16 KB. */
  maxHeaderBytes: number;
  /** Most header fields before 431. Default 100. */
  maxHeaders: number;
  /** Largest body (Content-Length or decoded chunked) before 413. Default 1 MB. */
  maxBody: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  maxRequestLine: 8 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxHeaders: 100,
  maxBody: 1024 * 1024,
});

export interface HttpRequest {
  method: string;
  /** Request target as sent, e.g. `/json?x=1`. */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor: 0 | 1;
  /** Flat list: lower-cased name, value, name, value ... in the order received. */
  headers: string[];
  /** Decoded body (chunked framing removed); empty when there is none. */
  body: Buffer;
  /** Whether the connection stays open after the response (version default + Connection header). */
  keepAlive: boolean;
}

export type HttpRequestParse =
  | { kind: 'request'; request: HttpRequest; /** absolute offset just past this request */ next: number }
  | { kind: 'incomplete' }
  | { kind: 'error'; status: number; reason: string };

export interface HttpResponse {
  status: number;
  /** Extra headers. Content-Length, Date and Connection are written by the encoder. */
  headers?: ReadonlyArray<readonly [string, string]>;
  body?: string | Uint8Array;
  /**
   * A body to send from an open file instead of `body` (apps/static.ts): bytes [offset, offset+length)
   * of `fd`. The response owns the fd from then on: the engine sends it (sendfile(2) where it can) and
   * closes it, also when the connection dies first. Content-Length is `length`.
   */
  file?: { fd: number; offset: number; length: number };
  /**
   * Set only by `prepareResponse()` (response.ts): the header bytes pre-encoded, so the encoder copies
   * them instead of re-encoding. Ignored unless status, headers and body are still the ones prepared.
   */
  readonly prepared?: PreparedHead;
}

/** Opaque to apps: what `prepareResponse()` encodes once. */
export interface PreparedHead {
  readonly status: number;
  readonly headers: HttpResponse['headers'];
  readonly body: HttpResponse['body'];
  /** Status line, Server, Content-Length and the extra headers, each line with its CRLF. */
  readonly head: Buffer;
  /** The blank line, then the body (a HEAD response writes only the first 2 bytes). */
  readonly tail: Buffer;
  /**
   * head + Date + tail, what an HTTP/1.1 keep-alive request gets, and the Date line it holds: the one
   * mutable part, rebuilt by writeResponse() when the Date line changes (once a second).
   */
  readonly whole: { date: Buffer | null; bytes: Buffer };
}

export type HttpResponseParse =
  | {
      kind: 'response';
      status: number;
      versionMinor: 0 | 1;
      headers: string[];
      /** Decoded body (chunked framing removed). */
      body: Buffer;
      keepAlive: boolean;
      next: number;
    }
  | { kind: 'incomplete' }
  | { kind: 'error'; reason: string };
