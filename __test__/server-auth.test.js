'use strict'

// Every auth outcome of PROTOCOL.md §3 through real sockets, with fresh auth frames built by the
// Node-crypto oracle, plus the auth defects D1, D3, D9, D10, D17 and D22.

const crypto = require('node:crypto')
const { RawClient, authFrame, encrypt, loadFrames } = require('./helpers/wire')
const { startServer, partiesAuth, waitForEvent, PARTIES } = require('./helpers/server')

const { ORIGINAL_CODES: TEXT } = require('./helpers/spec-codes')

const IPHASH = crypto.createHash('md5').update('127.0.0.1').digest('hex').toUpperCase()

let ctx = null
const clients = []

async function start (opts = {}) {
  ctx = await startServer(opts)
  return ctx
}

/** A raw socket that records every byte it receives. */
async function connect () {
  const c = await RawClient.connect(ctx.port)
  clients.push(c)
  const chunks = []
  c.socket.on('data', (chunk) => chunks.push(chunk))
  c.bytes = () => Buffer.concat(chunks)
  return c
}

/** A fresh auth frame for a party (current stamp unless given). */
function frameFor (party, opts = {}) {
  return authFrame({
    publicKey: party.publicKey,
    privateKey: party.privateKey,
    authKey: opts.authKey === undefined ? party.authKey : opts.authKey,
    stamp: opts.stamp === undefined ? Date.now() : opts.stamp,
    extra: opts.extra
  })
}

/** Sends one auth frame (object or exact string) on a new socket and returns {c, reply}. */
async function attempt (frame) {
  const c = await connect()
  await c.send(frame)
  const reply = await c.next(3000)
  return { c, reply }
}

/**
 * Sends `frame` and expects a refusal with `code`: the `{"auth":false,code,error}` reply, the
 * socket ended by the server, and one `clientAuthFail` event with that code. Returns the event.
 */
async function expectRefused (frame, code) {
  const { c, reply } = await attempt(frame)
  expect(reply).toEqual({ auth: false, code: 'ricochet.' + code, error: TEXT[code] })
  expect(c.lines[0].startsWith('{"auth":false,')).toBe(true)
  await c.ended(3000)
  expect(c.lines).toHaveLength(1)
  const ev = await waitForEvent(ctx.events, 'clientAuthFail', (p) => p.code === 'ricochet.' + code)
  expect(ev.raw).toHaveProperty('id')
  const connected = ctx.events.filter(([n, p]) => n === 'clientConnected' && p.id === ev.raw.id)
  expect(connected).toHaveLength(1)
  await waitForEvent(ctx.events, 'clientDisconnected', (p) => p.id === ev.raw.id)
  return ev
}

/** Sends `frame` and expects a successful login; returns the client. */
async function expectAccepted (frame, channel, groups) {
  const { c, reply } = await attempt(frame)
  expect(reply).toEqual({ auth: true, channel, groups })
  expect(c.lines[0]).toBe(JSON.stringify({ auth: true, channel, groups }))
  return c
}

/** The six-key result partiesAuth would give for a party name. */
function sixKeys (name) {
  const p = PARTIES[name]
  return {
    ip: p.auth_result_ip,
    privateKey: p.privateKey,
    publicKey: p.publicKey,
    authKey: p.authKey,
    channel: name,
    groups: p.groups
  }
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await RawClient.closeAll()
  if (ctx) await ctx.close()
  ctx = null
})

