// `turnout demo --scenario good-canary|bad-canary`: an automated rollout in under a minute. Two sample
// upstreams behind Turnout, its own steady loopback traffic, 2 s intervals, and a line in the terminal
// for every step. good-canary climbs 20 → 40 → 60 → 80 → 100% and succeeds; bad-canary starts failing
// 20% of its requests at the second step and is aborted within two intervals. Ends by itself.
import { Pool } from 'undici'
import type { RolloutStatus } from '../rollout/controller.js'
import { startSampleSetup } from './demo.js'

export const SCENARIOS = ['good-canary', 'bad-canary'] as const
export type Scenario = (typeof SCENARIOS)[number]

export interface ScenarioOptions {
  scenario: Scenario
  listen?: string
  admin?: string
  out: (line: string) => void
  /** Seconds per step (default 2). */
  intervalSeconds?: number
  /** Give up after this long (default 55 s). */
  deadlineMs?: number
}

const FAIL_RATE = 0.2

/** Runs the scenario to its outcome; resolves with the exit code (0 when it ended as designed). */
export async function runRolloutScenario(opts: ScenarioOptions): Promise<number> {
  const out = opts.out
  const interval = opts.intervalSeconds ?? 2
  const { turnout, primary, canary } = await startSampleSetup({
    listen: opts.listen ?? '127.0.0.1:0',
    admin: opts.admin ?? '127.0.0.1:0',
    route: demoRoute(interval),
    logLevel: 'error',
  })
  const controller = turnout.rollouts.get('shop')!
  const steps = controller.steps
  const began = performance.now()
  const clock = () => `${((performance.now() - began) / 1000).toFixed(1).padStart(5)}s`
  const bad = opts.scenario === 'bad-canary'

  out(
    [
      '',
      `Turnout rollout demo (${opts.scenario}): proxy ${turnout.url}  admin ${turnout.adminUrl}`,
      `  route shop: primary ${primary.url}, canary ${canary.url}`,
      `  steps ${steps.join(' → ')}%, judged every ${interval}s on errorRate ≤ 2%, latencyP99 ≤ 500ms, errorRateVsPrimary ≤ 2%`,
      bad
        ? `  this canary starts failing ${FAIL_RATE * 100}% of its requests at the second step: watch it get rolled back`
        : '  this canary is healthy: watch its share climb to 100%',
      `  (in another terminal: npx turnout status --admin ${turnout.adminUrl})`,
      '',
    ].join('\n'),
  )

  const done = new Promise<RolloutStatus>((resolve) => {
    turnout.rollouts.onChange((_route, s) => {
      out(progressLine(clock(), s, steps))
      if (bad && s.step >= 1 && canary.failRate === 0 && s.phase === 'progressing') {
        canary.failRate = FAIL_RATE
        out(`${clock()}  ! the canary now fails ${FAIL_RATE * 100}% of its requests`)
      }
      if (s.phase === 'succeeded' || s.phase === 'aborted') resolve(s)
    })
  })
  const traffic = driveTraffic(turnout.url)
  const deadline = new Promise<null>((resolve) =>
    setTimeout(() => resolve(null), opts.deadlineMs ?? 55_000).unref(),
  )
  let code = 1
  try {
    controller.start('started by the demo')
    const outcome = await Promise.race([done, deadline])
    if (outcome === null)
      out(`${clock()}  the rollout did not finish in time (phase ${controller.phase}); stopping`)
    else {
      out(outcomeText(outcome.phase, traffic.sent))
      code = (outcome.phase === 'succeeded') === !bad ? 0 : 1
    }
  } finally {
    await traffic.stop()
    await turnout.close()
    await Promise.all([primary.close(), canary.close()])
  }
  return code
}

/** The demo's route: 20% steps up to 80%, then 100%, judged on error rate and latency. */
function demoRoute(intervalSeconds: number) {
  return {
    name: 'shop',
    overrides: [{ when: { header: 'x-canary', equals: 'always' }, to: 'canary' as const }],
    rollout: {
      stepWeight: 20,
      maxWeight: 80,
      interval: `${intervalSeconds}s`,
      minRequests: 20,
      failureLimit: 2,
      analysis: [
        { metric: 'errorRate', max: '2%' },
        { metric: 'latencyP99', max: '500ms' },
        { metric: 'errorRateVsPrimary', max: '2%' },
      ],
    },
  }
}

function outcomeText(phase: string, sent: number): string {
  const lines =
    phase === 'succeeded'
      ? [
          `Rollout succeeded: the canary endpoints now serve all traffic of route shop (${sent} requests sent).`,
          'Next, in a real deployment: make them the primary in the config and set split.canary: 0, then reload.',
        ]
      : [
          `Rollout aborted: the canary weight is back to 0% and its users are on the primary (${sent} requests sent).`,
          'Overrides still reach the canary for debugging: curl -H "x-canary: always" the proxy.',
        ]
  return ['', ...lines].join('\n')
}

function progressLine(clock: string, s: RolloutStatus, steps: readonly number[]): string {
  const filled = Math.round(s.weight / 5)
  const bar = `${'█'.repeat(filled)}${'·'.repeat(20 - filled)}`
  const step = `step ${Math.min(s.step + 1, steps.length)}/${steps.length}`
  return `${clock}  ${s.phase.padEnd(11)} ${step}  canary ${String(s.weight).padStart(3)}% ${bar}  ${s.reason}`
}

/** Steady loopback traffic: a few sequential loops on one keep-alive pool, gently paced. */
function driveTraffic(url: string) {
  const workers = 6
  const pool = new Pool(url, { connections: workers })
  let running = true
  const state = { sent: 0 }
  const loop = async () => {
    while (running) {
      try {
        const res = await pool.request({ method: 'GET', path: '/api/items' })
        await res.body.dump()
        state.sent++
      } catch {
        await new Promise((r) => setTimeout(r, 50))
      }
      await new Promise((r) => setTimeout(r, 8))
    }
  }
  const loops = Array.from({ length: workers }, loop)
  return {
    get sent() {
      return state.sent
    },
    async stop() {
      running = false
      await Promise.all(loops)
      await pool.close()
    },
  }
}
