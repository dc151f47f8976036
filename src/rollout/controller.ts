// The rollout controller: one state machine per route with a `rollout:` block, driving that route's
// live canary weight (the route's WeightCell in the current table, and nothing else).
//
//   idle ─start─▶ [waiting: confirm-rollout] ─▶ progressing (step 0) ─pass─▶ [waiting] ─▶ next step …
//   … ─pass─▶ [waiting: confirm-promotion] ─▶ promoting (100%) ─pass─▶ succeeded
//   any ─abort / failureLimit / rollback hook─▶ aborted (weight 0)      progressing ⇄ paused
//
// Each step holds for `interval`; then the interval's windows are judged (analysis.ts). Pass advances,
// fail counts toward failureLimit (cumulative), inconclusive holds. Timers are unref'd; an evaluation
// started before a manual command is discarded (a generation counter), so commands always win.
import type { RolloutConfig, RouteConfig, WebhookType } from '../config/schema.js'
import type { Observer } from '../core/pipeline.js'
import type { TableHolder } from '../routing/holder.js'
import type { RouteTable } from '../routing/table.js'
import type { Logger } from '../telemetry/logger.js'
import { type CheckOutcome, healthOutcome } from './analysis.js'
import { noopRolloutMetrics, type RolloutMetrics } from './phases.js'
import { queryPrometheus } from './prometheus.js'
import { type Gate, type Phase, type RolloutState, readStateFile, StateWriter } from './state-file.js'
import {
  ACTIVE,
  firstQuestion,
  type Interval,
  nextQuestion,
  type RolloutEvent,
  type RolloutRules,
  type RolloutSnapshot,
  type Transition,
  transition,
} from './transition.js'
import { callWebhooks, describeResult, type WebhookPayload, type WebhookResult } from './webhooks.js'
import { RouteWindows } from './window.js'

export type { Gate, Phase } from './state-file.js'

/** The `rollout` object of the admin API's ROUTE. */
export interface RolloutStatus {
  phase: Phase
  /** 0-based index into the steps. */
  step: number
  /** The live canary weight. */
  weight: number
  failures: number
  /** Why the last transition happened. */
  reason: string
  /** The last interval's check outcomes. */
  analysis: CheckOutcome[]
}

/** A command that does not fit the current phase (the admin API answers 409). */
export class RolloutConflict extends Error {}

const RUNNING: ReadonlySet<Phase> = new Set(['waiting', 'progressing', 'paused', 'promoting'])

/** The weights a rollout steps through; always ends at 100. */
export function stepsFor(cfg: Pick<RolloutConfig, 'steps' | 'stepWeight' | 'maxWeight'>): number[] {
  const steps: number[] = []
  if (cfg.steps) {
    steps.push(...cfg.steps)
  } else if (cfg.stepWeight !== undefined && cfg.stepWeight > 0) {
    const max = cfg.maxWeight ?? 100
    for (let k = 1; k * cfg.stepWeight <= max + 1e-9; k++) {
      steps.push(Math.round(k * cfg.stepWeight * 1e6) / 1e6)
    }
  }
  if (steps[steps.length - 1] !== 100) steps.push(100)
  return steps
}

/** What the rollouts record (telemetry's Metrics implements it). */
export type { RolloutMetrics } from './phases.js'

export interface ControllerDeps {
  holder: TableHolder
  windows: RouteWindows
  logger: Logger
  metrics: RolloutMetrics
  writer: StateWriter
  changed: (route: string, status: RolloutStatus) => void
}

/** One route's rollout. */
export class RouteRollout {
  readonly name: string
  #route: RouteConfig
  #cfg: RolloutConfig
  #steps: number[]
  #phase: Phase = 'idle'
  #step = 0
  #failures = 0
  #reason = 'not started'
  #analysis: CheckOutcome[] = []
  #gate: Gate | null = null
  #preRolloutDone = false
  /** The weight this rollout holds on the route; null while idle (the config or the admin decides). */
  #held: number | null = null
  #timer: NodeJS.Timeout | null = null
  /** The canary's no-usable-endpoint count when the current interval began. */
  #noUsableMark = 0
  #gen = 0
  #closed = false
  #updatedAt = ''

  constructor(
    route: RouteConfig,
    readonly deps: ControllerDeps,
  ) {
    if (!route.rollout) throw new Error(`route ${route.name} has no rollout`)
    this.name = route.name
    this.#route = route
    this.#cfg = route.rollout
    this.#steps = stepsFor(route.rollout)
    this.#metrics()
  }

