// Redaction for anything the mirror comparison records: values of authorization, cookie and
// set-cookie (and proxy-authorization) become "[redacted]" whether they appear as a header name, a
// JSON key, or "name: value" / "name=value" text inside a recorded string.

export const REDACTED = '[redacted]'

const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie'])
// `cookie` also covers `set-cookie`; the value runs to a quote, newline or '&'.
const SENSITIVE_TEXT = /((?:authorization|cookie)["']?\s*[:=]\s*["']?)[^"'\r\n&]*/gi

export function isSensitiveName(name: string): boolean {
  return SENSITIVE.has(name.toLowerCase())
}

/** "Cookie: a=1" → "Cookie: [redacted]"; '"authorization":"Bearer x"' → '"authorization":"[redacted]"'. */
export function redactText(text: string): string {
  return text.replace(SENSITIVE_TEXT, `$1${REDACTED}`)
}

/** A JSON.stringify replacer that redacts sensitive keys and sensitive text in strings. */
export function redactReplacer(key: string, value: unknown): unknown {
  if (key !== '' && isSensitiveName(key)) return REDACTED
  return typeof value === 'string' ? redactText(value) : value
}

/** A redacted copy of a JSON-like value (strings, objects, arrays; other primitives unchanged). */
export function redactValue(value: unknown): unknown {
  if (typeof value === 'string') return redactText(value)
  if (value === null || typeof value !== 'object') return value
  try {
    return JSON.parse(JSON.stringify(value, redactReplacer))
  } catch {
    return REDACTED
  }
}
