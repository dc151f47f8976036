// Primary-vs-canary response comparison, pure. Compares, as configured: the status; the listed
// headers (values must be equal, absent on one side is a difference); and the body, unless either
// side was truncated (then only status and headers are compared). Bodies are compared structurally
// when both are JSON (a JSON content-type, or text starting with `{` or `[`, and both parse): leaf
// paths like `$.items[2].id` that differ are reported, keys present on one side only included, and
// paths under an `ignore` entry skipped (prefix match on whole segments: `$.meta` skips `$.meta.x`,
// `$.items[0]` skips `$.items[0].id`). Otherwise bodies are compared by sha256 digest and reported at
// path `$`. At most MAX_DIFFS diffs per comparison; values are trimmed to about MAX_VALUE_CHARS
// (objects become trimmed JSON text when long) and `undefined` means "absent on that side".
// JSON numbers compare as JS numbers (integers past 2^53 may compare equal when they are not).
import { createHash } from 'node:crypto'
import type { CompareConfig } from '../config/schema.js'
import type { CapturedResponse } from './capture.js'
import { redactReplacer } from './redact.js'

export type DiffField = 'status' | 'header' | 'body'

export interface FieldDiff {
  field: DiffField
  /** 'status' for status, the lower-case header name for headers, a JSON path (or '$') for bodies. */
  path: string
  primary: unknown
  canary: unknown
}

export type CompareOptions = Pick<CompareConfig, 'status' | 'headers' | 'body' | 'ignore'>

export const MAX_DIFFS = 20
export const MAX_VALUE_CHARS = 200

export function compareResponses(
  primary: CapturedResponse,
  canary: CapturedResponse,
  cfg: CompareOptions,
): FieldDiff[] {
  const out: FieldDiff[] = []
  if (cfg.status && primary.status !== canary.status) {
    out.push({ field: 'status', path: 'status', primary: primary.status, canary: canary.status })
  }
  for (const raw of cfg.headers) {
    if (out.length >= MAX_DIFFS) return out
    const name = raw.toLowerCase()
    const a = Object.hasOwn(primary.headers, name) ? primary.headers[name] : undefined
    const b = Object.hasOwn(canary.headers, name) ? canary.headers[name] : undefined
    if (a !== b) out.push({ field: 'header', path: name, primary: trim(a), canary: trim(b) })
  }
  if (!cfg.body || out.length >= MAX_DIFFS) return out
  if (primary.truncated || canary.truncated || !primary.body || !canary.body) return out
  const ignore = cfg.ignore.map(parsePath).filter((p): p is Seg[] => p !== null)
  if (ignore.some((p) => p.length === 0)) return out // `$` ignores the whole body
  const ja = parseJson(primary.body, primary.contentType)
  const jb = ja === NOT_JSON ? NOT_JSON : parseJson(canary.body, canary.contentType)
  if (ja !== NOT_JSON && jb !== NOT_JSON) {
    diffJson(ja, jb, ignore, out)
  } else {
    const da = sha256(primary.body)
    const db = sha256(canary.body)
    if (da !== db) {
      out.push({
        field: 'body',
        path: '$',
        primary: summary(primary.body, da),
        canary: summary(canary.body, db),
      })
    }
  }
  return out
}

type Seg = string | number
const NOT_JSON = Symbol('not json')
const ABSENT = Symbol('absent')
const PATH_SEG = /\.([^.[\]]+)|\[(\d+)\]/y
const SIMPLE_KEY = /^[^.[\]]+$/

/** "$.items[0].id" → ['items', 0, 'id']; null when it is not such a path. */
export function parsePath(path: string): Seg[] | null {
  if (!path.startsWith('$')) return null
  const segs: Seg[] = []
  PATH_SEG.lastIndex = 1
  while (PATH_SEG.lastIndex < path.length) {
    const m = PATH_SEG.exec(path)
    if (!m) return null
    segs.push(m[1] !== undefined ? m[1] : Number(m[2]))
  }
  return segs
}

