// pino, writing JSON lines to stdout through an asynchronous destination so logging never blocks
// the event loop on a slow terminal or pipe. Flushed at shutdown (and by pino on process exit).
import cluster from 'node:cluster'
import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

/**
 * Lines are written in batches: once BATCH_BYTES are waiting, or every FLUSH_INTERVAL_MS (so a line
 * reaches stdout at most that late; when idle, sonic-boom's timer issues an empty write). Each write is
 * a round trip through libuv's thread pool: with one write per handful of lines (sonic-boom's
 * default, minLength 0) Turnout spent ~10% more CPU per request with the access log on (bench
 * small-get, proxy pinned to one core: 52 vs 48 µs). No single write exceeds MAX_WRITE_BYTES, as
 * before (sonic-boom's default); like any write over 4 KiB (PIPE_BUF), one to a pipe shared by
 * several processes is not atomic.
 */
const BATCH_BYTES = 12 * 1024
/**
 * Cluster workers share the primary's stdout pipe: only writes up to PIPE_BUF (4 KiB) are atomic
 * there, so a worker writes each line on its own (lines stay whole instead of interleaving).
 */
const WORKER_BATCH_BYTES = 0
const MAX_WRITE_BYTES = 16 * 1024
const FLUSH_INTERVAL_MS = 100

/**
 * sonic-boom in `contentMode: 'buffer'` takes Buffers and keeps them as a list; its string mode
 * re-measures the whole pending string on every write, which makes batching quadratic. Its type
 * declarations only describe string mode.
 */
type BufferSonicBoom = Omit<ReturnType<typeof pino.destination>, 'write'> & { write(chunk: Buffer): boolean }

/** What pino calls on its destination: write per line, flush for `logger.flush`, flushSync on exit. */
interface FlushableDestination extends DestinationStream {
  flush(cb: (err?: Error) => void): void
  flushSync(): void
}

/** stdout, asynchronous and batched. */
function stdoutDestination(): FlushableDestination {
  const sonic = pino.destination({
    dest: 1,
    sync: false,
    contentMode: 'buffer',
    minLength: cluster.isWorker ? WORKER_BATCH_BYTES : BATCH_BYTES,
    maxWrite: MAX_WRITE_BYTES,
    periodicFlush: FLUSH_INTERVAL_MS,
  }) as unknown as BufferSonicBoom
  return {
    // `sonic.write` is looked up on every call: pino swaps it for a no-op after EPIPE.
    write: (line: string) => sonic.write(Buffer.from(line)),
    // sonic-boom's flush(cb) calls back while up to minLength bytes are still waiting; so wait until
    // it has no write in flight ('drain'), then write whatever is left synchronously.
    flush(cb: (err?: Error) => void) {
      const onDrain = () => {
        sonic.off('error', onError)
        try {
          sonic.flushSync()
        } catch (err) {
          cb(err as Error)
          return
        }
        cb()
      }
      const onError = (err: Error) => {
        sonic.off('drain', onDrain)
        cb(err)
      }
      sonic.once('drain', onDrain)
      sonic.once('error', onError)
      sonic.flush()
    },
    flushSync: () => sonic.flushSync(),
  }
}

export function createLogger(
  destination?: DestinationStream,
  level = process.env.TURNOUT_LOG_LEVEL ?? 'info',
): Logger {
  return pino({ base: { pid: process.pid }, level }, destination ?? stdoutDestination())
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
