'use strict'

// Client messaging through a real server: messages and requests between real Clients (and raw
// TCP peers where the wire itself must be checked). PROTOCOL.md §4–§6 and defects D2, D6, D7,
// D8, D13, D14 and D15.

const crypto = require('node:crypto')
const { Client } = require('..')
const { RawClient, encrypt, decrypt, newId } = require('./helpers/wire')
const { startServer, PARTIES } = require('./helpers/server')

const CODE = {
  timeout: 'ricochet.message_timeout',
  nothandled: 'ricochet.message_nothandled',
  norecipient: 'ricochet.message_norecipient',
  group: 'ricochet.message_group',
  notfound: 'ricochet.message_notfound',
  failed: 'ricochet.request_failed',
  aborted: 'ricochet.request_aborted'
}

let ctx
let clients
let raws
let held

beforeEach(() => {
  ctx = null
  clients = []
  raws = []
  held = []
})

afterEach(async () => {
  // Settle every responder a test kept open so that no responder timer outlives the test.
  for (const reply of held.splice(0)) if (!reply.closed) reply.emit('response', null, { late: true })
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await Promise.all(raws.splice(0).map((r) => r.close()))
  if (ctx) await ctx.close()
  ctx = null
})

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves once `pred()` is true, polling; rejects after `ms`. */
async function until (pred, ms = 5000, what = 'condition') {
  const start = Date.now()
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

async function start (opts) {
  ctx = await startServer(opts)
  return ctx
}

/** A real Client authenticated as `name`; resolves on `ready`. */
async function join (name, config = {}) {
  const c = new Client({ timeouts: { reconnect: 100 }, ...config })
  clients.push(c)
  const p = PARTIES[name]
  const ready = new Promise((resolve, reject) => {
    c.once('ready', resolve)
    c.once('authFail', (e) => reject(new Error(`authFail for ${name}: ${JSON.stringify(e)}`)))
  })
  c.connect({ host: '127.0.0.1', port: ctx.port, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey })
  const info = await ready
  expect(info.channel).toBe(name)
  return c
}

/** A raw TCP peer authenticated as `name`. */
async function joinRaw (name) {
  const r = await RawClient.connect(ctx.port)
  raws.push(r)
  const reply = await r.auth(PARTIES[name])
  expect(reply.auth).toBe(true)
  return r
}

/** Body of a frame received by a raw peer, decrypted with that peer's key when encrypted. */
function bodyOf (frame, name) {
  if (!frame.headers.encrypted) return frame.body
  expect(typeof frame.body).toBe('string')
  expect(frame.body).toMatch(/^[0-9a-f]+$/)
  const text = decrypt(PARTIES[name].privateKey, frame.body)
  expect(text).not.toBe(false)
  return JSON.parse(text)
}

/** One reply frame as a raw sender would write it (JSON + LF), encrypted with `name`'s key. */
function replyLine (name, to, id, status, body, { encrypted = true, handle = 'h' } = {}) {
  const headers = { id, to, type: 'reply', handle, encrypted, status }
  const wire = encrypted ? encrypt(PARTIES[name].privateKey, JSON.stringify(body), id) : body
  return JSON.stringify({ headers, body: wire }) + '\n'
}

/** Records every event of a request emitter as [name, ...args]. */
function record (req) {
  const log = []
  for (const n of ['update', 'response', 'success', 'fail', 'error', 'timeout']) {
    req.on(n, (...args) => log.push([n, ...args]))
  }
  return log
}

/** Collects `receiveError` payloads of a client. */
function receiveErrors (client) {
  const list = []
  client.on('receiveError', (e) => list.push(e))
  return list
}

const settled = (p) => p.then((v) => ({ ok: true, v }), (e) => ({ ok: false, e }))

// -------------------------------------------------------------------------------------------------

describe('messages between two clients', () => {
  test('an encrypted message reaches the handler with its body and the sender in msg.headers', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const got = []
    beta.handle('chat.hello', (body, msg) => got.push([body, msg]))
    alpha.message('beta', 'chat.hello', { hi: 'there', n: 1 })
    await until(() => got.length === 1)
    const [body, msg] = got[0]
    expect(body).toEqual({ hi: 'there', n: 1 })
    expect(msg.headers).toMatchObject({ to: 'beta', from: 'alpha', type: 'message', handle: 'chat.hello' })
    expect(msg.headers.groups).toEqual(['g1'])
  })

  test('a default message is sent encrypted: the raw recipient sees encrypted:true and a hex body', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    alpha.message('beta', 'chat.hello', { secret: 42 })
    const f = await rb.next()
    expect(f.headers).toMatchObject({ to: 'beta', from: 'alpha', type: 'message', handle: 'chat.hello', encrypted: true })
    expect(f.headers).not.toHaveProperty('timeout')
    expect(typeof f.body).toBe('string')
    expect(bodyOf(f, 'beta')).toEqual({ secret: 42 })
  })

  test('D2 insecure() sends the next message with encrypted:false and a plain JSON body, then reverts to encrypted', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    alpha.insecure().message('beta', 'chat.plain', { visible: 'yes', list: [1, 2] })
    const f = await rb.next()
    expect(f.headers.encrypted).toBe(false)
    expect(f.headers).toMatchObject({ from: 'alpha', handle: 'chat.plain', type: 'message' })
    expect(f.body).toEqual({ visible: 'yes', list: [1, 2] })
    // The raw line itself carries the plain object, not a hex string.
    expect(rb.lines[rb.lines.length - 1]).toContain('"body":{"visible":"yes","list":[1,2]}')

    alpha.message('beta', 'chat.after', { again: true })
    const g = await rb.next()
    expect(g.headers.encrypted).toBe(true)
    expect(bodyOf(g, 'beta')).toEqual({ again: true })

    alpha.insecure().encrypt().message('beta', 'chat.enc', { e: 1 })
    const h = await rb.next()
    expect(h.headers.encrypted).toBe(true)
    expect(bodyOf(h, 'beta')).toEqual({ e: 1 })
  })

  test('D2 an insecure message between two real clients is delivered in plain form', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const got = []
    beta.handle('chat.plain', (body, msg) => got.push([body, msg.headers.encrypted]))
    alpha.insecure().message('beta', 'chat.plain', { p: 'lain' })
    await until(() => got.length === 1)
    expect(got[0]).toEqual([{ p: 'lain' }, false])
  })

  test('a message to an unknown channel gives the sender receiveError message_notfound for the error reply', async () => {
    await start()
    const alpha = await join('alpha')
    const errs = receiveErrors(alpha)
    alpha.message('nobody', 'chat.hello', {})
    await until(() => errs.length === 1)
    expect(errs[0].code).toBe(CODE.notfound)
    expect(errs[0].message.headers.from).toBe('nobody')
  })

  test('encrypted bodies of changing sizes (small, 200 KiB, small, with a delimiter) arrive whole and in order', async () => {
    // The server and the client decrypt into buffers they keep between frames; a large body
    // must neither spill into the next frame nor be kept.
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const sent = [
      { n: 0, s: 'short' },
      { n: 1, s: 'y'.repeat(200 * 1024) },
      { n: 2 },
      { n: 3, s: 'quoted "{ENCRYPT}" inside' },
      { n: 4, s: 'é'.repeat(1000) }
    ]
    const got = []
    beta.handle('sizes', (body) => got.push(body))
    for (const body of sent) alpha.message('beta', 'sizes', body)
    await until(() => got.length === sent.length)
    expect(got).toEqual(sent)
  })

  test('messages flow in both directions', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const a = []
    const b = []
    alpha.handle('ping', (body, msg) => a.push([body, msg.headers.from]))
    beta.handle('ping', (body, msg) => b.push([body, msg.headers.from]))
    alpha.message('beta', 'ping', { from: 'a' })
    beta.message('alpha', 'ping', { from: 'b' })
    await until(() => a.length === 1 && b.length === 1)
    expect(a[0]).toEqual([{ from: 'b' }, 'beta'])
    expect(b[0]).toEqual([{ from: 'a' }, 'alpha'])
  })
})

