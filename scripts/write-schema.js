// Writes config/turnout.schema.json from the zod declaration (src/config/schema.ts), so editors can
// complete and check config files. `npm run schema`; a test fails when the file is stale.
import { writeFileSync } from 'node:fs'
import { configJsonSchema } from '../dist/config/load.js'

const schema = { title: 'Turnout configuration', ...configJsonSchema() }
writeFileSync(
  new URL('../config/turnout.schema.json', import.meta.url),
  `${JSON.stringify(schema, null, 2)}\n`,
)
console.log('wrote config/turnout.schema.json')
