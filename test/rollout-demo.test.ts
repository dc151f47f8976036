// `turnout demo --scenario ...`, with shorter intervals than the real 2 s.
import t from 'tap'
import { runRolloutScenario } from '../src/cli/demo-rollout.js'
import { main } from '../src/cli/main.js'

for (const scenario of ['good-canary', 'bad-canary'] as const) {
  t.test(scenario, async (t) => {
    const lines: string[] = []
    const code = await runRolloutScenario({ scenario, out: (l) => lines.push(l), intervalSeconds: 0.5 })
    const text = lines.join('\n')
    t.equal(code, 0, 'ends by itself with exit 0')
    const weights = [...text.matchAll(/canary +(\d+)% [█·]+/g)]
      .map((m) => Number(m[1]))
      .filter((w, i, all) => i === 0 || all[i - 1] !== w)
    if (scenario === 'good-canary') {
      t.same(weights, [20, 40, 60, 80, 100], 'the weight climbs to 100%')
      t.match(text, /Rollout succeeded: the canary endpoints now serve all traffic/)
    } else {
      t.same(weights, [20, 40, 0], 'fails at the second step and is aborted')
      t.match(text, /failure 1 of 2, holding the step/)
      t.match(text, /the canary now fails 20% of its requests/)
      t.match(text, /failure 2 of 2: failureLimit reached/)
      t.match(text, /Rollout aborted/)
    }
  })
}

t.test('an unknown scenario is bad usage', async (t) => {
  const err: string[] = []
  const code = await main(['demo', '--scenario', 'ugly-canary'], {
    out: () => {},
    err: (s) => err.push(s),
    env: {},
  })
  t.equal(code, 2)
  t.match(err.join(''), /good-canary or bad-canary/)
})