describe('wildcard handles', () => {
  test('files.* matches one segment for messages and requests, not two', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const seen = []
    beta.handle('files.*', (body, replyOrMsg, msg) => {
      if (msg) {
        seen.push(['request', msg.headers.handle])
        replyOrMsg.emit('response', null, { handle: msg.headers.handle, body })
      } else {
        seen.push(['message', replyOrMsg.headers.handle])
      }
    })
    alpha.message('beta', 'files.changed', { path: '/x' })
    const data = await alpha.requestAsync('beta', 'files.list', { dir: '/' })
    expect(data).toEqual({ handle: 'files.list', body: { dir: '/' } })
    await until(() => seen.length === 2)
    expect(seen).toContainEqual(['message', 'files.changed'])
    expect(seen).toContainEqual(['request', 'files.list'])

    const deep = await settled(alpha.requestAsync('beta', 'files.deep.list', {}))
    expect(deep.ok).toBe(false)
    expect(deep.e.code).toBe(CODE.nothandled)
    expect(seen).toHaveLength(2)
  })

  test('** matches any handle at any depth', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const handles = []
    beta.handle('**', (body, reply, msg) => {
      handles.push(msg.headers.handle)
      reply.emit('response', null, { echoed: msg.headers.handle })
    })
    for (const h of ['x', 'files.list', 'a.b.c.d']) {
      expect(await alpha.requestAsync('beta', h, {})).toEqual({ echoed: h })
    }
    expect(handles).toEqual(['x', 'files.list', 'a.b.c.d'])
  })

  test('flushHandles removes handlers and notHandled receives the unhandled frames', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const unhandled = []
    beta.notHandled((frame) => unhandled.push([frame.headers.type, frame.headers.handle]))
    beta.handle('job.run', (body, reply) => reply.emit('response', null, { ran: true }))
    expect(await alpha.requestAsync('beta', 'job.run', {})).toEqual({ ran: true })
    beta.flushHandles()
    const r = await settled(alpha.requestAsync('beta', 'job.run', {}))
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.nothandled)
    alpha.message('beta', 'job.note', {})
    await until(() => unhandled.length === 2)
    expect(unhandled).toEqual([['request', 'job.run'], ['message', 'job.note']])
  })
})

