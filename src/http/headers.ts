// Header rewriting between client and upstream, on Node's flat raw header lists ([name, value, ...])
// so nothing is parsed into objects on the hot path.
//  - hop-by-hop headers (RFC 9110 §7.6.1) and any header the Connection header names are removed
//    in both directions;
//  - x-forwarded-for gets the client address appended; x-forwarded-proto/-host are what Turnout saw,
//    unless trustForwardedHeaders keeps the client's;
//  - via is appended both ways; host is preserved; x-turnout-variant tells the upstream its variant.

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

export const VIA = '1.1 turnout'

/**
 * Headers a peer's Connection list cannot remove: ones the proxy itself needs to route and frame the
 * message, and ones end-to-end by definition (RFC 9110 §7.6.1: a sender must not list fields that
 * are end-to-end; listing them would let a client strip Host or Authorization in front of the
 * upstream, or an upstream strip the framing Turnout relies on).
 */
const NOT_REMOVABLE = new Set([
  'host',
  'authorization',
  'content-length',
  'content-type',
  'content-encoding',
  'cookie',
  'set-cookie',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'via',
  'traceparent',
  'tracestate',
])

/** Names listed in Connection headers (lower-case), or null when there are none beyond the usual. */
function connectionTokens(raw: readonly string[]): Set<string> | null {
  let tokens: Set<string> | null = null
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      for (const t of raw[i + 1]!.split(',')) {
        const name = t.trim().toLowerCase()
        if (
          name &&
          name !== 'close' &&
          name !== 'keep-alive' &&
          name !== 'upgrade' &&
          !NOT_REMOVABLE.has(name)
        ) {
          tokens ??= new Set()
          tokens.add(name)
        }
      }
    }
  }
  return tokens
}

function isHopByHop(lower: string, tokens: Set<string> | null): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || tokens?.has(lower) === true
}

export interface UpstreamHeaderInput {
  clientAddress: string
  /** `http` (Turnout terminates plain HTTP). */
  proto: string
  trustForwarded: boolean
  variant: string
  /** Headers to add (tracing context), flat list, or null; they replace client headers of the same name. */
  extra: readonly string[] | null
  /** The authority of an absolute-form request target: it replaces the client's Host (RFC 9112 §3.2.2). */
  authority?: string | null
}

/** Whether a flat name/value list has a header named `lower` (names in the list are lower-case). */
function namedIn(flat: readonly string[], lower: string): boolean {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === lower) return true
  return false
}

/** Client request headers → the flat list sent upstream. */
export function upstreamRequestHeaders(raw: readonly string[], input: UpstreamHeaderInput): string[] {
  const tokens = connectionTokens(raw)
  const out: string[] = []
  let xff: string | null = null
  let host: string | null = null
  let via: string | null = null
  let xfProto: string | null = null
  let xfHost: string | null = null
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const lower = name.toLowerCase()
    if (isHopByHop(lower, tokens)) continue
    switch (lower) {
      case 'host':
        host = input.authority ?? value
        out.push(name, host)
        continue
      case 'x-forwarded-for':
        xff = xff === null ? value : `${xff}, ${value}`
        continue
      case 'x-forwarded-proto':
        xfProto = value
        continue
      case 'x-forwarded-host':
        xfHost = value
        continue
      case 'via':
        via = via === null ? value : `${via}, ${value}`
        continue
      case 'expect': // Node already answered 100-continue to the client; the body follows.
      case 'x-turnout-variant': // set below; a client may not choose what the upstream is told
      case 'x-turnout-mirror':
        continue
      default:
        // e.g. the client's traceparent when tracing sends its own (one traceparent upstream, not two)
        if (input.extra !== null && namedIn(input.extra, lower)) continue
        out.push(name, value)
    }
  }
  out.push('x-forwarded-for', xff === null ? input.clientAddress : `${xff}, ${input.clientAddress}`)
  out.push('x-forwarded-proto', input.trustForwarded && xfProto !== null ? xfProto : input.proto)
  const fwdHost = input.trustForwarded && xfHost !== null ? xfHost : host
  if (fwdHost !== null) out.push('x-forwarded-host', fwdHost)
  out.push('via', via === null ? VIA : `${via}, ${VIA}`)
  out.push('x-turnout-variant', input.variant)
  if (input.extra !== null) for (const h of input.extra) out.push(h)
  return out
}

/**
 * Upstream response headers (undici's raw Buffer list) → the flat list for `res.writeHead`.
 * `keepUpgrade` keeps Connection/Upgrade for a 101 answer.
 */
export function downstreamResponseHeaders(
  raw: readonly Buffer[],
  variant: string | null,
  keepUpgrade = false,
): string[] {
  const strings: string[] = new Array(raw.length)
  for (let i = 0; i < raw.length; i++) strings[i] = raw[i]!.toString('latin1')
  const tokens = keepUpgrade ? null : connectionTokens(strings)
  const out: string[] = []
  let via: string | null = null
  for (let i = 0; i < strings.length; i += 2) {
    const name = strings[i]!
    const lower = name.toLowerCase()
    if (keepUpgrade ? lower === 'keep-alive' || lower === 'transfer-encoding' : isHopByHop(lower, tokens))
      continue
    if (lower === 'via') {
      via = via === null ? strings[i + 1]! : `${via}, ${strings[i + 1]!}`
      continue
    }
    if (lower === 'x-turnout-variant') continue
    out.push(name, strings[i + 1]!)
  }
  out.push('via', via === null ? VIA : `${via}, ${VIA}`)
  if (variant !== null) out.push('x-turnout-variant', variant)
  return out
}
