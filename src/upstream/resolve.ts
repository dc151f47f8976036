// Endpoints whose host name does not resolve. Turnout still starts (undici resolves per connection,
// so requests keep trying and succeed once the name resolves; until then they get 502 and count as
// turnout_upstream_errors_total{kind="dns"}), but says so at start, on reload and in `validate`.
import { isIP } from 'node:net'
import type { Config, Variant } from '../config/schema.js'
import { type Resolver, systemResolver } from '../net/address.js'
import type { Logger } from '../telemetry/logger.js'

export interface UnresolvedEndpoint {
  /** routes[0].primary.endpoints[1] */
  path: string
  route: string
  variant: Variant
  endpoint: string
  host: string
  /** getaddrinfo's code (ENOTFOUND, EAI_AGAIN...) or the error message. */
  error: string
}

export async function unresolvedEndpoints(
  config: Config,
  resolve: Resolver = systemResolver,
): Promise<UnresolvedEndpoint[]> {
  const uses: Array<Omit<UnresolvedEndpoint, 'error'>> = []
  config.routes.forEach((route, i) => {
    for (const variant of ['primary', 'canary'] as const) {
      route[variant]?.endpoints.forEach((endpoint, j) => {
        const host = new URL(endpoint).hostname.replace(/^\[(.*)\]$/, '$1')
        uses.push({
          path: `routes[${i}].${variant}.endpoints[${j}]`,
          route: route.name,
          variant,
          endpoint,
          host,
        })
      })
    }
  })
  // One lookup per host name, all at once.
  const failures = new Map<string, Promise<string | null>>()
  for (const { host } of uses) {
    if (failures.has(host) || isIP(host) !== 0) continue
    failures.set(
      host,
      resolve(host).then(
        () => null,
        (err: NodeJS.ErrnoException) => err.code ?? err.message,
      ),
    )
  }
  const out: UnresolvedEndpoint[] = []
  for (const use of uses) {
    const error = await failures.get(use.host)
    if (error !== undefined && error !== null) out.push({ ...use, error })
  }
  return out
}

export function describeUnresolved(u: UnresolvedEndpoint): string {
  return `${u.path}: host ${u.host} of ${u.endpoint} (route ${u.route}, ${u.variant}) does not resolve (${u.error}); requests to it get 502 until it does`
}

/** One warn line per endpoint that does not resolve now; never throws. */
export async function warnUnresolved(config: Config, logger: Logger): Promise<void> {
  try {
    for (const u of await unresolvedEndpoints(config)) {
      logger.warn(
        { route: u.route, variant: u.variant, endpoint: u.endpoint, host: u.host, err: u.error },
        'upstream host does not resolve: requests to it get 502 until it does',
      )
    }
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not check that the upstream hosts resolve')
  }
}
