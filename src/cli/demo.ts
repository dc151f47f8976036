// `turnout demo`: two sample upstreams and the proxy in front of them, 10% to the canary and the
// override `x-canary: always` → canary, then prints what to try.

import { startTurnout, type Turnout } from '../app.js'
import { parseConfig } from '../config/load.js'
import { type SampleUpstream, startSampleUpstream } from '../demo/upstreams.js'
import { createLogger } from '../telemetry/logger.js'

export interface DemoOptions {
  listen: string
  admin: string
  out: (line: string) => void
}

export interface Demo {
  turnout: Turnout
  primary: SampleUpstream
  canary: SampleUpstream
  close(): Promise<void>
}

export interface SampleSetup {
  listen: string
  admin: string
  /** The one route, from the primary to the canary sample upstream: its name and the rest of its config. */
  route: { name: string } & Record<string, unknown>
  /** The log level when TURNOUT_LOG_LEVEL is not set. */
  logLevel: string
}

/**
 * The two sample upstreams (primary, canary) and Turnout in front of them with `setup.route`, no access
 * log; the upstreams are closed again when Turnout fails to start. Shared by both demos.
 */
export async function startSampleSetup(
  setup: SampleSetup,
): Promise<{ turnout: Turnout; primary: SampleUpstream; canary: SampleUpstream }> {
  const { name, ...route } = setup.route
  const primary = await startSampleUpstream({ name: 'primary' })
  const canary = await startSampleUpstream({ name: 'canary' })
  try {
    const turnout = await startTurnout({
      config: parseConfig(
        JSON.stringify({
          listen: setup.listen,
          admin: { listen: setup.admin },
          accessLog: { enabled: false },
          routes: [
            { name, primary: { endpoints: [primary.url] }, canary: { endpoints: [canary.url] }, ...route },
          ],
        }),
        '<demo>',
      ),
      logger: createLogger(undefined, process.env.TURNOUT_LOG_LEVEL ?? setup.logLevel),
    })
    return { turnout, primary, canary }
  } catch (err) {
    await Promise.all([primary.close(), canary.close()])
    throw err
  }
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const { turnout, primary, canary } = await startSampleSetup({
    listen: opts.listen,
    admin: opts.admin,
    route: {
      name: 'demo',
      split: { canary: 10 },
      overrides: [
        { when: { header: 'x-canary', equals: 'always' }, to: 'canary' },
        { when: { header: 'x-canary', equals: 'never' }, to: 'primary' },
      ],
    },
    logLevel: 'warn',
  })
  const url = turnout.url
  const admin = turnout.adminUrl
  opts.out(
    [
      '',
      `Turnout demo: proxy ${url}  admin ${turnout.adminUrl}`,
      `  primary upstream ${primary.url}   canary upstream ${canary.url}   split: 10% canary`,
      '',
      'Try:',
      `  curl -i ${url}/hello                        # x-turnout-variant: who answered (mostly primary)`,
      `  curl -i -H 'x-canary: always' ${url}/hello  # override: always the canary`,
      `  curl ${admin}/metrics                         # per-variant golden signals`,
      `  npx turnout status --admin ${admin}           # routes, weights, rollouts`,
      `  npx turnout set-weight demo 50 --admin ${admin}`,
      `  npx autocannon ${url}/`,
      '',
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  )
  return {
    turnout,
    primary,
    canary,
    async close() {
      await turnout.close()
      await Promise.all([primary.close(), canary.close()])
    },
  }
}
