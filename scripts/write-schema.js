// Writes config/turnout.schema.json (so editors can complete and check config files) and
// docs/config-reference.md (the field table) from the zod declaration (src/config/schema.ts).
// `npm run schema`; tests fail when either file is stale.
import { writeFileSync } from 'node:fs'
import { configJsonSchema } from '../dist/config/load.js'
import { configReference } from '../dist/config/reference.js'

const schema = { title: 'Turnout configuration', ...configJsonSchema() }
writeFileSync(
  new URL('../config/turnout.schema.json', import.meta.url),
  `${JSON.stringify(schema, null, 2)}\n`,
)
console.log('wrote config/turnout.schema.json')
writeFileSync(new URL('../docs/config-reference.md', import.meta.url), configReference())
console.log('wrote docs/config-reference.md')