describe('requests between two clients', () => {
  test('encrypted request: 2 updates then response, in order, with success and a resolved promise', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    beta.handle('math.add', (body, reply, msg) => {
      expect(msg.headers.encrypted).toBe(true)
      reply.emit('update', { step: 1 })
      reply.emit('update', { step: 2 })
      reply.emit('response', null, { sum: body.a + body.b })
    })
    const req = alpha.request('beta', 'math.add', { a: 2, b: 3 })
    const log = record(req)
    const data = await req.promise()
    expect(data).toEqual({ sum: 5 })
    await sleep(50)
    expect(log).toEqual([
      ['update', { step: 1 }],
      ['update', { step: 2 }],
      ['response', null, { sum: 5 }],
      ['success', { sum: 5 }]
    ])
  })

  test('D2 insecure request round trip: plain on the wire both ways, and the reply mirrors encrypted:false', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    const p = alpha.insecure().request('beta', 'math.add', { a: 1, b: 1 }).promise()
    const f = await rb.nextMatching((x) => x.headers.type === 'request')
    expect(f.headers.encrypted).toBe(false)
    expect(f.headers.timeout).toBe(5000)
    expect(f.body).toEqual({ a: 1, b: 1 })
    await rb.send(replyLine('beta', 'alpha', f.headers.id, 'response', { error: null, data: { sum: 2 } }, { encrypted: false }))
    expect(await p).toEqual({ sum: 2 })
  })

  test('D2 insecure request between two real clients resolves, and the handler sees encrypted:false', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const flags = []
    beta.handle('math.add', (body, reply, msg) => {
      flags.push(msg.headers.encrypted)
      reply.emit('response', null, { sum: body.a + body.b })
    })
    expect(await alpha.insecure().request('beta', 'math.add', { a: 4, b: 4 }).promise()).toEqual({ sum: 8 })
    expect(await alpha.request('beta', 'math.add', { a: 1, b: 2 }).promise()).toEqual({ sum: 3 })
    expect(flags).toEqual([false, true])
  })

  test('D2 a real responder replies to a plain request with a plain reply and to an encrypted one encrypted', async () => {
    await start()
    const rd = await joinRaw('delta')
    const beta = await join('beta')
    beta.handle('math.add', (body, reply) => reply.emit('response', null, { sum: body.a + body.b }))

    const plain = rd.message('beta', 'math.add', { a: 3, b: 4 }, { type: 'request', encrypted: false, timeout: 2000 })
    const r1 = await rd.nextMatching((x) => x.headers.id === plain.headers.id)
    expect(r1.headers).toMatchObject({ type: 'reply', status: 'response', from: 'beta', encrypted: false })
    expect(r1.body).toEqual({ error: null, data: { sum: 7 } })

    const enc = rd.message('beta', 'math.add', { a: 5, b: 6 }, { type: 'request', encrypted: true, timeout: 2000 })
    const r2 = await rd.nextMatching((x) => x.headers.id === enc.headers.id)
    expect(r2.headers).toMatchObject({ type: 'reply', status: 'response', from: 'beta', encrypted: true })
    expect(bodyOf(r2, 'delta')).toEqual({ error: null, data: { sum: 11 } })
  })

  test('timeout(ms) sets the timeout header of the next request only', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    alpha.timeout(1234).request('beta', 'a', {})
    alpha.request('beta', 'b', {})
    const f1 = await rb.nextMatching((x) => x.headers.handle === 'a')
    const f2 = await rb.nextMatching((x) => x.headers.handle === 'b')
    expect(f1.headers.timeout).toBe(1234)
    expect(f2.headers.timeout).toBe(5000)
    for (const f of [f1, f2]) {
      await rb.send(replyLine('beta', 'alpha', f.headers.id, 'response', { error: null, data: {} }))
    }
  })

  test('handler error via reply.emit("error", body): requester gets `error` with that body; promise rejects with code', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const closes = []
    beta.handle('disk.write', (body, reply) => {
      reply.on('close', () => closes.push(true))
      reply.emit('error', { Error: 'Disk full', code: 'app.disk_full', free: 0 })
    })
    beta.handle('disk.read', (body, reply) => {
      reply.emit('error', { Error: 'Request timed out.', code: 'ricochet.message_timeout' })
    })

    const req = alpha.request('beta', 'disk.write', { bytes: 10 })
    const log = record(req)
    const r = await settled(req.promise())
    expect(r.ok).toBe(false)
    expect(r.e).toBeInstanceOf(Error)
    expect(r.e.code).toBe(CODE.failed)
    expect(r.e.message).toBe('Disk full')
    expect(r.e.data).toEqual({ Error: 'Disk full', code: 'app.disk_full', free: 0 })
    await sleep(20)
    expect(log).toEqual([['error', { Error: 'Disk full', code: 'app.disk_full', free: 0 }]])
    expect(closes).toEqual([true])

    // A body carrying a ricochet code keeps that code on the rejection.
    const r2 = await settled(alpha.requestAsync('beta', 'disk.read', {}))
    expect(r2.ok).toBe(false)
    expect(r2.e.code).toBe(CODE.timeout)
  })

  test('a response with an error fires `response`(err, data) and `fail`, and the promise rejects', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    beta.handle('acl.check', (body, reply) => reply.emit('response', 'not allowed', null))
    beta.handle('acl.check2', (body, reply) => reply.emit('response', { message: 'denied', code: 'EACCES' }, { partial: 1 }))

    const req = alpha.request('beta', 'acl.check', {})
    const log = record(req)
    const r = await settled(req.promise())
    expect(r.ok).toBe(false)
    expect(r.e).toBeInstanceOf(Error)
    expect(r.e.code).toBe(CODE.failed)
    expect(r.e.message).toBe('not allowed')
    await sleep(20)
    expect(log).toEqual([['response', 'not allowed', {}], ['fail', 'not allowed']])

    const req2 = alpha.request('beta', 'acl.check2', {})
    const log2 = record(req2)
    const r2 = await settled(req2.promise())
    expect(r2.ok).toBe(false)
    expect(r2.e.code).toBe(CODE.failed)
    expect(r2.e.message).toBe('denied')
    await sleep(20)
    expect(log2).toEqual([
      ['response', { message: 'denied', code: 'EACCES' }, { partial: 1 }],
      ['fail', { message: 'denied', code: 'EACCES' }]
    ])
  })

  test('an unhandled request gives the requester error message_nothandled', async () => {
    await start()
    const alpha = await join('alpha')
    await join('beta')
    const req = alpha.request('beta', 'nobody.listens', {})
    const log = record(req)
    const r = await settled(req.promise())
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.nothandled)
    await sleep(20)
    expect(log).toHaveLength(1)
    expect(log[0][0]).toBe('error')
    expect(log[0][1]).toEqual({ Error: 'Failed to receive message, no listeners found.', code: CODE.nothandled })
  })

  test('a request to an unknown channel fails with message_norecipient', async () => {
    await start()
    const alpha = await join('alpha')
    const req = alpha.request('nobody', 'x', {})
    const log = record(req)
    const r = await settled(req.promise())
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.norecipient)
    expect(log[0][0]).toBe('error')
    expect(log[0][1].code).toBe(CODE.norecipient)
  })

  test('a request across groups (alpha g1 → gamma g3, connected) fails with message_group', async () => {
    await start()
    const alpha = await join('alpha')
    const gamma = await join('gamma')
    const calls = []
    gamma.handle('x', (body, reply) => { calls.push(1); reply.emit('response', null, {}) })
    const req = alpha.request('gamma', 'x', {})
    const log = record(req)
    const r = await settled(req.promise())
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.group)
    expect(log[0][0]).toBe('error')
    expect(log[0][1].code).toBe(CODE.group)
    expect(calls).toHaveLength(0)
  })
})

