'use strict'

const { freePort } = require('./helpers/net')

// Client lifecycle: events and their payloads, connecting, reconnecting with backoff, the
// offline queue, requests failing when they cannot be sent or the connection drops, backpressure
// and close(). Real sockets on 127.0.0.1 only (PROTOCOL.md §3.4, §6.1, §9, §10 D16/D19/D20/D23).

const net = require('node:net')
const { Client, RicochetError } = require('..')
const { clearTimers, delay, nextEvent, within, until } = require('./helpers/waiting')
const { startServer, partiesAuth, PARTIES } = require('./helpers/server')

const HOST = '127.0.0.1'

// ---------------------------------------------------------------------------------------------
// Bookkeeping: everything a test opens is closed in afterEach.

let clients = []
let servers = []
let rawServers = []

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

/** A ricochet Server (via the helper) listening on a given port of 127.0.0.1. */
async function serverOnPort (port, opts = {}) {
  const s = await startServer({ ...opts, listen: false })
  servers.push(s)
  await new Promise((resolve, reject) => {
    s.server.once('error', reject)
    s.server.listen(port, HOST, () => { s.server.removeListener('error', reject); resolve() })
  })
  s.port = s.server.address().port
  return s
}

/** A plain TCP server on port 0 that plays the server side by hand. */
async function rawServer (onConnection) {
  const sockets = new Set()
  const srv = net.createServer((sock) => {
    sockets.add(sock)
    sock.on('error', () => {})
    sock.on('close', () => sockets.delete(sock))
    onConnection(sock)
  })
  await new Promise((resolve) => srv.listen(0, HOST, resolve))
  const entry = {
    port: srv.address().port,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy()
      srv.close(() => resolve())
    })
  }
  rawServers.push(entry)
  return entry
}



/** connect() options for a party of frames.json. */
function partyOpts (name, port, extra = {}) {
  const p = PARTIES[name]
  return { host: HOST, port, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey, ...extra }
}

/** Records every client event as [name, ...args]. */
const CLIENT_EVENTS = ['connected', 'reconnected', 'ready', 'authFail', 'connectionFail', 'disconnected',
  'close', 'sendError', 'receiveError', 'end', 'drain', 'lookup']
function record (client) {
  const log = []
  for (const name of CLIENT_EVENTS) client.on(name, (...args) => log.push([name, ...args]))
  return log
}
const named = (log, name) => log.filter((e) => e[0] === name)

/** A connected, ready client for `name`. */
async function readyClient (name, port, config, extra) {
  const c = newClient(config)
  const ready = nextEvent(c, 'ready')
  c.connect(partyOpts(name, port, extra))
  await ready
  return c
}

afterEach(async () => {
  const cs = clients
  const ss = servers
  const rs = rawServers
  clients = []
  servers = []
  rawServers = []
  await Promise.all(cs.map((c) => c.close()))
  await Promise.all(ss.map((s) => s.close()))
  await Promise.all(rs.map((r) => r.close()))
  clearTimers()
})

// ---------------------------------------------------------------------------------------------

