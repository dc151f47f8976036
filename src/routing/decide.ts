// The split decision, pure: overrides first (in order), then the sticky bucket, then the weight.
// `weight` is the canary's live percentage (0..100), read once per request by the caller.
import type { Variant } from '../config/schema.js'
import { bucketIsCanary, stickyBucket } from './hash.js'
import type { Matcher } from './matcher.js'
import type { RequestView } from './request-view.js'

export type Reason = 'override' | 'sticky' | 'weight'

export interface Decision {
  variant: Variant
  reason: Reason
  /** A sticky id Turnout generated for this request (sticky.assign); the caller sets the cookie. */
  assignedId: string | null
}

export interface StickyPolicy {
  source: 'header' | 'cookie'
  /** Header names are lower-case. */
  name: string
  assign: boolean
}

export interface SplitPolicy {
  hasCanary: boolean
  overrides: readonly { match: Matcher; to: Variant }[]
  sticky: StickyPolicy | null
}

export interface DecideDeps {
  random: () => number
  newId: () => string
}

export function decide(policy: SplitPolicy, weight: number, req: RequestView, deps: DecideDeps): Decision {
  for (const o of policy.overrides) {
    if (o.match(req)) return { variant: o.to, reason: 'override', assignedId: null }
  }
  if (!policy.hasCanary) return { variant: 'primary', reason: 'weight', assignedId: null }
  const sticky = policy.sticky
  if (sticky !== null) {
    let key = sticky.source === 'header' ? req.header(sticky.name) : req.cookie(sticky.name)
    let assignedId: string | null = null
    if ((key === undefined || key === '') && sticky.assign) {
      assignedId = deps.newId()
      key = assignedId
    }
    if (key !== undefined && key !== '') {
      const variant = bucketIsCanary(stickyBucket(key), weight) ? 'canary' : 'primary'
      return { variant, reason: 'sticky', assignedId }
    }
  }
  const variant = weight > 0 && deps.random() * 100 < weight ? 'canary' : 'primary'
  return { variant, reason: 'weight', assignedId: null }
}
