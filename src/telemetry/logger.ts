// pino, writing JSON lines to stdout through an asynchronous destination so logging never blocks
// the event loop on a slow terminal or pipe. Flushed at shutdown.
import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

export function createLogger(
  destination?: DestinationStream,
  level = process.env.TURNOUT_LOG_LEVEL ?? 'info',
): Logger {
  const dest = destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 })
  return pino({ base: { pid: process.pid }, level }, dest)
}

/** Flushes an asynchronous destination; a no-op for synchronous ones. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush((_err?: Error) => resolve())
    } catch {
      resolve()
    }
  })
}
