// 1xx informational answers (103 Early Hints, 102 Processing, …) are relayed to HTTP/1.1 clients
// ahead of the final answer, as HAProxy does (RFC 9110 §15.2); never to HTTP/1.0 clients, and never
// once the final answer started. (An upstream's 100 Continue is dropped at the connection: see
// upstream/wire.ts.)
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http'
import { downstreamResponseHeaders } from '../http/headers.js'

/** node:http's own writer for raw head bytes (what writeContinue and writeProcessing use). */
interface RawWriter {
  _writeRaw(data: string, encoding: BufferEncoding): boolean
}

export function relayInformational(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  statusText: string,
  rawHeaders: readonly Buffer[],
): void {
  if (status === 101 || res.headersSent || req.httpVersionMinor === 0 || res.destroyed) return
  const headers = downstreamResponseHeaders(rawHeaders, null)
  let head = `HTTP/1.1 ${status} ${statusText || STATUS_CODES[status] || 'Informational'}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  ;(res as unknown as RawWriter)._writeRaw(`${head}\r\n`, 'latin1')
}
