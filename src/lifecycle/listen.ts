// Binding a listener, the same way in both modes (one process, cluster primary and workers): a bind
// failure is an error naming the listener and the address, and the bound address is logged.
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo, ListenOptions } from 'node:net'
import { formatAddress, parseHostPort } from '../net/address.js'
import type { Logger } from '../telemetry/logger.js'

export interface ListenOptionsPlus {
  /** SO_REUSEPORT, exclusively (cluster workers, where Node supports it). */
  reusePort?: boolean
  logger?: Logger
}

export async function listen(
  server: Server,
  address: string,
  name: string,
  opts: ListenOptionsPlus = {},
): Promise<AddressInfo> {
  const { host, port } = parseHostPort(address)
  if (opts.reusePort) {
    // Typed locally: @types/node 20 predates the option (Node 22.12+/23.1+).
    const options: ListenOptions & { reusePort: boolean } = { port, host, exclusive: true, reusePort: true }
    server.listen(options)
  } else server.listen(port, host)
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => {
      throw new Error(`cannot listen on ${address} for the ${name} listener: ${(err as Error).message}`)
    }),
  ])
  const info = server.address() as AddressInfo
  opts.logger?.info({ listener: name, address: formatAddress(info) }, 'listening')
  return info
}

/** `http://HOST:PORT` a local client can use for a bound address (a wildcard becomes 127.0.0.1). */
export function localUrl(a: AddressInfo): string {
  const host =
    a.address === '0.0.0.0' || a.address === '::'
      ? '127.0.0.1'
      : a.family === 'IPv6'
        ? `[${a.address}]`
        : a.address
  return `http://${host}:${a.port}`
}
