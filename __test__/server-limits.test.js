'use strict'

// Server and client limits added on top of ricochet.js 0.3.x: `timeouts.idle`, `keepAlive`,
// requests answered at once when their recipient leaves, slow consumers (`maxQueueSize`),
// `maxConnections` and `maxAuthFailures`. Real sockets on 127.0.0.1, servers on port 0.

const { Server, Client, errorCodes, RicochetError } = require('..')
const { clearTimers, delay, nextEvent, within, until } = require('./helpers/waiting')
const { RawClient, authFrame } = require('./helpers/wire')
const { startServer, waitForEvent, PARTIES } = require('./helpers/server')

const HOST = '127.0.0.1'

// ---------------------------------------------------------------------------------------------
// Bookkeeping: everything a test opens is closed in afterEach.

let clients = []
let servers = []
let raws = []
let readers = [] // {timer, raw} of slowBeta

function newClient (config) {
  const c = new Client(config)
  clients.push(c)
  return c
}

async function newServer (opts) {
  const s = await startServer(opts)
  servers.push(s)
  return s
}

async function rawConnect (port) {
  const r = await RawClient.connect(port, HOST)
  raws.push(r)
  return r
}

/** A raw peer logged in as `name`; resolves with {raw, reply}. */
async function rawAuthed (port, name) {
  const raw = await rawConnect(port)
  const reply = await raw.auth(PARTIES[name], { timeout: 3000 })
  expect(reply).toMatchObject({ auth: true, channel: name })
  return raw
}


/** The settled outcome of a promise: {ok, value} or {ok: false, error}. */
function settle (p) {
  return p.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }))
}

/** connect() options for a party of frames.json. */
function partyOpts (name, port, extra = {}) {
  const p = PARTIES[name]
  return { host: HOST, port, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey, ...extra }
}

/** A connected, ready client for `name`. */
async function readyClient (name, port, config) {
  const c = newClient(config)
  const ready = nextEvent(c, 'ready')
  c.connect(partyOpts(name, port))
  await ready
  return c
}

/** Records every client event as [name, ...args]. */
const CLIENT_EVENTS = ['connected', 'reconnected', 'ready', 'authFail', 'connectionFail', 'disconnected',
  'close', 'sendError', 'receiveError', 'end', 'timeout']
function record (client) {
  const log = []
  for (const name of CLIENT_EVENTS) client.on(name, (...args) => log.push([name, ...args]))
  return log
}

/** The server's connection id of the client logged in on `channel`. */
/**
 * A server with maxQueueSize 256 KiB and beta logged in raw with its socket paused, reading
 * only through `step(raw)` every `everyMs` (stopped in afterEach).
 */
async function slowBeta (everyMs, step) {
  const srv = await newServer({ config: { maxQueueSize: 256 * 1024 } })
  const raw = await rawAuthed(srv.port, 'beta')
  raw.socket.pause()
  readers.push({ timer: setInterval(() => step(raw), everyMs), raw })
  return { srv, raw, betaId: idOf(srv.server, 'beta') }
}

/** Whether the server dropped client `id` as a slow consumer. */
function droppedAsSlow (srv, id) {
  return srv.events.some(([n, p]) => n === 'clientError' && p.id === id && p.code === 'ricochet.client_slow')
}

function idOf (server, channel) {
  const c = server.getClients().find((x) => x.channel === channel)
  if (!c) throw new Error(`no client on channel ${channel}`)
  return c.id
}

const count = (events, name, pred = () => true) => events.filter(([n, p]) => n === name && pred(p)).length
const indexOf = (events, name, pred = () => true) => events.findIndex(([n, p]) => n === name && pred(p))

afterEach(async () => {
  const cs = clients
  const ss = servers
  const rs = raws
  clients = []
  servers = []
  raws = []
  for (const { timer, raw } of readers.splice(0)) {
    clearInterval(timer)
    raw.socket.resume()
  }
  await Promise.all(cs.map((c) => c.close()))
  await Promise.all(rs.map((r) => r.close()))
  await RawClient.closeAll()
  await Promise.all(ss.map((s) => s.close()))
  clearTimers()
})

// ---------------------------------------------------------------------------------------------

