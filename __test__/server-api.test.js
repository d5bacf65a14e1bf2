'use strict'

// The JS API of Server: listen/address/close, callbacks, config validation and merging (D20,
// D21), events (§9, D22) and the exported error table (§7).

const net = require('node:net')
const ricochet = require('..')
const { Server, errorCodes, RicochetError } = ricochet
const { RawClient, decrypt } = require('./helpers/wire')
const { partiesAuth, waitForEvent, PARTIES } = require('./helpers/server')

let servers
let clients

beforeEach(() => {
  servers = []
  clients = []
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

/** A server with the parties' authCallback, tracked for cleanup. */
function make (config) {
  const s = new Server(config)
  s.authCallback = partiesAuth()
  servers.push(s)
  return s
}

/** Records every server event, in order, as [name, payload]. */
function record (s, names = ['clientConnected', 'clientReady', 'clientAuthFail', 'clientDisconnected',
  'clientError', 'clientEnd', 'messageError', 'invalidMessage', 'close', 'listening', 'error']) {
  const log = []
  for (const n of names) s.on(n, (p) => log.push([n, p]))
  return log
}

function listen (s, ...args) {
  return new Promise((resolve, reject) => {
    s.once('error', reject)
    s.listen(...args, (...cbArgs) => {
      s.removeListener('error', reject)
      resolve(cbArgs)
    })
  })
}

async function join (port, party) {
  const c = await RawClient.connect(port)
  clients.push(c)
  const reply = await c.auth(party)
  expect(reply.auth).toBe(true)
  return c
}

async function expectRoutes (port) {
  const a = await join(port, PARTIES.alpha)
  const b = await join(port, PARTIES.beta)
  a.message('beta', 'api.check', { ok: 1 })
  const got = await b.next()
  expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ ok: 1 })
  await Promise.all([a.close(), b.close()])
}

const { ORIGINAL_CODES } = require('./helpers/spec-codes')

