// Graceful drain of an HTTP listener: stop accepting, close idle keep-alive connections (and the ones
// that become idle as their last answer finishes), and after `drainTimeout` cut whatever is left,
// tunnels (WebSockets) included, which have no request boundary to drain at.
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { Duplex } from 'node:stream'

const SWEEP_MS = 250

export async function drain(
  server: Server,
  drainTimeout: number,
  tunnels: Iterable<Duplex> = [],
): Promise<void> {
  const closed = once(server, 'close')
  server.close()
  server.closeIdleConnections()
  const sweep = setInterval(() => server.closeIdleConnections(), SWEEP_MS)
  const deadline = setTimeout(() => {
    server.closeAllConnections()
    for (const socket of tunnels) socket.destroy()
  }, drainTimeout)
  try {
    await closed
  } finally {
    clearInterval(sweep)
    clearTimeout(deadline)
  }
}

/** Closes a listener now, with every connection on it (the admin listener at the end of a drain). */
export function closeNow(server: Server): void {
  server.close()
  server.closeAllConnections()
}

/** SIGTERM/SIGINT call `stop`, SIGHUP calls `reload`; returns the function that removes the handlers. */
export function onSignals(stop: (signal: NodeJS.Signals) => void, reload: () => void): () => void {
  const hup = () => reload()
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('SIGHUP', hup)
  return () => {
    process.off('SIGTERM', stop)
    process.off('SIGINT', stop)
    process.off('SIGHUP', hup)
  }
}
