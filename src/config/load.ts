// YAML/JSON text → validated `Config`, or every problem at once as `FILE:LINE:COL: path: message`.
// Steps: parse the document (syntax errors keep their line and column), replace `${NAME}` from the
// environment in every string, validate with the schema, then point each issue at the YAML node
// it names so the line and column are the offending node's own.

import { readFile } from 'node:fs/promises'
import { closest, distance } from 'fastest-levenshtein'
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml'
import { z } from 'zod'
import { TurnoutError } from '../core/errors.js'
import { type Config, configSchema } from './schema.js'

export interface ConfigProblem {
  file: string
  line: number
  col: number
  /** `routes[0].split.canary`; empty for the document itself. */
  path: string
  message: string
}

export class ConfigError extends TurnoutError {
  constructor(readonly problems: ConfigProblem[]) {
    super('TURNOUT_ERR_CONFIG', problems.map(formatProblem).join('\n'), 400)
    this.name = 'ConfigError'
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path ? `${p.path}: ` : ''}${p.message}`
}

type PathKey = string | number

export function formatPath(path: readonly PathKey[]): string {
  let out = ''
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else out += out === '' ? key : `.${key}`
  }
  return out
}

/** The file text each config loaded from a file was parsed from (what a watcher compares against). */
const sourceTexts = new WeakMap<Config, string>()

/** The text `config` was loaded from by loadConfigFile, or undefined for a config built otherwise. */
export function loadedText(config: Config): string | undefined {
  return sourceTexts.get(config)
}

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError([
      { file, line: 1, col: 1, path: '', message: `cannot read file (${(err as Error).message})` },
    ])
  }
  const config = parseConfig(text, file, env)
  sourceTexts.set(config, text)
  return config
}

type At = (offset: number | undefined) => { line: number; col: number }

/** The problems one zod issue stands for, placed at the YAML node it is about. */
function problemsFor(
  issue: Issue,
  file: string,
  at: At,
  nodeAt: (path: readonly PathKey[]) => Node | undefined,
): ConfigProblem[] {
  const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol')
  if (issue.code !== 'unrecognized_keys')
    return [{ file, ...at(nodeAt(path)?.range?.[0]), path: formatPath(path), message: messageFor(issue) }]
  const parent = nodeAt(path)
  return issue.keys.map((key) => {
    const keyNode = isMap(parent)
      ? parent.items.find((p) => isScalar(p.key) && p.key.value === key)?.key
      : undefined
    const suggestion = suggestKey(key, path)
    return {
      file,
      ...at((keyNode as Node | undefined)?.range?.[0] ?? parent?.range?.[0]),
      path: formatPath([...path, key]),
      message: `unknown key${suggestion ? `, did you mean ${suggestion}?` : ''}`,
    }
  })
}

/** Parses and validates config text; throws `ConfigError` with every problem found. */
export function parseConfig(text: string, file = '<config>', env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const at = (offset: number | undefined) => {
    const pos = lineCounter.linePos(offset ?? 0)
    return { line: pos.line, col: pos.col }
  }
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        ...at(e.pos[0]),
        path: '',
        message: `invalid YAML: ${firstLine(e.message)}`,
      })),
    )
  }

  const problems: ConfigProblem[] = []
  const nodeAt = (path: readonly PathKey[]): Node | undefined => {
    for (let i = path.length; i >= 0; i--) {
      const node = i === 0 ? doc.contents : doc.getIn(path.slice(0, i), true)
      if (node && typeof node === 'object' && 'range' in node) return node as Node
    }
    return undefined
  }

  substituteEnv(doc.contents, [], env, (path, name) =>
    problems.push({
      file,
      ...at(nodeAt(path)?.range?.[0]),
      path: formatPath(path),
      message: `environment variable ${name} is not set`,
    }),
  )
  if (problems.length > 0) throw new ConfigError(problems)

  const raw: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {}
  // Cross-route checks run on the raw input so they are reported together with field problems
  // (zod skips an object's refinements once a field inside it failed).
  for (const d of duplicateRouteNames(raw)) {
    const path = ['routes', d.index, 'name']
    problems.push({
      file,
      ...at(nodeAt(path)?.range?.[0]),
      path: formatPath(path),
      message: `duplicate route name "${d.name}"`,
    })
  }
  const result = configSchema.safeParse(raw, { reportInput: true })
  if (result.success && problems.length === 0) return result.data
  const issues = result.success ? [] : result.error.issues

  for (const issue of flattenIssues(issues)) problems.push(...problemsFor(issue, file, at, nodeAt))
  problems.sort((a, b) => a.line - b.line || a.col - b.col)
  throw new ConfigError(dedupe(problems))
}

function duplicateRouteNames(raw: unknown): Array<{ index: number; name: string }> {
  const routes = (raw as { routes?: unknown }).routes
  if (!Array.isArray(routes)) return []
  const seen = new Set<string>()
  const out: Array<{ index: number; name: string }> = []
  routes.forEach((r, index) => {
    const name = (r as { name?: unknown } | null)?.name
    if (typeof name !== 'string') return
    if (seen.has(name)) out.push({ index, name })
    seen.add(name)
  })
  return out
}

/**
 * "did you mean" for an unknown key: a key that belongs one level down (`sticky` under a route →
 * `split.sticky`), else the closest valid key when it is close enough to be a typo.
 */
function suggestKey(key: string, path: readonly PathKey[]): string | undefined {
  const known = knownKeys(path)
  for (const child of known) {
    if (knownKeys([...path, child]).includes(key)) return `${child}.${key}`
  }
  if (known.length === 0) return undefined
  const best = closest(key, known)
  return distance(key, best) <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const key = formatProblem(p)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** Replaces `${NAME}` in every scalar string, in place, reporting unset names. */
function substituteEnv(
  node: unknown,
  path: PathKey[],
  env: NodeJS.ProcessEnv,
  missing: (path: PathKey[], name: string) => void,
): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : ''
      substituteEnv(pair.value, [...path, key], env, missing)
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      substituteEnv(item, [...path, i], env, missing)
    })
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
    node.value = node.value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const value = env[name]
      if (value === undefined) {
        missing(path, name)
        return ''
      }
      return value
    })
  }
}

type Issue = z.core.$ZodIssue

/**
 * A union's issue carries one list of issues per branch. Report the branch the input was meant for:
 * the one whose issues are not a type mismatch at the union's own node, with the fewest issues.
 */
function flattenIssues(issues: readonly Issue[], prefix: PathKey[] = []): Issue[] {
  const out: Issue[] = []
  for (const issue of issues) {
    const path = [...prefix, ...issue.path.filter((k): k is PathKey => typeof k !== 'symbol')]
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const branches = issue.errors.filter(
        (b) => !(b.length === 1 && b[0]!.code === 'invalid_type' && b[0]!.path.length === 0),
      )
      if (branches.length === 1 || (branches.length > 1 && issue.errors.length > branches.length)) {
        const best = branches.reduce((a, b) => (b.length < a.length ? b : a))
        out.push(...flattenIssues(best, path))
        continue
      }
    }
    out.push({ ...issue, path } as Issue)
  }
  return out
}

function messageFor(issue: Issue): string {
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'is required'
  if (issue.code === 'invalid_type' && issue.path.length === 0)
    return 'the document must be a mapping of settings'
  const msg = issue.message
  if (!msg.startsWith('Invalid') && !msg.startsWith('Too ') && !msg.startsWith('Unrecognized')) return msg
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${article(issue.expected)}`
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
    case 'too_small':
      return issue.origin === 'array'
        ? `needs at least ${issue.minimum} item${issue.minimum === 1 ? '' : 's'}`
        : `must be at least ${issue.minimum}`
    case 'too_big':
      return issue.origin === 'array'
        ? `allows at most ${issue.maximum} items`
        : `must be at most ${issue.maximum}`
    case 'invalid_format':
      return `has an invalid format (${issue.format})`
    case 'invalid_union':
      return 'has an invalid value'
    default:
      return msg
  }
}