describe('successful logins', () => {
  test('a cb-style callback answering with the 0.3.16 six-key result logs the client in', async () => {
    await start({ auth: (data, cb) => cb(null, sixKeys('alpha')) })
    const c = await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
    expect(c.bytes().toString('utf8')).toBe('{"auth":true,"channel":"alpha","groups":["g1"]}\n')
    const connected = await waitForEvent(ctx.events, 'clientConnected')
    const ready = await waitForEvent(ctx.events, 'clientReady')
    expect(ready).toEqual({ id: connected.id })
    expect(ctx.events.filter(([n]) => n === 'clientAuthFail')).toEqual([])
  })

  test('a Promise-returning callback answering with the six-key result logs the client in', async () => {
    await start({ auth: async () => sixKeys('beta') })
    await expectAccepted(frameFor(PARTIES.beta), 'beta', ['g1', 'g2'])
    await waitForEvent(ctx.events, 'clientReady')
  })

  test('a cb-style callback answering with the README result {channel, publicKey, privateKey, groups} logs the client in', async () => {
    const p = PARTIES.alpha
    await start({
      auth: (data, cb) => cb(null, { channel: 'alpha', publicKey: p.publicKey, privateKey: p.privateKey, groups: ['g1'] })
    })
    await expectAccepted(frameFor(p), 'alpha', ['g1'])
  })

  test('a Promise-returning callback answering with the README result logs the client in (groups:true)', async () => {
    const p = PARTIES.admin
    await start({
      auth: (data) => new Promise((resolve) => setImmediate(() =>
        resolve({ channel: 'admin', publicKey: p.publicKey, privateKey: p.privateKey, groups: true })))
    })
    const c = await expectAccepted(frameFor(p), 'admin', true)
    expect(c.bytes().toString('utf8')).toBe('{"auth":true,"channel":"admin","groups":true}\n')
  })

  test('the callback gets the auth frame fields plus ip 127.0.0.1 and its upper-case MD5 iphash, which the client cannot spoof', async () => {
    const seen = []
    const inner = partiesAuth()
    await start({ auth: (data, cb) => { seen.push(data); inner(data, cb) } })
    const frame = frameFor(PARTIES.alpha, { extra: { ip: '6.6.6.6', iphash: 'SPOOFED', note: 'kept' } })
    await expectAccepted(frame, 'alpha', ['g1'])
    expect(seen).toHaveLength(1)
    expect(IPHASH).toMatch(/^[0-9A-F]{32}$/)
    expect(seen[0]).toEqual({
      publicKey: frame.publicKey,
      authKey: frame.authKey,
      authStamp: frame.authStamp,
      note: 'kept',
      ip: '127.0.0.1',
      iphash: IPHASH
    })
  })

  test('every connection emits clientConnected {id, ip} and finally clientDisconnected {id}', async () => {
    await start()
    const c = await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
    const connected = await waitForEvent(ctx.events, 'clientConnected')
    expect(connected).toEqual({ id: expect.stringMatching(/^[A-Za-z0-9]{32}$/), ip: expect.any(String) })
    expect(connected.ip).toMatch(/127\.0\.0\.1$/)
    await c.close()
    expect(await waitForEvent(ctx.events, 'clientDisconnected')).toEqual({ id: connected.id })
  })
})

describe('auth_malformed', () => {
  test.each(['publicKey', 'authKey', 'authStamp'])('an auth frame without %s is refused with auth_malformed and the callback is not asked', async (key) => {
    let asked = 0
    const inner = partiesAuth()
    await start({ auth: (d, cb) => { asked++; inner(d, cb) } })
    const frame = frameFor(PARTIES.alpha)
    delete frame[key]
    const ev = await expectRefused(frame, 'auth_malformed')
    expect(ev).toMatchObject({ Error: TEXT.auth_malformed, code: 'ricochet.auth_malformed' })
    expect(ev.raw.message).toEqual(frame)
    expect(asked).toBe(0)
  })

  test.each(['[1]', '"text"', '42', 'true'])('a non-object JSON line %s is refused with auth_malformed', async (line) => {
    await start()
    const ev = await expectRefused(line + '\n', 'auth_malformed')
    expect(ev.raw.message).toEqual(JSON.parse(line))
  })
})

describe('auth_failure', () => {
  test('a callback error string is refused with auth_failure; the event Error holds the string', async () => {
    await start({ auth: (data, cb) => cb('no such user') })
    const ev = await expectRefused(frameFor(PARTIES.alpha), 'auth_failure')
    expect(ev).toMatchObject({ Error: 'no such user', code: 'ricochet.auth_failure' })
  })

  test('a callback Error object is refused with auth_failure; the event Error holds its message', async () => {
    await start({ auth: (data, cb) => cb(new Error('account locked')) })
    const ev = await expectRefused(frameFor(PARTIES.alpha), 'auth_failure')
    expect(ev).toMatchObject({ Error: 'account locked', code: 'ricochet.auth_failure' })
  })

  test('a rejected Promise is refused with auth_failure; the event Error holds the rejection message', async () => {
    await start({ auth: async () => { throw new Error('database down') } })
    const ev = await expectRefused(frameFor(PARTIES.alpha), 'auth_failure')
    expect(ev).toMatchObject({ Error: 'database down', code: 'ricochet.auth_failure' })
  })

  test('a callback that throws synchronously is refused with auth_failure', async () => {
    await start({ auth: () => { throw new Error('callback bug') } })
    const ev = await expectRefused(frameFor(PARTIES.alpha), 'auth_failure')
    expect(ev).toMatchObject({ Error: 'callback bug', code: 'ricochet.auth_failure' })
  })

  test('the unknown party of frames.json (callback error string) is refused with auth_failure', async () => {
    await start()
    const ev = await expectRefused(frameFor(PARTIES.unknown), 'auth_failure')
    expect(ev.Error).toBe('unknown publicKey')
  })
})

