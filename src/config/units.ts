// Pure parsers for the human units used in the config: durations ("250ms", "2s", "1m", "30d"),
// sizes ("64KiB", "10MiB") and percentages ("5%", "0.5%"). Each returns null for anything it
// does not understand, so the schema can report the field instead of throwing.

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Milliseconds for a duration string, or null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = DURATION.exec(text.trim())
  if (!m) return null
  return Math.round(Number(m[1]) * DURATION_MS[m[2]!]!)
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/
const SIZE_BYTES: Record<string, number> = {
  B: 1,
  KB: 1000,
  KiB: 1024,
  MB: 1000 ** 2,
  MiB: 1024 ** 2,
  GB: 1000 ** 3,
  GiB: 1024 ** 3,
}

/** Bytes for a size string ("64KiB", "10MiB", "512"), or null when it is not one. */
export function parseSize(text: string): number | null {
  const m = SIZE.exec(text.trim())
  if (!m) return null
  return Math.round(Number(m[1]) * SIZE_BYTES[m[2] ?? 'B']!)
}

const PERCENT = /^(\d+(?:\.\d+)?)\s*%$/

/** A percentage as a number from 0 to 100 ("5%" → 5), or null. */
export function parsePercent(text: string): number | null {
  const m = PERCENT.exec(text.trim())
  if (!m) return null
  const n = Number(m[1])
  return n >= 0 && n <= 100 ? n : null
}
