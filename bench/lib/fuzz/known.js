// The one table of known differences between a request sent straight to the upstream and the same
// request sent through Turnout. Each class is `documented` (intended, with its reason; the README
// lists it) or `pending` (a bug being fixed; remove the entry once the fix is merged). An atom no
// entry claims is a new class and fails the fuzz test.
import { connectionNames, groupHeaders, PROTECTED } from './compare.js'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'])
/** Headers undici writes itself on the way upstream: lower-case, host and connection first. */
const WRITTEN_BY_UNDICI = new Set(['host', 'connection', 'content-length', 'transfer-encoding'])
const isHeader = (atom) => atom.what.startsWith('header-')

/** Whether the atom's header is hop-by-hop for the message it came from. */
function hopByHop(atom, ex) {
  if (!isHeader(atom) || atom.name === undefined) return false
  if (HOP_BY_HOP.has(atom.name) || atom.name.startsWith('proxy-')) return true
  const sent = atom.side === 'upstream' ? ex.direct.records?.[0]?.headers : ex.direct.result.answer?.headers
  return sent !== undefined && connectionNames(sent).has(atom.name) && !PROTECTED.has(atom.name)
}

/** An upstream-side atom that is only undici writing host/content-length itself (case, position, re-framing). */
function writtenByUndici(a, ex) {
  if (a.side !== 'upstream') return false
  if (a.what === 'header-case') return a.name === 'host' || a.name === 'content-length'
  if (a.what === 'header-order') {
    const rest = (list) => list.filter((n) => !WRITTEN_BY_UNDICI.has(n)).join('\n')
    return rest(a.direct) === rest(a.proxy)
  }
  if (a.what === 'header-added' && a.name === 'content-length' && a.proxy.length === 1) {
    // A chunked upload that had fully arrived goes on with its length; a POST/PUT/PATCH without a
    // body gets content-length: 0 (RFC 9110 8.6: a user agent SHOULD send it).
    const length = String(ex.proxy.records[0].body.length)
    return a.proxy[0] === length && (ex.req.framing === 'chunked' || ex.req.framing === 'none')
  }
  // An empty body declared with content-length: 0 on GET/HEAD/DELETE/OPTIONS goes on without it.
  if (a.what === 'header-removed' && a.name === 'content-length')
    return a.direct.length === 1 && a.direct[0] === '0' && ex.proxy.records[0].body.length === 0
  return false
}

export const KNOWN = [
  {
    id: 'transfer-coding-refused',
    kind: 'documented',
    reason:
      'a transfer coding besides chunked (Transfer-Encoding: gzip, chunked) is refused with 501, and chunked applied twice with 400: Turnout does not implement other codings, and forwarding the still-encoded body relabelled would corrupt it (RFC 9112 6.1; nginx answers 501 too)',
    matches: (a, ex) =>
      ex.req.codings.length > 0 &&
      (a.side === 'client' ||
        a.what === 'not-forwarded' ||
        a.name === 'transfer-encoding' ||
        a.name === 'content-length' ||
        a.what === 'header-order'),
  },
  {
    id: 'absolute-form-to-origin-form',
    kind: 'documented',
    reason:
      'an absolute-form target (http://host/path, RFC 9112 3.2.2) goes upstream in origin-form: its path and query exactly as received',
    matches: (a, ex) => a.what === 'target' && ex.req.form === 'absolute' && a.proxy === ex.req.path,
  },
  {
    id: 'hop-by-hop',
    kind: 'documented',
    reason:
      'RFC 9110 7.6.1: connection, keep-alive, proxy-*, te, trailer, transfer-encoding, upgrade and the headers Connection names belong to one connection; each hop removes them and frames and manages its own connection',
    matches: hopByHop,
  },
  {
    id: 'forwarding-headers',
    kind: 'documented',
    reason:
      'x-forwarded-for gets the client address appended; x-forwarded-proto/-host are what Turnout saw; via: 1.1 turnout is appended both ways (RFC 9110 7.6.3); these move to the end of the header list',
    matches: (a) =>
      isHeader(a) &&
      (a.side === 'upstream'
        ? ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'via'].includes(a.name)
        : a.name === 'via'),
  },
  {
    id: 'turnout-headers',
    kind: 'documented',
    reason:
      'x-turnout-variant is set by Turnout both ways (the variant that served), whatever a client or upstream sent; a client x-turnout-mirror is dropped',
    matches: (a) =>
      isHeader(a) &&
      (a.name === 'x-turnout-variant' || (a.side === 'upstream' && a.name === 'x-turnout-mirror')),
  },
  {
    id: 'expect-answered-by-turnout',
    kind: 'documented',
    reason:
      'Turnout answers Expect: 100-continue itself and streams the body on; the upstream does not see Expect',
    matches: (a) => a.side === 'upstream' && a.what === 'header-removed' && a.name === 'expect',
  },
  {
    id: 'host-and-framing-written-by-undici',
    kind: 'documented',
    reason:
      'undici writes host (first, lower-case) and the upload framing itself: content-length in lower case, and a chunked upload that has fully arrived (or an empty POST/PUT/PATCH) goes on with content-length; header names are case-insensitive and framing is per hop (RFC 9112 6)',
    matches: writtenByUndici,
  },
  {
    id: 'trailers-dropped',
    kind: 'documented',
    reason:
      'trailer fields are not relayed in either direction: bodies stream through, and a recipient that removes the chunked coding may discard trailer fields (RFC 9112 7.1.2; nginx drops them too); the trailer header goes with them',
    matches: (a) => a.what === 'trailers' && a.proxy.length === 0,
  },
  {
    id: 'empty-reason-replaced',
    kind: 'documented',
    reason:
      'an empty reason phrase from the upstream is sent as the standard one (RFC 9112 4: clients ignore the reason phrase)',
    matches: (a, ex) => a.side === 'client' && a.what === 'reason' && ex.answer.reason === '',
  },
  {
    id: 'obs-text-reason-replaced',
    kind: 'documented',
    reason:
      'a reason phrase with obs-text bytes (legal, RFC 9112 4) is sent as the standard one: undici decodes the phrase as UTF-8, so the bytes cannot be relayed as received, and clients ignore the reason phrase',
    matches: (a, ex) =>
      a.side === 'client' && a.what === 'reason' && /[\x80-\xff]/.test(ex.answer.reason ?? ''),
  },
  {
    id: 'date-added',
    kind: 'documented',
    reason: 'RFC 9110 6.6.1: a proxy forwarding an answer without Date adds one',
    matches: (a, ex) =>
      a.side === 'client' &&
      a.what === 'header-added' &&
      a.name === 'date' &&
      !groupHeaders(ex.answer.headers.flat()).has('date'),
  },
]

/** The class id for an atom: the first table entry that claims it, or a new `unexplained` id. */
export function classify(atom, ex) {
  for (const entry of KNOWN) if (entry.matches(atom, ex)) return entry.id
  return `unexplained ${atom.side} ${atom.what}${atom.name === undefined ? '' : ` ${atom.name}`}`
}