describe('auth_lookup', () => {
  test.each(['channel', 'privateKey', 'groups'])('a result without %s is refused with auth_lookup', async (key) => {
    await start({
      auth: (data, cb) => {
        const r = sixKeys('alpha')
        delete r[key]
        cb(null, r)
      }
    })
    const ev = await expectRefused(frameFor(PARTIES.alpha), 'auth_lookup')
    expect(ev).toMatchObject({ Error: TEXT.auth_lookup, code: 'ricochet.auth_lookup' })
  })

  test('a callback that succeeds without a result is refused with auth_lookup', async () => {
    await start({ auth: (data, cb) => cb(null) })
    await expectRefused(frameFor(PARTIES.alpha), 'auth_lookup')
  })
})

describe('auth_nogroups', () => {
  test.each([
    ['[]', []],
    ['false', false]
  ])('groups %s is refused with auth_nogroups and the event carries provided', async (_label, groups) => {
    await start({ auth: partiesAuth({ alpha: { groups } }) })
    const ev = await expectRefused(frameFor(PARTIES.alpha), 'auth_nogroups')
    expect(ev).toMatchObject({ Error: TEXT.auth_nogroups, code: 'ricochet.auth_nogroups' })
    expect(ev).toHaveProperty('provided')
    expect(ev.provided).toEqual(groups)
  })

  test('the nogroups party of frames.json is refused with auth_nogroups', async () => {
    await start()
    const ev = await expectRefused(frameFor(PARTIES.nogroups), 'auth_nogroups')
    expect(ev.provided).toEqual([])
  })
})

describe('auth_ip', () => {
  test('a result ip that is not the peer ip is refused with auth_ip, with provided and expected', async () => {
    await start()
    const ev = await expectRefused(frameFor(PARTIES.wrongip), 'auth_ip')
    expect(ev).toMatchObject({
      Error: TEXT.auth_ip,
      code: 'ricochet.auth_ip',
      provided: '127.0.0.1',
      expected: '10.9.8.7'
    })
  })

  test('a result ip equal to the peer ip, or an empty one, is accepted', async () => {
    await start()
    await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
    await expectAccepted(frameFor(PARTIES.beta), 'beta', ['g1', 'g2'])
    expect(PARTIES.alpha.auth_result_ip).toBe('127.0.0.1')
    expect(PARTIES.beta.auth_result_ip).toBe('')
  })
})

describe('auth_authkey', () => {
  test('a wrong authKey is refused with auth_authkey', async () => {
    await start()
    const ev = await expectRefused(frameFor(PARTIES.alpha, { authKey: 'not-the-auth-key' }), 'auth_authkey')
    expect(ev).toMatchObject({ Error: TEXT.auth_authkey, code: 'ricochet.auth_authkey' })
    expect(ev).not.toHaveProperty('expected')
  })

  test('an authKey encrypted with another privateKey is refused with auth_authkey', async () => {
    await start()
    const frame = authFrame({ publicKey: 'pub-alpha', privateKey: 'priv-beta-91c2', authKey: 'auth-alpha', stamp: Date.now() })
    await expectRefused(frame, 'auth_authkey')
  })
})

