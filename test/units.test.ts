import t from 'tap'
import { parseDuration, parsePercent, parseSize } from '../src/config/units.js'

t.test('durations', async (t) => {
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('2s'), 2000)
  t.equal(parseDuration('1.5s'), 1500)
  t.equal(parseDuration('1m'), 60_000)
  t.equal(parseDuration('30d'), 30 * 86_400_000)
  t.equal(parseDuration('2x'), null)
  t.equal(parseDuration('-1s'), null)
})

t.test('sizes and percentages', async (t) => {
  t.equal(parseSize('64KiB'), 65536)
  t.equal(parseSize('10MiB'), 10 * 1024 * 1024)
  t.equal(parseSize('1000'), 1000)
  t.equal(parseSize('1 GB'), 1e9)
  t.equal(parseSize('ten'), null)
  t.equal(parsePercent('5%'), 5)
  t.equal(parsePercent('0.5%'), 0.5)
  t.equal(parsePercent('101%'), null)
  t.equal(parsePercent('5'), null)
})