describe('timeouts', () => {
  test('requester timeout: no answer within timeout(200) gives `timeout` {local:true} then `error` message_timeout', async () => {
    await start()
    const alpha = await join('alpha')
    // A raw peer that never answers (a real responder's own T timer would answer first).
    const rb = await joinRaw('beta')
    const req = alpha.timeout(200).request('beta', 'slow.op', {})
    const log = record(req)
    const p = settled(req.promise())
    const f = await rb.nextMatching((x) => x.headers.type === 'request')
    expect(f.headers.timeout).toBe(200)
    const r = await p
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.timeout)
    await sleep(20)
    expect(log.map((e) => e[0])).toEqual(['timeout', 'error'])
    expect(log[0][1].local).toBe(true)
    expect(log[1][1]).toMatchObject({ local: true, code: CODE.timeout, Error: 'Request timed out.' })
    // A reply after the local timeout is unknown to the requester.
    const errs = receiveErrors(alpha)
    await rb.send(replyLine('beta', 'alpha', f.headers.id, 'response', { error: null, data: {} }))
    await until(() => errs.length === 1)
    expect(errs[0].code).toBe(CODE.notfound)
  })

  test('requester timeout with a real handler that never answers: the responder timer answers first (error message_timeout)', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    beta.handle('slow.op', (body, reply) => { held.push(reply) })
    const r = await settled(alpha.timeout(200).request('beta', 'slow.op', {}).promise())
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.timeout)
  })

  test('a timeout beyond Node\'s longest timer (2^31-1 ms) fires neither at once nor on the responder', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const replies = []
    beta.handle('long.op', (body, reply) => { held.push(reply); replies.push(reply) })
    // Node fires a setTimeout over 2^31-1 ms after 1 ms: both timers used to expire at once.
    const req = alpha.timeout(2 ** 33).request('beta', 'long.op', {})
    const log = record(req)
    const p = req.promise()
    await until(() => replies.length === 1)
    await sleep(100)
    expect(log).toEqual([])
    expect(replies[0].closed).toBe(false)
    replies[0].emit('response', null, { done: true })
    await expect(p).resolves.toEqual({ done: true })
  })

  test('D8 responder timeout: requester gets `error` message_timeout then `timeout` {local:false}; responder gets `timeout`', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const responderEvents = []
    beta.handle('slow.op', (body, reply) => {
      held.push(reply)
      reply.on('timeout', (...args) => responderEvents.push(['timeout', ...args]))
      reply.on('close', () => responderEvents.push(['close']))
    })
    const req = alpha.timeout(300).request('beta', 'slow.op', {})
    const log = record(req)
    const r = await settled(req.promise())
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.timeout)
    await until(() => log.length >= 2, 3000, 'error and timeout events')
    await sleep(50)
    expect(log.map((e) => e[0])).toEqual(['error', 'timeout'])
    expect(log[0][1]).toEqual({ Error: 'Request timed out.', code: CODE.timeout })
    expect(log[1][1]).toEqual({ local: false })
    expect(responderEvents[0]).toEqual(['timeout'])
    expect(responderEvents).toContainEqual(['close'])
    // A response after the responder timed out sends nothing.
    expect(held[0].closed).toBe(true)
  })

  test('D7 an update restarts the requester timer: T=300, updates every 200 ms for 900 ms, then response → success, no timeout', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    beta.handle('long.job', (body, reply) => {
      held.push(reply)
      let n = 0
      const tick = setInterval(() => {
        n++
        if (n * 200 <= 900) {
          reply.emit('update', { n })
        } else {
          clearInterval(tick)
          reply.emit('response', null, { done: n - 1 })
        }
      }, 200)
    })
    const req = alpha.timeout(300).request('beta', 'long.job', {})
    const log = record(req)
    const data = await req.promise()
    expect(data).toEqual({ done: 4 })
    await sleep(50)
    expect(log.map((e) => e[0])).toEqual(['update', 'update', 'update', 'update', 'response', 'success'])
    expect(log.filter((e) => e[0] === 'timeout' || e[0] === 'error')).toHaveLength(0)
  })

  test('D7 an update restarts (does not cancel) the responder timer: one update then silence → message_timeout {local:false}', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const responderTimeouts = []
    beta.handle('stall', (body, reply) => {
      held.push(reply)
      reply.on('timeout', () => responderTimeouts.push(Date.now()))
      setTimeout(() => reply.emit('update', { started: true }), 100)
    })
    const req = alpha.timeout(300).request('beta', 'stall', {})
    const log = record(req)
    const r = await settled(req.promise())
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.timeout)
    await until(() => log.length >= 3, 3000, 'update, error, timeout')
    expect(log.map((e) => e[0])).toEqual(['update', 'error', 'timeout'])
    expect(log[2][1]).toEqual({ local: false })
    expect(responderTimeouts).toHaveLength(1)
  })

  test('D7 an update restarts (does not cancel) the requester timer: raw responder sends one update then nothing → local timeout', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    const req = alpha.timeout(300).request('beta', 'stall', {})
    const log = record(req)
    const p = settled(req.promise())
    const f = await rb.nextMatching((x) => x.headers.type === 'request')
    await rb.send(replyLine('beta', 'alpha', f.headers.id, 'update', { started: true }))
    const r = await p
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.timeout)
    await sleep(20)
    expect(log.map((e) => e[0])).toEqual(['update', 'timeout', 'error'])
    expect(log[1][1].local).toBe(true)
  })

  test('D7 raw responder updating every 400 ms for 1200 ms keeps a T=300 request alive past T + 500 (each gap < T + 500)', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    const req = alpha.timeout(300).request('beta', 'long', {})
    const log = record(req)
    const p = req.promise()
    const f = await rb.nextMatching((x) => x.headers.type === 'request')
    for (let i = 1; i <= 3; i++) {
      await rb.send(replyLine('beta', 'alpha', f.headers.id, 'update', { i }))
      await sleep(400)
    }
    await rb.send(replyLine('beta', 'alpha', f.headers.id, 'response', { error: null, data: { ok: 1 } }))
    expect(await p).toEqual({ ok: 1 })
    expect(log.map((e) => e[0])).toEqual(['update', 'update', 'update', 'response', 'success'])
  })
})

