// Per-variant interval windows for automated rollouts: request and error counts, a DDSketch of the
// latencies (p50/p99 with a 1% relative-error guarantee, bounded bins) and a bounded reservoir sample
// of latencies for the rank test. Pure and synchronous: the proxy calls record() on the hot path, the
// rollout controller calls RouteWindows.rotate() once per analysis interval.
import { LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js'

/** What one variant did during one interval. Plain data apart from quantile(), safe to keep. */
export interface WindowStats {
  /** Responses recorded. */
  requests: number
  /** Responses with status >= 500 (incl. the proxy's own 502/504) or an upstream error. */
  errors: number
  /** Median latency in ms, null when there were no requests. */
  p50: number | null
  /** 99th percentile latency in ms, null when there were no requests. */
  p99: number | null
  /** Latency in ms at quantile q (0..1) from the sketch, null when there were no requests. */
  quantile(q: number): number | null
  /** A uniform random sample (reservoir) of the latencies in ms, at most `sampleSize` values. */
  sample: number[]
}

export interface WindowOptions {
  /** Reservoir size for the rank test (default 2000). */
  sampleSize?: number
  /** Relative accuracy of the quantile sketch (default 0.01 = 1%). */
  relativeAccuracy?: number
  /** Uniform [0, 1) source for reservoir sampling (default Math.random); tests pass a seeded one. */
  random?: () => number
}

export const DEFAULT_SAMPLE_SIZE = 2000
const DEFAULT_ACCURACY = 0.01
// With 1% accuracy 2048 bins span a factor of ~1e18 in latency, so collapsing never happens in
// practice; the limit is the hard memory bound.
const BIN_LIMIT = 2048

type Sketch = LogCollapsingLowestDenseDDSketch

/** One variant's counters for the current interval. */
export class VariantWindow {
  private requests = 0
  private errors = 0
  private seen = 0
  private sketch: Sketch
  private readonly reservoir: Float64Array
  private readonly accuracy: number
  private readonly random: () => number

  constructor(opts: WindowOptions = {}) {
    const size = opts.sampleSize ?? DEFAULT_SAMPLE_SIZE
    if (!Number.isInteger(size) || size < 1) throw new RangeError('sampleSize must be a positive integer')
    this.reservoir = new Float64Array(size)
    this.accuracy = opts.relativeAccuracy ?? DEFAULT_ACCURACY
    this.random = opts.random ?? Math.random
    this.sketch = this.newSketch()
  }

  /** Count one response. Allocation-free apart from the sketch's occasional bin growth. */
  record(status: number, durationMs: number, upstreamError: boolean): void {
    this.requests++
    if (upstreamError || status >= 500) this.errors++
    if (!(durationMs >= 0) || durationMs === Number.POSITIVE_INFINITY) return // NaN, negative, infinite
    this.sketch.accept(durationMs)
    // Reservoir sampling (Vitter's algorithm R): every latency ends up in the sample with equal odds.
    const cap = this.reservoir.length
    if (this.seen < cap) {
      this.reservoir[this.seen] = durationMs
    } else {
      const j = Math.floor(this.random() * (this.seen + 1))
      if (j < cap) this.reservoir[j] = durationMs
    }
    this.seen++
  }

  /** The interval so far, copied: later record() calls do not change it. */
  snapshot(): WindowStats {
    const copy = this.newSketch()
    copy.merge(this.sketch)
    return this.stats(copy)
  }

  /** The interval so far, then a fresh interval (cheaper than snapshot() + reset()). */
  drain(): WindowStats {
    const stats = this.stats(this.sketch)
    this.sketch = this.newSketch()
    this.requests = 0
    this.errors = 0
    this.seen = 0
    return stats
  }

  /** Start a fresh interval. */
  reset(): void {
    this.drain()
  }

  private newSketch(): Sketch {
    return new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: this.accuracy, binLimit: BIN_LIMIT })
  }

  private stats(sketch: Sketch): WindowStats {
    const quantile = (q: number): number | null => {
      if (sketch.count === 0 || !(q >= 0 && q <= 1)) return null
      // The sketch keeps the exact extremes; in between it answers within the relative accuracy,
      // clamped to the observed range.
      if (q === 0) return sketch.min
      if (q === 1) return sketch.max
      return Math.min(sketch.max, Math.max(sketch.min, sketch.getValueAtQuantile(q)))
    }
    return {
      requests: this.requests,
      errors: this.errors,
      p50: quantile(0.5),
      p99: quantile(0.99),
      quantile,
      sample: Array.from(this.reservoir.subarray(0, Math.min(this.seen, this.reservoir.length))),
    }
  }
}

/** Both variants of one route for the current interval. */
export class RouteWindows {
  readonly primary: VariantWindow
  readonly canary: VariantWindow

  constructor(opts: WindowOptions = {}) {
    this.primary = new VariantWindow(opts)
    this.canary = new VariantWindow(opts)
  }

  /** The finished interval's stats for both variants; a new interval starts. */
  rotate(): { primary: WindowStats; canary: WindowStats } {
    return { primary: this.primary.drain(), canary: this.canary.drain() }
  }
}