describe('timeouts.idle', () => {
  test('defaults to 0 (off) on Server and Client and rejects invalid values naming timeouts.idle', () => {
    expect(new Server().config.timeouts.idle).toBe(0)
    expect(new Client().config.timeouts.idle).toBe(0)
    expect(new Server({ timeouts: { idle: 250 } }).config.timeouts.idle).toBe(250)
    for (const Cls of [Server, Client]) {
      expect(() => new Cls({ timeouts: { idle: -1 } })).toThrow(RangeError)
      expect(() => new Cls({ timeouts: { idle: -1 } })).toThrow(/timeouts\.idle/)
      expect(() => new Cls({ timeouts: { idle: '100' } })).toThrow(TypeError)
      expect(() => new Cls({ timeouts: { idle: '100' } })).toThrow(/timeouts\.idle/)
    }
  })

  test('server: an authenticated connection that sends nothing is closed; clientTimeout {id} then clientDisconnected', async () => {
    const srv = await newServer({ config: { timeouts: { idle: 400 } } })
    const raw = await rawAuthed(srv.port, 'alpha')
    const id = idOf(srv.server, 'alpha')
    const started = Date.now()
    await raw.ended(5000)
    expect(Date.now() - started).toBeLessThan(5000)
    await waitForEvent(srv.events, 'clientDisconnected', (p) => p.id === id, 3000)
    const timeout = srv.events.find(([n, p]) => n === 'clientTimeout' && p.id === id)
    expect(timeout).toBeDefined()
    expect(timeout[1]).toEqual({ id })
    expect(indexOf(srv.events, 'clientTimeout', (p) => p.id === id))
      .toBeLessThan(indexOf(srv.events, 'clientDisconnected', (p) => p.id === id))
    expect(count(srv.events, 'clientTimeout', (p) => p.id === id)).toBe(1)
    expect(count(srv.events, 'clientDisconnected', (p) => p.id === id)).toBe(1)
    expect(srv.server.getClients()).toHaveLength(0)
  })

  test('server: a connection that keeps sending stays while a quiet one beside it is closed', async () => {
    const srv = await newServer({ config: { timeouts: { idle: 600 } } })
    const busy = await rawAuthed(srv.port, 'alpha')
    const busyId = idOf(srv.server, 'alpha')
    const quiet = await rawAuthed(srv.port, 'delta')
    const quietId = idOf(srv.server, 'delta')
    const stop = Date.now() + 2000 // more than three idle periods
    while (Date.now() < stop) {
      busy.message('nobody', 'ping', { t: Date.now() }, { encrypted: false })
      await busy.lastWrite
      await delay(120)
    }
    await waitForEvent(srv.events, 'clientTimeout', (p) => p.id === quietId, 3000)
    await quiet.ended(3000)
    expect(busy.closed).toBe(false)
    expect(count(srv.events, 'clientTimeout', (p) => p.id === busyId)).toBe(0)
    expect(count(srv.events, 'clientDisconnected', (p) => p.id === busyId)).toBe(0)
    expect(srv.server.getClients().map((c) => c.id)).toEqual([busyId])
    // It still routes: the busy one's frames to a missing channel are answered.
    const reply = await busy.nextMatching((f) => f.headers && f.headers.status === 'error', 3000)
    expect(reply.body).toMatchObject({ code: 'ricochet.message_norecipient' })
  })

  test('server: a quiet Client is timed out by the server and reconnects by itself', async () => {
    const srv = await newServer({ config: { timeouts: { idle: 400 } } })
    const c = newClient({ timeouts: { reconnect: 50, reconnectMax: 100 } })
    const log = record(c)
    const ready = nextEvent(c, 'ready')
    c.connect(partyOpts('alpha', srv.port))
    await ready
    const firstId = idOf(srv.server, 'alpha')
    await nextEvent(c, 'disconnected', 5000)
    await nextEvent(c, 'ready', 5000)
    await waitForEvent(srv.events, 'clientTimeout', (p) => p.id === firstId, 3000)
    await waitForEvent(srv.events, 'clientDisconnected', (p) => p.id === firstId, 3000)
    expect(log.filter((e) => e[0] === 'ready').length).toBeGreaterThanOrEqual(2)
  })

  test('client: emits timeout, then disconnected, then reconnects and is ready again', async () => {
    const srv = await newServer()
    const c = newClient({ timeouts: { idle: 400, reconnect: 50, reconnectMax: 100 } })
    const log = record(c)
    const ready = nextEvent(c, 'ready')
    c.connect(partyOpts('alpha', srv.port))
    await ready
    const firstId = idOf(srv.server, 'alpha')
    const timeout = nextEvent(c, 'timeout', 5000)
    const disconnected = nextEvent(c, 'disconnected', 5000)
    const readyAgain = nextEvent(c, 'ready', 5000)
    await timeout
    await disconnected
    const [payload] = await readyAgain
    expect(payload).toEqual({ channel: 'alpha', groups: ['g1'] })
    const names = log.map((e) => e[0])
    const iTimeout = names.indexOf('timeout')
    const iDisc = names.indexOf('disconnected')
    const iReady2 = names.indexOf('ready', iDisc)
    expect(iTimeout).toBeGreaterThan(names.indexOf('ready'))
    expect(iTimeout).toBeLessThan(iDisc)
    expect(iDisc).toBeLessThan(iReady2)
    // The server saw the first connection go (the server itself has no idle limit).
    await waitForEvent(srv.events, 'clientDisconnected', (p) => p.id === firstId, 3000)
    expect(count(srv.events, 'clientTimeout')).toBe(0)
    expect(c.ready).toBe(true)
  })

  test('client: a client that keeps receiving frames does not time out', async () => {
    const srv = await newServer()
    const quietOne = await readyClient('alpha', srv.port, { timeouts: { idle: 600, reconnect: 50 } })
    const log = record(quietOne)
    let got = 0
    quietOne.handle('tick', () => { got++ })
    const sender = await readyClient('delta', srv.port)
    const stop = Date.now() + 2000
    let sent = 0
    while (Date.now() < stop) {
      sender.message('alpha', 'tick', { n: sent++ })
      await delay(120)
    }
    await until(() => got === sent, 3000, 'every tick')
    expect(log.filter((e) => e[0] === 'timeout')).toHaveLength(0)
    expect(log.filter((e) => e[0] === 'disconnected')).toHaveLength(0)
    expect(quietOne.ready).toBe(true)
  })
})

