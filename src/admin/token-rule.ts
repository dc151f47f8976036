// The admin listener may only be reachable off-host with a token. The rule is decided on IPs, never
// on how an address is spelled: admin.listen is resolved (every address a name resolves to must be
// loopback) before listening, and the address actually bound is checked after listening and on every
// reload (which does not rebind). The single-process app, the cluster primary and `turnout validate`
// use the same functions.
import { type AddressInfo, isIP } from 'node:net'
import { ConfigError, type ConfigProblem } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { formatAddress, isLoopbackIp, parseHostPort, type Resolver, systemResolver } from '../net/address.js'

/** The decision: a listener on these addresses needs a token unless every one is loopback. */
export function needsToken(addresses: readonly string[]): boolean {
  return addresses.length === 0 || addresses.some((a) => !isLoopbackIp(a))
}

export type AdminListenCheck =
  | { kind: 'ok' }
  | { kind: 'needs-token'; problem: ConfigProblem }
  /** admin.listen's host does not resolve here: undecided (the start fails to listen anyway). */
  | { kind: 'unresolved'; host: string; error: string }

/** Before listening: resolves admin.listen's host and applies the rule to what it resolves to. */
export async function checkAdminListen(
  config: Config,
  file: string,
  resolve: Resolver = systemResolver,
): Promise<AdminListenCheck> {
  if (config.admin.token) return { kind: 'ok' }
  const { host } = parseHostPort(config.admin.listen)
  let addresses: string[]
  try {
    addresses = isIP(host) !== 0 ? [host] : await resolve(host)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    return { kind: 'unresolved', host, error: e.code ?? e.message }
  }
  if (!needsToken(addresses)) return { kind: 'ok' }
  const shown = isIP(host) !== 0 ? '' : ` (${host} resolves to ${addresses.join(', ') || 'nothing'})`
  return {
    kind: 'needs-token',
    problem: {
      file,
      line: 1,
      col: 1,
      path: 'admin.token',
      message: `is required when admin.listen (${config.admin.listen}) is not a loopback address${shown}`,
    },
  }
}

/** checkAdminListen for a start: a listener that would need a token it lacks is a ConfigError. */
export async function assertAdminListen(
  config: Config,
  file: string,
  resolve: Resolver = systemResolver,
): Promise<void> {
  const check = await checkAdminListen(config, file, resolve)
  if (check.kind === 'needs-token') throw new ConfigError([check.problem])
}

/** After listening, and on every reload: the address the admin listener is bound to decides. */
export function assertAdminToken(config: Config, file: string, bound: AddressInfo): void {
  if (config.admin.token || !needsToken([bound.address])) return
  throw new ConfigError([
    {
      file,
      line: 1,
      col: 1,
      path: 'admin.token',
      message: `is required while the admin listener is bound to ${formatAddress(bound)} (not a loopback address)`,
    },
  ])
}
