'use strict'

// Servers joined over a real nats-server, each in its own process: routing across servers,
// groups, cluster-wide channel uniqueness, a dead server's channels freed, NATS restarted.
const { Client } = require('..')
const { PARTIES } = require('./helpers/server')
const { startNats } = require('./helpers/nats')
const { makeChildren } = require('./helpers/children')
const { clearTimers, until, within, nextEvent, delay } = require('./helpers/waiting')

const kids = makeChildren()
let nats
const clients = []

beforeAll(async () => { nats = await startNats() }, 200000)
afterAll(async () => { if (nats) await nats.stop() })
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await kids.killAll()
  clearTimers()
  if (!nats.proc) await nats.start()
})

const cluster = (name) => ({ cluster: { nats: nats.url, name } })

async function client (party, port, config) {
  const c = new Client({ timeouts: { reconnect: 50, reconnectMax: 300 }, ...config })
  clients.push(c)
  const ready = nextEvent(c, 'ready', 10000)
  c.connect({ port, ...PARTIES[party] })
  await ready
  return c
}

async function twoServers () {
  const [s1, s2] = await Promise.all([kids.serverChild(0, cluster('edge-1')), kids.serverChild(0, cluster('edge-2'))])
  return [s1, s2]
}

describe('cluster over NATS', () => {
  test('a message and a request with updates reach a channel held on another server', async () => {
    const [s1, s2] = await twoServers()
    const alpha = await client('alpha', s1.port)
    const beta = await client('beta', s2.port)
    const got = new Promise((resolve) => beta.handle('chat.hello', (body, msg) => resolve([body, msg.headers])))
    alpha.message('beta', 'chat.hello', { hi: 'from edge-1' })
    const [body, headers] = await within(got, 5000, 'cross-server message')
    expect(body).toEqual({ hi: 'from edge-1' })
    expect(headers).toMatchObject({ from: 'alpha', to: 'beta', encrypted: true, groups: ['g1'] })

    beta.handle('math.add', (b, reply) => {
      reply.emit('update', { step: 1 })
      reply.emit('update', { step: 2 })
      reply.emit('response', null, { sum: b.a + b.b })
    })
    const updates = []
    await expect(alpha.requestAsync('beta', 'math.add', { a: 2, b: 3 }, { onUpdate: (u) => updates.push(u) })).resolves.toEqual({ sum: 5 })
    expect(updates).toEqual([{ step: 1 }, { step: 2 }])
    // Plaintext crosses too, and the egress server re-encrypts nothing it was not asked to.
    await expect(alpha.requestAsync('beta', 'math.add', { a: 1, b: 1 }, { encrypt: false })).resolves.toEqual({ sum: 2 })
  }, 30000)

  test('messages from one sender to a client on another server arrive in order', async () => {
    const [s1, s2] = await twoServers()
    const alpha = await client('alpha', s1.port)
    const beta = await client('beta', s2.port)
    const seen = []
    beta.handle('seq', (body) => seen.push(body.n))
    const N = 3000
    for (let n = 0; n < N; n++) alpha.insecure().message('beta', 'seq', { n, pad: 'x'.repeat(100) })
    await until(() => seen.length >= N, 20000, 'every message')
    expect(seen).toEqual(Array.from({ length: N }, (_, n) => n))
  }, 30000)

  test('groups are enforced across servers and unknown channels get message_norecipient', async () => {
    const [s1, s2] = await twoServers()
    const alpha = await client('alpha', s1.port)
    await client('gamma', s2.port)
    await expect(alpha.requestAsync('gamma', 'x', {})).rejects.toMatchObject({ code: 'ricochet.message_group' })
    await expect(alpha.requestAsync('nobody', 'x', {})).rejects.toMatchObject({ code: 'ricochet.message_norecipient' })
    // groups: true reaches an array recipient on the other server (D5 across the cluster).
    const admin = await client('admin', s2.port)
    alpha.handle('ping', (b, reply, msg) => reply.emit('response', null, msg.headers.groups))
    await expect(admin.requestAsync('alpha', 'ping', {})).resolves.toEqual(['g1'])
  }, 30000)

  test('unroutedCallback is called only when no server in the cluster holds the channel', async () => {
    const { startServer } = require('./helpers/server')
    const seen = []
    const edge = await startServer({ config: cluster('edge-local'), unrouted: (data, cb) => { seen.push(data.message.headers.to); cb('message_norecipient') } })
    try {
      const s2 = await kids.serverChild(0, cluster('edge-2'))
      const alpha = await client('alpha', edge.port)
      const beta = await client('beta', s2.port)
      beta.handle('echo', (b, reply) => reply.emit('response', null, b))
      await expect(alpha.requestAsync('beta', 'echo', { n: 1 })).resolves.toEqual({ n: 1 })
      await expect(alpha.requestAsync('nobody', 'echo', {})).rejects.toMatchObject({ code: 'ricochet.message_norecipient' })
      expect(seen).toEqual(['nobody'])
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()))
      await edge.close()
    }
  }, 30000)

  test('a channel held on one server is refused on another with auth_channel', async () => {
    const [s1, s2] = await twoServers()
    await client('alpha', s1.port)
    const dup = new Client({ timeouts: { reconnect: 5000 } })
    clients.push(dup)
    const fail = nextEvent(dup, 'authFail', 5000)
    dup.connect({ port: s2.port, ...PARTIES.alpha })
    const [{ message }] = await fail
    expect(message).toMatchObject({ auth: false, code: 'ricochet.auth_channel' })
  }, 30000)

  test('when a server is killed its channels are freed and can log in on another server', async () => {
    const [s1, s2] = await twoServers()
    const beta = await client('beta', s2.port)
    beta.handle('echo', (b, reply) => reply.emit('response', null, b))
    // alpha lives on edge-1 in a child process, then edge-1 dies.
    await kids.clientChild(s1.port, 'alpha')
    await kids.killChild(s1)
    const t0 = Date.now()
    const alpha = await client('alpha', s2.port)
    expect(Date.now() - t0).toBeLessThan(10000)
    await expect(alpha.requestAsync('beta', 'echo', { ok: 1 })).resolves.toEqual({ ok: 1 })
  }, 40000)

  test('during a NATS outage local routing goes on; after NATS returns the cluster heals', async () => {
    const [s1, s2] = await twoServers()
    const alpha = await client('alpha', s1.port)
    const delta = await client('delta', s1.port)
    const beta = await client('beta', s2.port)
    delta.handle('echo', (b, reply) => reply.emit('response', null, b))
    beta.handle('echo', (b, reply) => reply.emit('response', null, b))
    await expect(alpha.requestAsync('beta', 'echo', { n: 1 })).resolves.toEqual({ n: 1 })

    await nats.stop()
    await until(() => kids.childEvents(s1).some(([n]) => n === 'clusterDisconnected'), 10000, 'clusterDisconnected')
    await expect(alpha.requestAsync('delta', 'echo', { local: true })).resolves.toEqual({ local: true })
    await expect(alpha.requestAsync('beta', 'echo', { n: 2 }, { timeout: 3000 })).rejects.toHaveProperty('code')

    await nats.start()
    await until(() => kids.childEvents(s1).filter(([n]) => n === 'clusterConnected').length >= 2 &&
      kids.childEvents(s2).filter(([n]) => n === 'clusterConnected').length >= 2, 20000, 'both servers reconnected to NATS')
    let healed = false
    for (let i = 0; i < 50 && !healed; i++) {
      healed = await alpha.requestAsync('beta', 'echo', { n: 3 }, { timeout: 1000 }).then(() => true, () => false)
      if (!healed) await delay(200)
    }
    expect(healed).toBe(true)
  }, 60000)
})
