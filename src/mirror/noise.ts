// Noise classification (Diffy's three-way idea). For a share of mirrored requests the request is
// also replayed to the primary, so some comparisons are primary-vs-primary ("pairs") and the rest
// primary-vs-canary. Each kind keeps a sliding window of its last `windowSize` comparisons and, per
// field key (diffKey: "status", "header:etag", "body:$.price"), how many of them differed there.
//
// Rule: a differing key is NOISE when the pair window holds at least MIN_PAIR_SAMPLES comparisons,
// the key differed in at least one of them, and its pair difference rate is at least NOISE_RATIO
// (half) of its canary difference rate: two primaries disagree on it about as often as primary and
// canary do, so the canary is not to blame (timestamps, request ids, random ordering). A comparison
// is `match` with no diffs, `noise` when every differing key is noise, else `mismatch`.
// Record every comparison, with or without diffs (they are the rates' denominators); recording the
// current canary comparison before classifying it is the intended order.
// Memory is bounded: windowSize entries of at most MAX_KEYS_PER_RECORD keys per kind, and at most
// `maxPaths` distinct keys counted per kind (keys beyond it are not counted, so never noise).
import type { DiffField, FieldDiff } from './compare.js'

export const NOISE_RATIO = 0.5
export const MIN_PAIR_SAMPLES = 3
export const MAX_KEYS_PER_RECORD = 64

export type ComparisonResult = 'match' | 'mismatch' | 'noise'

/** The key a diff is counted under: "status", "header:<name>" or "body:<json path>". */
export function diffKey(d: Pick<FieldDiff, 'field' | 'path'>): string {
  return d.field === 'status' ? 'status' : `${d.field}:${d.path}`
}

class Window {
  private readonly ring: string[][] = []
  private next = 0
  private readonly counts = new Map<string, number>()

  constructor(
    private readonly size: number,
    private readonly maxPaths: number,
  ) {}

  get samples(): number {
    return this.ring.length
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0
  }

  rate(key: string): number {
    return this.ring.length === 0 ? 0 : this.count(key) / this.ring.length
  }

  push(keys: readonly string[]): void {
    const full = this.ring.length === this.size
    if (full) {
      for (const k of this.ring[this.next]!) {
        const c = this.counts.get(k)! - 1
        if (c === 0) this.counts.delete(k)
        else this.counts.set(k, c)
      }
    }
    const kept: string[] = []
    for (const k of new Set(keys)) {
      if (kept.length >= MAX_KEYS_PER_RECORD) break
      const c = this.counts.get(k)
      if (c === undefined && this.counts.size >= this.maxPaths) continue
      this.counts.set(k, (c ?? 0) + 1)
      kept.push(k)
    }
    if (full) {
      this.ring[this.next] = kept
      this.next = (this.next + 1) % this.size
    } else {
      this.ring.push(kept)
    }
  }
}

export class NoiseClassifier {
  private readonly canary: Window
  private readonly pairs: Window

  constructor(windowSize = 500, maxPaths = 1000) {
    const size = Math.max(1, Math.floor(windowSize))
    this.canary = new Window(size, maxPaths)
    this.pairs = new Window(size, maxPaths)
  }

  /** One primary-vs-canary comparison: the diffKey()s that differed (empty when it matched). */
  recordCanary(diffPaths: readonly string[]): void {
    this.canary.push(diffPaths)
  }

  /** One primary-vs-primary comparison: the diffKey()s that differed (empty when it matched). */
  recordPrimaryPair(diffPaths: readonly string[]): void {
    this.pairs.push(diffPaths)
  }

  /** Whether differences at this diffKey() are noise under the rule above. */
  isNoise(key: string): boolean {
    if (this.pairs.samples < MIN_PAIR_SAMPLES || this.pairs.count(key) === 0) return false
    return this.pairs.rate(key) >= NOISE_RATIO * this.canary.rate(key)
  }

  classify(diffs: readonly FieldDiff[]): ComparisonResult {
    if (diffs.length === 0) return 'match'
    return diffs.every((d) => this.isNoise(diffKey(d))) ? 'noise' : 'mismatch'
  }

  /** The distinct fields with a non-noise diff, for turnout_mirror_mismatches_total{field}. */
  mismatchFields(diffs: readonly FieldDiff[]): DiffField[] {
    const fields = new Set<DiffField>()
    for (const d of diffs) if (!this.isNoise(diffKey(d))) fields.add(d.field)
    return (['status', 'header', 'body'] as const).filter((f) => fields.has(f))
  }
}