describe('payload integrity', () => {
  test('D6 a body containing the string "{ENCRYPT}" (as key and value) arrives intact both ways', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const tricky = { a: '{ENCRYPT}', '{ENCRYPT}': ['"{ENCRYPT}"', '{ENCRYPT}'], tail: 'after' }
    const gotMsg = []
    beta.handle('echo', (body, reply) => reply.emit('response', null, { back: body, extra: '{ENCRYPT}' }))
    beta.handle('note', (body) => gotMsg.push(body))
    expect(await alpha.requestAsync('beta', 'echo', tricky)).toEqual({ back: tricky, extra: '{ENCRYPT}' })
    alpha.message('beta', 'note', '{ENCRYPT}')
    await until(() => gotMsg.length === 1)
    expect(gotMsg[0]).toBe('{ENCRYPT}')
  })

  test('D6 a raw recipient decrypts a "{ENCRYPT}" body sent by a client to the full value', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    alpha.message('beta', 'note', { a: '{ENCRYPT}', b: 2 })
    const f = await rb.next()
    expect(bodyOf(f, 'beta')).toEqual({ a: '{ENCRYPT}', b: 2 })
  })

  test('a 5 MB string body round trip (request with 5 MB, response echoing its length and hash)', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const big = crypto.randomBytes(5 * 1024 * 1024 / 2).toString('hex') // 5 MiB of text
    const sha = (s) => crypto.createHash('sha256').update(s).digest('hex')
    beta.handle('big.echo', (body, reply) => reply.emit('response', null, { length: body.length, sha: sha(body) }))
    const data = await alpha.timeout(15000).request('beta', 'big.echo', big).promise()
    expect(data).toEqual({ length: 5 * 1024 * 1024, sha: sha(big) })
  })

  test('a 5 MB response body arrives intact at the requester', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const big = 'x'.repeat(5 * 1024 * 1024 - 3) + 'end'
    beta.handle('big.get', (body, reply) => reply.emit('response', null, { big }))
    const data = await alpha.requestAsync('beta', 'big.get', {}, { timeout: 15000 })
    expect(data.big.length).toBe(big.length)
    expect(data.big === big).toBe(true)
  })

  test('unicode bodies (emoji, CJK, RTL, combining, U+2028/U+FEFF) survive both directions, encrypted and plain', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const uni = {
      emoji: '😀👍🏽🏳️‍🌈 🧪',
      cjk: '漢字かなカナ한국어中文',
      rtl: 'مرحبا שלום',
      combining: 'e\u0301 n\u0303',
      seps: 'a\u2028b\u2029c\uFEFFd',
      '键🔑': ['ü', 'ß', '€', '𝄞'],
      leadingSpace: '\u3000 leading'
    }
    const got = []
    beta.handle('uni.echo', (body, reply) => {
      got.push(body)
      reply.emit('update', { u: '更新🔄' })
      reply.emit('response', null, { back: body, reply: '返信✅ 𝄞' })
    })
    alpha.handle('uni.note', (body) => got.push(body))
    for (const plain of [false, true]) {
      const updates = []
      const data = await alpha.requestAsync('beta', 'uni.echo', uni, { encrypt: !plain, onUpdate: (u) => updates.push(u) })
      expect(data).toEqual({ back: uni, reply: '返信✅ 𝄞' })
      expect(updates).toEqual([{ u: '更新🔄' }])
    }
    expect(got).toEqual([uni, uni])
    beta.message('alpha', 'uni.note', '日本語のメッセージ 🎌')
    beta.insecure().message('alpha', 'uni.note', 'プレーン 🎌')
    await until(() => got.length === 4)
    expect(got.slice(2)).toEqual(['日本語のメッセージ 🎌', 'プレーン 🎌'])
  })

  test('1,000 concurrent requests are each answered exactly once with their own data', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const errs = receiveErrors(alpha)
    let handled = 0
    beta.handle('count.n', (body, reply) => {
      handled++
      reply.emit('response', null, { n: body.n, sq: body.n * body.n })
    })
    const N = 1000
    const responses = new Map()
    const promises = []
    for (let n = 0; n < N; n++) {
      const req = alpha.request('beta', 'count.n', { n })
      req.on('response', (err, data) => {
        responses.set(req.id, (responses.get(req.id) || 0) + 1)
        expect(err).toBeNull()
        expect(data).toEqual({ n, sq: n * n })
      })
      promises.push(req.promise())
    }
    const results = await Promise.all(promises)
    results.forEach((d, n) => expect(d).toEqual({ n, sq: n * n }))
    await sleep(200)
    expect(handled).toBe(N)
    expect(responses.size).toBe(N)
    expect([...responses.values()].every((c) => c === 1)).toBe(true)
    expect(errs).toHaveLength(0)
  })
})

