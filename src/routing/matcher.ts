// Header/cookie matchers shared by overrides and fault rules, compiled once per config.
import type { MatcherConfig } from '../config/schema.js'
import type { RequestView } from './request-view.js'

export type Matcher = (req: RequestView) => boolean

export function compileMatcher(m: MatcherConfig): Matcher {
  const read: (req: RequestView) => string | undefined =
    m.header !== undefined
      ? (
          (name) => (req: RequestView) =>
            req.header(name)
        )(m.header.toLowerCase())
      : (
          (name) => (req: RequestView) =>
            req.cookie(name)
        )(m.cookie as string)
  if (m.equals !== undefined) {
    const expected = m.equals
    return (req) => read(req) === expected
  }
  const re = new RegExp(m.matches as string)
  return (req) => {
    const v = read(req)
    return v !== undefined && re.test(v)
  }
}