  get steps(): readonly number[] {
    return this.#steps
  }

  get phase(): Phase {
    return this.#phase
  }

  status(): RolloutStatus {
    return {
      phase: this.#phase,
      step: this.#step,
      weight: this.#cell()?.canary ?? this.#held ?? 0,
      failures: this.#failures,
      reason: this.#reason,
      analysis: this.#analysis,
    }
  }

  /** The state as a state file holds it (also what a cluster primary keeps across worker restarts). */
  snapshot(): RolloutState {
    const s = this.status()
    return {
      version: 1,
      route: this.name,
      canary: this.#route.canary?.endpoints ?? [],
      phase: s.phase,
      step: s.step,
      weight: s.weight,
      failures: s.failures,
      reason: s.reason,
      gate: this.#gate,
      preRolloutDone: this.#preRolloutDone,
      updatedAt: this.#updatedAt,
    }
  }

  /**
   * First load: resume from `kept` (the state a cluster primary kept while this worker was replaced)
   * or else from the state file if there is one, else start by itself with `start: auto`.
   */
  async init(kept?: RolloutState): Promise<void> {
    // A state never committed is the constructor's idle one: nothing to resume.
    if (kept && kept.updatedAt !== '' && this.#resumable(kept)) {
      this.#restore(kept, 'after a worker restart')
      return
    }
    const file = this.#cfg.stateFile
    if (file) {
      const load = await readStateFile(file)
      if (this.#closed) return
      if (load.kind === 'bad') {
        this.#held = this.#cell()?.canary ?? this.#route.split.canary
        this.#phase = 'paused'
        this.#step = 0
        this.deps.logger.error(
          { route: this.name, stateFile: file, error: load.error },
          'rollout state file is unusable: the route starts at the config weight, paused',
        )
        // The unusable file stays as it is (for inspection) until the next transition replaces it.
        this.#commit(`state file ${file} is unusable (${load.error}): paused at the config weight`, {
          persist: false,
          event: false,
        })
        return
      }
      if (load.kind === 'ok') {
        const s = load.state
        if (this.#resumable(s)) {
          this.#restore(s, 'from the state file after a restart')
          return
        }
        this.deps.logger.warn(
          { route: this.name, stateFile: file, stateRoute: s.route, stateCanary: s.canary },
          'rollout state file is for another route or canary: not resumed',
        )
      }
    }
    if (this.#cfg.start === 'auto') this.start('started by itself (start: auto)')
  }

  /** A state for this route and this canary (another canary starts afresh). */
  #resumable(s: RolloutState): boolean {
    return s.route === this.name && sameList(s.canary, this.#route.canary?.endpoints ?? [])
  }

