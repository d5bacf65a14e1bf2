'use strict'

// Hostile and unusual input on raw sockets (PROTOCOL.md §1.3, §3.2, D4). After every bad input a
// normal alpha → beta exchange must still work.

const { authFrame, decrypt, newId } = require('./helpers/wire')
const { rawSession } = require('./helpers/raw-session')
const { waitForEvent, PARTIES } = require('./helpers/server')

const MAX = 4096
const BADJSON_TEXT = 'Message does not contain valid JSON syntax.'

let ctx
const session = rawSession()
const { connect, join, connId, barrier } = session

beforeEach(() => {
  ctx = null
})

afterEach(async () => {
  await session.close()
  ctx = null
})

async function start (opts = {}) {
  ctx = await session.start({ config: { maxMessageSize: MAX }, ...opts })
  return ctx
}





const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))


/** alpha → beta still works, and beta has nothing else pending. */
async function expectPair (a, b) {
  const sent = a.message('beta', 'still.works', { ok: true })
  const got = await b.next()
  expect(got.headers).toMatchObject({ id: sent.headers.id, from: 'alpha', groups: ['g1'] })
  expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ ok: true })
}

/** Events other than the barrier's own `message_self` reports. */
function problems () {
  return ctx.events.filter(([n, p]) => (n === 'messageError' && p.code !== 'ricochet.message_self') ||
    n === 'invalidMessage' || n === 'clientAuthFail' || n === 'clientError')
}

/** Deterministic garbage bytes (no LF), from a small LCG. */
function garbage (n, seed = 12345) {
  const out = Buffer.alloc(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    let byte = (x >>> 16) & 0xff
    if (byte === 0x0a) byte = 0x0b
    out[i] = byte
  }
  return out
}

