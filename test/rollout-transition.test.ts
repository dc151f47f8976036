// The rollout's decisions without I/O: state + one evaluation event → next state + actions
// (src/rollout/transition.ts). The controller tests drive the same decisions through real webhooks,
// Prometheus and traffic; these pin each branch directly.
import t from 'tap'
import type { AnalysisCheckConfig, WebhookType } from '../src/config/schema.js'
import {
  firstQuestion,
  type Interval,
  nextQuestion,
  type RolloutRules,
  type RolloutSnapshot,
  transition,
} from '../src/rollout/transition.js'
import type { WebhookResult } from '../src/rollout/webhooks.js'
import { VariantWindow } from '../src/rollout/window.js'

function interval(canaryRequests: number, canaryErrors: number): Interval {
  const window = (n: number, errors: number) => {
    const w = new VariantWindow()
    for (let i = 0; i < n; i++) w.record(i < errors ? 500 : 200, 10, false)
    return w.drain()
  }
  return { primary: window(400, 0), canary: window(canaryRequests, canaryErrors) }
}

const STATE: RolloutSnapshot = {
  phase: 'progressing',
  step: 0,
  failures: 0,
  gate: null,
  preRolloutDone: true,
  reason: 'rollout started',
}

function rules(hooks: WebhookType[] = [], extra: Partial<RolloutRules> = {}): RolloutRules {
  return {
    steps: [10, 50, 100],
    failureLimit: 2,
    minRequests: 50,
    analysis: [{ metric: 'errorRate', max: 5 }] as AnalysisCheckConfig[],
    hasHooks: (type) => hooks.includes(type),
    ...extra,
  }
}

const hook = (type: WebhookType, ok: boolean, status: number | null = ok ? 200 : 503): WebhookResult => ({
  name: `${type}-hook`,
  type,
  ok,
  status,
  error: status === null ? 'connection refused' : null,
})

const NO_PROMETHEUS = new Map<number, number | null>()

t.test('rollback: any yes aborts; all no goes on unchanged', async (t) => {
  const yes = transition(STATE, rules(['rollback']), {
    kind: 'rollback',
    results: [hook('rollback', false), hook('rollback', true)],
  })
  t.equal(yes.done, true)
  t.same(yes.actions, [
    { kind: 'abort', reason: 'rollback webhook rollback-hook answered 200: rollback requested' },
  ])
  const no = transition(STATE, rules(['rollback']), { kind: 'rollback', results: [hook('rollback', false)] })
  t.same(no, { state: STATE, actions: [], done: false })
})

t.test('a waiting gate: closed holds (recorded once), opened moves on', async (t) => {
  const waiting: RolloutSnapshot = { ...STATE, phase: 'waiting', gate: 'confirm-traffic-increase' }
  const closed = transition(waiting, rules(), {
    kind: 'gate',
    gate: 'confirm-traffic-increase',
    closed: 'no',
  })
  t.same(closed.actions, [{ kind: 'commit', reason: 'waiting: no', event: false }])
  t.equal(closed.done, true)
  const again = transition({ ...waiting, reason: 'waiting: no' }, rules(), {
    kind: 'gate',
    gate: 'confirm-traffic-increase',
    closed: 'no',
  })
  t.same(again.actions, [], 'the same reason is not recorded twice')

  const more = transition(waiting, rules(), { kind: 'gate', gate: 'confirm-traffic-increase', closed: null })
  t.equal(more.state.gate, null)
  t.same(more.actions, [{ kind: 'step', index: 1, reason: 'confirm-traffic-increase gate opened' }])
  const promo = transition(waiting, rules(), { kind: 'gate', gate: 'confirm-promotion', closed: null })
  t.same(promo.actions, [{ kind: 'step', index: 2, reason: 'confirm-promotion gate opened' }])
})

t.test('confirm-rollout opens: pre-rollout hooks next, or straight to the first step', async (t) => {
  const waiting: RolloutSnapshot = {
    ...STATE,
    phase: 'waiting',
    gate: 'confirm-rollout',
    preRolloutDone: false,
  }
  const withHooks = transition(waiting, rules(['pre-rollout']), {
    kind: 'gate',
    gate: 'confirm-rollout',
    closed: null,
  })
  t.equal(withHooks.done, false, 'the evaluation goes on to the pre-rollout hooks')
  t.same([withHooks.state.phase, withHooks.state.preRolloutDone], ['progressing', false])
  t.same(withHooks.actions, [
    { kind: 'commit', reason: 'confirm-rollout gate opened: running the pre-rollout webhooks', event: true },
  ])
  t.equal(nextQuestion(withHooks.state, null), 'pre-rollout')

  const without = transition(waiting, rules(), { kind: 'gate', gate: 'confirm-rollout', closed: null })
  t.equal(without.done, true)
  t.same([without.state.phase, without.state.preRolloutDone], ['progressing', true])
  t.same(without.actions, [{ kind: 'step', index: 0, reason: 'confirm-rollout gate opened' }])
})

t.test('pre-rollout: a no is a counted failure, the limit aborts; all yes starts', async (t) => {
  const before: RolloutSnapshot = { ...STATE, preRolloutDone: false }
  const ok = transition(before, rules(['pre-rollout']), {
    kind: 'pre-rollout',
    results: [hook('pre-rollout', true)],
  })
  t.equal(ok.state.preRolloutDone, true)
  t.same(ok.actions, [{ kind: 'step', index: 0, reason: 'rollout started' }])
  const bad = { kind: 'pre-rollout' as const, results: [hook('pre-rollout', false, null)] }
  const first = transition(before, rules(['pre-rollout']), bad)
  t.equal(first.state.failures, 1)
  t.same(first.actions, [
    {
      kind: 'commit',
      reason:
        'pre-rollout webhook pre-rollout-hook failed: connection refused before the first step; failure 1 of 2, holding the step',
      event: true,
    },
  ])
  const second = transition(first.state, rules(['pre-rollout']), bad)
  t.equal(second.state.failures, 2)
  t.equal(second.actions[0]!.kind, 'abort')
  t.match((second.actions[0] as { reason: string }).reason, /failure 2 of 2: failureLimit reached$/)
})

