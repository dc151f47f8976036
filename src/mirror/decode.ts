// Content-coding for the comparison. The live request is never altered (the mirror carries the
// client's Accept-Encoding as is), so either side may answer compressed. Each captured body is decoded
// by its own Content-Encoding before the comparison, so JSON bodies compare field by field whatever
// the coding (a coding difference itself shows up only if `content-encoding` is a compared header).
// Decoding runs on libuv's thread pool (async zlib), never on the event loop, and its output is capped
// at compare.maxBodyBytes (past it the body counts as truncated: status/headers only, no zip bombs).
// An unknown coding (or a broken stream) leaves the raw bytes, compared by digest, when both sides
// use the same coding; with different codings the bodies are not compared.
import { promisify } from 'node:util'
import * as zlib from 'node:zlib'
import type { CapturedResponse } from './capture.js'

const gunzip = promisify(zlib.gunzip)
const inflate = promisify(zlib.inflate)
const inflateRaw = promisify(zlib.inflateRaw)
const brotli = promisify(zlib.brotliDecompress)

function coding(r: CapturedResponse): string {
  const v = r.headers['content-encoding']
  return v === undefined ? 'identity' : v.trim().toLowerCase()
}

async function decode(body: Buffer, enc: string, max: number): Promise<Buffer | null> {
  const opts = { maxOutputLength: Math.max(1, max) }
  switch (enc) {
    case 'identity':
    case '':
      return body
    case 'gzip':
    case 'x-gzip':
      return gunzip(body, opts)
    case 'deflate':
      // "deflate" is zlib-wrapped by the RFC, raw in some servers: accept both.
      return inflate(body, opts).catch(() => inflateRaw(body, opts))
    case 'br':
      return brotli(body, { maxOutputLength: opts.maxOutputLength })
    default:
      return null
  }
}

/**
 * Both captures with bodies decoded for comparison, or the raw ones when nothing needs decoding.
 * Never rejects.
 */
export async function decodedPair(
  a: CapturedResponse,
  b: CapturedResponse,
  max: number,
): Promise<[CapturedResponse, CapturedResponse]> {
  const ea = coding(a)
  const eb = coding(b)
  if (ea === 'identity' && eb === 'identity') return [a, b]
  if (a.body === null || b.body === null || a.truncated || b.truncated) return [a, b]
  const one = async (r: CapturedResponse, enc: string): Promise<Buffer | null | 'too_large'> => {
    try {
      return await decode(r.body!, enc, max)
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'too_large' : null
    }
  }
  const [da, db] = await Promise.all([one(a, ea), one(b, eb)])
  if (da === 'too_large' || db === 'too_large') {
    return [truncated(a), truncated(b)]
  }
  if (da === null || db === null) {
    // Not decodable: same coding → compare the raw bytes; different codings → skip the body.
    return ea === eb ? [a, b] : [truncated(a), truncated(b)]
  }
  return [
    { ...a, body: da },
    { ...b, body: db },
  ]
}

function truncated(r: CapturedResponse): CapturedResponse {
  return { ...r, body: null, truncated: true }
}