// ---------------------------------------------------------------------------------------------

describe('keepAlive', () => {
  test('defaults to 30000 and accepts 0 and positive values on Server and Client', () => {
    for (const Cls of [Server, Client]) {
      expect(new Cls().config.keepAlive).toBe(30000)
      expect(new Cls({ keepAlive: 0 }).config.keepAlive).toBe(0)
      expect(new Cls({ keepAlive: 1000 }).config.keepAlive).toBe(1000)
    }
  })

  test('invalid values throw RangeError/TypeError naming keepAlive', () => {
    for (const Cls of [Server, Client]) {
      expect(() => new Cls({ keepAlive: -1 })).toThrow(RangeError)
      expect(() => new Cls({ keepAlive: -1 })).toThrow(/keepAlive/)
      expect(() => new Cls({ keepAlive: Infinity })).toThrow(RangeError)
      expect(() => new Cls({ keepAlive: '1000' })).toThrow(TypeError)
      expect(() => new Cls({ keepAlive: '1000' })).toThrow(/keepAlive/)
      expect(() => new Cls({ keepAlive: NaN })).toThrow(TypeError)
      expect(() => new Cls({ keepAlive: null })).toThrow(TypeError)
    }
  })

  test.each([1000, 0])('a server and clients with keepAlive %i connect and exchange a request', async (ka) => {
    const srv = await newServer({ config: { keepAlive: ka } })
    const beta = await readyClient('beta', srv.port, { keepAlive: ka })
    beta.handle('echo', (body, reply) => reply.emit('response', null, { echo: body.v }))
    const alpha = await readyClient('alpha', srv.port, { keepAlive: ka })
    await expect(alpha.requestAsync('beta', 'echo', { v: ka }, { timeout: 3000 })).resolves.toEqual({ echo: ka })
  })
})

// ---------------------------------------------------------------------------------------------

