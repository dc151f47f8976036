// The last mismatch samples of one route, for the admin API: a fixed-size ring (oldest overwritten),
// listed newest first as {"route","diffs":[{time,method,path,fields,classification}]}. Everything
// recorded is redacted (see redact.ts): header diffs named authorization/cookie/set-cookie, body
// diffs under such a JSON key, such keys inside object values, and "cookie: …" text in strings, the
// request path included. Values and the request path are trimmed so a sample stays small.
import type { DiffField, FieldDiff } from './compare.js'
import { MAX_DIFFS, MAX_VALUE_CHARS } from './compare.js'
import { isSensitiveName, REDACTED, redactText, redactValue } from './redact.js'

export type SampleClassification = 'mismatch' | 'noise'

export interface SampleField {
  field: DiffField
  path?: string
  primary?: unknown
  canary?: unknown
}

export interface DiffSample {
  /** Milliseconds since the epoch. */
  time: number
  method: string
  /** Path and query of the request. */
  path: string
  fields: SampleField[]
  classification: SampleClassification
}

export interface DiffSampleInput {
  time?: number
  method: string
  path: string
  fields: readonly FieldDiff[]
  classification: SampleClassification
}

export interface DiffList {
  route: string
  diffs: DiffSample[]
}

export const DEFAULT_RING_SIZE = 100
const MAX_REQUEST_PATH = 1024
const JSON_KEYS = /\.([^.[\]]+)|\["((?:[^"\\]|\\.)*)"\]/g

export class DiffRing {
  private readonly ring: DiffSample[] = []
  private next = 0
  private readonly capacity: number

  constructor(
    readonly route: string,
    capacity = DEFAULT_RING_SIZE,
  ) {
    this.capacity = Math.max(1, Math.floor(capacity))
  }

  get size(): number {
    return this.ring.length
  }

  record(input: DiffSampleInput): void {
    const sample: DiffSample = {
      time: input.time ?? Date.now(),
      method: input.method,
      path: trim(redactText(input.path), MAX_REQUEST_PATH),
      fields: input.fields.slice(0, MAX_DIFFS).map(redactField),
      classification: input.classification,
    }
    if (this.ring.length < this.capacity) {
      this.ring.push(sample)
    } else {
      this.ring[this.next] = sample
      this.next = (this.next + 1) % this.capacity
    }
  }

  /** Newest first. */
  list(): DiffList {
    const diffs: DiffSample[] = []
    const n = this.ring.length
    const newest = n < this.capacity ? n - 1 : (this.next - 1 + n) % n
    for (let i = 0; i < n; i++) diffs.push(this.ring[(newest - i + n) % n]!)
    return { route: this.route, diffs }
  }
}

function sensitivePath(d: FieldDiff): boolean {
  if (d.field === 'header') return isSensitiveName(d.path)
  if (d.field !== 'body') return false
  for (const m of d.path.matchAll(JSON_KEYS)) {
    if (isSensitiveName(m[1] ?? m[2]!)) return true
  }
  return false
}

function redactField(d: FieldDiff): SampleField {
  const hide = sensitivePath(d)
  const value = (v: unknown): unknown => {
    if (v === undefined) return undefined
    if (hide) return REDACTED
    const r = redactValue(v)
    return typeof r === 'string' ? trim(r, MAX_VALUE_CHARS) : r
  }
  return {
    field: d.field,
    path: trim(d.path, MAX_VALUE_CHARS),
    primary: value(d.primary),
    canary: value(d.canary),
  }
}

function trim(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`
}