describe('client events and their payloads', () => {
  test('connect() calls back on the TCP connect, then emits connected (no args) and ready {channel, groups}', async () => {
    const { port } = await newServer()
    const c = newClient()
    const log = record(c)
    const cb = jest.fn()
    const connected = nextEvent(c, 'connected')
    const ready = nextEvent(c, 'ready')
    expect(c.connect(partyOpts('beta', port), cb)).toBe(c)
    expect(await connected).toEqual([])
    const [payload] = await ready
    expect(payload).toEqual({ channel: 'beta', groups: ['g1', 'g2'] })
    expect(cb).toHaveBeenCalledTimes(1)
    expect(cb.mock.calls[0]).toEqual([])
    expect(c.ready).toBe(true)
    expect(c.channel).toBe('beta')
    expect(c.groups).toEqual(['g1', 'g2'])
    const order = log.map((e) => e[0]).filter((n) => n === 'connected' || n === 'ready')
    expect(order).toEqual(['connected', 'ready'])
    expect(named(log, 'reconnected')).toHaveLength(0)
  })

  test('ready carries groups:true for a party the server gives every group', async () => {
    const { port } = await newServer()
    const c = newClient()
    const ready = nextEvent(c, 'ready')
    c.connect(partyOpts('admin', port))
    expect((await ready)[0]).toEqual({ channel: 'admin', groups: true })
  })

  test("emits lookup(null, address, family, host) when connecting to host 'localhost'", async () => {
    const { port } = await newServer()
    const c = newClient()
    const lookup = nextEvent(c, 'lookup')
    const ready = nextEvent(c, 'ready')
    c.connect(partyOpts('alpha', port, { host: 'localhost' }))
    const [err, address, family, host] = await lookup
    expect(err).toBeNull()
    expect(host).toBe('localhost')
    expect([4, 6]).toContain(family)
    expect(net.isIP(address)).toBe(family)
    expect(['127.0.0.1', '::1']).toContain(address)
    expect((await ready)[0]).toEqual({ channel: 'alpha', groups: ['g1'] })
  })

  test('emits authFail {message: <the server\'s {auth:false} frame>} for a wrong authKey and never ready', async () => {
    const srv = await newServer()
    const c = newClient({ timeouts: { reconnect: 2000 } })
    const log = record(c)
    const authFail = nextEvent(c, 'authFail')
    const disconnected = nextEvent(c, 'disconnected')
    c.connect(partyOpts('delta', srv.port, { authKey: 'not-the-auth-key' }))
    const [payload] = await authFail
    expect(payload).toHaveProperty('message')
    expect(payload.message).toMatchObject({ auth: false })
    expect(payload.message.channel).toBeUndefined()
    expect(c.ready).toBe(false)
    expect(named(log, 'ready')).toHaveLength(0)
    expect(named(log, 'connected')).toHaveLength(1)
    // The server saw the failure too.
    await until(() => srv.events.some(([n]) => n === 'clientAuthFail'), 3000, 'clientAuthFail')
    // The connection drops after an auth failure.
    const [hadError] = await disconnected
    expect(typeof hadError).toBe('boolean')
  })

  test('emits connectionFail {err: {message, code: ECONNREFUSED}} when nothing listens, and does not call back', async () => {
    const port = await freePort()
    const c = newClient({ timeouts: { reconnect: 50 } })
    const cb = jest.fn()
    const fail = nextEvent(c, 'connectionFail')
    c.connect(partyOpts('alpha', port), cb)
    const [payload] = await fail
    expect(payload).toEqual({ err: { message: expect.any(String), code: 'ECONNREFUSED' } })
    expect(payload.err.message.length).toBeGreaterThan(0)
    // It keeps trying by itself.
    await nextEvent(c, 'connectionFail')
    expect(cb).not.toHaveBeenCalled()
    expect(c.ready).toBe(false)
  })

  test('emits end and disconnected(false) when the server closes the connection', async () => {
    const srv = await newServer()
    const c = await readyClient('alpha', srv.port, { timeouts: { reconnect: 5000 } })
    const log = record(c)
    const end = nextEvent(c, 'end')
    const disconnected = nextEvent(c, 'disconnected')
    await srv.close()
    expect(await end).toEqual([])
    const [hadError] = await disconnected
    expect(hadError).toBe(false)
    const names = log.map((e) => e[0])
    expect(names.indexOf('end')).toBeLessThan(names.indexOf('disconnected'))
    expect(c.ready).toBe(false)
  })

  test('after the server closes, emits disconnected, then reconnected and ready again when a new server listens on the same port', async () => {
    const first = await newServer()
    const port = first.port
    const c = await readyClient('alpha', port, { timeouts: { reconnect: 50, reconnectMax: 200 } })
    const log = record(c)
    const disconnected = nextEvent(c, 'disconnected')
    await first.close()
    const [hadError] = await disconnected
    expect(typeof hadError).toBe('boolean')
    expect(c.ready).toBe(false)

    const reconnected = nextEvent(c, 'reconnected')
    const ready = nextEvent(c, 'ready')
    await serverOnPort(port)
    expect(await reconnected).toEqual([])
    expect((await ready)[0]).toEqual({ channel: 'alpha', groups: ['g1'] })
    expect(c.ready).toBe(true)
    const names = log.map((e) => e[0])
    expect(names.indexOf('disconnected')).toBeLessThan(names.indexOf('reconnected'))
    expect(names.indexOf('reconnected')).toBeLessThan(names.lastIndexOf('ready'))
    // 'connected' is only for the first connection.
    expect(named(log, 'connected')).toHaveLength(0)

    // The reconnected client works: a message to itself's peer goes through.
    const beta = await readyClient('beta', port)
    const got = new Promise((resolve) => beta.handle('chat.after', (body) => resolve(body)))
    c.message('beta', 'chat.after', { n: 1 })
    expect(await within(got, 3000)).toEqual({ n: 1 })
  })

  test('emits close(false) once after close(); close() resolves and can be called again', async () => {
    const { port } = await newServer()
    const c = await readyClient('alpha', port)
    const log = record(c)
    const closeEv = nextEvent(c, 'close')
    const cb = jest.fn()
    await c.close(cb)
    expect(await closeEv).toEqual([false])
    expect(cb).toHaveBeenCalledTimes(1)
    expect(c.ready).toBe(false)
    expect(c.bufferedAmount).toBe(0)
    await expect(c.close()).resolves.toBeUndefined()
    await delay(50)
    expect(named(log, 'close')).toHaveLength(1)
    expect(named(log, 'disconnected')).toHaveLength(0)
  })

  test('close() while reconnecting stops the attempts', async () => {
    const port = await freePort()
    const c = newClient({ timeouts: { reconnect: 20, reconnectMax: 40 } })
    const log = record(c)
    c.connect(partyOpts('alpha', port))
    await nextEvent(c, 'connectionFail')
    await c.close()
    const fails = named(log, 'connectionFail').length
    await delay(300)
    expect(named(log, 'connectionFail').length).toBe(fails)
    expect(named(log, 'close')).toHaveLength(1)
  })

  test('message() before connect() emits sendError {Error, code: ricochet.client_connection, message: <headers>} at once', () => {
    const c = newClient()
    const errors = []
    c.on('sendError', (e) => errors.push(e))
    c.message('beta', 'chat.hello', { hi: 1 })
    expect(errors).toHaveLength(1)
    expect(errors[0].code).toBe('ricochet.client_connection')
    expect(typeof errors[0].Error).toBe('string')
    expect(errors[0].Error.length).toBeGreaterThan(0)
    expect(errors[0].message).toMatchObject({ to: 'beta', handle: 'chat.hello', type: 'message' })
  })

  test('message() after close() emits sendError ricochet.client_connection', async () => {
    const { port } = await newServer()
    const c = await readyClient('alpha', port)
    await c.close()
    const errors = []
    c.on('sendError', (e) => errors.push(e))
    c.message('beta', 'chat.hello', {})
    expect(errors.map((e) => e.code)).toEqual(['ricochet.client_connection'])
  })

  test('emits receiveError {Error, code, message} for bad input from the server', async () => {
    const raw = await rawServer((sock) => {
      let buf = ''
      sock.on('data', (d) => {
        buf += d
        if (!buf.includes('\n')) return
        buf = ''
        sock.write('not json at all\n')
        sock.write('{"hello":1}\n') // not an auth reply while unauthenticated
        sock.write('{"auth":true,"channel":"alpha","groups":["g1"]}\n')
        sock.write('{"headers":{"to":"someone-else","from":"beta","id":"x","type":"message"},"body":{}}\n')
      })
    })
    const c = newClient({ timeouts: { reconnect: 5000 } })
    const errors = []
    c.on('receiveError', (e) => errors.push(e))
    const ready = nextEvent(c, 'ready')
    c.connect(partyOpts('alpha', raw.port))
    await ready
    await until(() => errors.length >= 3, 3000, 'three receiveErrors')
    expect(errors[0]).toMatchObject({ code: 'ricochet.message_badjson', message: 'not json at all' })
    expect(errors[1]).toMatchObject({ code: 'ricochet.message_auth', message: { hello: 1 } })
    expect(errors[2]).toMatchObject({ code: 'ricochet.message_channel' })
    expect(errors[2].message.headers.to).toBe('someone-else')
    for (const e of errors) expect(typeof e.Error).toBe('string')
  })

  test('a connection reset emits error (to a listener) and disconnected(true)', async () => {
    const raw = await rawServer((sock) => {
      sock.once('data', () => {
        sock.write('{"auth":true,"channel":"alpha","groups":["g1"]}\n', () => {
          setTimeout(() => sock.resetAndDestroy(), 50)
        })
      })
    })
    const c = newClient({ timeouts: { reconnect: 5000 } })
    const errors = []
    c.on('error', (e) => errors.push(e))
    const ready = nextEvent(c, 'ready')
    const disconnected = nextEvent(c, 'disconnected')
    c.connect(partyOpts('alpha', raw.port))
    await ready
    expect(await disconnected).toEqual([true])
    expect(errors.length).toBeGreaterThanOrEqual(1)
    expect(errors[0]).toBeInstanceOf(Error)
    expect(errors[0].code).toBe('ECONNRESET')
  })
})