describe('requests owed by a client that disconnects are answered at once', () => {
  test('beta (Client) closes with a request pending: alpha rejects with ricochet.message_norecipient well before its timeout', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port)
    const seen = []
    beta.handle('never', (body) => { seen.push(body) })
    const alpha = await readyClient('alpha', srv.port)
    const alphaLog = record(alpha)
    const outcome = settle(alpha.requestAsync('beta', 'never', { q: 1 }, { timeout: 10000 }))
    await until(() => seen.length === 1, 3000, 'the request at beta')
    const started = Date.now()
    await beta.close()
    const res = await within(outcome, 3000, 'request not answered within 3 s of beta leaving')
    expect(Date.now() - started).toBeLessThan(3000)
    expect(res.ok).toBe(false)
    expect(res.error).toBeInstanceOf(RicochetError)
    expect(res.error.code).toBe('ricochet.message_norecipient')
    expect(alpha.ready).toBe(true)
    expect(alphaLog.filter((e) => e[0] === 'disconnected')).toHaveLength(0)
  })

  test('beta (RawClient) just closes its socket with a request pending: alpha rejects with ricochet.message_norecipient', async () => {
    const srv = await newServer()
    const raw = await rawAuthed(srv.port, 'beta')
    const alpha = await readyClient('alpha', srv.port)
    const outcome = settle(alpha.requestAsync('beta', 'never', { q: 2 }, { timeout: 10000 }))
    const req = await raw.nextMatching((f) => f.headers && f.headers.type === 'request', 3000)
    expect(req.headers).toMatchObject({ from: 'alpha', handle: 'never', timeout: 10000 })
    const started = Date.now()
    await raw.close()
    const res = await within(outcome, 3000, 'request not answered within 3 s of beta leaving')
    expect(Date.now() - started).toBeLessThan(3000)
    expect(res.ok).toBe(false)
    expect(res.error.code).toBe('ricochet.message_norecipient')
  })

  test('a request answered before beta leaves gets nothing extra (no receiveError, no error on the request)', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port)
    beta.handle('echo', (body, reply) => reply.emit('response', null, { echo: body.v }))
    const alpha = await readyClient('alpha', srv.port)
    const alphaLog = record(alpha)
    const req = alpha.timeout(10000).request('beta', 'echo', { v: 7 })
    const reqEvents = []
    for (const n of ['update', 'response', 'success', 'fail', 'error', 'timeout']) {
      req.on(n, (...args) => reqEvents.push([n, ...args]))
    }
    await until(() => reqEvents.some((e) => e[0] === 'success'), 3000, 'the response')
    const betaId = idOf(srv.server, 'beta')
    await beta.close()
    await waitForEvent(srv.events, 'clientDisconnected', (p) => p.id === betaId, 3000)
    await delay(500)
    expect(alphaLog.filter((e) => e[0] === 'receiveError')).toHaveLength(0)
    expect(reqEvents.map((e) => e[0])).toEqual(['response', 'success'])
    expect(reqEvents[1][1]).toEqual({ echo: 7 })
  })

  test('an update and then beta leaving: the request is still answered with ricochet.message_norecipient', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port)
    beta.handle('slow', (body, reply) => reply.emit('update', { progress: 0.5 }))
    const alpha = await readyClient('alpha', srv.port)
    const updates = []
    const outcome = settle(alpha.requestAsync('beta', 'slow', {}, { timeout: 10000, onUpdate: (u) => updates.push(u) }))
    await until(() => updates.length === 1, 3000, 'the update')
    expect(updates[0]).toEqual({ progress: 0.5 })
    const started = Date.now()
    await beta.close()
    const res = await within(outcome, 3000, 'request not answered within 3 s of beta leaving')
    expect(Date.now() - started).toBeLessThan(3000)
    expect(res.ok).toBe(false)
    expect(res.error.code).toBe('ricochet.message_norecipient')
  })
})

// ---------------------------------------------------------------------------------------------

