// The docs agree with the product: the commands the README says the demo prints are the ones it prints.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { startDemo } from '../src/cli/demo.js'
import { configReference } from '../src/config/reference.js'

/** The lines of the first ```sh block after `heading` in a markdown file. */
function shBlockAfter(file: string, heading: string): string[] {
  const text = readFileSync(file, 'utf8')
  const from = text.indexOf(heading)
  if (from < 0) throw new Error(`${file}: no "${heading}"`)
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(from))
  return (block?.[1] ?? '').split('\n').filter((l) => l.trim() !== '')
}

const command = (line: string) => line.replace(/\s+#.*$/, '').trim()

t.test('the README quick start shows the commands the demo prints', async (t) => {
  const printed: string[] = []
  const demo = await startDemo({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', out: (s) => printed.push(s) })
  await demo.close()
  const text = printed
    .join('\n')
    .replaceAll(demo.turnout.url, 'http://127.0.0.1:8080')
    .replaceAll(demo.turnout.adminUrl, 'http://127.0.0.1:9901')
  const tried = text
    .split('\n')
    .filter((l) => /^ {2}(curl|npx) /.test(l))
    .map(command)
  const shown = shBlockAfter('README.md', 'It prints what to try').map(command)
  t.ok(tried.length >= 4, 'the demo prints commands')
  t.same(shown, tried, 'README block = demo output (comments aside)')
  t.notOk(/^\s+turnout /m.test(text), 'no bare `turnout` (not on PATH after npm ci): npx turnout')
})

t.test('docs/config-reference.md is generated from the zod schema (run `npm run schema`)', async (t) => {
  t.equal(readFileSync('docs/config-reference.md', 'utf8'), configReference())
})

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>()
  let fence = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fence = !fence
    const m = /^#{1,6} (.*)$/.exec(line)
    if (m && !fence)
      out.add(
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N}_\- ]/gu, '')
          .replaceAll(' ', '-'),
      )
  }
  return out
}

t.test('every relative link in the README and docs/ points at a file and heading that exist', async (t) => {
  const files = ['README.md', ...readdirSync('docs').map((f) => `docs/${f}`)].filter((f) => f.endsWith('.md'))
  let checked = 0
  for (const file of files) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!
      if (/^[a-z]+:/.test(target)) continue
      const [path, anchor] = target.split('#') as [string, string | undefined]
      const resolved = path === '' ? file : join(dirname(file), path)
      checked++
      if (!existsSync(resolved)) {
        t.fail(`${file}: ${target}: no such file`)
        continue
      }
      if (anchor) t.ok(anchors(readFileSync(resolved, 'utf8')).has(anchor), `${file}: ${target}`)
    }
  }
  t.ok(checked > 20, `${checked} links checked`)
})
