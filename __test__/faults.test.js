'use strict'

// Faults and hostile input (README "Behaviour under failure").
//
// Part 1 runs the server in a child process (helpers/server-process.js) so it can really die:
// SIGKILL mid-traffic and a restart on the same port, a responder killed mid-request, and a
// receiver that stops reading while the server's RSS is watched from /proc.
// Part 2 throws hostile input at an in-process server: deep JSON nesting, wrong header types,
// replayed auth frames, tampered XTS ciphertext, connection churn and sockets that never log in.
// Real sockets on 127.0.0.1 only; every child, client, socket and server is closed in afterEach.

const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { Client } = require('..')
const { RawClient, authFrame, decrypt, encrypt, newId, loadFrames } = require('./helpers/wire')
const { startServer, waitForEvent, PARTIES } = require('./helpers/server')

const HOST = '127.0.0.1'
const { makeChildren } = require('./helpers/children')
const { rawSession } = require('./helpers/raw-session')
const { clearTimers, delay, nextEvent, within, until } = require('./helpers/waiting')

const kids = makeChildren()
const { childMessage, serverChild, clientChild, childEvents, killChild } = kids
const MiB = 1024 * 1024

jest.setTimeout(60000)

// ---------------------------------------------------------------------------------------------
// Bookkeeping: everything a test opens is closed in afterEach, also when the test failed.

let clients = []
let raws = []
let sockets = []
let ctx = null

afterEach(async () => {
  const cs = clients
  const rs = raws
  const ss = sockets
  clients = []
  raws = []
  sockets = []
  await Promise.all(cs.map((c) => c.close().catch(() => {})))
  await Promise.all(rs.map((r) => r.close()))
  await RawClient.closeAll()
  for (const s of ss) s.destroy()
  await kids.killAll()
  await session.close()
  if (ctx) await ctx.close()
  ctx = null
  clearTimers()
})

function newClient (config) {
  const c = new Client(config)
  c.on('error', () => {})
  clients.push(c)
  return c
}


/** The settled outcome of a promise: {ok, value} or {ok: false, error}. */
function settle (p) {
  return p.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }))
}

function partyOpts (name, port) {
  const p = PARTIES[name]
  return { host: HOST, port, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey }
}

/** Records client events as [name, ...args]. */
const CLIENT_EVENTS = ['connected', 'reconnected', 'ready', 'authFail', 'connectionFail', 'disconnected', 'close']
function record (client) {
  const log = []
  for (const name of CLIENT_EVENTS) client.on(name, (...args) => log.push([name, ...args]))
  return log
}
const named = (log, name) => log.filter((e) => e[0] === name)

/** A connected, ready client for `name`. */
async function readyClient (name, port, config) {
  const c = newClient(config)
  const ready = nextEvent(c, 'ready', 10000)
  c.connect(partyOpts(name, port))
  await ready
  return c
}

// ---------------------------------------------------------------------------------------------
// Child processes (helpers/server-process.js)

/** Forks the helper; `messages` collects everything it sends over IPC. */
/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS). */
function rssOf (pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (!m) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}

/**
 * Sends `total` bytes from `client` to `channel` as 64 KiB plaintext messages, keeping at most
 * 8 MiB waiting in the client; resolves with the byte count once the socket took everything.
 */
