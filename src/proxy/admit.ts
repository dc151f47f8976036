// Phase 0, before a route is matched: requests Turnout refuses because of the client itself. They are
// answered locally (400, 501, 505), counted in turnout_client_errors_total{kind}, and never reach a
// variant, so a hostile client cannot move a variant's golden signals or a rollout's verdict.
// Node's parser already refuses bad framing; this adds what it lets through but a proxy must not
// forward (and what undici would refuse before sending, which would otherwise read as a 502).

import type { RefusalKind } from '../core/pipeline.js'

export type { RefusalKind }

export interface Refusal {
  kind: RefusalKind
  status: 400 | 408 | 501 | 505
  /** The JSON answer's `error` and `detail` fields. */
  error: string
  detail: string
}

/** The request facts admission reads (node:http's IncomingMessage fits). */
export interface AdmitInput {
  readonly httpVersionMajor: number
  readonly rawHeaders: readonly string[]
}

const refuse = (kind: RefusalKind, status: 400 | 501 | 505, error: string, detail: string): Refusal => ({
  kind,
  status,
  error,
  detail,
})

/** Null when the request may go on, else why it is refused. */
export function admit(req: AdmitInput): Refusal | null {
  if (req.httpVersionMajor !== 1)
    return refuse(
      'http_version_not_supported',
      505,
      'http_version_not_supported',
      'this listener speaks HTTP/1.x; use HTTP/1.1',
    )
  const raw = req.rawHeaders
  let hosts = 0
  let codings: string[] | null = null
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      codings ??= []
      for (const c of raw[i + 1]!.split(',')) {
        const coding = c.trim().toLowerCase()
        if (coding !== '') codings.push(coding)
      }
    }
  }
  if (hosts > 1) return refuse('bad_request', 400, 'bad_request', 'more than one Host header')
  if (codings !== null) return transferCodings(codings)
  return null
}

/**
 * Node has already decoded `chunked` (it must be the last coding). Any other coding would reach the
 * upstream still encoded but relabelled, so it is refused as nginx does (501); `chunked` applied
 * twice is malformed (RFC 9112 §6.1).
 */
function transferCodings(codings: readonly string[]): Refusal | null {
  let chunked = 0
  for (const c of codings) {
    if (c === 'chunked') chunked++
    else
      return refuse(
        'not_implemented',
        501,
        'transfer_coding_not_implemented',
        `transfer coding "${c}" is not supported; only chunked`,
      )
  }
  if (chunked > 1) return refuse('bad_request', 400, 'bad_request', 'chunked applied more than once')
  return null
}