function article(expected: string): string {
  if (expected === 'array') return 'a list'
  if (expected === 'object') return 'a mapping'
  if (expected === 'int') return 'a whole number'
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`
}

/** The keys allowed at a path, for "did you mean" suggestions, read from the schema's JSON Schema. */
function knownKeys(path: readonly PathKey[]): string[] {
  let node: JsonSchemaNode | undefined = configJsonSchema()
  for (const key of path) {
    if (!node) return []
    node = step(node, key)
  }
  return node ? Object.keys(resolveObject(node)?.properties ?? {}) : []
}

interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>
  items?: JsonSchemaNode
  anyOf?: JsonSchemaNode[]
  type?: string
}

function resolveObject(node: JsonSchemaNode): JsonSchemaNode | undefined {
  if (node.properties) return node
  return node.anyOf?.find((n) => n.properties)
}

function step(node: JsonSchemaNode, key: PathKey): JsonSchemaNode | undefined {
  if (typeof key === 'number') return node.items ?? node.anyOf?.find((n) => n.items)?.items
  return resolveObject(node)?.properties?.[key]
}

let cachedJsonSchema: JsonSchemaNode | undefined
export function configJsonSchema(): JsonSchemaNode & Record<string, unknown> {
  cachedJsonSchema ??= toJsonSchema()
  return cachedJsonSchema as JsonSchemaNode & Record<string, unknown>
}

function toJsonSchema(): JsonSchemaNode {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode
}