  #restore(s: RolloutState, how: string): void {
    this.#phase = s.phase
    this.#step = Math.min(s.step, this.#steps.length - 1)
    this.#failures = s.failures
    this.#gate = s.gate
    this.#preRolloutDone = s.preRolloutDone
    if (s.phase !== 'idle') this.#setWeight(s.weight)
    this.deps.logger.info(
      { route: this.name, phase: s.phase, step: this.#step, weight: s.weight, failures: s.failures },
      `rollout resumed ${how}`,
    )
    const was = s.reason.replace(
      /^resumed (?:from the state file )?after a (?:worker )?restart \(was: (.*)\)$/,
      '$1',
    )
    this.#commit(`resumed ${how} (was: ${was})`, { event: false })
    if (ACTIVE.has(this.#phase)) this.#kick(null)
  }

  // ---- commands (admin API / CLI) ---------------------------------------------------------------

  start(reason = 'started by the admin API'): void {
    if (RUNNING.has(this.#phase)) {
      throw new RolloutConflict(
        `a rollout is already ${this.#phase} on route ${this.name}: use pause, resume, promote or abort`,
      )
    }
    this.#command()
    this.#step = 0
    this.#failures = 0
    this.#analysis = []
    this.#gate = null
    this.#preRolloutDone = false
    this.#held = this.#cell()?.canary ?? this.#held ?? 0
    if (this.#hooks('confirm-rollout')) {
      this.#phase = 'waiting'
      this.#gate = 'confirm-rollout'
      this.#commit(`${reason}: waiting for the confirm-rollout webhooks`)
      this.#kick(null)
    } else if (this.#hooks('pre-rollout')) {
      this.#phase = 'progressing'
      this.#commit(`${reason}: running the pre-rollout webhooks`)
      this.#kick(null)
    } else {
      this.#preRolloutDone = true
      this.#toStep(0, reason)
      this.#schedule()
    }
  }

  pause(reason = 'paused by the admin API'): void {
    if (this.#phase === 'paused')
      throw new RolloutConflict(`the rollout on route ${this.name} is already paused`)
    if (!ACTIVE.has(this.#phase)) throw this.#notRunning()
    this.#command()
    this.#phase = 'paused'
    this.#commit(reason)
  }

  resume(reason = 'resumed by the admin API'): void {
    if (this.#phase !== 'paused') {
      throw new RolloutConflict(`the rollout on route ${this.name} is ${this.#phase}, not paused`)
    }
    this.#command()
    if (this.#gate !== null) {
      this.#phase = 'waiting'
      this.#commit(`${reason}: waiting for the ${this.#gate} webhooks`)
      this.#kick(null)
    } else if (!this.#preRolloutDone) {
      this.#phase = 'progressing'
      this.#commit(reason)
      this.#kick(null)
    } else {
      this.#toStep(this.#step, reason)
      this.#schedule()
    }
  }

  promote(reason = 'promoted by the admin API: remaining steps skipped'): void {
    if (this.#phase === 'promoting') throw new RolloutConflict(`route ${this.name} is already promoting`)
    if (!RUNNING.has(this.#phase)) throw this.#notRunning()
    this.#command()
    this.#preRolloutDone = true
    if (this.#hooks('confirm-promotion')) {
      this.#phase = 'waiting'
      this.#gate = 'confirm-promotion'
      this.#commit(`${reason}: waiting for the confirm-promotion webhooks`)
      this.#kick(null)
    } else {
      this.#gate = null
      this.#toStep(this.#steps.length - 1, reason)
      this.#schedule()
    }
  }

  abort(reason = 'aborted by the admin API'): void {
    this.#command()
    this.#abort(reason)
  }

  /** Manual weight: pauses a running rollout, and the rollout then holds the new weight. */
  setWeight(weight: number, reason = `weight set to ${weight}% by the admin API`): void {
    if (this.#phase === 'idle') {
      const cell = this.#cell()
      if (cell) cell.canary = weight
      this.deps.windows.rotate()
      return
    }
    this.#command()
    this.#setWeight(weight)
    if (ACTIVE.has(this.#phase)) {
      this.#phase = 'paused'
      this.#commit(`${reason}: rollout paused`)
    } else {
      this.#commit(reason)
    }
  }

  // ---- reloads ----------------------------------------------------------------------------------

  /** A reload brought a new config for this route (same name). State survives. */
  update(route: RouteConfig, previous: RouteConfig): void {
    if (!route.rollout) return
    this.#route = route
    this.#cfg = route.rollout
    this.#steps = stepsFor(route.rollout)
    if (this.#step >= this.#steps.length) this.#step = this.#steps.length - 1
    const newCanary =
      !sameList(previous.canary?.endpoints ?? [], route.canary?.endpoints ?? []) ||
      previous.split.canary !== route.split.canary
    if ((this.#phase === 'succeeded' || this.#phase === 'aborted') && newCanary) {
      // The operator acted on the outcome (e.g. made the canary the new primary with canary: 0):
      // the finished rollout ends and the config's weight applies again.
      const was = this.#phase
      this.#command()
      this.#phase = 'idle'
      this.#held = null
      this.#step = 0
      this.#failures = 0
      this.#gate = null
      const cell = this.#cell()
      if (cell) cell.canary = route.split.canary
      this.#commit(`config reloaded with a new canary or split after the rollout ${was}: back to idle`)
      if (this.#cfg.start === 'auto') this.start('started by itself after a reload (start: auto)')
      return
    }
    this.reapply()
  }

  /** Puts the held weight on the current table's route (after a table swap). */
  reapply(): void {
    const cell = this.#cell()
    if (cell && this.#held !== null) cell.canary = this.#held
  }

  close(): void {
    this.#closed = true
    this.#command()
  }

  // ---- the interval -----------------------------------------------------------------------------

  #command(): void {
    this.#gen++
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #schedule(): void {
    if (this.#closed || !ACTIVE.has(this.#phase)) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#kick(this.deps.windows.rotate())
    }, this.#cfg.interval)
    this.#timer.unref()
  }

  /** Runs one evaluation now (stats: a finished interval to judge; null right after a command). */
  #kick(stats: Interval | null): void {
    const gen = this.#gen
    void this.#evaluate(gen, stats)
      .catch((err: Error) =>
        this.deps.logger.error({ route: this.name, err: err.message }, 'rollout evaluation failed'),
      )
      .finally(() => {
        if (gen === this.#gen && this.#timer === null) this.#schedule()
      })
  }

  /**
   * One evaluation: asks the questions the state calls for (webhooks, Prometheus), feeds each answer
   * to the pure transition (transition.ts) and applies the result. A command meanwhile (a new
   * generation) discards the rest.
   */
  async #evaluate(gen: number, stats: Interval | null): Promise<void> {
    const live = () => gen === this.#gen && !this.#closed
    const rules = this.#rules()
    let question = firstQuestion(this.#snapshot(), rules, stats)
    while (question !== null) {
      const event =
        question === 'pre-rollout' && !this.#hooks('pre-rollout')
          ? { kind: 'pre-rollout' as const, results: [] }
          : await this.#ask(question, stats)
      if (!live()) return
      const t = transition(this.#snapshot(), rules, event)
      this.#apply(t)
      if (t.askGate !== undefined) {
        const { gate, passed } = t.askGate
        const closed = await this.#askGate(gate)
        if (!live()) return
        this.#apply(transition(this.#snapshot(), rules, { kind: 'next-gate', gate, closed, passed }))
        return
      }
      if (t.done) return
      question = nextQuestion(this.#snapshot(), stats)
    }
  }

  /** The I/O behind one question of an evaluation, as the event the transition reads. */
  async #ask(
    question: 'rollback' | 'gate' | 'pre-rollout' | 'interval',
    stats: Interval | null,
  ): Promise<RolloutEvent> {
    switch (question) {
      case 'rollback':
        return { kind: 'rollback', results: await this.#call('rollback') }
      case 'gate': {
        const gate = this.#gate ?? 'confirm-rollout'
        return { kind: 'gate', gate, closed: await this.#askGate(gate) }
      }
      case 'pre-rollout':
        return { kind: 'pre-rollout', results: await this.#call('pre-rollout') }
      case 'interval': {
        const [hooks, prometheus] = await Promise.all([this.#call('rollout'), this.#queryPrometheus()])
        return { kind: 'interval', stats: stats!, hooks, prometheus, health: this.#healthOutcome() }
      }
    }
  }

  #snapshot(): RolloutSnapshot {
    return {
      phase: this.#phase,
      step: this.#step,
      failures: this.#failures,
      gate: this.#gate,
      preRolloutDone: this.#preRolloutDone,
      reason: this.#reason,
    }
  }

  #rules(): RolloutRules {
    return {
      steps: this.#steps,
      failureLimit: this.#cfg.failureLimit,
      minRequests: this.#cfg.minRequests,
      analysis: this.#cfg.analysis,
      hasHooks: (type) => this.#hooks(type),
    }
  }

  /** Takes over the transition's state, then carries out its actions in order. */
  #apply(t: Transition): void {
    this.#phase = t.state.phase
    this.#step = t.state.step
    this.#failures = t.state.failures
    this.#gate = t.state.gate
    this.#preRolloutDone = t.state.preRolloutDone
    for (const a of t.actions) {
      switch (a.kind) {
        case 'analysis':
          for (const o of a.outcomes) this.deps.metrics.analysisCheck(this.name, o.check, o.result)
          this.#analysis = a.outcomes
          break
        case 'step':
          this.#toStep(a.index, a.reason)
          break
        case 'abort':
          this.#abort(a.reason)
          break
        case 'succeed':
          this.#succeed(a.reason)
          break
        case 'commit':
          this.#commit(a.reason, { event: a.event })
          break
      }
    }
  }

  /** The health check for the interval that ended: failing when the canary had no usable endpoint. */
  #healthOutcome(): CheckOutcome | null {
    const group = this.#canaryHealth()
    if (group === null) return null
    const health = healthOutcome(group.noUsable - this.#noUsableMark, group.hasUsable())
    this.#noUsableMark = group.noUsable
    return health
  }

  #canaryHealth(): { noUsable: number; hasUsable(): boolean } | null {
    return this.deps.holder.current.byName.get(this.name)?.canary?.health ?? null
  }

  #toStep(index: number, reason: string): void {
    this.#step = index
    const weight = this.#steps[index]!
    this.#phase = weight >= 100 ? 'promoting' : 'progressing'
    this.#setWeight(weight)
    this.#commit(reason)
  }

  #abort(reason: string): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#phase = 'aborted'
    this.#gate = null
    this.#setWeight(0)
    this.deps.logger.warn({ route: this.name, reason }, 'rollout aborted: canary weight set to 0')
    this.#commit(reason)
    this.#tell('post-rollout')
  }

  #succeed(reason: string): void {
    this.#phase = 'succeeded'
    this.#gate = null
    const endpoints = this.#route.canary?.endpoints ?? []
    this.deps.logger.info(
      { route: this.name, canary: endpoints },
      `rollout succeeded: the canary endpoints (${endpoints.join(', ')}) now serve all traffic of route ${this.name}; make them the primary in the config and set split.canary: 0`,
    )
    this.#commit(`${reason}; the canary endpoints now serve all traffic`)
    this.#tell('post-rollout')
  }

  #setWeight(weight: number): void {
    this.#held = weight
    const cell = this.#cell()
    if (cell) cell.canary = weight
    // A new weight starts a new interval: traffic at the old weight is not judged at the new one.
    this.deps.windows.rotate()
    this.#noUsableMark = this.#canaryHealth()?.noUsable ?? 0
  }

  /** Records a state change: metrics, log, state file, event webhooks, listeners. */
  #commit(reason: string, opts: { persist?: boolean; event?: boolean } = {}): void {
    this.#reason = reason
    this.#updatedAt = new Date().toISOString()
    this.#metrics()
    const s = this.status()
    this.deps.logger.info(
      { route: this.name, phase: s.phase, step: s.step, weight: s.weight, failures: s.failures, reason },
      'rollout',
    )
    const file = this.#cfg.stateFile
    if (file && opts.persist !== false) void this.deps.writer.write(file, this.snapshot())
    if (opts.event !== false) this.#tell('event')
    this.deps.changed(this.name, s)
  }

  #metrics(): void {
    this.deps.metrics.rolloutPhase(this.name, this.#phase)
    this.deps.metrics.rolloutStep(this.name, this.#step)
  }

  #cell(): { canary: number } | undefined {
    return this.deps.holder.current.byName.get(this.name)?.weight
  }

  #hooks(type: WebhookType): boolean {
    return this.#cfg.webhooks.some((h) => h.type === type)
  }

  #payload(): WebhookPayload {
    const s = this.status()
    return {
      route: this.name,
      phase: s.phase,
      step: s.step,
      weight: s.weight,
      reason: s.reason,
      analysis: s.analysis,
    }
  }

  #call(type: WebhookType): Promise<WebhookResult[]> {
    return callWebhooks(this.#cfg.webhooks, type, this.#payload())
  }

  /** Told, never waited on. */
  #tell(type: 'event' | 'post-rollout'): void {
    if (!this.#hooks(type)) return
    void this.#call(type).then((results) => {
      for (const r of results) {
        if (!r.ok) this.deps.logger.warn({ route: this.name, webhook: r.name, type }, describeResult(r))
      }
    })
  }

  /** null when every hook of the gate answered 2xx, else why the gate is closed. */
  async #askGate(gate: Gate): Promise<string | null> {
    const closed = (await this.#call(gate)).find((r) => !r.ok)
    return closed ? describeResult(closed) : null
  }

  async #queryPrometheus(): Promise<Map<number, number | null>> {
    const out = new Map<number, number | null>()
    await Promise.all(
      this.#cfg.analysis.map(async (c, i) => {
        if (!c.prometheus) return
        const answer = await queryPrometheus(c.prometheus.address, c.prometheus.query, c.prometheus.timeout)
        if (answer.error !== null) {
          this.deps.logger.warn(
            { route: this.name, prometheus: c.prometheus.address, error: answer.error },
            'prometheus check has no value (inconclusive)',
          )
        }
        out.set(i, answer.value)
      }),
    )
    return out
  }

  #notRunning(): RolloutConflict {
    return new RolloutConflict(
      `no rollout is running on route ${this.name} (phase ${this.#phase}): start one first`,
    )
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}

// ---- all routes ---------------------------------------------------------------------------------

export interface ManagerOptions {
  holder: TableHolder
  logger: Logger
  metrics?: RolloutMetrics
  /** Route → the rollout state to start from instead of the state file (a replaced cluster worker). */
  kept?: Readonly<Record<string, RolloutState>>
}

/**
 * Every route's rollout, kept in step with the route table: a reload keeps the state of a route with
 * the same name, creates controllers for new rollout blocks and stops removed ones. Its `observer`
 * feeds the per-route, per-variant interval windows from every finished request (injected faults
 * included: they are what the client saw).
 */
export class RolloutManager {
  readonly observer: Observer
  readonly #holder: TableHolder
  readonly #logger: Logger
  readonly #metrics: RolloutMetrics
  readonly #controllers = new Map<string, RouteRollout>()
  readonly #windows = new Map<string, RouteWindows>()
  readonly #listeners: Array<(route: string, status: RolloutStatus) => void> = []
  readonly #writer: StateWriter
  #inits: Promise<void>[] = []
  /** Only for the controllers of the first table. */
  #kept: Readonly<Record<string, RolloutState>>

  constructor(opts: ManagerOptions) {
    this.#holder = opts.holder
    this.#logger = opts.logger
    this.#metrics = opts.metrics ?? noopRolloutMetrics
    this.#kept = opts.kept ?? {}
    this.#writer = new StateWriter((file, err) =>
      this.#logger.error({ stateFile: file, err: err.message }, 'cannot write the rollout state file'),
    )
    const windows = this.#windows
    this.observer = {
      name: 'rollout',
      requestStart() {},
      upstreamAttempt() {},
      upstreamError() {},
      requestEnd(ctx) {
        const route = ctx.route
        // A WebSocket tunnel's lifetime is not a request latency; a request refused because of the
        // client says nothing about the variant.
        if (route === null || ctx.status === 101 || ctx.refused !== null) return
        const w = windows.get(route.name)
        if (w === undefined) return
        const v = ctx.variant === 'canary' ? w.canary : w.primary
        v.record(ctx.status, performance.now() - ctx.start, ctx.errorKind !== null)
      },
    }
    this.#sync(this.#holder.current, null)
    this.#kept = {}
    this.#holder.onSwap((next, previous) => this.#sync(next, previous))
  }

  /** Resolves once every controller has read its state file (and auto-started). */
  async ready(): Promise<void> {
    while (this.#inits.length > 0) {
      const inits = this.#inits
      this.#inits = []
      await Promise.all(inits)
    }
  }

  get(route: string): RouteRollout | undefined {
    return this.#controllers.get(route)
  }

  status(route: string): RolloutStatus | null {
    return this.#controllers.get(route)?.status() ?? null
  }

  /** Every rollout's state, by route. */
  snapshot(): Record<string, RolloutState> {
    const out: Record<string, RolloutState> = {}
    for (const [name, c] of this.#controllers) out[name] = c.snapshot()
    return out
  }

  /** Called after every state change of any route's rollout. */
  onChange(listener: (route: string, status: RolloutStatus) => void): void {
    this.#listeners.push(listener)
  }

  /** Manual weight for any route (with or without a rollout). The caller checks the route exists. */
  setWeight(route: string, weight: number): void {
    const c = this.#controllers.get(route)
    if (c) {
      c.setWeight(weight)
      return
    }
    const cell = this.#holder.current.byName.get(route)?.weight
    if (cell) cell.canary = weight
  }

  /** Stops every timer; an evaluation still waiting on a webhook is discarded when it returns. */
  async close(): Promise<void> {
    for (const c of this.#controllers.values()) c.close()
    await Promise.all(this.#inits)
    await this.#writer.flush()
  }

  #sync(table: RouteTable, previous: RouteTable | null): void {
    const seen = new Set<string>()
    for (const route of table.routes) {
      if (!route.config.rollout) continue
      seen.add(route.name)
      const existing = this.#controllers.get(route.name)
      const before = previous?.byName.get(route.name)?.config
      if (existing) {
        if (before) existing.update(route.config, before)
        else existing.reapply()
        continue
      }
      let windows = this.#windows.get(route.name)
      if (!windows) {
        windows = new RouteWindows()
        this.#windows.set(route.name, windows)
      }
      const c = new RouteRollout(route.config, {
        holder: this.#holder,
        windows,
        logger: this.#logger,
        metrics: this.#metrics,
        writer: this.#writer,
        changed: (name, status) => {
          for (const l of this.#listeners) l(name, status)
        },
      })
      this.#controllers.set(route.name, c)
      this.#inits.push(
        c
          .init(this.#kept[route.name])
          .catch((err: Error) =>
            this.#logger.error({ route: route.name, err: err.message }, 'rollout failed to initialise'),
          ),
      )
    }
    for (const [name, c] of this.#controllers) {
      if (seen.has(name)) continue
      c.close()
      this.#controllers.delete(name)
      this.#windows.delete(name)
      this.#metrics.rolloutPhase(name, 'idle')
      this.#logger.info({ route: name }, 'rollout removed by a reload')
    }
  }
}
