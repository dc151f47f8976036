// Preloaded (`node --import`) into a spawned turnout: a hosts file of its own for tests, since the
// machine's /etc/hosts cannot be edited safely. TURNOUT_TEST_HOSTS="name=ip[,ip...];name2=ip" answers
// dns.promises.lookup (what Turnout's checks use); TURNOUT_TEST_LISTEN_HOSTS does the same for the
// callback dns.lookup (what net.Server.listen uses), to simulate a name that changes between the two.
import dns from 'node:dns'

function table(text) {
  const out = new Map()
  for (const entry of (text ?? '').split(';').filter(Boolean)) {
    const [name, ips] = entry.split('=')
    out.set(name.toLowerCase(), ips.split(','))
  }
  return out
}

const forChecks = table(process.env.TURNOUT_TEST_HOSTS)
const forListen = new Map([...forChecks, ...table(process.env.TURNOUT_TEST_LISTEN_HOSTS)])
const entries = (ips) => ips.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))

const promisesLookup = dns.promises.lookup
dns.promises.lookup = async (host, options) => {
  const ips = forChecks.get(String(host).toLowerCase())
  if (ips === undefined) return promisesLookup(host, options)
  const all = entries(ips)
  return typeof options === 'object' && options?.all ? all : all[0]
}

const lookup = dns.lookup
dns.lookup = (host, options, callback) => {
  const cb = typeof options === 'function' ? options : callback
  const opts = typeof options === 'object' && options !== null ? options : {}
  const ips = forListen.get(String(host).toLowerCase())
  if (ips === undefined) return lookup(host, options, callback)
  const all = entries(ips)
  process.nextTick(() => (opts.all ? cb(null, all) : cb(null, all[0].address, all[0].family)))
}