t.test('interval: pass steps on, or asks the next gate, or succeeds at the last step', async (t) => {
  const e = {
    kind: 'interval' as const,
    stats: interval(100, 1),
    hooks: [],
    prometheus: NO_PROMETHEUS,
    health: null,
  }
  const pass = transition(STATE, rules(), e)
  t.equal(pass.actions[0]!.kind, 'analysis')
  t.same(pass.actions[1], {
    kind: 'step',
    index: 1,
    reason: 'analysis passed at 10% (100 canary requests): errorRate 1% (max 5%)',
  })
  const gated = transition(STATE, rules(['confirm-traffic-increase']), e)
  t.equal(gated.done, false)
  t.same(gated.askGate, {
    gate: 'confirm-traffic-increase',
    passed: 'analysis passed at 10% (100 canary requests): errorRate 1% (max 5%)',
  })
  const before100 = transition({ ...STATE, step: 1 }, rules(['confirm-promotion']), e)
  t.equal(before100.askGate?.gate, 'confirm-promotion', 'the step to 100% asks confirm-promotion')
  const last = transition({ ...STATE, step: 2, phase: 'promoting' }, rules(), e)
  t.equal(last.actions[1]!.kind, 'succeed')
})

t.test('interval: fail counts, inconclusive holds, a failing rollout hook fails', async (t) => {
  const fail = transition(STATE, rules(), {
    kind: 'interval',
    stats: interval(100, 10),
    hooks: [],
    prometheus: NO_PROMETHEUS,
    health: null,
  })
  t.equal(fail.state.failures, 1)
  t.match(
    (fail.actions[1] as { reason: string }).reason,
    /^analysis failed at 10% \(100 canary requests\): errorRate 10%/,
  )
  const few = transition(STATE, rules(), {
    kind: 'interval',
    stats: interval(10, 0),
    hooks: [],
    prometheus: NO_PROMETHEUS,
    health: null,
  })
  t.same(few.state, STATE, 'nothing changes')
  t.same(few.actions[1], {
    kind: 'commit',
    reason:
      'analysis inconclusive at 10% (10 canary requests): fewer than minRequests (50); holding the step',
    event: false,
  })
  const noChecks = transition(STATE, rules([], { analysis: [], minRequests: 0 }), {
    kind: 'interval',
    stats: interval(10, 0),
    hooks: [hook('rollout', false)],
    prometheus: NO_PROMETHEUS,
    health: null,
  })
  t.equal(noChecks.state.failures, 1)
  t.match(
    (noChecks.actions[1] as { reason: string }).reason,
    /^rollout webhook rollout-hook answered 503 at 10%/,
  )
})

t.test('the gate before the next step: closed waits on it, open steps on', async (t) => {
  const passed = 'analysis passed at 10%'
  const closed = transition(STATE, rules(), {
    kind: 'next-gate',
    gate: 'confirm-traffic-increase',
    closed: 'no',
    passed,
  })
  t.same([closed.state.phase, closed.state.gate], ['waiting', 'confirm-traffic-increase'])
  t.same(closed.actions, [{ kind: 'commit', reason: `${passed}; waiting: no`, event: true }])
  const open = transition(STATE, rules(), {
    kind: 'next-gate',
    gate: 'confirm-traffic-increase',
    closed: null,
    passed,
  })
  t.same(open.actions, [{ kind: 'step', index: 1, reason: passed }])
})

t.test('which question an evaluation asks', async (t) => {
  const stats = interval(100, 0)
  t.equal(firstQuestion(STATE, rules(['rollback']), stats), 'rollback')
  t.equal(
    firstQuestion(STATE, rules(['rollback']), null),
    null,
    'right after a command (no finished interval): no rollback check, no judging',
  )
  t.equal(firstQuestion(STATE, rules(), stats), 'interval')
  t.equal(firstQuestion({ ...STATE, phase: 'paused' }, rules(['rollback']), stats), null)
  t.equal(firstQuestion({ ...STATE, phase: 'waiting' }, rules(), null), 'gate')
  t.equal(firstQuestion({ ...STATE, preRolloutDone: false }, rules(), null), 'pre-rollout')
  t.equal(nextQuestion({ ...STATE, phase: 'succeeded' }, stats), null)
})

t.test(
  'interval: a canary with no usable endpoint fails the health check whatever its traffic',
  async (t) => {
    const health = { check: 'health', result: 'fail', value: 12, threshold: 0 } as const
    const crashed = transition(STATE, rules(), {
      kind: 'interval',
      stats: interval(3, 0),
      hooks: [],
      prometheus: NO_PROMETHEUS,
      health,
    })
    t.equal(crashed.state.failures, 1, 'counted against failureLimit although below minRequests')
    const outcomes = (crashed.actions[0] as { outcomes: Array<{ check: string }> }).outcomes
    t.same(outcomes.at(-1), health, 'recorded after the configured checks')
    t.match((crashed.actions[1] as { reason: string }).reason, /health: the canary had no usable endpoint/)
  },
)
