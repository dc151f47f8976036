// Fault injection (the route's `faults:`), compiled once per config into a FaultPhase the handler
// asks after the split decision. Rules are per variant (primary | canary | both) with an optional
// `when` matcher, like Envoy's and Istio's fault filters:
//   - every matching rule rolls its own dice (`percent`), independently;
//   - an abort that fires wins over any delay (so `abort: {percent: 5}` means 5% of the variant's
//     requests, whatever delay rules come before it); otherwise the first delay that fires applies;
//   - with `allowHeaders: true`, `x-turnout-fault-abort: 503` / `x-turnout-fault-delay: 200ms` on the
//     request inject that fault (before any rule); invalid values are ignored. Without it they are
//     ignored always (never honour them on a public gateway).
// The handler applies the decision: a delay is a timer (no worker held), an abort a local answer.
import type { FaultRuleConfig, RouteConfig, Variant } from '../config/schema.js'
import { parseDuration } from '../config/units.js'
import type { FaultDecision, FaultPhase, RequestContext } from '../core/pipeline.js'
import { compileMatcher, type Matcher } from '../routing/matcher.js'
import type { RequestView } from '../routing/request-view.js'

export const FAULT_DELAY_HEADER = 'x-turnout-fault-delay'
export const FAULT_ABORT_HEADER = 'x-turnout-fault-abort'
/** A header-requested delay longer than this is ignored (a typo must not park a request for hours). */
export const MAX_HEADER_DELAY_MS = 60_000

export interface FaultDeps {
  /** Uniform in [0, 1); Math.random in production, a seeded generator in tests. */
  random: () => number
}

const defaultDeps: FaultDeps = { random: Math.random }

type DelaySpec = { fixed: number } | { min: number; max: number }

interface CompiledAbort {
  match: Matcher | null
  status: number
  percent: number
}

interface CompiledDelay {
  match: Matcher | null
  spec: DelaySpec
  percent: number
}

interface VariantRules {
  aborts: CompiledAbort[]
  delays: CompiledDelay[]
}

/** The route's fault rules, or null when it has none and does not honour fault headers. */
export function compileFaults(route: RouteConfig, deps: FaultDeps = defaultDeps): FaultPhase | null {
  const faults = route.faults
  if (faults === undefined) return null
  const rules = Array.isArray(faults) ? faults : faults.rules
  const allowHeaders = Array.isArray(faults) ? false : faults.allowHeaders
  if (rules.length === 0 && !allowHeaders) return null
  return new Faults(rules, allowHeaders, deps)
}

export class Faults implements FaultPhase {
  readonly #byVariant: Record<Variant, VariantRules>
  readonly #allowHeaders: boolean
  readonly #random: () => number

  constructor(rules: readonly FaultRuleConfig[], allowHeaders: boolean, deps: FaultDeps = defaultDeps) {
    this.#allowHeaders = allowHeaders
    this.#random = deps.random
    this.#byVariant = { primary: { aborts: [], delays: [] }, canary: { aborts: [], delays: [] } }
    for (const rule of rules) {
      const match = rule.when ? compileMatcher(rule.when) : null
      const targets: Variant[] = rule.variant === 'both' ? ['primary', 'canary'] : [rule.variant]
      for (const v of targets) {
        const into = this.#byVariant[v]
        if (rule.abort) into.aborts.push({ match, status: rule.abort.status, percent: rule.abort.percent })
        if (rule.delay) {
          const d = rule.delay
          const spec: DelaySpec =
            d.fixed !== undefined ? { fixed: d.fixed } : { min: d.min as number, max: d.max as number }
          into.delays.push({ match, spec, percent: d.percent })
        }
      }
    }
  }

  decide(ctx: RequestContext, req: RequestView): FaultDecision | null {
    return this.decideFor(ctx.variant, req)
  }

  /** The decision for a request the split sent to `variant`; pure apart from the injected dice. */
  decideFor(variant: Variant, req: RequestView): FaultDecision | null {
    if (this.#allowHeaders) {
      const fromHeaders = headerFault(req)
      if (fromHeaders !== null) return fromHeaders
    }
    const rules = this.#byVariant[variant]
    for (const a of rules.aborts) {
      if ((a.match === null || a.match(req)) && this.#roll(a.percent)) {
        return { kind: 'abort', status: a.status }
      }
    }
    for (const d of rules.delays) {
      if ((d.match === null || d.match(req)) && this.#roll(d.percent)) {
        return { kind: 'delay', ms: this.#delayMs(d.spec) }
      }
    }
    return null
  }

  #roll(percent: number): boolean {
    if (percent >= 100) return true
    if (percent <= 0) return false
    return this.#random() * 100 < percent
  }

  #delayMs(spec: DelaySpec): number {
    if ('fixed' in spec) return spec.fixed
    return spec.min + Math.round(this.#random() * (spec.max - spec.min))
  }
}

/** A fault requested by `x-turnout-fault-abort` (wins) or `x-turnout-fault-delay`; null when absent or invalid. */
export function headerFault(req: RequestView): FaultDecision | null {
  const abort = req.header(FAULT_ABORT_HEADER)
  if (abort !== undefined) {
    const status = parseAbortStatus(abort)
    if (status !== null) return { kind: 'abort', status }
  }
  const delay = req.header(FAULT_DELAY_HEADER)
  if (delay !== undefined) {
    const ms = parseDuration(delay)
    if (ms !== null && ms > 0 && ms <= MAX_HEADER_DELAY_MS) return { kind: 'delay', ms }
  }
  return null
}

/** "503" → 503; anything but a whole number from 200 to 599 → null (the range the config allows). */
export function parseAbortStatus(text: string): number | null {
  const t = text.trim()
  if (!/^\d{3}$/.test(t)) return null
  const n = Number(t)
  return n >= 200 && n <= 599 ? n : null
}