describe('connecting', () => {
  test('the first connect succeeds when the server starts 300 ms after the client', async () => {
    const port = await freePort()
    const c = newClient({ timeouts: { reconnect: 50, reconnectMax: 100 } })
    const log = record(c)
    const cb = jest.fn()
    const ready = nextEvent(c, 'ready', 8000)
    c.connect(partyOpts('alpha', port), cb)
    await delay(300)
    expect(named(log, 'connectionFail').length).toBeGreaterThanOrEqual(1)
    expect(cb).not.toHaveBeenCalled()
    await serverOnPort(port)
    expect((await ready)[0]).toEqual({ channel: 'alpha', groups: ['g1'] })
    expect(cb).toHaveBeenCalledTimes(1)
    // The first TCP connection that succeeds is 'connected', not 'reconnected'.
    expect(named(log, 'connected')).toHaveLength(1)
    expect(named(log, 'reconnected')).toHaveLength(0)
  })

  test('connecting twice calls back with ricochet.client_connected, or throws a RicochetError without a callback', async () => {
    const { port } = await newServer()
    const c = await readyClient('alpha', port)
    const err = await new Promise((resolve) => c.connect(partyOpts('alpha', port), resolve))
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('ricochet.client_connected')
    let thrown
    try {
      c.connect(partyOpts('alpha', port))
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(RicochetError)
    expect(thrown.code).toBe('ricochet.client_connected')
    // Still the same working connection.
    expect(c.ready).toBe(true)
  })

  test('connecting twice while still connecting is refused as well', async () => {
    const port = await freePort()
    const c = newClient({ timeouts: { reconnect: 50 } })
    c.connect(partyOpts('alpha', port))
    expect(() => c.connect(partyOpts('alpha', port))).toThrow(expect.objectContaining({ code: 'ricochet.client_connected' }))
  })

  test('D23: connect() without publicKey/privateKey throws TypeError and starts nothing', async () => {
    const srv = await newServer()
    const c = newClient({ timeouts: { reconnect: 50 } })
    const log = record(c)
    expect(() => c.connect({ host: HOST, port: srv.port })).toThrow(TypeError)
    expect(() => c.connect({ host: HOST, port: srv.port, publicKey: 'pub-alpha' })).toThrow(TypeError)
    expect(() => c.connect({ host: HOST, port: srv.port, privateKey: 'priv-alpha-7f3a' })).toThrow(TypeError)
    expect(() => c.connect({ host: HOST, port: srv.port, publicKey: false, privateKey: false })).toThrow(TypeError)
    expect(() => c.connect({ host: HOST, port: srv.port, publicKey: 'pub-alpha', privateKey: 42 })).toThrow(TypeError)
    await delay(200)
    expect(log).toEqual([])
    expect(srv.events.filter(([n]) => n === 'clientConnected')).toHaveLength(0)
    expect(c.ready).toBe(false)
    // Nothing was started, so a correct connect still works afterwards.
    const ready = nextEvent(c, 'ready')
    c.connect(partyOpts('alpha', srv.port))
    expect((await ready)[0].channel).toBe('alpha')
  })

  test('D20: a partial timeouts config keeps the other timeout defaults', () => {
    const c = new Client({ timeouts: { reconnect: 1000 } })
    expect(c.config.timeouts.reconnect).toBe(1000)
    expect(c.config.timeouts.message).toBe(5000)
    expect(c.config.timeouts.reconnectMax).toBe(30000)
    expect(c.config.timeouts.latencyBuffer).toBe(500)
    expect(c.config.maxQueue).toBe(1000)
    const d = new Client()
    expect(d.config.timeouts.reconnect).toBe(1500)
  })

  test('D19: reconnects after authFail back off exponentially (attempts grow apart)', async () => {
    const stamps = []
    const inner = partiesAuth()
    const srv = await newServer({
      auth: (data, cb) => {
        if (data.publicKey === PARTIES.delta.publicKey) stamps.push(Date.now())
        inner(data, cb)
      }
    })
    const c = newClient({ timeouts: { reconnect: 100, reconnectMax: 30000 } })
    const log = record(c)
    c.connect(partyOpts('delta', srv.port, { authKey: 'not-the-auth-key' }))
    await delay(1500)
    const n = stamps.length
    // Without backoff, a 100 ms delay would give ~15 attempts in 1.5 s; with it at most ~5.
    expect(n).toBeGreaterThanOrEqual(2)
    expect(n).toBeLessThan(6)
    expect(named(log, 'authFail').length).toBeGreaterThanOrEqual(2)
    const gaps = stamps.slice(1).map((t, i) => t - stamps[i])
    expect(gaps[gaps.length - 1]).toBeGreaterThanOrEqual(gaps[0])
    if (gaps.length >= 3) expect(gaps[gaps.length - 1]).toBeGreaterThan(gaps[0])
  })
})

describe('requests and the connection', () => {
  test('a pending request fails at once with ricochet.client_disconnected when the server closes', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port, { timeouts: { reconnect: 5000 } })
    const seen = new Promise((resolve) => beta.handle('slow.never', () => resolve()))
    const alpha = await readyClient('alpha', srv.port, { timeouts: { reconnect: 5000 } })
    const req = alpha.timeout(10000).request('beta', 'slow.never', {})
    const settled = req.promise().then(() => { throw new Error('resolved') }, (e) => e)
    const errEv = nextEvent(req, 'error', 9000)
    await within(seen, 3000, 'the handler never saw the request')
    const t0 = Date.now()
    await srv.close()
    const err = await within(settled, 4000, 'request not failed within 4 s of the server closing')
    expect(Date.now() - t0).toBeLessThan(4000)
    expect(err.code).toBe('ricochet.client_disconnected')
    const [payload] = await errEv
    expect(payload.code).toBe('ricochet.client_disconnected')
  })

  test('a pending request fails with ricochet.client_disconnected when the client is closed', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port)
    const seen = new Promise((resolve) => beta.handle('slow.never', () => resolve()))
    const alpha = await readyClient('alpha', srv.port)
    const p = alpha.requestAsync('beta', 'slow.never', {}, { timeout: 10000 })
    const settled = p.then(() => { throw new Error('resolved') }, (e) => e)
    await within(seen, 3000)
    await alpha.close()
    const err = await within(settled, 2000)
    expect(err.code).toBe('ricochet.client_disconnected')
  })

  test('D16: request() before connect() gives its emitter error with code ricochet.client_connection', async () => {
    const c = newClient()
    c.on('sendError', () => {})
    const req = c.request('beta', 'math.add', { a: 1, b: 2 })
    const [payload] = await within(nextEvent(req, 'error', 1000), 1500, 'request emitter never emitted error')
    expect(payload.code).toBe('ricochet.client_connection')
  })

  test('D16: requestAsync() before connect() rejects with code ricochet.client_connection', async () => {
    const c = newClient()
    const err = await within(
      c.requestAsync('beta', 'math.add', { a: 1, b: 2 }).then(() => null, (e) => e),
      1000, 'requestAsync before connect() never settled')
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('ricochet.client_connection')
  })

  test('D16: request() after close() gives its emitter error with code ricochet.client_connection', async () => {
    const { port } = await newServer()
    const c = await readyClient('alpha', port)
    await c.close()
    const sendErrors = []
    c.on('sendError', (e) => sendErrors.push(e))
    const req = c.request('beta', 'math.add', {})
    expect(sendErrors.map((e) => e.code)).toEqual(['ricochet.client_connection'])
    const [payload] = await within(nextEvent(req, 'error', 1000), 1500, 'request emitter never emitted error')
    expect(payload.code).toBe('ricochet.client_connection')
  })
})