describe('slow consumer (maxQueueSize)', () => {
  test('maxQueueSize must be an integer >= 1024', () => {
    expect(() => new Server({ maxQueueSize: 1023 })).toThrow(RangeError)
    expect(() => new Server({ maxQueueSize: 1023 })).toThrow(/maxQueueSize/)
    expect(new Server({ maxQueueSize: 1024 }).config.maxQueueSize).toBe(1024)
  })

  test('a beta that never reads is dropped with clientError ricochet.client_slow; its pending request fails with ricochet.client_slow; alpha and delta go on', async () => {
    const srv = await newServer({ config: { maxQueueSize: 65536 } })
    const raw = await rawAuthed(srv.port, 'beta')
    const betaId = idOf(srv.server, 'beta')
    raw.socket.pause() // beta stops reading

    const delta = await readyClient('delta', srv.port)
    const deltaGot = []
    delta.handle('side', (body) => deltaGot.push(body.n))
    delta.handle('ping', (body, reply) => reply.emit('response', null, { pong: body.n }))

    const alpha = await readyClient('alpha', srv.port)
    const alphaLog = record(alpha)
    // A request beta owes when it is dropped (routed before the flood, so it is queued for beta).
    const pending = settle(alpha.requestAsync('beta', 'owed', {}, { timeout: 15000 }))

    const big = 'x'.repeat(10 * 1024)
    const isSlow = () => droppedAsSlow(srv, betaId)
    let floods = 0
    let side = 0
    const deadline = Date.now() + 20000
    while (!isSlow() && floods < 12000 && Date.now() < deadline) {
      for (let i = 0; i < 40; i++) alpha.insecure().message('beta', 'flood', { n: floods++, big })
      alpha.message('delta', 'side', { n: side++ })
      await delay(2)
    }
    await waitForEvent(srv.events, 'clientError', (p) => p.id === betaId && p.code === 'ricochet.client_slow', 5000)
    await waitForEvent(srv.events, 'clientDisconnected', (p) => p.id === betaId, 5000)
    const err = srv.events.find(([n, p]) => n === 'clientError' && p.id === betaId)[1]
    expect(err).toMatchObject({ id: betaId, code: 'ricochet.client_slow', Error: errorCodes.client_slow })
    expect(count(srv.events, 'clientError', (p) => p.id === betaId)).toBe(1)
    expect(indexOf(srv.events, 'clientError', (p) => p.id === betaId))
      .toBeLessThan(indexOf(srv.events, 'clientDisconnected', (p) => p.id === betaId))

    // The request beta owed is answered at once with client_slow.
    const res = await within(pending, 3000, 'owed request not answered')
    expect(res.ok).toBe(false)
    expect(res.error.code).toBe('ricochet.client_slow')

    // alpha was not disconnected and still works; delta kept receiving everything.
    expect(alphaLog.filter((e) => e[0] === 'disconnected')).toHaveLength(0)
    expect(alpha.ready).toBe(true)
    await until(() => deltaGot.length === side, 5000, 'every side message at delta')
    expect(deltaGot).toEqual([...Array(side).keys()])
    await expect(alpha.requestAsync('delta', 'ping', { n: 1 }, { timeout: 3000 })).resolves.toEqual({ pong: 1 })
    expect(srv.server.getClients().map((c) => c.channel).sort()).toEqual(['alpha', 'delta'])

    // Once beta reads again it finds the connection closed.
    raw.socket.resume()
    await raw.ended(10000)
  }, 40000)

  test('a receiver that only trickles (under 1 MiB/s) is still dropped as slow instead of holding its senders back; other traffic resumes', async () => {
    // beta takes 4 KiB every 10 ms (~400 KiB/s): never stalled for 500 ms, far slower than
    // alpha sends and below the 1 MiB/s a paced receiver must keep up.
    const { srv, betaId } = await slowBeta(10, (raw) => raw.socket.read(4096))
    const delta = await readyClient('delta', srv.port)
    const deltaGot = []
    delta.handle('side', (body) => deltaGot.push(body.n))
    const alpha = await readyClient('alpha', srv.port)
    const big = 'x'.repeat(10 * 1024)
    const isSlow = () => droppedAsSlow(srv, betaId)
    const t0 = Date.now()
    let side = 0
    let n = 0
    while (!isSlow() && Date.now() - t0 < 20000) {
      for (let i = 0; i < 20; i++) alpha.insecure().message('beta', 'flood', { n: n++, big })
      alpha.message('delta', 'side', { n: side++ })
      while (alpha.bufferedAmount > 1024 * 1024 && !isSlow()) await delay(5)
      await delay(2)
    }
    expect(isSlow()).toBe(true)
    expect(Date.now() - t0).toBeLessThan(15000)
    // Everything alpha sent to delta arrives, the part held back while paced included.
    await until(() => deltaGot.length === side, 10000, 'every side message at delta')
    expect(deltaGot).toEqual([...Array(side).keys()])
  }, 40000)

  test('a sender faster than a receiver that reads slowly is paced: the receiver gets everything and is not dropped, though 80x maxQueueSize passes', async () => {
    // beta reads in short bursts: 3 ms out of every 15.
    const { srv, raw, betaId } = await slowBeta(15, (raw) => {
      raw.socket.resume()
      setTimeout(() => raw.socket.pause(), 3)
    })
    const alpha = await readyClient('alpha', srv.port)
    const big = 'x'.repeat(10 * 1024)
    const total = 2000 // ~20 MiB, well past what the kernel socket buffers hold
    for (let n = 0; n < total; n++) {
      alpha.insecure().message('beta', 'flood', { n, big })
      while (alpha.bufferedAmount > 512 * 1024) await delay(2)
    }
    const floods = () => raw.lines.filter((l) => l.includes('"flood"')).length
    await until(() => floods() === total, 30000, 'every flood message at beta')
    expect(srv.events.filter(([n, p]) => n === 'clientError' && p.id === betaId)).toEqual([])
    expect(srv.server.getClients().map((c) => c.channel).sort()).toEqual(['alpha', 'beta'])
  }, 40000)
})

