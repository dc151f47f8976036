// Request bodies a retry can send again: a Content-Length body of at most retry.maxBodyBytes is read
// in full before the first try and sent as one Buffer, so every try sends the same bytes. Chunked
// and larger bodies stream as before and are never retried.
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'

/** Whether this request's body is buffered for replays (maxBytes 0: never). */
export function bufferable(req: IncomingMessage, maxBytes: number): boolean {
  if (maxBytes <= 0 || req.headers['transfer-encoding'] !== undefined) return false
  const length = Number(req.headers['content-length'])
  return Number.isInteger(length) && length > 0 && length <= maxBytes
}

/** Reads `body` to its end; `done` gets the bytes, or null when the stream failed or closed early. */
export function readAll(body: Readable, done: (bytes: Buffer | null) => void): void {
  const chunks: Buffer[] = []
  let finished = false
  const finish = (bytes: Buffer | null) => {
    if (finished) return
    finished = true
    done(bytes)
  }
  body.on('data', (c: Buffer) => chunks.push(c))
  body.once('end', () => finish(Buffer.concat(chunks)))
  body.once('error', () => finish(null))
  body.once('close', () => finish(null))
}
