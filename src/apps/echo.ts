/** `echo`: every byte back, in order (RFC 862). Try: iolab serve --app echo --port 7000 & nc localhost 7000 */
import type { EchoApp } from './types.js';

export function createEcho(): EchoApp {
  return { protocol: 'echo', name: 'echo' };
}