describe('offline queue', () => {
  test('messages and a request made after connect() but before ready go out in order after ready', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port)
    const got = []
    beta.handle('seq.*', (body) => got.push(body.i))
    beta.handle('math.add', (body, reply) => reply.emit('response', null, { sum: body.a + body.b }))
    const alpha = newClient()
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    alpha.connect(partyOpts('alpha', srv.port))
    expect(alpha.ready).toBe(false)
    for (let i = 0; i < 5; i++) alpha.message('beta', 'seq.n', { i })
    const answer = alpha.requestAsync('beta', 'math.add', { a: 2, b: 3 })
    await within(answer.then((v) => expect(v).toEqual({ sum: 5 })), 5000)
    await until(() => got.length >= 5, 3000, 'five messages')
    expect(got).toEqual([0, 1, 2, 3, 4])
    expect(sendErrors).toEqual([])
  })

  test('with maxQueue 2 the third send before ready gets sendError ricochet.client_queuefull; the first two arrive', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port)
    const got = []
    beta.handle('seq.*', (body) => got.push(body.i))
    const alpha = newClient({ maxQueue: 2 })
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    alpha.connect(partyOpts('alpha', srv.port))
    alpha.message('beta', 'seq.n', { i: 0 })
    alpha.message('beta', 'seq.n', { i: 1 })
    alpha.message('beta', 'seq.n', { i: 2 })
    expect(sendErrors).toHaveLength(1)
    expect(sendErrors[0]).toMatchObject({ code: 'ricochet.client_queuefull', message: { to: 'beta', handle: 'seq.n' } })
    expect(typeof sendErrors[0].Error).toBe('string')
    await nextEvent(alpha, 'ready')
    await until(() => got.length >= 2, 3000, 'two messages')
    await delay(100)
    expect(got).toEqual([0, 1])
  })

  test('with a full offline queue a request\'s emitter gets error ricochet.client_queuefull', async () => {
    const port = await freePort()
    const alpha = newClient({ maxQueue: 1, timeouts: { reconnect: 50 } })
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    alpha.connect(partyOpts('alpha', port))
    alpha.message('beta', 'seq.n', { i: 0 })
    const req = alpha.request('beta', 'math.add', {})
    expect(sendErrors.map((e) => e.code)).toEqual(['ricochet.client_queuefull'])
    const [payload] = await within(nextEvent(req, 'error', 1000), 1500, 'request emitter never emitted error')
    expect(payload.code).toBe('ricochet.client_queuefull')
  })

  test('queued sends fail with ricochet.client_connection when the client is closed before ready', async () => {
    const port = await freePort()
    const alpha = newClient({ timeouts: { reconnect: 50 } })
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    alpha.connect(partyOpts('alpha', port))
    alpha.message('beta', 'seq.n', { i: 0 })
    const p = alpha.requestAsync('beta', 'math.add', {}).then(() => null, (e) => e)
    expect(sendErrors).toEqual([])
    await alpha.close()
    expect(sendErrors.map((e) => e.code)).toContain('ricochet.client_connection')
    const err = await within(p, 1000)
    expect(err).toBeInstanceOf(Error)
    expect(['ricochet.client_connection', 'ricochet.client_disconnected']).toContain(err.code)
  })
})

