// The rollout's decisions, as pure functions: the state of one route's rollout plus what an
// evaluation learnt (webhook answers, the judged interval) → the next state and the actions to take.
// No I/O and no clock: the controller (controller.ts) calls the webhooks and Prometheus, feeds the
// answers here one event at a time, and applies what comes back (weights, state file, logs, hooks).
import type { AnalysisCheckConfig, WebhookType } from '../config/schema.js'
import { type CheckOutcome, judge, overall } from './analysis.js'
import type { Gate, Phase } from './state-file.js'
import { describeResult, type WebhookResult } from './webhooks.js'
import type { WindowStats } from './window.js'

export type Interval = { primary: WindowStats; canary: WindowStats }

export const ACTIVE: ReadonlySet<Phase> = new Set(['waiting', 'progressing', 'promoting'])

/** What the decisions read of a rollout's state. */
export interface RolloutSnapshot {
  phase: Phase
  step: number
  failures: number
  gate: Gate | null
  preRolloutDone: boolean
  /** Why the last transition happened. */
  reason: string
}

/** What the decisions read of the route's rollout config. */
export interface RolloutRules {
  steps: readonly number[]
  failureLimit: number
  minRequests: number
  analysis: AnalysisCheckConfig[]
  /** Whether the rollout has webhooks of this type. */
  hasHooks(type: WebhookType): boolean
}

/** What an evaluation learnt, one I/O result at a time. */
export type RolloutEvent =
  /** The rollback hooks answered (asked every interval while active). */
  | { kind: 'rollback'; results: readonly WebhookResult[] }
  /** The hooks of the gate a waiting rollout waits on answered: null when all said yes. */
  | { kind: 'gate'; gate: Gate; closed: string | null }
  /** The pre-rollout hooks answered (empty when there are none). */
  | { kind: 'pre-rollout'; results: readonly WebhookResult[] }
  /** An interval finished: its windows, the rollout hooks' answers and the Prometheus results. */
  | {
      kind: 'interval'
      stats: Interval
      hooks: readonly WebhookResult[]
      prometheus: Map<number, number | null>
      /** The `health` check: failing when the canary had no usable endpoint; null when it had. */
      health: CheckOutcome | null
    }
  /** After a passed interval, the hooks of the gate before the next step answered. */
  | { kind: 'next-gate'; gate: Gate; closed: string | null; passed: string }

/** What the controller does, in order, after taking over `state`. */
export type RolloutAction =
  /** Record the judged checks (metrics, status). */
  | { kind: 'analysis'; outcomes: CheckOutcome[] }
  /** Go to step `index` (weight, phase progressing or promoting) and record it. */
  | { kind: 'step'; index: number; reason: string }
  /** Weight 0, phase aborted, post-rollout hooks. */
  | { kind: 'abort'; reason: string }
  /** Phase succeeded, post-rollout hooks. */
  | { kind: 'succeed'; reason: string }
  /** Record the state as it is now (`event: false`: no event webhook). */
  | { kind: 'commit'; reason: string; event: boolean }

export interface Transition {
  state: RolloutSnapshot
  actions: RolloutAction[]
  /** The evaluation stops here (else it goes on with the next question). */
  done: boolean
  /** Ask this gate before the next step, then send a `next-gate` event. */
  askGate?: { gate: Gate; passed: string }
}

const stay = (state: RolloutSnapshot, done: boolean, actions: RolloutAction[] = []): Transition => ({
  state,
  actions,
  done,
})

/** Counts a failure; aborts once failureLimit is reached, else holds the step. */
export function failure(state: RolloutSnapshot, rules: RolloutRules, reason: string): Transition {
  const failures = state.failures + 1
  const limit = rules.failureLimit
  const next = { ...state, failures }
  if (failures >= limit) {
    return stay(next, true, [
      { kind: 'abort', reason: `${reason}; failure ${failures} of ${limit}: failureLimit reached` },
    ])
  }
  return stay(next, true, [
    { kind: 'commit', reason: `${reason}; failure ${failures} of ${limit}, holding the step`, event: true },
  ])
}

function onRollback(state: RolloutSnapshot, results: readonly WebhookResult[]): Transition {
  const yes = results.find((r) => r.ok)
  if (!yes) return stay(state, false)
  return stay(state, true, [{ kind: 'abort', reason: `${describeResult(yes)}: rollback requested` }])
}

function onGate(state: RolloutSnapshot, rules: RolloutRules, gate: Gate, closed: string | null): Transition {
  if (closed !== null) {
    const reason = `waiting: ${closed}`
    return stay(state, true, state.reason === reason ? [] : [{ kind: 'commit', reason, event: false }])
  }
  const opened = { ...state, gate: null }
  const why = `${gate} gate opened`
  if (gate === 'confirm-traffic-increase')
    return stay(opened, true, [{ kind: 'step', index: state.step + 1, reason: why }])
  if (gate === 'confirm-promotion')
    return stay(opened, true, [{ kind: 'step', index: rules.steps.length - 1, reason: why }])
  const preRolloutDone = state.preRolloutDone || !rules.hasHooks('pre-rollout')
  const progressing: RolloutSnapshot = { ...opened, phase: 'progressing', preRolloutDone }
  if (preRolloutDone) return stay(progressing, true, [{ kind: 'step', index: 0, reason: why }])
  const reason = `${why}: running the pre-rollout webhooks`
  return stay({ ...progressing, reason }, false, [{ kind: 'commit', reason, event: true }])
}