async function flood (client, channel, total) {
  const big = 'x'.repeat(64 * 1024)
  let bytes = 0
  let n = 0
  while (bytes < total) {
    if (client.bufferedAmount > 8 * MiB) {
      await delay(2)
      continue
    }
    client.insecure().message(channel, 'flood', { n: n++, big })
    bytes += big.length
    if (n % 32 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  await until(() => client.bufferedAmount === 0, 30000, 'the client to hand over the flood')
  return bytes
}

// ---------------------------------------------------------------------------------------------
// In-process server helpers (part 2)

const session = rawSession()
const { connect, connId } = session
const join = (party) => session.join(party, { timeout: 5000 })

async function start (opts = {}) {
  ctx = await session.start(opts)
  return ctx
}





/**
 * Everything `c` sent before has been handled (and its events delivered) once this resolves:
 * a self-addressed frame is answered with `message_self`, in order with the connection's frames.
 */
async function barrier (c, channel) {
  const f = c.message(channel, 'barrier', {}, { encrypted: false })
  const reply = await c.nextMatching((m) => m.headers && m.headers.id === f.headers.id, 10000)
  expect(reply.body.code).toBe('ricochet.message_self')
  await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_self' &&
    p.raw.message.headers.id === f.headers.id, 5000)
}

/** alpha → beta still works (raw peers). */
async function expectPair (a, b) {
  const sent = a.message('beta', 'still.works', { ok: true })
  const got = await b.nextMatching((f) => f.headers && f.headers.id === sent.headers.id, 5000)
  expect(got.headers).toMatchObject({ from: 'alpha', groups: ['g1'] })
  expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ ok: true })
}

/** A fresh alpha/beta pair logs in and exchanges a message. */
async function freshPairWorks () {
  const a = await join(PARTIES.alpha)
  const b = await join(PARTIES.beta)
  await expectPair(a, b)
  return { a, b }
}

/** A plain socket: connect, then close; resolves once closed. */
function connectAndClose (port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: HOST })
    sockets.push(s)
    s.on('error', (err) => reject(err))
    s.once('connect', () => s.destroy())
    s.once('close', () => resolve())
  })
}

// =============================================================================================
// Part 1: a server in a child process