describe('hostile and forged frames', () => {
  test('D13 two `response` replies for one request: response fires once, the second gives receiveError message_notfound, no crash', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    const errs = receiveErrors(alpha)
    const req = alpha.request('beta', 'dup', {})
    const log = record(req)
    const p = req.promise()
    const f = await rb.nextMatching((x) => x.headers.type === 'request')
    const id = f.headers.id
    // Both replies (and a trailing error) in one write, so they arrive in the same batch.
    await rb.send(
      replyLine('beta', 'alpha', id, 'response', { error: null, data: { n: 1 } }) +
      replyLine('beta', 'alpha', id, 'response', { error: null, data: { n: 2 } }) +
      replyLine('beta', 'alpha', id, 'error', { Error: 'late', code: 'x' })
    )
    expect(await p).toEqual({ n: 1 })
    await until(() => errs.length >= 2)
    await sleep(50)
    expect(log).toEqual([['response', null, { n: 1 }], ['success', { n: 1 }]])
    expect(errs.map((e) => e.code)).toEqual([CODE.notfound, CODE.notfound])
    expect(errs[0].message.headers.id).toBe(id)
    expect(errs[0].Error).toBe('No message found with given id.')

    // The requester is still alive and usable.
    const p2 = alpha.requestAsync('beta', 'again', {})
    const g = await rb.nextMatching((x) => x.headers.type === 'request' && x.headers.handle === 'again')
    await rb.send(replyLine('beta', 'alpha', g.headers.id, 'response', { error: null, data: { ok: true } }))
    expect(await p2).toEqual({ ok: true })
  })

  test.each(['error', 'newListener', 'removeListener'])(
    'D14 a raw request with handle %p to a client gets a message_nothandled error reply and the client survives',
    async (handle) => {
      await start()
      const alpha = await join('alpha')
      const beta = await join('beta')
      const wild = []
      beta.handle('**', (body, reply, msg) => {
        wild.push(msg.headers.handle)
        reply.emit('response', null, { ok: msg.headers.handle })
      })
      const rd = await joinRaw('delta')
      const sent = rd.message('beta', handle, { evil: true }, { type: 'request', timeout: 2000 })
      const r = await rd.nextMatching((x) => x.headers.id === sent.headers.id)
      expect(r.headers).toMatchObject({ type: 'reply', status: 'error', from: 'beta', to: 'delta' })
      expect(bodyOf(r, 'delta')).toEqual({ Error: 'Failed to receive message, no listeners found.', code: CODE.nothandled })
      // A plain message with the same handle is dropped quietly.
      rd.message('beta', handle, { evil: 'message' })
      await sleep(100)
      expect(wild).toEqual([])
      // beta still works.
      expect(await alpha.requestAsync('beta', 'still.alive', {})).toEqual({ ok: 'still.alive' })
    }
  )

  test('D15 a reply forged by a third party (delta, same group) is ignored; the real response still resolves the request', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const rd = await joinRaw('delta')
    const errs = receiveErrors(alpha)
    const pending = []
    beta.handle('secret.get', (body, reply, msg) => { held.push(reply); pending.push([reply, msg.headers.id]) })
    const req = alpha.request('beta', 'secret.get', {})
    const log = record(req)
    const p = req.promise()
    await until(() => pending.length === 1)
    const [reply, id] = pending[0]
    expect(id).toBe(req.id)
    await rd.send(
      replyLine('delta', 'alpha', id, 'update', { forged: 'update' }) +
      replyLine('delta', 'alpha', id, 'response', { error: null, data: { forged: true } }) +
      replyLine('delta', 'alpha', id, 'error', { Error: 'forged', code: 'ricochet.message_timeout' })
    )
    await until(() => errs.length === 3)
    expect(errs.map((e) => e.code)).toEqual([CODE.notfound, CODE.notfound, CODE.notfound])
    expect(errs.every((e) => e.message.headers.from === 'delta')).toBe(true)
    expect(log).toEqual([])
    reply.emit('response', null, { real: true })
    expect(await p).toEqual({ real: true })
    expect(log).toEqual([['response', null, { real: true }], ['success', { real: true }]])
  })

  test('D15 forged reply ids are unguessable: request ids are 32 chars of [A-Za-z0-9] and distinct', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    const ids = new Set()
    // Enough to cross the client's id pool refills (~500 ids each).
    const n = 1100
    for (let i = 0; i < n; i++) {
      const req = alpha.timeout(10000).request('beta', 'x', {})
      req.on('error', () => {})
      expect(req.id).toMatch(/^[A-Za-z0-9]{32}$/)
      ids.add(req.id)
    }
    expect(ids.size).toBe(n)
    // Answer them so nothing stays pending.
    for (let i = 0; i < n; i++) {
      const f = await rb.nextMatching((x) => x.headers.type === 'request')
      await rb.send(replyLine('beta', 'alpha', f.headers.id, 'response', { error: null, data: {} }))
    }
  })
})