// ---------------------------------------------------------------------------------------------

describe('maxConnections', () => {
  test('maxConnections must be an integer >= 1', () => {
    expect(() => new Server({ maxConnections: 0 })).toThrow(RangeError)
    expect(() => new Server({ maxConnections: 0 })).toThrow(/maxConnections/)
    expect(() => new Server({ maxConnections: 2.5 })).toThrow(RangeError)
  })

  test('the 4th connection gets {auth:false, code:server_maxconnections}, is closed, and clientRejected fires; after one leaves a new one is accepted', async () => {
    const srv = await newServer({ config: { maxConnections: 3 } })
    const a = await rawAuthed(srv.port, 'alpha')
    await rawAuthed(srv.port, 'beta')
    const d = await rawAuthed(srv.port, 'delta')
    expect(srv.server.getClients()).toHaveLength(3)
    expect(count(srv.events, 'clientConnected')).toBe(3)

    const fourth = await rawConnect(srv.port)
    const line = await fourth.next(3000)
    expect(line).toEqual({ auth: false, code: 'ricochet.server_maxconnections', error: errorCodes.server_maxconnections })
    expect(JSON.parse(fourth.lines[0])).toEqual(line)
    await fourth.ended(3000)
    const rejected = await waitForEvent(srv.events, 'clientRejected', () => true, 3000)
    expect(rejected).toEqual({ ip: HOST, Error: errorCodes.server_maxconnections, code: 'ricochet.server_maxconnections' })
    expect(count(srv.events, 'clientConnected')).toBe(3)
    expect(a.closed).toBe(false)

    // One of the three leaves: a new connection is accepted and can log in.
    const deltaId = idOf(srv.server, 'delta')
    await d.close()
    await waitForEvent(srv.events, 'clientDisconnected', (p) => p.id === deltaId, 3000)
    const again = await rawAuthed(srv.port, 'delta')
    expect(again.closed).toBe(false)
    expect(count(srv.events, 'clientConnected')).toBe(4)
    expect(count(srv.events, 'clientRejected')).toBe(1)
  })

  test('a Client refused for maxConnections sees authFail with code ricochet.server_maxconnections', async () => {
    const srv = await newServer({ config: { maxConnections: 1 } })
    await rawAuthed(srv.port, 'alpha')
    const c = newClient({ timeouts: { reconnect: 5000 } })
    const authFail = nextEvent(c, 'authFail')
    c.connect(partyOpts('delta', srv.port))
    const [payload] = await authFail
    expect(payload.message).toMatchObject({ auth: false, code: 'ricochet.server_maxconnections' })
    await waitForEvent(srv.events, 'clientRejected', (p) => p.code === 'ricochet.server_maxconnections', 3000)
    expect(c.ready).toBe(false)
  })
})

// ---------------------------------------------------------------------------------------------