describe('faults with the server in a child process', () => {
  test('server SIGKILLed mid-traffic: the pending request fails fast with client_disconnected, both clients see disconnected, then reconnect to a new server on the same port and traffic resumes', async () => {
    const first = await serverChild(0)
    const port = first.port
    const cfg = { timeouts: { reconnect: 50, reconnectMax: 200 } }

    const beta = newClient(cfg)
    const betaLog = record(beta)
    const seen = []
    let flowed = 0
    beta.handle('never', (body) => { seen.push(body) })
    beta.handle('flow.n', () => { flowed++ })
    beta.handle('echo', (body, reply) => reply.emit('response', null, { echo: body.v }))
    const betaReady = nextEvent(beta, 'ready', 10000)
    beta.connect(partyOpts('beta', port))
    await betaReady

    const alpha = newClient(cfg)
    const alphaLog = record(alpha)
    alpha.on('sendError', () => {}) // sends into the dying connection may fail; not under test
    const alphaReady = nextEvent(alpha, 'ready', 10000)
    alpha.connect(partyOpts('alpha', port))
    await alphaReady

    // alpha streams messages to beta until the server dies.
    let stop = false
    let sent = 0
    const pump = (async () => {
      while (!stop) {
        if (alpha.ready) for (let i = 0; i < 20; i++) alpha.message('beta', 'flow.n', { i: sent++ })
        await delay(5)
      }
    })()
    await until(() => flowed >= 100, 10000, 'traffic to beta')

    const pending = settle(alpha.requestAsync('beta', 'never', { q: 1 }, { timeout: 10000 }))
    await until(() => seen.length === 1, 5000, 'the request at beta')

    const alphaDown = nextEvent(alpha, 'disconnected', 8000)
    const betaDown = nextEvent(beta, 'disconnected', 8000)
    const killedAt = Date.now()
    first.child.kill('SIGKILL')

    const res = await within(pending, 5000, 'pending request not failed within 5 s of the server dying')
    expect(Date.now() - killedAt).toBeLessThan(5000) // its own timer is 10 s
    expect(res.ok).toBe(false)
    expect(res.error.code).toBe('ricochet.client_disconnected')
    await alphaDown
    await betaDown
    expect(await first.exit).toMatchObject({ signal: 'SIGKILL' })
    stop = true
    await pump

    // A new server process on the same port: both clients come back by themselves.
    const alphaBack = nextEvent(alpha, 'ready', 20000)
    const betaBack = nextEvent(beta, 'ready', 20000)
    const second = await serverChild(port)
    expect(second.port).toBe(port)
    expect((await alphaBack)[0]).toEqual({ channel: 'alpha', groups: ['g1'] })
    expect((await betaBack)[0]).toEqual({ channel: 'beta', groups: ['g1', 'g2'] })
    expect(named(alphaLog, 'reconnected').length).toBeGreaterThanOrEqual(1)
    expect(named(betaLog, 'reconnected').length).toBeGreaterThanOrEqual(1)

    // Traffic resumes: a new request succeeds and messages flow again.
    await expect(alpha.requestAsync('beta', 'echo', { v: 42 }, { timeout: 5000 })).resolves.toEqual({ echo: 42 })
    const before = flowed
    alpha.message('beta', 'flow.n', { i: -1 })
    await until(() => flowed > before, 5000, 'a message after the restart')
    await childMessage(second, (m) => m.type === 'event' && m.name === 'clientReady', 5000, 'clientReady at the new server')
  })

  test.each([
    ['a Client in a child process that is SIGKILLed', 'child'],
    ['a RawClient whose socket is reset (RST)', 'raw']
  ])('a responder (%s) killed mid-request: the request fails at once with message_norecipient', async (_label, mode) => {
    const srv = await serverChild(0)
    let kill
    let requestArrived
    if (mode === 'child') {
      const b = await clientChild(srv.port, 'beta')
      kill = () => b.child.kill('SIGKILL')
      requestArrived = () => childMessage(b, (m) => m.type === 'request', 5000, 'the request at beta')
    } else {
      const raw = await RawClient.connect(srv.port, HOST)
      raws.push(raw)
      expect(await raw.auth(PARTIES.beta, { timeout: 5000 })).toMatchObject({ auth: true, channel: 'beta' })
      kill = () => raw.socket.resetAndDestroy()
      requestArrived = () => raw.nextMatching((f) => f.headers && f.headers.type === 'request', 5000)
    }
    const alpha = await readyClient('alpha', srv.port)
    const alphaLog = record(alpha)
    const outcome = settle(alpha.requestAsync('beta', 'never', { q: 2 }, { timeout: 10000 }))
    await requestArrived()

    const killedAt = Date.now()
    kill()
    const res = await within(outcome, 5000, 'request not answered within 5 s of beta dying')
    expect(Date.now() - killedAt).toBeLessThan(5000)
    expect(res.ok).toBe(false)
    expect(res.error.code).toBe('ricochet.message_norecipient')
    expect(alpha.ready).toBe(true)
    expect(named(alphaLog, 'disconnected')).toHaveLength(0)

    // The server dropped beta: a new beta can take the channel and answer.
    await until(() => childEvents(srv).filter(([n]) => n === 'clientDisconnected').length >= 1, 5000, 'clientDisconnected')
    const beta2 = await readyClient('beta', srv.port)
    beta2.handle('echo', (body, reply) => reply.emit('response', null, { echo: body.v }))
    await expect(alpha.requestAsync('beta', 'echo', { v: 7 }, { timeout: 5000 })).resolves.toEqual({ echo: 7 })
  })

  test('a receiver that stops reading: server RSS stays bounded while 100 MB are sent to it, it is dropped with client_slow, alpha goes on', async () => {
    const srv = await serverChild(0, { maxQueueSize: 4 * MiB })
    const raw = await RawClient.connect(srv.port, HOST)
    raws.push(raw)
    expect(await raw.auth(PARTIES.beta, { timeout: 5000 })).toMatchObject({ auth: true, channel: 'beta' })
    const betaId = (await childMessage(srv, (m) => m.type === 'event' && m.name === 'clientReady', 5000)).payload.id
    raw.socket.pause() // beta stops reading

    const delta = await readyClient('delta', srv.port)
    delta.handle('ping', (body, reply) => reply.emit('response', null, { pong: body.n }))
    const alpha = await readyClient('alpha', srv.port)
    const alphaLog = record(alpha)
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    // Warm up the server's paths once so allocator start-up is not counted as growth.
    await expect(alpha.requestAsync('delta', 'ping', { n: 0 }, { timeout: 5000 })).resolves.toEqual({ pong: 0 })
    await delay(200)

    const rssBefore = rssOf(srv.pid)
    const bytes = await flood(alpha, 'beta', 100 * MiB)
    // Ordered after the flood on alpha's connection: once answered, the server read it all.
    await expect(alpha.requestAsync('delta', 'ping', { n: 1 }, { timeout: 15000 })).resolves.toEqual({ pong: 1 })
    await delay(200)
    const rssAfter = rssOf(srv.pid)
    expect(bytes).toBeGreaterThanOrEqual(100 * MiB)
    expect(sendErrors).toEqual([])
    expect(rssAfter - rssBefore).toBeLessThan(64 * MiB)

    // beta was dropped as slow, once, and its socket ends once it reads again.
    await until(() => childEvents(srv).some(([nm, p]) => nm === 'clientError' && p.id === betaId && p.code === 'ricochet.client_slow'),
      10000, 'clientError client_slow for beta')
    await until(() => childEvents(srv).some(([nm, p]) => nm === 'clientDisconnected' && p.id === betaId), 10000, 'beta disconnected')
    expect(childEvents(srv).filter(([nm, p]) => nm === 'clientError' && p.id === betaId)).toHaveLength(1)
    raw.socket.resume()
    await raw.ended(15000)

    // alpha was never disconnected and still works.
    expect(named(alphaLog, 'disconnected')).toHaveLength(0)
    expect(alpha.ready).toBe(true)
    await expect(alpha.requestAsync('delta', 'ping', { n: 2 }, { timeout: 5000 })).resolves.toEqual({ pong: 2 })
  }, 120000)

  test('a client whose JS thread is busy stops reading instead of buffering: its memory stays bounded and the server drops it as slow', async () => {
    const srv = await serverChild(0, { maxQueueSize: 4 * MiB })
    const beta = await clientChild(srv.port, 'beta')
    const alpha = await readyClient('alpha', srv.port)
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    await delay(200)
    const rssBefore = rssOf(beta.child.pid)
    beta.child.send({ type: 'block', ms: 8000 })
    await childMessage(beta, (m) => m.type === 'blocking', 5000, 'the client JS thread to be busy')
    const bytes = await flood(alpha, 'beta', 100 * MiB)
    const rssBusy = rssOf(beta.child.pid)
    expect(beta.messages.some((m) => m.type === 'unblocked')).toBe(false) // measured while busy
    expect(bytes).toBeGreaterThanOrEqual(100 * MiB)
    expect(sendErrors).toEqual([])
    // Frames waiting for JS are capped (16 MiB) and the socket is not read past that.
    expect((rssBusy - rssBefore) / MiB).toBeLessThan(64)
    await until(() => childEvents(srv).some(([n, p]) => n === 'clientError' && p.code === 'ricochet.client_slow'),
      15000, 'the server to drop the busy client as slow')
    await childMessage(beta, (m) => m.type === 'unblocked', 20000, 'the client JS thread to be free again')
  }, 120000)

  test('while the server\'s JS thread is busy, 100 MB of frames that cannot be routed do not grow the server\'s memory past 64 MB (events beyond the bound are counted in eventsDropped)', async () => {
    // Every routing failure is reported to JS as messageError {raw: {message: <the whole frame>}}
    // and events wait for the JS thread, so a peer flooding an absent channel while the
    // application is busy (or slower than the network) must not make the server hold it all.
    const srv = await serverChild(0, { maxQueueSize: 4 * MiB })
    const delta = await readyClient('delta', srv.port)
    delta.handle('ping', (body, reply) => reply.emit('response', null, { pong: body.n }))
    const alpha = await readyClient('alpha', srv.port)
    const sendErrors = []
    alpha.on('sendError', (e) => sendErrors.push(e))
    await expect(alpha.requestAsync('delta', 'ping', { n: 0 }, { timeout: 5000 })).resolves.toEqual({ pong: 0 })
    await delay(200)

    const rssBefore = rssOf(srv.pid)
    srv.child.send({ type: 'block', ms: 8000 })
    await childMessage(srv, (m) => m.type === 'blocking', 5000, 'the server JS thread to be busy')
    const bytes = await flood(alpha, 'nobody', 100 * MiB)
    // Routing needs no JS: this answer proves the server has read and rejected the whole flood.
    await expect(alpha.requestAsync('delta', 'ping', { n: 1 }, { timeout: 15000 })).resolves.toEqual({ pong: 1 })
    const rssBusy = rssOf(srv.pid)
    expect(srv.messages.some((m) => m.type === 'unblocked')).toBe(false) // measured while busy
    await childMessage(srv, (m) => m.type === 'unblocked', 20000, 'the server JS thread to be free again')
    // Every flood frame is accounted for: reported, or counted in eventsDropped once the events
    // waiting for JS passed the bound (the frames themselves were rejected in Rust either way).
    const accounted = () => childEvents(srv).reduce((n, [name, p]) =>
      n + (name === 'messageError' && p.code === 'ricochet.message_norecipient' ? 1 : name === 'eventsDropped' ? p.count : 0), 0)
    await until(() => accounted() >= 1600, 30000, 'every flood frame reported or counted as dropped')
    await delay(200)
    const rssAfter = rssOf(srv.pid)
    expect(bytes).toBeGreaterThanOrEqual(100 * MiB)
    expect(sendErrors).toEqual([])
    expect((rssBusy - rssBefore) / MiB).toBeLessThan(64)
    expect((rssAfter - rssBefore) / MiB).toBeLessThan(64)
    await expect(alpha.requestAsync('delta', 'ping', { n: 2 }, { timeout: 5000 })).resolves.toEqual({ pong: 2 })
  }, 120000)
})

