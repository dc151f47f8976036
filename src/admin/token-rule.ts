// The admin listener may only be reachable off-host with a token: checked at start (against the
// configured address) and on every reload (against the address it is bound to, which a reload does
// not change), by the single-process app and the cluster primary alike.
import type { AddressInfo } from 'node:net'
import { ConfigError } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { formatAddress, isLoopback, parseHostPort } from '../proxy/address.js'

export function assertAdminToken(config: Config, file: string, bound?: AddressInfo): void {
  if (config.admin.token) return
  const host = bound ? bound.address : parseHostPort(config.admin.listen).host
  if (isLoopback(host)) return
  throw new ConfigError([
    {
      file,
      line: 1,
      col: 1,
      path: 'admin.token',
      message: bound
        ? `is required while the admin listener is bound to ${formatAddress(bound)} (not a loopback address)`
        : `is required when admin.listen (${config.admin.listen}) is not a loopback address`,
    },
  ])
}