describe('backpressure', () => {
  test('bufferedAmount rises above 0 and drain fires with a small highWaterMark; every message arrives', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port)
    // Messages smaller than a batch, so a burst builds batches in JS whatever the socket takes.
    const COUNT = 300
    let received = 0
    beta.handle('bulk.data', () => { received++ })
    const alpha = await readyClient('alpha', srv.port, { highWaterMark: 64 * 1024 })
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    const drain = nextEvent(alpha, 'drain', 10000)
    const payload = 'x'.repeat(20 * 1024)
    let maxBuffered = 0
    for (let i = 0; i < COUNT; i++) {
      alpha.insecure().message('beta', 'bulk.data', { i, payload })
      maxBuffered = Math.max(maxBuffered, alpha.bufferedAmount)
    }
    expect(maxBuffered).toBeGreaterThan(0)
    expect(await drain).toEqual([])
    await until(() => received >= COUNT, 15000, 'all bulk messages')
    expect(sendErrors).toEqual([])
    await until(() => alpha.bufferedAmount === 0, 5000, 'bufferedAmount back to 0')
  })

  test('with a small maxBuffer a burst produces sendError ricochet.client_queuefull', async () => {
    const srv = await newServer()
    const beta = await readyClient('beta', srv.port)
    beta.handle('bulk.data', () => {})
    const alpha = await readyClient('alpha', srv.port, { maxBuffer: 2048 })
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    const payload = 'y'.repeat(1000)
    for (let i = 0; i < 500; i++) alpha.insecure().message('beta', 'bulk.data', { i, payload })
    // Sends are handed to the native side in batches, so failures arrive by the next tick.
    await new Promise((resolve) => setImmediate(resolve))
    expect(sendErrors.length).toBeGreaterThan(0)
    expect(sendErrors[0]).toMatchObject({ code: 'ricochet.client_queuefull', message: { to: 'beta', handle: 'bulk.data' } })
    expect(typeof sendErrors[0].Error).toBe('string')
    // Still usable afterwards.
    await until(() => alpha.bufferedAmount === 0, 5000, 'bufferedAmount back to 0')
    const got = new Promise((resolve) => beta.handle('after.burst', (b) => resolve(b)))
    alpha.message('beta', 'after.burst', { ok: true })
    expect(await within(got, 3000)).toEqual({ ok: true })
  })
})