function formatPath(node: PathNode | null): string {
  const segs: string[] = []
  for (let n = node; n; n = n.parent) {
    segs.push(
      typeof n.seg === 'number'
        ? `[${n.seg}]`
        : SIMPLE_KEY.test(n.seg)
          ? `.${n.seg}`
          : `[${JSON.stringify(n.seg)}]`,
    )
  }
  return trimString(`$${segs.reverse().join('')}`)
}

function parseJson(body: Buffer, contentType: string): unknown {
  let start = 0
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) start = 3 // UTF-8 BOM
  while (
    start < body.length &&
    (body[start] === 0x20 || body[start] === 0x0a || body[start] === 0x0d || body[start] === 0x09)
  )
    start++
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase()
  const looksJson = body[start] === 0x7b || body[start] === 0x5b // { or [
  if (!looksJson && !/[/+]json$/.test(mediaType)) return NOT_JSON
  try {
    return JSON.parse(body.toString('utf8', start))
  } catch {
    return NOT_JSON
  }
}

interface PathNode {
  seg: Seg
  parent: PathNode | null
}

interface Frame {
  a: unknown
  b: unknown
  node: PathNode | null
  depth: number
  /** Ignore patterns whose first `depth` segments match this frame's path. */
  live: Seg[][]
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// Iterative depth-first walk (deeply nested bodies must not overflow the stack), in document order.
function diffJson(a: unknown, b: unknown, ignore: Seg[][], out: FieldDiff[]): void {
  const stack: Frame[] = [{ a, b, node: null, depth: 0, live: ignore }]
  const children: Frame[] = []
  while (stack.length > 0 && out.length < MAX_DIFFS) {
    const f = stack.pop()!
    if (f.a === f.b) continue
    const child = (seg: Seg, x: unknown, y: unknown): void => {
      const live = f.live.length === 0 ? f.live : f.live.filter((p) => p[f.depth] === seg)
      if (live.some((p) => p.length === f.depth + 1)) return // ignored
      children.push({ a: x, b: y, node: { seg, parent: f.node }, depth: f.depth + 1, live })
    }
    if (Array.isArray(f.a) && Array.isArray(f.b)) {
      const n = Math.max(f.a.length, f.b.length)
      for (let i = 0; i < n; i++) child(i, i < f.a.length ? f.a[i] : ABSENT, i < f.b.length ? f.b[i] : ABSENT)
    } else if (isObject(f.a) && isObject(f.b)) {
      const x = f.a
      const y = f.b
      for (const k of Object.keys(x)) child(k, x[k], Object.hasOwn(y, k) ? y[k] : ABSENT)
      for (const k of Object.keys(y)) if (!Object.hasOwn(x, k)) child(k, ABSENT, y[k])
    } else {
      out.push({ field: 'body', path: formatPath(f.node), primary: trim(f.a), canary: trim(f.b) })
      continue
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!)
    children.length = 0
  }
}

function trimString(s: string): string {
  if (s.length <= MAX_VALUE_CHARS) return s
  let end = MAX_VALUE_CHARS
  const c = s.charCodeAt(end - 1)
  if (c >= 0xd800 && c <= 0xdbff) end-- // do not split a surrogate pair
  return `${s.slice(0, end)}…`
}

/** A value fit to record: strings trimmed, long objects as trimmed JSON text, absent as undefined. */
function trim(v: unknown): unknown {
  if (v === ABSENT || v === undefined) return undefined
  if (typeof v === 'string') return trimString(v)
  if (v === null || typeof v !== 'object') return v
  let s: string
  try {
    s = JSON.stringify(v, redactReplacer)
  } catch {
    return '[unserialisable]'
  }
  return s.length <= MAX_VALUE_CHARS ? JSON.parse(s) : trimString(s)
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex')
}

// "sha256:<first 16 hex> (N bytes) <text preview>"; the preview is left out for binary bodies.
function summary(body: Buffer, digest: string): string {
  const head = `sha256:${digest.slice(0, 16)} (${body.length} bytes)`
  let text = body.toString('utf8', 0, Math.min(body.length, 160))
  if (body.length > 160) text = text.replace(/\ufffd{1,3}$/, '') // a character cut at the end
  // biome-ignore lint/suspicious/noControlCharactersInRegex: detecting binary content on purpose
  if (/[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text)) return head
  return trimString(`${head} ${text}`)
}