describe('auth_expiredkey', () => {
  test.each([
    ['a stale stamp two minutes old', () => Date.now() - 120000],
    ['a future stamp two minutes ahead', () => Date.now() + 120000],
    ['a non-numeric stamp', () => 'abc']
  ])('%s is refused with auth_expiredkey', async (_label, stamp) => {
    await start()
    const ev = await expectRefused(frameFor(PARTIES.alpha, { stamp: stamp() }), 'auth_expiredkey')
    expect(ev).toMatchObject({ Error: TEXT.auth_expiredkey, code: 'ricochet.auth_expiredkey' })
  })

  test('a stamp a few seconds old is inside the default 30 s window and accepted', async () => {
    await start()
    await expectAccepted(frameFor(PARTIES.alpha, { stamp: Date.now() - 5000 }), 'alpha', ['g1'])
  })

  test('timeouts.authKey widens the window', async () => {
    await start({ config: { timeouts: { authKey: 10 * 60 * 1000 } } })
    await expectAccepted(frameFor(PARTIES.alpha, { stamp: Date.now() - 120000 }), 'alpha', ['g1'])
  })
})

describe('auth_channel', () => {
  test('a second login on an occupied channel is refused with auth_channel and provided; the first login stays', async () => {
    await start()
    const first = await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
    const ev = await expectRefused(frameFor(PARTIES.alpha), 'auth_channel')
    expect(ev).toMatchObject({ Error: TEXT.auth_channel, code: 'ricochet.auth_channel', provided: 'alpha' })
    expect(first.closed).toBe(false)
    expect(ctx.server.getClients().map((c) => c.channel)).toContain('alpha')
    // Once the first connection leaves, the channel is free again.
    const readyId = (await waitForEvent(ctx.events, 'clientReady')).id
    await first.close()
    await waitForEvent(ctx.events, 'clientDisconnected', (p) => p.id === readyId)
    await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
  })
})

describe('auth_timeout', () => {
  test('a silent connection gets clientAuthFail {id, ip, Error, code: auth_timeout}, then FIN with no frame', async () => {
    await start({ config: { timeouts: { auth: 200 } } })
    const c = await connect()
    const connected = await waitForEvent(ctx.events, 'clientConnected')
    await c.ended(5000)
    const ev = await waitForEvent(ctx.events, 'clientAuthFail')
    expect(ev).toMatchObject({
      id: connected.id,
      ip: expect.stringMatching(/127\.0\.0\.1$/),
      Error: TEXT.auth_timeout,
      code: 'ricochet.auth_timeout'
    })
    expect(c.bytes().length).toBe(0)
    expect(c.lines).toEqual([])
    await waitForEvent(ctx.events, 'clientDisconnected', (p) => p.id === connected.id)
  })

  test('a connection that only sends an incomplete line also times out with auth_timeout', async () => {
    await start({ config: { timeouts: { auth: 200 } } })
    const c = await connect()
    await c.send('{"publicKey":"pub-alpha"')
    await c.ended(5000)
    const ev = await waitForEvent(ctx.events, 'clientAuthFail')
    expect(ev.code).toBe('ricochet.auth_timeout')
    expect(c.bytes().length).toBe(0)
  })
})