describe('requestAsync', () => {
  test('onUpdate receives each update before the promise resolves', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    beta.handle('prog', (body, reply) => {
      reply.emit('update', { pct: 50 })
      setTimeout(() => {
        reply.emit('update', { pct: 100 })
        reply.emit('response', null, { done: true })
      }, 30)
    })
    const updates = []
    const data = await alpha.requestAsync('beta', 'prog', {}, { onUpdate: (u) => updates.push(u) })
    expect(data).toEqual({ done: true })
    expect(updates).toEqual([{ pct: 50 }, { pct: 100 }])
  })

  test('requestAsync options: timeout sets the header, encrypt:false sends plain', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    const p = alpha.requestAsync('beta', 'opt', { k: 1 }, { timeout: 777, encrypt: false })
    const f = await rb.nextMatching((x) => x.headers.type === 'request')
    expect(f.headers.timeout).toBe(777)
    expect(f.headers.encrypted).toBe(false)
    expect(f.body).toEqual({ k: 1 })
    await rb.send(replyLine('beta', 'alpha', f.headers.id, 'response', { error: null, data: { fine: 1 } }, { encrypted: false }))
    expect(await p).toEqual({ fine: 1 })
  })

  test('an AbortSignal aborted while pending rejects with ricochet.request_aborted; a late reply is ignored', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const errs = receiveErrors(alpha)
    const replies = []
    beta.handle('wait', (body, reply) => { held.push(reply); replies.push(reply) })
    const ac = new AbortController()
    const updates = []
    const p = settled(alpha.requestAsync('beta', 'wait', {}, { signal: ac.signal, onUpdate: (u) => updates.push(u) }))
    await until(() => replies.length === 1)
    replies[0].emit('update', { working: true })
    await until(() => updates.length === 1)
    ac.abort()
    const r = await p
    expect(r.ok).toBe(false)
    expect(r.e).toBeInstanceOf(Error)
    expect(r.e.code).toBe(CODE.aborted)
    replies[0].emit('response', null, { late: true })
    await until(() => errs.length === 1)
    expect(errs[0].code).toBe(CODE.notfound)
  })

  test('an already-aborted AbortSignal rejects at once with ricochet.request_aborted and sends nothing', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    const ac = new AbortController()
    ac.abort()
    const r = await settled(alpha.requestAsync('beta', 'x', {}, { signal: ac.signal }))
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe(CODE.aborted)
    await sleep(100)
    expect(rb.unread()).toEqual([])
  })
})