function onPreRollout(state: RolloutSnapshot, rules: RolloutRules, results: readonly WebhookResult[]) {
  const bad = results.find((r) => !r.ok)
  if (bad) return failure(state, rules, `${describeResult(bad)} before the first step`)
  return stay({ ...state, preRolloutDone: true }, true, [
    { kind: 'step', index: 0, reason: 'rollout started' },
  ])
}

function describeOutcome(o: CheckOutcome): string {
  const fmt = (n: number | null) => (n === null ? '?' : String(Math.round(n * 1000) / 1000))
  const unit = o.check === 'latencyP99' ? 'ms' : o.check.startsWith('errorRate') ? '%' : ''
  if (o.check === 'health')
    return `health: the canary had no usable endpoint (all ejected or down; ${fmt(o.value)} requests found none)`
  if (o.check === 'latencyVsPrimary') return `${o.check} p=${fmt(o.value)} (fails below ${fmt(o.threshold)})`
  return `${o.check} ${fmt(o.value)}${unit} (max ${fmt(o.threshold)}${unit})`
}

function onInterval(
  state: RolloutSnapshot,
  rules: RolloutRules,
  e: Extract<RolloutEvent, { kind: 'interval' }>,
): Transition {
  const { stats } = e
  const weight = rules.steps[state.step]!
  const outcomes = judge(rules.analysis, stats, { minRequests: rules.minRequests, weight }, e.prometheus)
  if (e.health !== null) outcomes.push(e.health)
  const recorded: RolloutAction = { kind: 'analysis', outcomes }
  const badHook = e.hooks.find((r) => !r.ok)
  // Too few canary requests is never a success, even for a rollout without checks; a canary with
  // no usable endpoint fails whatever its traffic (failover moved that traffic away).
  const enough = stats.canary.requests >= rules.minRequests
  const unhealthy = e.health?.result === 'fail'
  const verdict = badHook || unhealthy ? 'fail' : enough ? overall(outcomes) : 'inconclusive'
  const at = `at ${weight}% (${stats.canary.requests} canary requests)`
  if (verdict === 'fail') {
    const failed = outcomes.filter((o) => o.result === 'fail').map(describeOutcome)
    const t = failure(
      state,
      rules,
      badHook ? `${describeResult(badHook)} ${at}` : `analysis failed ${at}: ${failed.join(', ')}`,
    )
    return { ...t, actions: [recorded, ...t.actions] }
  }
  if (verdict === 'inconclusive') {
    const why = !enough
      ? `fewer than minRequests (${rules.minRequests})`
      : outcomes
          .filter((o) => o.result === 'inconclusive')
          .map((o) => `${o.check} has no data`)
          .join(', ')
    const reason = `analysis inconclusive ${at}: ${why}; holding the step`
    return stay(state, true, [recorded, { kind: 'commit', reason, event: false }])
  }
  const passed = `analysis passed ${at}${outcomes.length ? `: ${outcomes.map(describeOutcome).join(', ')}` : ''}`
  if (state.step === rules.steps.length - 1)
    return stay(state, true, [recorded, { kind: 'succeed', reason: passed }])
  const gate: Gate = rules.steps[state.step + 1]! >= 100 ? 'confirm-promotion' : 'confirm-traffic-increase'
  if (rules.hasHooks(gate)) return { ...stay(state, false, [recorded]), askGate: { gate, passed } }
  return stay(state, true, [recorded, { kind: 'step', index: state.step + 1, reason: passed }])
}

function onNextGate(state: RolloutSnapshot, e: Extract<RolloutEvent, { kind: 'next-gate' }>): Transition {
  if (e.closed === null) return stay(state, true, [{ kind: 'step', index: state.step + 1, reason: e.passed }])
  const reason = `${e.passed}; waiting: ${e.closed}`
  return stay({ ...state, phase: 'waiting', gate: e.gate }, true, [{ kind: 'commit', reason, event: true }])
}

/** The next state and actions for one event of an evaluation. */
export function transition(state: RolloutSnapshot, rules: RolloutRules, event: RolloutEvent): Transition {
  switch (event.kind) {
    case 'rollback':
      return onRollback(state, event.results)
    case 'gate':
      return onGate(state, rules, event.gate, event.closed)
    case 'pre-rollout':
      return onPreRollout(state, rules, event.results)
    case 'interval':
      return onInterval(state, rules, event)
    case 'next-gate':
      return onNextGate(state, event)
  }
}

/** Which question an evaluation asks first (null: nothing to do now). */
export function firstQuestion(
  state: RolloutSnapshot,
  rules: RolloutRules,
  stats: Interval | null,
): 'rollback' | 'gate' | 'pre-rollout' | 'interval' | null {
  if (stats !== null && ACTIVE.has(state.phase) && rules.hasHooks('rollback')) return 'rollback'
  return nextQuestion(state, stats)
}

/** The question after the rollback check (or after a gate that opened without finishing). */
export function nextQuestion(
  state: RolloutSnapshot,
  stats: Interval | null,
): 'gate' | 'pre-rollout' | 'interval' | null {
  if (state.phase === 'waiting') return 'gate'
  if (state.phase === 'progressing' && !state.preRolloutDone) return 'pre-rollout'
  if (stats === null || (state.phase !== 'progressing' && state.phase !== 'promoting')) return null
  return 'interval'
}
