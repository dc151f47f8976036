// The configuration reference (docs/config-reference.md), rendered from the JSON Schema of the zod
// declaration so it cannot drift from what `turnout validate` accepts. `npm run schema` writes it;
// a test fails when the committed file is stale.
import { configJsonSchema } from './load.js'

interface Node {
  type?: string | string[]
  properties?: Record<string, Node>
  items?: Node
  anyOf?: Node[]
  enum?: unknown[]
  const?: unknown
  default?: unknown
  description?: string
  pattern?: string
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  minItems?: number
  required?: string[]
}

const KINDS: Array<[RegExp, string]> = [
  [/\(ms\|s\|m\|h\|d\)/, 'duration (`250ms`, `2s`, `1m`, `30d`)'],
  [/KiB/, 'size (`64KiB`, `10MiB` or bytes)'],
  [/%/, 'percent (`5%` or a number 0-100)'],
  [/\\d\{1,5\}/, 'address (`127.0.0.1:8080`, `:8080`)'],
]

function kind(node: Node): string {
  for (const n of [node, ...(node.anyOf ?? [])]) {
    for (const [re, name] of KINDS) if (n.pattern && re.test(n.pattern)) return name
  }
  if (node.enum) return node.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ')
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``
  if (node.anyOf) return [...new Set(node.anyOf.map(kind))].join(' or ')
  const type = Array.isArray(node.type) ? node.type.join(' or ') : (node.type ?? 'any')
  if (type === 'array') return `list of ${node.items ? kind(node.items) : 'any'}`
  const lo = node.minimum ?? node.exclusiveMinimum
  const hi = node.maximum !== undefined && node.maximum < 2 ** 53 - 1 ? node.maximum : undefined
  if ((type === 'number' || type === 'integer') && (lo !== undefined || hi !== undefined)) {
    return `${type} ${lo ?? ''}..${hi ?? ''}`
  }
  return type === 'object' ? 'mapping' : type
}

const cell = (v: unknown) =>
  v === undefined ? '' : `\`${JSON.stringify(v)}\``.replaceAll('|', '\\|').replace('`{}`', '')

function rows(node: Node, path: string, required: boolean, out: string[]): void {
  const obj = node.properties ? node : node.anyOf?.find((n) => n.properties)
  const list = node.items ?? node.anyOf?.find((n) => n.items)?.items
  if (path) {
    const req = required && node.default === undefined ? 'yes' : ''
    const desc = (node.description ?? '').replaceAll('\n', ' ').replaceAll('|', '\\|')
    out.push(
      `| \`${path}\` | ${kind(node).replaceAll('\n', ' ')} | ${cell(node.default)} | ${req} | ${desc} |`,
    )
  }
  if (obj?.properties) {
    for (const [key, child] of Object.entries(obj.properties)) {
      rows(child, path ? `${path}.${key}` : key, obj.required?.includes(key) ?? false, out)
    }
  }
  if (list && (list.properties || list.anyOf?.some((n) => n.properties))) rows(list, `${path}[]`, false, out)
}

/** The markdown of docs/config-reference.md. */
export function configReference(): string {
  const out: string[] = []
  rows(configJsonSchema() as Node, '', true, out)
  return [
    '<!-- Generated from src/config/schema.ts by `npm run schema`; do not edit. A test fails when it is stale. -->',
    '',
    '# Configuration reference',
    '',
    'Every field Turnout accepts, as the schema declares it. The guide with examples is',
    '[configuration.md](configuration.md); the same schema as JSON Schema, for editors, is',
    '[`config/turnout.schema.json`](../config/turnout.schema.json). `[]` marks a list item.',
    '',
    '| field | type | default | required | notes |',
    '| --- | --- | --- | --- | --- |',
    ...out,
    '',
  ].join('\n')
}