describe('Server bad input', () => {
  test('an invalid JSON line emits invalidMessage and keeps the connection open', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    await a.send('not json {\n')
    const ev = await waitForEvent(ctx.events, 'invalidMessage')
    expect(ev).toEqual({ id: connId('alpha'), msg: 'not json {', Error: BADJSON_TEXT, code: 'ricochet.message_badjson' })
    await a.send('{"headers":{"id":"x"\n')
    await barrier(a, 'alpha')
    expect(ctx.events.filter(([n]) => n === 'invalidMessage')).toHaveLength(2)
    expect(a.closed).toBe(false)
    await expectPair(a, b)
  })

  test('an invalid JSON line before auth is dropped and auth still succeeds', async () => {
    await start()
    const a = await connect()
    await a.send('{oops\n')
    const ev = await waitForEvent(ctx.events, 'invalidMessage')
    expect(ev.code).toBe('ricochet.message_badjson')
    expect(await a.auth(PARTIES.alpha)).toEqual({ auth: true, channel: 'alpha', groups: ['g1'] })
    const b = await join(PARTIES.beta)
    await expectPair(a, b)
  })

  test('binary garbage does not kill the connection or the server', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    await a.send(Buffer.concat([garbage(1000), Buffer.from('\n'), garbage(2000, 99), Buffer.from('\n')]))
    await barrier(a, 'alpha')
    expect(ctx.events.filter(([n]) => n === 'invalidMessage').map(([, p]) => p.code))
      .toEqual(['ricochet.message_badjson', 'ricochet.message_badjson'])
    expect(a.closed).toBe(false)
    await expectPair(a, b)
  })

  test('invalid UTF-8 bytes on a line are reported as bad JSON; the connection stays up', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    await a.send(Buffer.from([0xff, 0xfe, 0x80, 0xc0, 0xaf, 0x0a]))
    const ev = await waitForEvent(ctx.events, 'invalidMessage')
    expect(ev.code).toBe('ricochet.message_badjson')
    expect(ev.id).toBe(connId('alpha'))
    await barrier(a, 'alpha')
    await expectPair(a, b)
  })

  test('a frame with invalid UTF-8 inside a string is either dropped as bad JSON or forwarded with U+FFFD', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const id = newId()
    const head = Buffer.from(`{"headers":{"id":"${id}","to":"beta","type":"message","handle":"u","encrypted":false},"body":"a`)
    await a.send(Buffer.concat([head, Buffer.from([0xff, 0xc3]), Buffer.from('z"}\n')]))
    await barrier(a, 'alpha')
    const bad = ctx.events.filter(([n]) => n === 'invalidMessage').map(([, p]) => p.code)
    const delivered = b.unread().filter((f) => f.headers && f.headers.id === id)
    if (delivered.length) {
      expect(bad).toEqual([])
      expect(delivered).toHaveLength(1)
      expect(delivered[0].body).toMatch(/^a\ufffd+z$/)
      await b.next()
    } else {
      expect(bad).toEqual(['ricochet.message_badjson'])
    }
    await expectPair(a, b)
  })

  test('a line over maxMessageSize is never buffered: the sender gets message_toolarge and is disconnected', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const d = await join(PARTIES.delta)
    const alphaId = connId('alpha')
    // maxMessageSize * 4 bytes and never an LF.
    await a.send(Buffer.alloc(MAX * 4, 0x61)).catch(() => {})
    await a.ended(5000)
    const reply = a.frames[1]
    expect(reply).toEqual({ error: 'Message exceeds the maximum message size.', code: 'ricochet.message_toolarge' })
    const ev = await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_toolarge')
    expect(ev.raw.id).toBe(alphaId)
    await waitForEvent(ctx.events, 'clientDisconnected', (p) => p.id === alphaId)
    expect(ctx.server.getClients().map((c) => c.channel).sort()).toEqual(['beta', 'delta'])
    // Others keep working: beta → delta, and a new alpha can log in and talk to beta.
    const m = b.message('delta', 'others', { y: 1 })
    const got = await d.next()
    expect(got.headers.id).toBe(m.headers.id)
    const a2 = await join(PARTIES.alpha)
    await expectPair(a2, b)
  })

  test('a line over maxMessageSize sent in small chunks is cut off as well', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const chunk = Buffer.alloc(1024, 0x20)
    for (let i = 0; i < (MAX * 4) / 1024 && !a.closed; i++) {
      await a.send(chunk).catch(() => {})
    }
    await a.ended(5000)
    await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_toolarge')
    const a2 = await join(PARTIES.alpha)
    await expectPair(a2, b)
  })

  test('a line just under maxMessageSize is routed', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const id = newId()
    const frame = { headers: { id, to: 'beta', type: 'message', handle: 'big', encrypted: false }, body: '' }
    const overhead = JSON.stringify(frame).length + 1 // + LF
    frame.body = 'x'.repeat(MAX - overhead - 200) // leave room for the appended from/groups on the way out
    await a.send(frame)
    const got = await b.next()
    expect(got.headers.id).toBe(id)
    expect(got.body).toBe(frame.body)
  })

  test('an unauthenticated line over maxMessageSize gets {"auth":false} with message_toolarge', async () => {
    await start()
    const a = await connect()
    await a.send(Buffer.alloc(MAX * 4, 0x7b)).catch(() => {})
    await a.ended(5000)
    expect(a.frames[0]).toMatchObject({ auth: false, code: 'ricochet.message_toolarge' })
    await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_toolarge')
    const a2 = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    await expectPair(a2, b)
  })

  test('a message frame sent before auth fails with auth_malformed', async () => {
    await start()
    const x = await connect()
    await x.send({ headers: { id: newId(), to: 'beta', type: 'message', handle: 'early', encrypted: false }, body: {} })
    const reply = await x.next()
    expect(reply).toMatchObject({ auth: false, code: 'ricochet.auth_malformed' })
    await x.ended(5000)
    const ev = await waitForEvent(ctx.events, 'clientAuthFail')
    expect(ev.code).toBe('ricochet.auth_malformed')
    expect(ev.raw.message.headers.handle).toBe('early')
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    await expectPair(a, b)
    expect(b.unread()).toEqual([])
  })

  test('a non-object first frame fails with auth_malformed', async () => {
    await start()
    const x = await connect()
    await x.send('[1,2,3]\n')
    expect(await x.next()).toMatchObject({ auth: false, code: 'ricochet.auth_malformed' })
    await x.ended(5000)
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    await expectPair(a, b)
  })

  test('a spoofed from header is replaced by the sender channel', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const sent = a.message('beta', 'spoof', { s: 1 }, { extraHeaders: { from: 'admin' } })
    const got = await b.next()
    expect(got.headers.id).toBe(sent.headers.id)
    expect(got.headers.from).toBe('alpha')
    expect(got.headers.groups).toEqual(['g1'])
    await expectPair(a, b)
  })

  test('blank lines, whitespace lines and CRLF line ends are accepted', async () => {
    await start()
    const a = await connect()
    const frame = authFrame(PARTIES.alpha)
    await a.send('\n\n   \n\t\r\n' + JSON.stringify(frame) + '\r\n')
    expect(await a.next()).toEqual({ auth: true, channel: 'alpha', groups: ['g1'] })
    a.party = PARTIES.alpha
    const b = await join(PARTIES.beta)
    const id = newId()
    const msg = { headers: { id, to: 'beta', type: 'message', handle: 'crlf', encrypted: false }, body: { c: 1 } }
    await a.send('\r\n\n  \n' + JSON.stringify(msg) + '\r\n\n\n')
    const got = await b.next()
    expect(got.headers.id).toBe(id)
    expect(got.body).toEqual({ c: 1 })
    await barrier(a, 'alpha')
    expect(problems()).toEqual([])
    await expectPair(a, b)
    expect(b.unread()).toEqual([])
  })

  test('D4 a frame split right before its LF is delivered once', async () => {
    await start()
    const a = await join(PARTIES.alpha)
    const b = await join(PARTIES.beta)
    const id = newId()
    const text = JSON.stringify({ headers: { id, to: 'beta', type: 'message', handle: 'split', encrypted: false }, body: { s: 'é☃' } })
    await a.send(text)
    await sleep(100)
    await a.send('\n')
    // A split inside a multi-byte character, and a frame in many small pieces.
    const id2 = newId()
    const bytes = Buffer.from(JSON.stringify({ headers: { id: id2, to: 'beta', type: 'message', handle: 'split', encrypted: false }, body: '☃☃' }) + '\n')
    const cut = bytes.indexOf(Buffer.from('☃')) + 1
    await a.send(bytes.subarray(0, cut))
    await sleep(50)
    await a.send(bytes.subarray(cut, cut + 10))
    await sleep(50)
    await a.send(bytes.subarray(cut + 10))
    const first = await b.next()
    expect(first.headers.id).toBe(id)
    expect(first.body).toEqual({ s: 'é☃' })
    const second = await b.next()
    expect(second.headers.id).toBe(id2)
    expect(second.body).toBe('☃☃')
    // Nothing was delivered twice: the next frame beta sees is the one sent after.
    await expectPair(a, b)
    expect(b.frames.map((f) => f.headers ? f.headers.id : 'auth')).toEqual(['auth', id, id2, expect.any(String)])
  })

  test('falsy JSON lines (0, null, false, "") are silently ignored, before and after auth', async () => {
    await start()
    const a = await connect()
    await a.send('0\nnull\nfalse\n""\n')
    expect(await a.auth(PARTIES.alpha)).toEqual({ auth: true, channel: 'alpha', groups: ['g1'] })
    const b = await join(PARTIES.beta)
    await a.send('0\nnull\nfalse\n""\n  0  \n')
    await barrier(a, 'alpha')
    expect(problems()).toEqual([])
    expect(a.unread()).toEqual([])
    await expectPair(a, b)
    expect(b.unread()).toEqual([])
  })

  test('200 clients connect, authenticate and leave; nothing is left behind', async () => {
    const N = 200
    const privateKey = 'shared-private-key'
    const authKey = 'shared-auth-key'
    const auth = (data, cb) => {
      const m = /^p(\d+)$/.exec(data.publicKey)
      if (!m) return cb('unknown publicKey')
      cb(null, { ip: '', privateKey, publicKey: data.publicKey, authKey, channel: `c${m[1]}`, groups: ['g'] })
    }
    await start({ auth })
    const many = await Promise.all(Array.from({ length: N }, async (_x, n) => {
      const c = await connect()
      const reply = await c.auth({ publicKey: `p${n}`, privateKey, authKey }, { timeout: 10000 })
      expect(reply).toEqual({ auth: true, channel: `c${n}`, groups: ['g'] })
      return c
    }))
    expect(ctx.server.getClients()).toHaveLength(N)
    // A few of them talk to each other.
    const sent = many[0].message('c199', 'hi', { n: 0 })
    const got = await many[199].next()
    expect(got.headers).toMatchObject({ id: sent.headers.id, from: 'c0', groups: ['g'] })
    expect(JSON.parse(decrypt(privateKey, got.body))).toEqual({ n: 0 })
    await Promise.all(many.map((c) => c.close()))
    const connected = () => ctx.events.filter(([n]) => n === 'clientConnected').map(([, p]) => p.id)
    const disconnected = () => ctx.events.filter(([n]) => n === 'clientDisconnected').map(([, p]) => p.id)
    await waitForEvent(ctx.events, 'clientDisconnected', () => disconnected().length >= N, 10000)
    expect(ctx.server.getClients()).toEqual([])
    expect(connected()).toHaveLength(N)
    expect(new Set(connected()).size).toBe(N)
    expect(disconnected().sort()).toEqual(connected().sort())
    expect(ctx.events.filter(([n]) => n === 'clientReady')).toHaveLength(N)
    expect(problems()).toEqual([])
  })
})