// =============================================================================================
// Part 2: hostile input against an in-process server

describe('hostile input', () => {
  const DEEP = {
    'a line of 100,000 "["': '['.repeat(100000),
    'a line of 50,000 {"a":': '{"a":'.repeat(50000),
    'balanced arrays 100,000 deep': '['.repeat(100000) + ']'.repeat(100000),
    'balanced objects 50,000 deep': '{"a":'.repeat(50000) + '1' + '}'.repeat(50000)
  }

  test('deep JSON nesting before auth: each line is reported or refused cleanly and the server goes on', async () => {
    await start()
    for (const [label, line] of Object.entries(DEEP)) {
      const seen = ctx.events.filter(([n]) => n === 'clientConnected').length
      const x = await connect()
      await until(() => ctx.events.filter(([n]) => n === 'clientConnected').length > seen, 5000, 'clientConnected')
      const id = ctx.events.filter(([n]) => n === 'clientConnected')[seen][1].id
      await x.send(line + '\n')
      await x.send(JSON.stringify(authFrame(PARTIES.alpha)) + '\n').catch(() => {})
      const reply = await x.next(5000).catch((e) => e)
      const mine = ctx.events.filter(([, p]) => p && (p.id === id || (p.raw && p.raw.id === id)))
      if (reply && reply.auth === true) {
        // Kept: the line was reported as bad JSON and skipped.
        expect({ label, reply, reports: mine.filter(([n]) => n === 'invalidMessage').map(([, p]) => p.code) })
          .toEqual({ label, reply: { auth: true, channel: 'alpha', groups: ['g1'] }, reports: ['ricochet.message_badjson'] })
        await x.close()
      } else {
        // Refused: valid JSON that is not an object is a malformed auth request.
        expect({ label, reply }).toEqual({ label, reply: expect.objectContaining({ auth: false, code: 'ricochet.auth_malformed' }) })
        await x.ended(5000)
      }
      await waitForEvent(ctx.events, 'clientDisconnected', (p) => p.id === id, 5000)
    }
    expect(ctx.events.filter(([n]) => n === 'clientError')).toEqual([])
    await freshPairWorks()
  })

  test('deep JSON nesting after auth: reported as invalid/malformed (or delivered intact) and routing goes on', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const alphaId = connId('alpha')
    const betaId = connId('beta')
    for (const line of Object.values(DEEP)) await a.send(line + '\n')
    // The same depth inside the body of an otherwise valid frame.
    const deepId = newId()
    const deepBody = '['.repeat(100000) + ']'.repeat(100000)
    await a.send(`{"headers":{"id":"${deepId}","to":"beta","type":"message","handle":"deep","encrypted":false},"body":${deepBody}}\n`)
    await barrier(a, 'alpha')
    expect(a.closed).toBe(false)
    const reports = ctx.events.filter(([n, p]) => (n === 'invalidMessage' && p.id === alphaId) ||
      (n === 'messageError' && p.code !== 'ricochet.message_self'))
    for (const [n, p] of reports) {
      expect(n === 'invalidMessage' ? p.code : p.code).toMatch(/^ricochet\.message_(badjson|malformed)$/)
    }
    // The four bare lines are never routable: each one is reported (or, when it is valid but
    // falsy, silently dropped — none of them is).
    // The server has routed everything before the barrier; a routed frame may still be on its
    // way to beta (`message` names the recipient connection).
    const routed = ctx.events.filter(([n, p]) => n === 'message' && p.id === betaId)
    expect(reports.length + routed.length).toBe(Object.keys(DEEP).length + 1)
    if (routed.length) {
      expect(routed).toHaveLength(1)
      const got = await b.nextMatching((f) => f.headers && f.headers.id === deepId, 10000)
      expect(got.headers).toMatchObject({ from: 'alpha', handle: 'deep' })
      expect(b.lines.find((l) => l.includes(deepId))).toContain(deepBody)
    }
    expect(ctx.events.filter(([n]) => n === 'clientError' || n === 'clientDisconnected')).toEqual([])
    await expectPair(a, b)
  })

  // Each case: the header change, and the outcome it is expected to have.
  //   malformed: messageError message_malformed, nothing sent anywhere
  //   reply:<code>: the sender gets an error reply with that code
  //   delivered: routed to beta as is (the header is not one the server interprets)
  test.each([
    ['to: {}', { to: {} }, 'reply:ricochet.message_norecipient'],
    ['to: []', { to: [] }, 'reply:ricochet.message_norecipient'],
    ['id: null', { id: null }, 'delivered'],
    ['type: 5', { type: 5 }, 'delivered'],
    ['encrypted: "yes" with a plain body', { encrypted: 'yes' }, 'reply:ricochet.message_decrypt'],
    ['timeout: "x" on a request', { type: 'request', timeout: 'x' }, 'delivered']
  ])('wrong header type %s gives a clean outcome and the server keeps routing', async (_label, change, expected) => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const betaId = connId('beta')
    const marker = newId()
    const headers = { id: newId(), to: 'beta', type: 'message', handle: 'types', encrypted: false, ...change }
    await a.send({ headers, body: { marker } })
    await barrier(a, 'alpha')

    const malformed = ctx.events.filter(([n, p]) => n === 'messageError' && p.code === 'ricochet.message_malformed')
    const errors = ctx.events.filter(([n, p]) => n === 'messageError' && p.code !== 'ricochet.message_self')
    // Error replies to alpha come before the barrier's reply on the same connection; a frame
    // routed to beta (server event `message`) may still be on its way there.
    const replies = a.unread().filter((f) => f.headers && f.headers.type === 'reply')
    const routed = ctx.events.filter(([n, p]) => n === 'message' && p.id === betaId && p.message.headers.handle === 'types')
    let delivered = []
    if (routed.length) {
      await b.nextMatching((f) => f.headers && f.headers.handle === 'types', 5000)
      delivered = b.frames.filter((f) => f.headers && f.headers.handle === 'types')
    }
    let outcome
    if (delivered.length) outcome = 'delivered'
    else if (replies.length) {
      const r = replies[0]
      const body = r.headers.encrypted ? JSON.parse(decrypt(PARTIES.alpha.privateKey, r.body)) : r.body
      outcome = `reply:${body.code}`
      expect(r.headers).toMatchObject({ id: headers.id, from: headers.to, to: 'alpha', status: 'error' })
    } else if (malformed.length) outcome = 'malformed'
    else outcome = 'nothing'
    expect(outcome).toBe(expected)

    if (outcome === 'delivered') {
      expect(delivered).toHaveLength(1)
      expect(delivered[0].body).toEqual({ marker })
      expect(delivered[0].headers).toMatchObject({ ...change, from: 'alpha' })
      expect(errors).toEqual([])
    } else {
      expect(routed).toEqual([])
      expect(delivered).toEqual([])
      expect(errors.map(([, p]) => p.code)).toEqual([outcome.startsWith('reply:') ? outcome.slice(6) : 'ricochet.message_malformed'])
      for (const r of replies) await a.nextMatching((f) => f === r)
    }
    expect(a.closed).toBe(false)
    expect(b.closed).toBe(false)
    await expectPair(a, b)
  })

  test('replayed auth frames: a fresh frame replays while its stamp is in the window (refused only while the channel is taken); the captured seq-1 frame is auth_expiredkey', async () => {
    await start()
    const frame = authFrame(PARTIES.alpha) // a fresh stamp
    const line = JSON.stringify(frame) + '\n'

    const first = await connect()
    await first.send(line)
    expect(await first.next(5000)).toEqual({ auth: true, channel: 'alpha', groups: ['g1'] })
    const firstId = connId('alpha')

    // The same bytes again while the first login holds the channel: auth_channel.
    const second = await connect()
    await second.send(line)
    expect(await second.next(5000)).toMatchObject({ auth: false, code: 'ricochet.auth_channel' })
    await second.ended(5000)
    const fail = await waitForEvent(ctx.events, 'clientAuthFail', (p) => p.code === 'ricochet.auth_channel', 5000)
    expect(fail.provided).toBe('alpha')
    expect(first.closed).toBe(false)

    // Once the channel is free, the very same frame logs in again: the protocol has no nonce,
    // so a captured frame is replayable for as long as its stamp is inside timeouts.authKey.
    await first.close()
    await waitForEvent(ctx.events, 'clientDisconnected', (p) => p.id === firstId, 5000)
    const third = await connect()
    await third.send(line)
    expect(await third.next(5000)).toEqual({ auth: true, channel: 'alpha', groups: ['g1'] })
    third.party = PARTIES.alpha

    // The captured frame of the reference trace (stamp 1700000000000) is far outside the window.
    const captured = loadFrames().frames.find((f) => f.seq === 1)
    const old = await connect()
    await old.send(captured.raw)
    expect(await old.next(5000)).toMatchObject({ auth: false, code: 'ricochet.auth_expiredkey' })
    await old.ended(5000)
    await waitForEvent(ctx.events, 'clientAuthFail', (p) => p.code === 'ricochet.auth_expiredkey', 5000)

    const b = await join(PARTIES.beta)
    await expectPair(third, b)
  })

  test('tampered XTS ciphertext (one hex digit flipped): message_decrypt, or a delivered body that differs (XTS has no integrity)', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const body = { s: 'A'.repeat(200), n: 12345 }
    const json = JSON.stringify(body)
    const outcomes = []
    // Byte offsets inside the JSON text: the first block, and blocks inside the long string.
    for (const at of [0, 7, 64, 130, 176]) {
      expect(at + 16).toBeLessThanOrEqual(json.length)
      const id = newId()
      const hex = encrypt(PARTIES.alpha.privateKey, json, id)
      const pos = at * 2
      const flipped = hex.slice(0, pos) + (parseInt(hex[pos], 16) ^ 0x8).toString(16) + hex.slice(pos + 1)
      expect(flipped).not.toBe(hex)
      await a.send({ headers: { id, to: 'beta', type: 'message', handle: 'tamper', encrypted: true }, body: flipped })
      await barrier(a, 'alpha')
      // An error reply precedes the barrier's reply on alpha's connection; a routed frame may
      // still be on its way to beta.
      const reply = a.unread().find((f) => f.headers && f.headers.id === id)
      if (reply) {
        expect(b.unread().find((f) => f.headers && f.headers.id === id)).toBeUndefined()
        expect(ctx.events.filter(([n, p]) => n === 'message' && p.message.headers.id === id)).toEqual([])
        expect(JSON.parse(decrypt(PARTIES.alpha.privateKey, reply.body))).toMatchObject({ code: 'ricochet.message_decrypt' })
        await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_decrypt' && p.raw.message.headers.id === id, 5000)
        await a.nextMatching((f) => f === reply)
        outcomes.push('message_decrypt')
      } else {
        const got = await b.nextMatching((f) => f.headers && f.headers.id === id, 5000)
        const plain = decrypt(PARTIES.beta.privateKey, got.body)
        expect(plain).not.toBe(json)
        outcomes.push('delivered-different')
      }
    }
    expect(outcomes).toHaveLength(5)
    expect(a.closed || b.closed).toBe(false)
    await expectPair(a, b)
  })

  test('2,000 connect/disconnect cycles (50 at a time) leave no client behind and a normal pair works', async () => {
    await start()
    const N = 2000
    const BATCH = 50
    for (let i = 0; i < N; i += BATCH) {
      await Promise.all(Array.from({ length: BATCH }, () => connectAndClose(ctx.port)))
      sockets = []
    }
    const count = (name) => ctx.events.filter(([n]) => n === name).length
    await until(() => count('clientConnected') >= N && count('clientDisconnected') >= N, 20000,
      `${N} connects and disconnects (got ${count('clientConnected')}/${count('clientDisconnected')})`)
    await until(() => ctx.server.getClients().length === 0, 10000, 'getClients() to be empty')
    expect(count('clientConnected')).toBe(N)
    expect(count('clientDisconnected')).toBe(N)
    expect(ctx.events.filter(([n]) => n === 'clientRejected')).toEqual([])
    await freshPairWorks()
    expect(ctx.server.getClients().map((c) => c.channel).sort()).toEqual(['alpha', 'beta'])
  }, 120000)

  test('200 connections that never authenticate are each closed with auth_timeout (timeouts.auth 500) and a normal pair works afterwards', async () => {
    await start({ config: { timeouts: { auth: 500 } } })
    const N = 200
    const silent = await Promise.all(Array.from({ length: N }, () => connect()))
    await Promise.all(silent.map((c) => c.ended(20000)))
    await until(() => ctx.events.filter(([n, p]) => n === 'clientAuthFail' && p.code === 'ricochet.auth_timeout').length >= N,
      10000, `${N} auth timeouts`)
    const connected = ctx.events.filter(([n]) => n === 'clientConnected').map(([, p]) => p.id)
    const timedOut = ctx.events.filter(([n, p]) => n === 'clientAuthFail' && p.code === 'ricochet.auth_timeout').map(([, p]) => p.id)
    expect(connected).toHaveLength(N)
    expect(timedOut).toHaveLength(N)
    expect(new Set(timedOut).size).toBe(N)
    expect([...timedOut].sort()).toEqual([...connected].sort())
    await until(() => ctx.events.filter(([n]) => n === 'clientDisconnected').length >= N, 10000, 'every disconnect')
    for (const c of silent) expect(c.lines).toEqual([])
    expect(ctx.events.filter(([n]) => n === 'clientRejected')).toEqual([])
    expect(ctx.server.getClients()).toEqual([])
    await freshPairWorks()
  }, 60000)
})
