// The docs agree with the product: the commands the README says the demo prints are the ones it prints.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { startDemo } from '../src/cli/demo.js'

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
