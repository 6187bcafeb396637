/** HTTP/1.1 codecs: server request parser, response encoder, and the load generator's client side. */
export { parseRequest, INCOMPLETE, EMPTY_BODY } from './request.js';
export { writeResponse, writeError, prepareResponse, statusText, dateHeader, type WriteOptions } from './response.js';
export { parseResponse, finishAtEof, encodeRequest, type ResponseParseOptions } from './client.js';
export {
  DEFAULT_HTTP_LIMITS,
  type HttpLimits,
  type HttpRequest,
  type HttpRequestParse,
  type HttpResponse,
  type HttpResponseParse,
  type PreparedHead,
} from './types.js';