describe('reply.inherit', () => {
  test('forwards a downstream request\'s updates and response to the original requester', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const delta = await join('delta')
    delta.handle('work.double', (body, reply, msg) => {
      expect(msg.headers.from).toBe('beta')
      reply.emit('update', { stage: 'a' })
      reply.emit('update', { stage: 'b' })
      reply.emit('response', null, { result: body.n * 2 })
    })
    beta.handle('proxy.double', (body, reply) => {
      reply.inherit(beta.request('delta', 'work.double', body))
    })
    const req = alpha.request('beta', 'proxy.double', { n: 21 })
    const log = record(req)
    expect(await req.promise()).toEqual({ result: 42 })
    await sleep(20)
    expect(log).toEqual([
      ['update', { stage: 'a' }],
      ['update', { stage: 'b' }],
      ['response', null, { result: 42 }],
      ['success', { result: 42 }]
    ])
  })

  test('forwards a downstream error (nothandled) and a downstream failed response', async () => {
    await start()
    const alpha = await join('alpha')
    const beta = await join('beta')
    const delta = await join('delta')
    delta.handle('work.fail', (body, reply) => reply.emit('response', 'bad input', null))
    beta.handle('proxy.*', (body, reply, msg) => {
      const downstream = msg.headers.handle === 'proxy.missing' ? 'work.missing' : 'work.fail'
      reply.inherit(beta.request('delta', downstream, body))
    })
    const r1 = await settled(alpha.requestAsync('beta', 'proxy.missing', {}))
    expect(r1.ok).toBe(false)
    expect(r1.e.code).toBe(CODE.nothandled)

    const req = alpha.request('beta', 'proxy.fail', {})
    const log = record(req)
    const r2 = await settled(req.promise())
    expect(r2.ok).toBe(false)
    expect(r2.e.code).toBe(CODE.failed)
    expect(r2.e.message).toBe('bad input')
    await sleep(20)
    expect(log.map((e) => e[0])).toEqual(['response', 'fail'])
  })
})

describe('close', () => {
  test('close() resolves and fails a pending request with client_disconnected', async () => {
    await start()
    const alpha = await join('alpha')
    const rb = await joinRaw('beta')
    const req = alpha.request('beta', 'hang', {})
    const p = settled(req.promise())
    await rb.nextMatching((x) => x.headers.type === 'request')
    await alpha.close()
    const r = await p
    expect(r.ok).toBe(false)
    expect(r.e.code).toBe('ricochet.client_disconnected')
  })
})