describe('maxAuthFailures', () => {
  /** One failed login (wrong authKey) on a new socket; returns the reply. */
  async function failOnce (port, name = 'alpha') {
    const raw = await rawConnect(port)
    const reply = await raw.auth({ ...PARTIES[name], authKey: 'wrong-auth-key' }, { timeout: 3000 })
    await raw.ended(3000)
    return reply
  }

  test('defaults to 30 and must be an integer >= 0', () => {
    expect(new Server().config.maxAuthFailures).toBe(30)
    expect(new Server({ maxAuthFailures: 0 }).config.maxAuthFailures).toBe(0)
    expect(() => new Server({ maxAuthFailures: -1 })).toThrow(RangeError)
    expect(() => new Server({ maxAuthFailures: -1 })).toThrow(/maxAuthFailures/)
    expect(() => new Server({ maxAuthFailures: 1.5 })).toThrow(RangeError)
    expect(() => new Server({ maxAuthFailures: '3' })).toThrow(TypeError)
  })

  test('after 3 failed logins the next connection from 127.0.0.1 is refused with ricochet.auth_ratelimit, even with a correct key', async () => {
    const srv = await newServer({ config: { maxAuthFailures: 3 } })
    for (let i = 0; i < 3; i++) {
      const reply = await failOnce(srv.port)
      expect(reply).toMatchObject({ auth: false, code: 'ricochet.auth_authkey' })
    }
    await until(() => count(srv.events, 'clientAuthFail') === 3, 3000, '3 clientAuthFail events')
    expect(count(srv.events, 'clientRejected')).toBe(0)

    const raw = await rawConnect(srv.port)
    // A correct auth frame; the write may race the server's close, so its outcome is ignored.
    raw.send(authFrame(PARTIES.alpha)).catch(() => {})
    const line = await raw.next(3000)
    expect(line).toEqual({ auth: false, code: 'ricochet.auth_ratelimit', error: errorCodes.auth_ratelimit })
    await raw.ended(3000)
    expect(raw.frames.some((f) => f.auth === true)).toBe(false)
    const rejected = await waitForEvent(srv.events, 'clientRejected', () => true, 3000)
    expect(rejected).toEqual({ ip: HOST, Error: errorCodes.auth_ratelimit, code: 'ricochet.auth_ratelimit' })
    expect(count(srv.events, 'clientConnected')).toBe(3)
    expect(count(srv.events, 'clientReady')).toBe(0)
  })

  test('a Client with a correct key is refused too: authFail with code ricochet.auth_ratelimit', async () => {
    const srv = await newServer({ config: { maxAuthFailures: 3 } })
    for (let i = 0; i < 3; i++) await failOnce(srv.port, 'delta')
    const c = newClient({ timeouts: { reconnect: 5000 } })
    const authFail = nextEvent(c, 'authFail')
    c.connect(partyOpts('alpha', srv.port))
    const [payload] = await authFail
    expect(payload.message).toMatchObject({ auth: false, code: 'ricochet.auth_ratelimit' })
    await waitForEvent(srv.events, 'clientRejected', (p) => p.code === 'ricochet.auth_ratelimit', 3000)
    expect(c.ready).toBe(false)
    expect(count(srv.events, 'clientReady')).toBe(0)
  })

  test('below the limit (2 of 3 failures) a correct login still works', async () => {
    const srv = await newServer({ config: { maxAuthFailures: 3 } })
    await failOnce(srv.port)
    await failOnce(srv.port)
    const raw = await rawAuthed(srv.port, 'alpha')
    expect(raw.closed).toBe(false)
    expect(count(srv.events, 'clientRejected')).toBe(0)
  })

  test('with maxAuthFailures 0 there is no limit: 10 failures, then a successful login', async () => {
    const srv = await newServer({ config: { maxAuthFailures: 0 } })
    for (let i = 0; i < 10; i++) {
      const reply = await failOnce(srv.port)
      expect(reply).toMatchObject({ auth: false, code: 'ricochet.auth_authkey' })
    }
    // clientAuthFail may be delivered a moment after the reply.
    await until(() => count(srv.events, 'clientAuthFail') === 10, 3000, '10 clientAuthFail events')
    const raw = await rawAuthed(srv.port, 'alpha')
    expect(raw.closed).toBe(false)
    expect(count(srv.events, 'clientRejected')).toBe(0)
    await waitForEvent(srv.events, 'clientReady', () => true, 3000)
    expect(count(srv.events, 'clientReady')).toBe(1)
  })
})

// ---------------------------------------------------------------------------------------------

describe('errorCodes', () => {
  test('include auth_ratelimit (and the other limit codes), usable as RicochetError codes', () => {
    expect(typeof errorCodes.auth_ratelimit).toBe('string')
    expect(errorCodes.auth_ratelimit.length).toBeGreaterThan(0)
    for (const name of ['client_slow', 'server_maxconnections', 'message_norecipient']) {
      expect(typeof errorCodes[name]).toBe('string')
    }
    const e = new RicochetError('auth_ratelimit')
    expect(e).toBeInstanceOf(Error)
    expect(e.code).toBe('ricochet.auth_ratelimit')
    expect(e.Error).toBe(errorCodes.auth_ratelimit)
  })
})