describe('defects', () => {
  test('D1 a byte-for-byte replay of the captured alpha auth frame (seq 1) is rejected with auth_expiredkey under the default window', async () => {
    await start()
    const captured = loadFrames().frames.find((f) => f.seq === 1)
    expect(captured.decryption.authStamp.result).toBe('1700000000000')
    const ev = await expectRefused(captured.raw, 'auth_expiredkey')
    expect(ev.raw.message).toEqual(captured.json)
  })

  test('D1 an authKey padded with another authStamp is rejected', async () => {
    await start()
    const p = PARTIES.alpha
    const now = Date.now()
    const authStamp = encrypt(p.privateKey, now)
    const otherStamp = encrypt(p.privateKey, now - 1000)
    const frame = { publicKey: p.publicKey, authKey: encrypt(p.privateKey, p.authKey, otherStamp), authStamp }
    await expectRefused(frame, 'auth_authkey')
    // PAD16 instead of the stamp is not accepted either.
    await expectRefused({ publicKey: p.publicKey, authKey: encrypt(p.privateKey, p.authKey), authStamp }, 'auth_authkey')
    // The same key with the right padding logs in.
    await expectAccepted({ publicKey: p.publicKey, authKey: encrypt(p.privateKey, p.authKey, authStamp), authStamp }, 'alpha', ['g1'])
  })

  test('D3 an auth frame with authKey and authStamp "zz" fails cleanly and the server keeps serving a normal login', async () => {
    await start()
    await expectRefused('{"publicKey":"pub-alpha","authKey":"zz","authStamp":"zz"}\n', 'auth_authkey')
    await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
  })

  test.each([
    ['odd-length hex', 'abc'],
    ['hex shorter than 16 bytes', '00ff'],
    ['an empty string', ''],
    ['a number', 12],
    ['null', null]
  ])('D3 an authKey that is %s fails cleanly with auth_authkey', async (_label, value) => {
    await start()
    const frame = frameFor(PARTIES.alpha)
    frame.authKey = value
    await expectRefused(frame, 'auth_authkey')
    await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
  })

  test('D3 an undecryptable authStamp with a README result (no authKey to check) fails cleanly with auth_expiredkey', async () => {
    const p = PARTIES.alpha
    await start({ auth: (d, cb) => cb(null, { channel: 'alpha', publicKey: p.publicKey, privateKey: p.privateKey, groups: ['g1'] }) })
    await expectRefused('{"publicKey":"pub-alpha","authKey":"zz","authStamp":"zz"}\n', 'auth_expiredkey')
    await expectAccepted(frameFor(p), 'alpha', ['g1'])
  })

  test('D9 an empty authKey can log in (party empty, result authKey "")', async () => {
    await start()
    expect(PARTIES.empty.authKey).toBe('')
    await expectAccepted(frameFor(PARTIES.empty), 'empty', ['g1'])
  })

  test('D9 an empty authKey does not match a non-empty expected authKey', async () => {
    await start()
    await expectRefused(frameFor(PARTIES.alpha, { authKey: '' }), 'auth_authkey')
  })

  test('D10 an authKey with leading whitespace ("  auth-alpha") is rejected with auth_authkey', async () => {
    await start()
    await expectRefused(frameFor(PARTIES.alpha, { authKey: '  auth-alpha' }), 'auth_authkey')
    await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
  })

  test('D17 a callback that answers after the auth timeout does not crash and its late result is ignored', async () => {
    let late = null
    let lateError = null
    const lateDone = new Promise((resolve) => { late = resolve })
    let calls = 0
    await start({
      config: { timeouts: { auth: 200 } },
      auth: (data, cb) => {
        calls++
        if (calls === 1) {
          setTimeout(() => {
            try {
              cb(null, sixKeys('alpha'))
            } catch (err) {
              lateError = err
            }
            late()
          }, 600)
          return
        }
        cb(null, sixKeys('alpha'))
      }
    })
    const slow = await connect()
    await slow.send(frameFor(PARTIES.alpha))
    await slow.ended(5000)
    const ev = await waitForEvent(ctx.events, 'clientAuthFail')
    expect(ev.code).toBe('ricochet.auth_timeout')
    await lateDone
    expect(lateError).toBeNull()
    // Let any work triggered by the late answer settle.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(slow.bytes().length).toBe(0)
    expect(ctx.events.filter(([n]) => n === 'clientReady')).toEqual([])
    expect(ctx.server.getClients()).toEqual([])
    // The channel was never taken: a later login works.
    await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
    expect(calls).toBe(2)
  })

  test('D17 a callback that answers after the client disconnected is ignored (no clientReady) and later logins work', async () => {
    let answer = null
    const asked = new Promise((resolve) => { answer = resolve })
    let calls = 0
    await start({
      auth: (data, cb) => {
        calls++
        if (calls === 1) return answer(cb)
        cb(null, sixKeys('alpha'))
      }
    })
    const gone = await connect()
    await gone.send(frameFor(PARTIES.alpha))
    const cb = await asked
    const { id } = await waitForEvent(ctx.events, 'clientConnected')
    // Events of this connection, by name (clientInput left out).
    const names = () => ctx.events
      .filter(([n, p]) => n !== 'clientInput' && (p.id === id || (p.raw && p.raw.id === id)))
      .map(([n]) => n)
    await gone.close()
    // The socket is closed: the server should report the disconnect now (generous wait).
    await waitForEvent(ctx.events, 'clientDisconnected', (p) => p.id === id, 1500).catch(() => {})
    const beforeAnswer = names()
    expect(() => cb(null, sixKeys('alpha'))).not.toThrow()
    await new Promise((resolve) => setTimeout(resolve, 200))
    await waitForEvent(ctx.events, 'clientDisconnected', (p) => p.id === id)
    // The peer's FIN shows up as clientEnd; what matters is that nothing follows the answer.
    const lifecycle = ['clientConnected', 'clientEnd', 'clientDisconnected']
    expect({ beforeAnswer, afterAnswer: names() }).toEqual({ beforeAnswer: lifecycle, afterAnswer: lifecycle })
    await expectAccepted(frameFor(PARTIES.alpha), 'alpha', ['g1'])
  })

  test('D22 no event payload contains the expected authKey or the privateKey', async () => {
    await start({ config: { timeouts: { auth: 200 } } })
    const secrets = []
    for (const name of ['alpha', 'beta', 'delta', 'wrongip', 'nogroups', 'empty']) {
      secrets.push(PARTIES[name].privateKey)
      if (PARTIES[name].authKey) secrets.push(PARTIES[name].authKey)
    }
    await expectRefused(frameFor(PARTIES.alpha, { authKey: 'not-the-auth-key' }), 'auth_authkey')
    await expectRefused(frameFor(PARTIES.delta, { authKey: 'not-the-auth-key' }), 'auth_authkey')
    await expectRefused(frameFor(PARTIES.alpha, { stamp: Date.now() - 120000 }), 'auth_expiredkey')
    await expectRefused(frameFor(PARTIES.wrongip), 'auth_ip')
    await expectRefused(frameFor(PARTIES.nogroups), 'auth_nogroups')
    await expectRefused(frameFor(PARTIES.alpha, { authKey: '  auth-alpha' }), 'auth_authkey')
    await expectAccepted(frameFor(PARTIES.beta), 'beta', ['g1', 'g2'])
    await expectAccepted(frameFor(PARTIES.empty), 'empty', ['g1'])
    await expectRefused(frameFor(PARTIES.beta), 'auth_channel')
    const silent = await connect()
    await silent.ended(5000)
    await waitForEvent(ctx.events, 'clientAuthFail', (p) => p.code === 'ricochet.auth_timeout')
    const all = JSON.stringify(ctx.events)
    for (const secret of secrets) expect(all).not.toContain(secret)
    for (const [, payload] of ctx.events) {
      expect(payload).not.toHaveProperty('expected', 'auth-alpha')
      expect(payload).not.toHaveProperty('privateKey')
    }
  })

  test('D22 auth timeout events carry the connection id', async () => {
    await start({ config: { timeouts: { auth: 200 } } })
    const a = await connect()
    const b = await connect()
    await Promise.all([a.ended(5000), b.ended(5000)])
    await waitForEvent(ctx.events, 'clientDisconnected')
    const connectedIds = ctx.events.filter(([n]) => n === 'clientConnected').map(([, p]) => p.id)
    await waitForEvent(ctx.events, 'clientAuthFail', () =>
      ctx.events.filter(([n]) => n === 'clientAuthFail').length === 2)
    const timeoutIds = ctx.events.filter(([n]) => n === 'clientAuthFail').map(([, p]) => {
      expect(p.code).toBe('ricochet.auth_timeout')
      return p.id
    })
    expect(connectedIds).toHaveLength(2)
    expect(timeoutIds.sort()).toEqual(connectedIds.sort())
  })

  test('D22 auth failures emit clientAuthFail once each and never messageError', async () => {
    await start({ config: { timeouts: { auth: 200 } } })
    await expectRefused(frameFor(PARTIES.alpha, { authKey: 'wrong' }), 'auth_authkey')
    await expectRefused('{"foo":1}\n', 'auth_malformed')
    await expectRefused(frameFor(PARTIES.unknown), 'auth_failure')
    await expectRefused(frameFor(PARTIES.wrongip), 'auth_ip')
    await expectRefused(frameFor(PARTIES.alpha, { stamp: 'abc' }), 'auth_expiredkey')
    const silent = await connect()
    await silent.ended(5000)
    await waitForEvent(ctx.events, 'clientAuthFail', (p) => p.code === 'ricochet.auth_timeout')
    // Let any stray duplicate events arrive.
    await new Promise((resolve) => setTimeout(resolve, 100))
    const fails = ctx.events.filter(([n]) => n === 'clientAuthFail')
    expect(fails.map(([, p]) => p.code)).toEqual([
      'ricochet.auth_authkey', 'ricochet.auth_malformed', 'ricochet.auth_failure',
      'ricochet.auth_ip', 'ricochet.auth_expiredkey', 'ricochet.auth_timeout'
    ])
    expect(ctx.events.filter(([n]) => n === 'messageError')).toEqual([])
  })
})
