// Config reload, the same in both modes: one reload at a time (a file change during a reload is read
// after it), the file re-read and validated, then applied; a rejected file changes nothing and is
// counted and logged with every problem in the `validate` format.
import { ConfigError, formatProblem, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../telemetry/logger.js'

export interface ReloaderOptions {
  file: string
  env?: NodeJS.ProcessEnv
  logger: Logger
  /** Checks and applies a validated config; throws to reject it (nothing may have changed then). */
  apply(next: Config): void
  /** Counts the attempt (turnout_config_reloads_total). */
  counted(result: 'success' | 'error'): void
  /** Logs `config reloaded` (default true); the cluster primary leaves that to the workers. */
  announce?: boolean
}

export type Reload = () => Promise<void>

export function createReloader(opts: ReloaderOptions): Reload {
  let queue: Promise<void> = Promise.resolve()
  const run = async () => {
    try {
      const next = await loadConfigFile(opts.file, opts.env)
      opts.apply(next)
      opts.counted('success')
      if (opts.announce !== false)
        opts.logger.info({ file: opts.file, routes: next.routes.length }, 'config reloaded')
    } catch (err) {
      opts.counted('error')
      if (err instanceof ConfigError) {
        for (const p of err.problems)
          opts.logger.error({ problem: formatProblem(p) }, 'config reload rejected')
      } else opts.logger.error({ err: (err as Error).message }, 'config reload failed')
      throw err
    }
  }
  return () => {
    const result = queue.then(run)
    queue = result.catch(() => {})
    return result
  }
}

/** Logs the listener addresses a reload cannot change (they take effect at restart). */
export function warnRestartOnly(current: Config, next: Config, logger: Logger): void {
  const pairs = [
    ['listen', current.listen, next.listen],
    ['admin.listen', current.admin.listen, next.admin.listen],
  ] as const
  for (const [key, was, now] of pairs)
    if (was !== now) logger.warn({ [key]: now, current: was }, `${key} changes take effect at restart`)
}
