// The one place that writes Turnout's own answers (errors, refusals, admin JSON): a small JSON body
// with content-type, content-length and cache-control: no-store, either through node:http's
// ServerResponse or, for a connection that has none (a refused connection, a request the parser
// rejected, an upgrade), as raw HTTP/1.1 bytes that always close the connection.
import { type ServerResponse, STATUS_CODES } from 'node:http'

function headersFor(text: string, extra?: readonly string[]): string[] {
  const headers = [
    'content-type',
    'application/json',
    'content-length',
    String(Buffer.byteLength(text)),
    'cache-control',
    'no-store',
  ]
  if (extra) headers.push(...extra)
  return headers
}

/**
 * Sends a local JSON answer, with `extra` response headers (flat name/value list). `newline` ends the
 * body with one (the admin API's answers, read with curl in a terminal). Safe to call once the
 * response has not started.
 */
export function reply(
  res: ServerResponse,
  status: number,
  body: unknown,
  extra?: readonly string[],
  newline = false,
): void {
  const text = newline ? `${JSON.stringify(body)}\n` : JSON.stringify(body)
  res.writeHead(status, headersFor(text, extra))
  res.end(text)
}

/** The same answer as raw HTTP/1.1 bytes; it always carries `connection: close`. */
export function replyBytes(status: number, body: unknown, extra?: readonly string[]): string {
  const text = JSON.stringify(body)
  const headers = headersFor(text, [...(extra ?? []), 'connection', 'close'])
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  return `${head}\r\n${text}`
}
