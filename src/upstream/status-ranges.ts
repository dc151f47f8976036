// Status lists for health checks and retries, pure: "200-399", "200,204", 200, or a list of those →
// inclusive [low, high] ranges. null for anything that is not one (the schema reports the field).

export type StatusRange = readonly [number, number]

const ITEM = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/

function valid(n: number): boolean {
  return Number.isInteger(n) && n >= 100 && n <= 599
}

/** Ranges for a status list, or null when any part is not a status from 100 to 599 or a low-high range. */
export function parseStatusRanges(
  spec: string | number | ReadonlyArray<string | number>,
): StatusRange[] | null {
  const items = Array.isArray(spec) ? spec : [spec]
  const out: StatusRange[] = []
  for (const item of items as ReadonlyArray<string | number>) {
    if (typeof item === 'number') {
      if (!valid(item)) return null
      out.push([item, item])
      continue
    }
    const parts = item.split(',')
    for (const part of parts) {
      const m = ITEM.exec(part)
      if (!m) return null
      const low = Number(m[1])
      const high = m[2] !== undefined ? Number(m[2]) : low
      if (!valid(low) || !valid(high) || low > high) return null
      out.push([low, high])
    }
  }
  return out.length > 0 ? out : null
}

export function statusInRanges(status: number, ranges: readonly StatusRange[]): boolean {
  for (const [low, high] of ranges) if (status >= low && status <= high) return true
  return false
}
