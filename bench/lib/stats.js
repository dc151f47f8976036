// Small statistics helpers: a log-bucketed latency histogram (~0.5% relative precision, microsecond
// resolution; autocannon's own histogram only has whole milliseconds), medians and formatting.

const SUB = 100 // exact buckets below this many µs
const GROWTH = Math.log(1.005)

export class LatencyHistogram {
  constructor() {
    this.counts = new Map()
    this.total = 0
    this.max = 0
  }

  /** Record a latency in milliseconds (fractional). */
  recordMs(ms) {
    const us = ms * 1000
    const key = us < SUB ? Math.floor(us) : SUB + Math.floor(Math.log(us / SUB) / GROWTH)
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
    this.total++
    if (ms > this.max) this.max = ms
  }

  /** Upper edge of the bucket holding the p-th percentile, in ms. */
  percentileMs(p) {
    if (this.total === 0) return null
    const keys = [...this.counts.keys()].sort((a, b) => a - b)
    const rank = Math.ceil((p / 100) * this.total)
    let seen = 0
    for (const k of keys) {
      seen += this.counts.get(k)
      if (seen >= rank) {
        const us = k < SUB ? k + 1 : SUB * Math.exp((k - SUB + 1) * GROWTH)
        return Math.min(us / 1000, this.max)
      }
    }
    return this.max
  }
}

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = Math.floor(v.length / 2)
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

export function fmtNum(x, digits = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-'
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function fmtMs(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-'
  if (x < 10) return x.toFixed(2)
  if (x < 100) return x.toFixed(1)
  return x.toFixed(0)
}

export function fmtRatio(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-'
  return `${x.toFixed(2)}x`
}

/** Render rows (arrays of strings) as a GitHub markdown table; `align` per column: 'l' or 'r'. */
export function markdownTable(header, rows, align) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length), 3))
  const pad = (s, i) => (align[i] === 'r' ? String(s).padStart(widths[i]) : String(s).padEnd(widths[i]))
  const line = (cells) => `| ${cells.map(pad).join(' | ')} |`
  const sep = `| ${widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`
  return [line(header), sep, ...rows.map(line)].join('\n')
}
