// How many workers `workers: N | auto` means, and whether this Node can give each worker its own
// SO_REUSEPORT socket. Pure; imported by the CLI without loading any cluster code.
import { availableParallelism } from 'node:os'

export const MAX_WORKERS = 256

/** `auto` is one worker per CPU the process may use (os.availableParallelism()). */
export function workerCount(setting: number | 'auto', cpus: number = availableParallelism()): number {
  if (setting === 'auto') return Math.max(1, Math.min(MAX_WORKERS, cpus))
  return setting
}

/** `net` takes `reusePort` from Node 22.12 (22.x line) and 23.1, and only Linux load-balances it. */
export function supportsReusePort(
  version: string = process.version,
  platform: string = process.platform,
): boolean {
  if (platform !== 'linux') return false
  const m = /^v?(\d+)\.(\d+)\./.exec(version)
  if (m === null) return false
  const major = Number(m[1])
  const minor = Number(m[2])
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}
