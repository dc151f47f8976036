// `turnout demo`: two sample upstreams and the proxy in front of them, 10% to the canary and the
// override `x-canary: always` → canary, then prints what to try.

import { startTurnout, type Turnout } from '../app.js'
import { parseConfig } from '../config/load.js'
import type { Config } from '../config/schema.js'
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

export function demoConfig(listen: string, admin: string, primary: string, canary: string): Config {
  return parseConfig(
    JSON.stringify({
      listen,
      admin: { listen: admin },
      accessLog: { enabled: false },
      routes: [
        {
          name: 'demo',
          primary: { endpoints: [primary] },
          canary: { endpoints: [canary] },
          split: { canary: 10 },
          overrides: [
            { when: { header: 'x-canary', equals: 'always' }, to: 'canary' },
            { when: { header: 'x-canary', equals: 'never' }, to: 'primary' },
          ],
        },
      ],
    }),
    '<demo>',
  )
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const primary = await startSampleUpstream({ name: 'primary' })
  const canary = await startSampleUpstream({ name: 'canary' })
  let turnout: Turnout
  try {
    turnout = await startTurnout({
      config: demoConfig(opts.listen, opts.admin, primary.url, canary.url),
      logger: createLogger(undefined, process.env.TURNOUT_LOG_LEVEL ?? 'warn'),
    })
  } catch (err) {
    await Promise.all([primary.close(), canary.close()])
    throw err
  }
  const url = turnout.url
  opts.out(
    [
      '',
      `Turnout demo: proxy ${url}  admin ${turnout.adminUrl}`,
      `  primary upstream ${primary.url}   canary upstream ${canary.url}   split: 10% canary`,
      '',
      'Try:',
      `  curl -i ${url}/hello                         # x-turnout-variant says who answered (mostly primary)`,
      `  curl -i -H 'x-canary: always' ${url}/hello   # override: always the canary`,
      `  curl ${url}/api/items`,
      `  curl ${turnout.adminUrl}/healthz`,
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