describe('Server API', () => {
  describe('#listen', () => {
    test('(port, host, backlog, cb) binds 127.0.0.1 and address() reports it', async () => {
      const s = make()
      expect(s.address()).toBeNull()
      expect(s.listening).toBe(false)
      const args = await listen(s, 0, '127.0.0.1', 16)
      expect(args).toEqual([])
      const addr = s.address()
      expect(addr).toEqual({ address: '127.0.0.1', family: 'IPv4', port: expect.any(Number) })
      expect(addr.port).toBeGreaterThan(0)
      expect(s.listening).toBe(true)
      await expectRoutes(addr.port)
    })

    test('(port, cb) binds every interface and is reachable on 127.0.0.1', async () => {
      const s = make()
      await listen(s, 0)
      const addr = s.address()
      expect(['::', '0.0.0.0']).toContain(addr.address)
      expect(['IPv6', 'IPv4']).toContain(addr.family)
      expect(addr.port).toBeGreaterThan(0)
      await expectRoutes(addr.port)
    })

    test('(options {port, host, backlog}, cb)', async () => {
      const s = make()
      await listen(s, { port: 0, host: '127.0.0.1', backlog: 8 })
      expect(s.address()).toMatchObject({ address: '127.0.0.1', family: 'IPv4' })
      await expectRoutes(s.address().port)
    })

    test('port given as a string', async () => {
      const s = make()
      await listen(s, '0', '127.0.0.1')
      const port = s.address().port
      expect(port).toBeGreaterThan(0)
      // A concrete port as a string, on a second server.
      const probe = make()
      await listen(probe, 0, '127.0.0.1')
      const free = probe.address().port
      await probe.close()
      const s2 = make()
      await listen(s2, String(free), '127.0.0.1')
      expect(s2.address().port).toBe(free)
      await expectRoutes(free)
    })

    test('without a callback, the listening event fires (asynchronously)', async () => {
      const s = make()
      const log = record(s)
      const ret = s.listen(0, '127.0.0.1')
      expect(ret).toBe(s)
      expect(log).toEqual([])
      await new Promise((resolve) => s.once('listening', resolve))
      expect(s.address().port).toBeGreaterThan(0)
    })

    test('listening twice: the callback gets ricochet.server_inuse', async () => {
      const s = make()
      await listen(s, 0, '127.0.0.1')
      const port = s.address().port
      let sync = true
      const err = await new Promise((resolve) => { s.listen(0, '127.0.0.1', resolve); sync = false })
      expect(sync).toBe(false)
      expect(err).toBeInstanceOf(Error)
      expect(err.code).toBe('ricochet.server_inuse')
      expect(err.message).toBe(ORIGINAL_CODES.server_inuse)
      expect(s.address().port).toBe(port)
      await expectRoutes(port)
    })

    test('listening twice without a callback emits error with ricochet.server_inuse', async () => {
      const s = make()
      await listen(s, 0, '127.0.0.1')
      const err = await new Promise((resolve) => {
        s.once('error', resolve)
        s.listen(0, '127.0.0.1')
      })
      expect(err.code).toBe('ricochet.server_inuse')
      expect(s.listening).toBe(true)
    })

    test('listen without an authCallback throws ricochet.server_nocallback', () => {
      const s = new Server()
      servers.push(s)
      let thrown
      try {
        s.listen(0, '127.0.0.1')
      } catch (err) {
        thrown = err
      }
      expect(thrown).toBeInstanceOf(Error)
      expect(thrown.code).toBe('ricochet.server_nocallback')
      expect(s.address()).toBeNull()
      expect(s.listening).toBe(false)
    })

    test('a port in use emits error EADDRINUSE; the callback is not called and the server can retry', async () => {
      const a = make()
      await listen(a, 0, '127.0.0.1')
      const port = a.address().port
      const b = make()
      const cb = jest.fn()
      const err = await new Promise((resolve) => {
        b.once('error', resolve)
        b.listen(port, '127.0.0.1', cb)
      })
      expect(err.code).toBe('EADDRINUSE')
      expect(cb).not.toHaveBeenCalled()
      expect(b.listening).toBe(false)
      expect(b.address()).toBeNull()
      await listen(b, 0, '127.0.0.1')
      expect(b.address().port).toBeGreaterThan(0)
      expect(b.address().port).not.toBe(port)
      expect(cb).not.toHaveBeenCalled()
      await expectRoutes(b.address().port)
    })

    test('an out-of-range port throws a RangeError', () => {
      const s = make()
      expect(() => s.listen(70000, '127.0.0.1')).toThrow(RangeError)
      expect(() => s.listen(-1)).toThrow(RangeError)
      expect(s.listening).toBe(false)
    })
  })

  describe('#close', () => {
    test('close() while listen() is still binding completes and never emits listening', async () => {
      const s = make()
      const log = record(s)
      s.listen(0, '127.0.0.1')
      await s.close()
      await new Promise((resolve) => setImmediate(resolve))
      expect(s.listening).toBe(false)
      expect(s.address()).toBeNull()
      expect(log.map(([n]) => n)).toEqual(['close'])
    })

    test('disconnects every client (clientDisconnected each), then emits close; callback and Promise both settle', async () => {
      const s = make()
      const log = record(s)
      await listen(s, 0, '127.0.0.1')
      const port = s.address().port
      const a = await join(port, PARTIES.alpha)
      const b = await join(port, PARTIES.beta)
      const idle = await RawClient.connect(port)
      clients.push(idle)
      await waitForEvent(log, 'clientConnected', () => log.filter(([n]) => n === 'clientConnected').length === 3)
      const ids = log.filter(([n]) => n === 'clientConnected').map(([, p]) => p.id)
      const cb = jest.fn()
      const p = s.close(cb)
      expect(p).toBeInstanceOf(Promise)
      await p
      expect(cb).toHaveBeenCalledTimes(1)
      const closeAt = log.findIndex(([n]) => n === 'close')
      expect(closeAt).toBeGreaterThan(-1)
      const gone = log.slice(0, closeAt).filter(([n]) => n === 'clientDisconnected').map(([, x]) => x.id)
      expect(gone.sort()).toEqual([...ids].sort())
      expect(log.filter(([n]) => n === 'clientDisconnected')).toHaveLength(3)
      await Promise.all([a.ended(5000), b.ended(5000), idle.ended(5000)])
      expect(s.address()).toBeNull()
      expect(s.listening).toBe(false)
      expect(s.getClients()).toEqual([])
      await expect(RawClient.connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    })

    test('is idempotent: concurrent and repeated calls all resolve; close fires once', async () => {
      const s = make()
      const log = record(s)
      await listen(s, 0, '127.0.0.1')
      const cb1 = jest.fn()
      const cb2 = jest.fn()
      await Promise.all([s.close(cb1), s.close(cb2), s.close()])
      await s.close()
      const cb3 = jest.fn()
      await s.close(cb3)
      expect(cb1).toHaveBeenCalledTimes(1)
      expect(cb2).toHaveBeenCalledTimes(1)
      expect(cb3).toHaveBeenCalledTimes(1)
      expect(log.filter(([n]) => n === 'close')).toHaveLength(1)
    })

    test('closing a server that never listened resolves', async () => {
      const s = make()
      const cb = jest.fn()
      await s.close(cb)
      expect(cb).toHaveBeenCalledTimes(1)
      expect(s.address()).toBeNull()
    })
  })

  describe('deprecated setters', () => {
    test('auth(fn) and unrouted(fn) set the callbacks and chain', async () => {
      const s = new Server()
      servers.push(s)
      const unrouted = jest.fn((data, cb) => cb('message_group'))
      const auth = jest.fn(partiesAuth())
      expect(s.auth(auth)).toBe(s)
      expect(s.unrouted(unrouted)).toBe(s)
      expect(s.authCallback).toBe(auth)
      expect(s.unroutedCallback).toBe(unrouted)
      await listen(s, 0, '127.0.0.1')
      const a = await join(s.address().port, PARTIES.alpha)
      expect(auth).toHaveBeenCalledTimes(1)
      expect(auth.mock.calls[0][0]).toMatchObject({ publicKey: 'pub-alpha' })
      const sent = a.message('nowhere', 'x', { q: 1 }, { encrypted: false })
      const reply = await a.next()
      expect(reply.headers.id).toBe(sent.headers.id)
      expect(reply.body.code).toBe('ricochet.message_group')
      expect(unrouted).toHaveBeenCalledTimes(1)
      expect(unrouted.mock.calls[0][0].message.body).toEqual({ q: 1 })
    })
  })

  describe('config', () => {
    test.each([
      ['a non-object config', 'nope', TypeError, /config/],
      ['an unknown encryption', { encryption: 'aes-128-cbc' }, TypeError, /encryption/],
      ['a negative timeout', { timeouts: { auth: -1 } }, RangeError, /timeouts\.auth/],
      ['a negative reconnect timeout', { timeouts: { reconnect: -5 } }, RangeError, /timeouts\.reconnect/],
      ['a negative latencyBuffer', { timeouts: { latencyBuffer: -1 } }, RangeError, /timeouts\.latencyBuffer/],
      ['a non-numeric timeout', { timeouts: { message: 'soon' } }, TypeError, /timeouts\.message/],
      ['an infinite timeout', { timeouts: { authKey: Infinity } }, RangeError, /timeouts\.authKey/],
      ['non-object timeouts', { timeouts: 5 }, TypeError, /timeouts/],
      ['array timeouts', { timeouts: [1, 2] }, TypeError, /timeouts/],
      ['non-object delimiters', { delimiters: 'x' }, TypeError, /delimiters/],
      ['a tiny maxMessageSize', { maxMessageSize: 10 }, RangeError, /maxMessageSize/],
      ['a fractional maxMessageSize', { maxMessageSize: 4096.5 }, RangeError, /maxMessageSize/],
      ['a string maxConnections', { maxConnections: '10' }, TypeError, /maxConnections/]
    ])('%s throws', (_name, config, Type, pattern) => {
      let thrown
      try {
        servers.push(new Server(config))
      } catch (err) {
        thrown = err
      }
      expect(thrown).toBeInstanceOf(Type)
      expect(thrown.message).toMatch(pattern)
    })

    test('defaults are used when no config is given', () => {
      const s = make()
      expect(s.config.timeouts).toMatchObject({ reconnect: 1500, message: 5000, latencyBuffer: 500, auth: 3500, authKey: 30000 })
      expect(s.config.delimiters).toEqual({ message: '\n', encryption: '"{ENCRYPT}"', authKey: '$#AUTH#$' })
      expect(s.config.encryption).toBe('aes-256-xts')
      expect(s.config.maxMessageSize).toBe(40 * 1024 * 1024)
    })

    test('D20 a partial timeouts object keeps the other defaults (deep merge)', () => {
      const user = { timeouts: { reconnect: 1000 } }
      const s = make(user)
      const defaults = make().config.timeouts
      expect(s.config.timeouts).toEqual({ ...defaults, reconnect: 1000 })
      expect(s.config.timeouts).toMatchObject({ reconnect: 1000, message: 5000, latencyBuffer: 500, auth: 3500, authKey: 30000 })
      expect(s.config.events).toEqual({ wildcard: true, delimiter: '.', newListener: false, maxListeners: 10 })
      expect(user).toEqual({ timeouts: { reconnect: 1000 } })
      // Defaults are not shared between servers.
      const other = make()
      expect(other.config.timeouts.reconnect).toBe(1500)
    })

    test('D21 a delimiters.message other than LF is ignored with a single warning; frames still end with LF', async () => {
      const spy = jest.spyOn(process, 'emitWarning').mockImplementation(() => {})
      try {
        const s = make({ delimiters: { message: '{MESSAGE}' } })
        make({ delimiters: { message: '\r\n' } })
        const warnings = spy.mock.calls.filter(([msg]) => String(msg).includes('delimiters.message'))
        expect(warnings).toHaveLength(1)
        expect(s.config.delimiters.message).toBe('\n')
        await listen(s, 0, '127.0.0.1')
        const a = await RawClient.connect(s.address().port)
        clients.push(a)
        const bytes = []
        a.socket.on('data', (chunk) => bytes.push(chunk))
        expect(await a.auth(PARTIES.alpha)).toEqual({ auth: true, channel: 'alpha', groups: ['g1'] })
        a.message('nobody', 'x', {}, { encrypted: false })
        await a.next()
        const text = Buffer.concat(bytes).toString('utf8')
        expect(text).not.toContain('{MESSAGE}')
        expect(text.endsWith('}\n')).toBe(true)
        expect(text.split('\n')).toHaveLength(3)
      } finally {
        spy.mockRestore()
      }
    })
  })

  describe('errorCodes and RicochetError', () => {
    test('errorCodes holds the 27 original codes with their exact texts', () => {
      for (const [name, text] of Object.entries(ORIGINAL_CODES)) {
        expect([name, errorCodes[name]]).toEqual([name, text])
      }
      expect(Object.keys(ORIGINAL_CODES)).toHaveLength(27)
    })

    test('errorCodes adds the new codes; names carry no prefix', () => {
      for (const name of ['message_toolarge', 'client_slow', 'server_closed', 'server_maxconnections']) {
        expect(typeof errorCodes[name]).toBe('string')
        expect(errorCodes[name].length).toBeGreaterThan(0)
      }
      for (const name of Object.keys(errorCodes)) expect(name.startsWith('ricochet.')).toBe(false)
      expect(Object.isFrozen(errorCodes)).toBe(true)
    })

    test('RicochetError carries a ricochet.* code and the original Error text', () => {
      expect(typeof RicochetError).toBe('function')
      for (const given of ['message_self', 'ricochet.message_self']) {
        const e = new RicochetError(given)
        expect(e).toBeInstanceOf(Error)
        expect(e).toBeInstanceOf(RicochetError)
        expect(e.code).toBe('ricochet.message_self')
        expect(e.message).toBe(ORIGINAL_CODES.message_self)
        expect(e.Error).toBe(ORIGINAL_CODES.message_self)
      }
      expect(ricochet).toMatchObject({ Server, errorCodes, RicochetError })
    })
  })

  describe('events', () => {
    test('clientConnected, clientReady, clientEnd, clientDisconnected carry the connection id', async () => {
      const s = make()
      const log = record(s)
      await listen(s, 0, '127.0.0.1')
      const a = await join(s.address().port, PARTIES.alpha)
      const connected = await waitForEvent(log, 'clientConnected')
      expect(connected).toEqual({ id: expect.any(String), ip: '127.0.0.1' })
      expect(connected.id).toMatch(/^[A-Za-z0-9]{32}$/)
      expect(await waitForEvent(log, 'clientReady')).toEqual({ id: connected.id })
      expect(s.getClients()).toEqual([{ id: connected.id, ip: '127.0.0.1', channel: 'alpha', groups: ['g1'], stats: { sent: 0, received: 0 } }])
      a.socket.end()
      await a.ended(5000)
      expect(await waitForEvent(log, 'clientEnd')).toEqual({ id: connected.id, data: null })
      expect(await waitForEvent(log, 'clientDisconnected')).toEqual({ id: connected.id })
      const names = log.filter(([n]) => n.startsWith('client')).map(([n]) => n)
      expect(names).toEqual(['clientConnected', 'clientReady', 'clientEnd', 'clientDisconnected'])
      expect(s.getClients()).toEqual([])
    })

    test('D22 a reset connection fires clientError {id, Error, code} exactly once', async () => {
      const s = make()
      const log = record(s)
      await listen(s, 0, '127.0.0.1')
      const a = await join(s.address().port, PARTIES.alpha)
      const { id } = await waitForEvent(log, 'clientReady')
      a.socket.resetAndDestroy()
      await waitForEvent(log, 'clientDisconnected', (p) => p.id === id)
      const errors = log.filter(([n]) => n === 'clientError').map(([, p]) => p)
      expect(errors).toHaveLength(1)
      expect(errors[0]).toEqual({ id, Error: expect.any(String), code: 'ECONNRESET' })
      expect(log.filter(([n]) => n === 'clientDisconnected')).toHaveLength(1)
    })

    test('message and clientInput are delivered only to listeners attached at the time', async () => {
      const s = make()
      await listen(s, 0, '127.0.0.1')
      const port = s.address().port
      const a = await join(port, PARTIES.alpha)
      const b = await join(port, PARTIES.beta)
      // Routed while nobody listens: never delivered later.
      const first = a.message('beta', 'unheard', { n: 1 }, { encrypted: false })
      await b.next()
      const messages = []
      const inputs = []
      const onMessage = (p) => messages.push(p)
      const onInput = (p) => inputs.push(p)
      s.on('message', onMessage)
      s.on('clientInput', onInput)
      const second = a.message('beta', 'heard', { n: 2 }, { encrypted: false })
      const got = await b.next()
      const deadline = Date.now() + 3000
      while ((messages.length < 1 || inputs.length < 1) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      expect(messages.map((p) => p.message.headers.id)).toEqual([second.headers.id])
      expect(messages[0].message).toEqual(got)
      expect(messages[0].id).toBe(s.getClients().find((c) => c.channel === 'beta').id)
      expect(inputs.map((p) => p.message.headers.id)).toEqual([second.headers.id])
      expect(inputs[0].id).toBe(s.getClients().find((c) => c.channel === 'alpha').id)
      expect(first.headers.id).not.toBe(second.headers.id)
      s.removeListener('message', onMessage)
      s.removeListener('clientInput', onInput)
      expect(s.listenerCount('message')).toBe(0)
      a.message('beta', 'unheard.again', {}, { encrypted: false })
      await b.next()
      expect(messages).toHaveLength(1)
    })

    test('server.stats and getClients() reflect routed traffic', async () => {
      const s = make()
      await listen(s, 0, '127.0.0.1')
      const port = s.address().port
      expect(s.stats).toEqual({ messages: 0 })
      expect(s.getClients()).toEqual([])
      const a = await join(port, PARTIES.alpha)
      const b = await join(port, PARTIES.beta)
      a.message('beta', 'one', {})
      await b.next()
      b.message('alpha', 'two', {})
      await a.next()
      a.message('beta', 'three', {})
      await b.next()
      expect(s.stats).toEqual({ messages: 3 })
      const stats = Object.fromEntries(s.getClients().map((c) => [c.channel, c.stats]))
      expect(stats).toEqual({ alpha: { sent: 2, received: 1 }, beta: { sent: 1, received: 2 } })
    })
  })

  test('a plain net client that connects and leaves without a frame does not upset the server', async () => {
    const s = make()
    const log = record(s)
    await listen(s, 0, '127.0.0.1')
    const port = s.address().port
    await new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1' }, () => sock.end())
      sock.on('error', reject)
      sock.on('close', resolve)
      sock.resume()
    })
    await waitForEvent(log, 'clientDisconnected')
    await expectRoutes(port)
  })
})
