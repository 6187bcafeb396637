/**
 * What an app is. An app speaks one protocol and never knows which engine runs it; the engine
 * reaches it through a `Service` (see service.ts), which owns the codec and the per-request glue.
 * A user app is a module path whose default export (or `app` export) has one of these shapes.
 */
import type { OutBuf } from '../protocols/outbuf.js';
import type { HttpRequest, HttpResponse } from '../protocols/http/types.js';
import type { RespArgv } from '../protocols/resp/server.js';

export interface HttpApp {
  protocol: 'http';
  name: string;
  /** Answer one request. May return a Promise; requests of one connection are still answered in order. */
  handle(req: HttpRequest): HttpResponse | Promise<HttpResponse>;
}

/** RESP apps write their reply straight into the connection's output (no reply objects on the hot path). */
export interface RespApp {
  protocol: 'resp';
  name: string;
  /** Handle one command (`args[0]` is the command name as sent). Return 'close' to close after the reply (QUIT). */
  handle(args: Buffer[], out: OutBuf): void | 'close';
  /**
   * Optional: handle() for a command whose arguments are still in the engine's read buffer (argument i
   * is `buf[argv.pos[2i] .. argv.pos[2i] + argv.pos[2i+1])`, see parseCommandArgv). The bytes are only
   * good during the call: copy what you keep. When present, the Service uses it for multibulk commands
   * (what clients send), and handle() for the rest.
   */
  handleArgv?(buf: Buffer, argv: RespArgv, out: OutBuf): void | 'close';
  /** Optional housekeeping (kv: reclaim expired keys), called about every 100 ms by the Service's timer. */
  sweep?(): unknown;
}

export interface EchoApp {
  protocol: 'echo';
  name: string;
}

export type App = HttpApp | RespApp | EchoApp;
