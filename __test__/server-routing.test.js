'use strict'

// Routing between raw TCP peers (PROTOCOL.md §4, §4.5, §4.6 and defects D2–D25).

const { encrypt, decrypt, decryptRaw, newId, DELIM, PAD16 } = require('./helpers/wire')
const { rawSession } = require('./helpers/raw-session')
const { partiesAuth, waitForEvent, PARTIES } = require('./helpers/server')

const TEXT = {
  decrypt: 'Message failed to decrypt.',
  group: 'Message is sent from another, inaccesible group.',
  norecipient: 'No recipient found by given id.',
  self: 'Client attempted to send message to itself.'
}

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
  ctx = await session.start(opts)
  return ctx
}





/** The error body of a synthesized reply (decrypting it with `privateKey` when it is hex). */
function errorBody (reply, privateKey) {
  if (reply.headers.encrypted) {
    expect(typeof reply.body).toBe('string')
    return JSON.parse(decrypt(privateKey, reply.body))
  }
  return reply.body
}


/** alpha → beta still works (encrypted message). */
async function expectPair (a, b, handle = 'still.works') {
  const sent = a.message('beta', handle, { ok: true })
  const got = await b.next()
  expect(got.headers.id).toBe(sent.headers.id)
  expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ ok: true })
}

describe('Server routing', () => {
  describe('messages and requests', () => {
    test('an encrypted message reaches the recipient with from/groups appended', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const sent = a.message('beta', 'chat.hello', { hi: 'there', n: [1, 2] })
      const got = await b.next()
      expect(Object.keys(got)).toEqual(['headers', 'body'])
      expect(Object.keys(got.headers)).toEqual(['id', 'to', 'type', 'handle', 'encrypted', 'from', 'groups'])
      expect(got.headers).toEqual({
        id: sent.headers.id,
        to: 'beta',
        type: 'message',
        handle: 'chat.hello',
        encrypted: true,
        from: 'alpha',
        groups: ['g1']
      })
      expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ hi: 'there', n: [1, 2] })
    })

    test('an encrypted request keeps its timeout header and the reply finds its way back', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const req = a.message('beta', 'math.add', { a: 1, b: 2 }, { type: 'request', timeout: 5000 })
      const got = await b.next()
      expect(got.headers).toEqual({
        id: req.headers.id,
        to: 'beta',
        type: 'request',
        handle: 'math.add',
        encrypted: true,
        timeout: 5000,
        from: 'alpha',
        groups: ['g1']
      })
      const args = JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))
      b.message(got.headers.from, got.headers.handle, { data: args.a + args.b },
        { type: 'reply', id: got.headers.id, status: 'response' })
      const reply = await a.next()
      expect(reply.headers).toEqual({
        id: req.headers.id,
        to: 'alpha',
        type: 'reply',
        handle: 'math.add',
        encrypted: true,
        status: 'response',
        from: 'beta',
        groups: ['g1', 'g2']
      })
      expect(JSON.parse(decrypt(PARTIES.alpha.privateKey, reply.body))).toEqual({ data: 3 })
    })

    test('plaintext (encrypted:false) message and request bodies pass through as JSON', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const body = { text: 'héllo ☃', list: [1, null, true], nested: { k: 'v' } }
      const m = a.message('beta', 'plain.msg', body, { encrypted: false })
      const got = await b.next()
      expect(got.headers).toMatchObject({ id: m.headers.id, encrypted: false, from: 'alpha', groups: ['g1'] })
      expect(got.body).toEqual(body)
      const r = a.message('beta', 'plain.req', 'just a string', { encrypted: false, type: 'request', timeout: 100 })
      const got2 = await b.next()
      expect(got2.headers).toMatchObject({ id: r.headers.id, type: 'request', timeout: 100, encrypted: false })
      expect(got2.body).toBe('just a string')
    })

    test('the body is re-encrypted with the recipient key, not the sender key', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const sent = a.message('beta', 'secret', { s: 'x'.repeat(40) })
      const got = await b.next()
      expect(got.body).not.toBe(sent.body)
      expect(got.body).toMatch(/^[0-9a-f]+$/)
      expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ s: 'x'.repeat(40) })
      // With the sender's key the forwarded body is garbage (no integrity check, so no error).
      expect(decryptRaw(PARTIES.alpha.privateKey, got.body)).not.toContain('"s":')
      // And the other way round.
      const back = b.message('alpha', 'secret.back', [1, 2, 3])
      const got2 = await a.next()
      expect(got2.body).not.toBe(back.body)
      expect(JSON.parse(decrypt(PARTIES.alpha.privateKey, got2.body))).toEqual([1, 2, 3])
    })

    test('spoofed from/groups headers are overwritten in place', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const id = newId()
      await a.send({
        headers: { id, from: 'admin', groups: true, to: 'beta', type: 'message', handle: 'spoof', encrypted: false },
        body: { x: 1 }
      })
      const got = await b.next()
      expect(Object.keys(got.headers)).toEqual(['id', 'from', 'groups', 'to', 'type', 'handle', 'encrypted'])
      expect(got.headers.from).toBe('alpha')
      expect(got.headers.groups).toEqual(['g1'])
      // Spoofing a group the sender is not in does not open a closed group.
      const c = await join(PARTIES.gamma)
      const m = a.message('gamma', 'spoof', {}, { encrypted: false, extraHeaders: { groups: ['g3'], from: 'gamma' } })
      const reply = await a.next()
      expect(reply.headers.id).toBe(m.headers.id)
      expect(reply.body.code).toBe('ricochet.message_group')
      expect(c.unread()).toEqual([])
    })

    test('unknown header and top-level keys are forwarded unchanged', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const id = newId()
      await a.send({ meta: { trace: 7 }, headers: { id, to: 'beta', type: 'message', handle: 'h', encrypted: false, custom: 'c' }, body: 1, tail: 'z' })
      const got = await b.next()
      expect(Object.keys(got)).toEqual(['meta', 'headers', 'body', 'tail'])
      expect(got).toMatchObject({ meta: { trace: 7 }, body: 1, tail: 'z', headers: { custom: 'c', from: 'alpha' } })
    })
  })

  describe('groups', () => {
    test('alpha (g1) and beta (g1,g2) reach each other', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      await expectPair(a, b)
      b.message('alpha', 'back', { y: 1 })
      const got = await a.next()
      expect(got.headers).toMatchObject({ from: 'beta', groups: ['g1', 'g2'] })
    })

    test('alpha → gamma (g3) gets a message_group error reply; gamma gets nothing', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const c = await join(PARTIES.gamma)
      const sent = a.message('gamma', 'nope', { n: 1 })
      const reply = await a.next()
      expect(reply.headers).toEqual({
        id: sent.headers.id,
        from: 'gamma',
        to: 'alpha',
        type: 'reply',
        status: 'error',
        encrypted: true,
        groups: ['g1']
      })
      expect(errorBody(reply, PARTIES.alpha.privateKey)).toEqual({ error: TEXT.group, code: 'ricochet.message_group' })
      const err = await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_group')
      expect(err.Error).toBe(TEXT.group)
      expect(err.raw.id).toBe(connId('alpha'))
      expect(err.raw.message.headers.id).toBe(sent.headers.id)
      // gamma → alpha is refused as well.
      const back = c.message('alpha', 'nope', {}, { encrypted: false })
      const reply2 = await c.next()
      expect(reply2.headers).toMatchObject({ id: back.headers.id, from: 'alpha', to: 'gamma', groups: ['g3'] })
      expect(reply2.body).toEqual({ error: TEXT.group, code: 'ricochet.message_group' })
      await barrier(c, 'gamma')
      expect(a.unread()).toEqual([])
    })

    test('admin (groups:true) reaches array recipients and is reached by them', async () => {
      await start()
      const adm = await join(PARTIES.admin)
      const a = await join(PARTIES.alpha)
      const c = await join(PARTIES.gamma)
      adm.message('alpha', 'from.admin', { to: 'alpha' })
      const got = await a.next()
      expect(got.headers).toMatchObject({ from: 'admin', groups: ['g1'] })
      expect(JSON.parse(decrypt(PARTIES.alpha.privateKey, got.body))).toEqual({ to: 'alpha' })
      c.message('admin', 'to.admin', { from: 'gamma' })
      const got2 = await adm.next()
      expect(got2.headers).toMatchObject({ from: 'gamma', groups: ['g3'] })
      expect(JSON.parse(decrypt(PARTIES.admin.privateKey, got2.body))).toEqual({ from: 'gamma' })
    })
  })

  describe('synthesized error replies (§4.5)', () => {
    test('message_norecipient reply has the exact byte shape (plaintext)', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const sent = a.message('nobody', 'lost', { x: 1 }, { encrypted: false })
      const reply = await a.next()
      expect(a.lines[a.lines.length - 1]).toBe(
        `{"headers":{"id":"${sent.headers.id}","from":"nobody","to":"alpha","type":"reply","status":"error",` +
        '"encrypted":false,"groups":["g1"]},"body":{"error":"No recipient found by given id.",' +
        '"code":"ricochet.message_norecipient"}}'
      )
      expect(reply.body.code).toBe('ricochet.message_norecipient')
      const ev = await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_norecipient')
      expect(ev.Error).toBe(TEXT.norecipient)
      expect(ev.raw).toMatchObject({ id: connId('alpha'), message: { headers: { id: sent.headers.id, to: 'nobody' } } })
    })

    test('message_norecipient reply for an encrypted frame carries a hex body for the sender', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const sent = a.message('nobody', 'lost', { x: 1 })
      const reply = await a.next()
      const line = a.lines[a.lines.length - 1]
      const re = new RegExp(`^\\{"headers":\\{"id":"${sent.headers.id}","from":"nobody","to":"alpha","type":"reply",` +
        '"status":"error","encrypted":true,"groups":\\["g1"\\]\\},"body":"[0-9a-f]+"\\}$')
      expect(line).toMatch(re)
      expect(decrypt(PARTIES.alpha.privateKey, reply.body)).toBe(
        '{"error":"No recipient found by given id.","code":"ricochet.message_norecipient"}')
      expect(decryptRaw(PARTIES.alpha.privateKey, reply.body).endsWith(DELIM + PAD16)).toBe(true)
    })

    test('an admin sender gets groups:true in its own error replies', async () => {
      await start()
      const adm = await join(PARTIES.admin)
      adm.message('nobody', 'x', {}, { encrypted: false })
      const reply = await adm.next()
      expect(reply.headers).toMatchObject({ from: 'nobody', to: 'admin', groups: true, status: 'error' })
      expect(reply.body.code).toBe('ricochet.message_norecipient')
    })
  })

  describe('unroutedCallback (§4.6)', () => {
    test('gets {id, message} with the body decrypted; cb() takes the frame over (nothing sent)', async () => {
      const calls = []
      await start({ unrouted: (data, cb) => { calls.push(data); cb() } })
      const a = await join(PARTIES.alpha)
      const sent = a.message('elsewhere', 'handoff', { secret: 42 })
      for (let i = 0; i < 200 && calls.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
      expect(calls).toHaveLength(1)
      expect(calls[0].id).toBe(connId('alpha'))
      expect(calls[0].message.headers).toMatchObject({ id: sent.headers.id, to: 'elsewhere', from: 'alpha', groups: ['g1'], handle: 'handoff' })
      expect(calls[0].message.body).toEqual({ secret: 42 })
      await new Promise((resolve) => setTimeout(resolve, 100))
      await barrier(a, 'alpha')
      expect(a.unread()).toEqual([])
      expect(ctx.events.filter(([n, p]) => n === 'messageError' && p.code !== 'ricochet.message_self')).toEqual([])
    })

    test.each([
      ['message_norecipient', 'ricochet.message_norecipient'],
      ['ricochet.message_norecipient', 'ricochet.message_norecipient'],
      ['message_group', 'ricochet.message_group'],
      ['ricochet.client_send', 'ricochet.client_send']
    ])('cb(%p) sends an error reply with code %s', async (given, code) => {
      await start({ unrouted: (data, cb) => cb(given) })
      const a = await join(PARTIES.alpha)
      const sent = a.message('elsewhere', 'x', { q: 1 })
      const reply = await a.next()
      expect(reply.headers).toMatchObject({ id: sent.headers.id, from: 'elsewhere', to: 'alpha', status: 'error', encrypted: true })
      expect(errorBody(reply, PARTIES.alpha.privateKey).code).toBe(code)
      await waitForEvent(ctx.events, 'messageError', (p) => p.code === code)
    })

    test('a Promise resolving undefined takes over; resolving a code replies with it', async () => {
      let answer
      await start({ unrouted: async (data) => answer(data) })
      const a = await join(PARTIES.alpha)
      answer = () => undefined
      a.message('elsewhere', 'x', {}, { encrypted: false })
      await new Promise((resolve) => setTimeout(resolve, 100))
      await barrier(a, 'alpha')
      answer = () => 'message_group'
      const sent = a.message('elsewhere', 'y', {}, { encrypted: false })
      const reply = await a.next()
      expect(reply.headers.id).toBe(sent.headers.id)
      expect(reply.body).toEqual({ error: TEXT.group, code: 'ricochet.message_group' })
    })

    test('a rejecting Promise replies with its code (string or Error with .code)', async () => {
      let reason
      await start({ unrouted: () => Promise.reject(reason) })
      const a = await join(PARTIES.alpha)
      reason = 'ricochet.message_decrypt'
      const s1 = a.message('elsewhere', 'x', {}, { encrypted: false })
      const r1 = await a.next()
      expect(r1.headers.id).toBe(s1.headers.id)
      expect(r1.body.code).toBe('ricochet.message_decrypt')
      reason = Object.assign(new Error('nope'), { code: 'message_group' })
      const s2 = a.message('elsewhere', 'x', {}, { encrypted: false })
      const r2 = await a.next()
      expect(r2.headers.id).toBe(s2.headers.id)
      expect(r2.body.code).toBe('ricochet.message_group')
    })

    test('known recipients never reach the unrouted callback', async () => {
      const calls = []
      await start({ unrouted: (data, cb) => { calls.push(data); cb() } })
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      await expectPair(a, b)
      expect(calls).toEqual([])
    })
  })

  describe('defects', () => {
    test('D2 encrypted:false bodies are forwarded as JSON; encrypted:true with a plain body is refused, not fatal', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const m = a.message('beta', 'insecure', { plain: 'yes' }, { encrypted: false })
      const got = await b.next()
      expect(got.headers.id).toBe(m.headers.id)
      expect(got.headers.encrypted).toBe(false)
      expect(got.body).toEqual({ plain: 'yes' })
      // What 0.3.16 insecure() sends: encrypted:true with a plain body.
      const bad = a.message('beta', 'insecure', { plain: 'yes' }, { encrypted: false, extraHeaders: { encrypted: true } })
      const reply = await a.next()
      expect(reply.headers).toMatchObject({ id: bad.headers.id, status: 'error', encrypted: true })
      expect(errorBody(reply, PARTIES.alpha.privateKey)).toEqual({ error: TEXT.decrypt, code: 'ricochet.message_decrypt' })
      await expectPair(a, b)
    })

    test.each([
      ['non-hex body', 'not hex at all!'],
      ['odd-length hex', 'abc'],
      ['short hex (8 bytes)', '0011223344556677'],
      ['"zz" body', 'zz'],
      ['numeric body', 12345],
      ['object body', { a: 1 }],
      ['null body', null]
    ])('D3 encrypted:true with a %s gets message_decrypt and the server keeps routing', async (_name, body) => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const id = newId()
      await a.send({ headers: { id, to: 'beta', type: 'message', handle: 'bad', encrypted: true }, body })
      const reply = await a.next()
      expect(reply.headers).toEqual({ id, from: 'beta', to: 'alpha', type: 'reply', status: 'error', encrypted: true, groups: ['g1'] })
      expect(errorBody(reply, PARTIES.alpha.privateKey)).toEqual({ error: TEXT.decrypt, code: 'ricochet.message_decrypt' })
      await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_decrypt')
      await expectPair(a, b)
    })

    test('D3 encrypted:true with a missing body is malformed (no reply) and the server keeps routing', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const id = newId()
      await a.send({ headers: { id, to: 'beta', type: 'message', handle: 'bad', encrypted: true } })
      const ev = await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_malformed')
      expect(ev.raw.id).toBe(connId('alpha'))
      await barrier(a, 'alpha')
      await expectPair(a, b)
    })

    test('D3 a body that decrypts to falsy JSON or wrong-key garbage gets message_decrypt', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      for (const hex of [encrypt(PARTIES.alpha.privateKey, 'null'), encrypt(PARTIES.alpha.privateKey, '0'),
        encrypt(PARTIES.gamma.privateKey, JSON.stringify({ wrong: 'key' }))]) {
        const id = newId()
        await a.send({ headers: { id, to: 'beta', type: 'message', handle: 'bad', encrypted: true }, body: hex })
        const reply = await a.next()
        expect(reply.headers.id).toBe(id)
        expect(errorBody(reply, PARTIES.alpha.privateKey).code).toBe('ricochet.message_decrypt')
      }
      await expectPair(a, b)
    })

    test('D5 admin ↔ array recipients: forwarded groups is the recipient array, replies go back', async () => {
      await start()
      const adm = await join(PARTIES.admin)
      const b = await join(PARTIES.beta)
      const req = adm.message('beta', 'ask', { q: 1 }, { type: 'request', timeout: 1000 })
      const got = await b.next()
      expect(got.headers).toMatchObject({ id: req.headers.id, from: 'admin', groups: ['g1', 'g2'] })
      expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ q: 1 })
      // beta → admin, then admin's reply back to beta (0.3.16 refused this reply).
      const breq = b.message('admin', 'ask.admin', { q: 2 }, { type: 'request', timeout: 1000 })
      const got2 = await adm.next()
      expect(got2.headers).toMatchObject({ id: breq.headers.id, from: 'beta', groups: ['g1', 'g2'] })
      adm.message('beta', 'ask.admin', { error: null, data: 'ok' }, { type: 'reply', status: 'response', id: breq.headers.id })
      const reply = await b.next()
      expect(reply.headers).toMatchObject({ id: breq.headers.id, type: 'reply', status: 'response', from: 'admin', groups: ['g1', 'g2'] })
      expect(JSON.parse(decrypt(PARTIES.beta.privateKey, reply.body))).toEqual({ error: null, data: 'ok' })
    })

    test('D6 a body containing "{ENCRYPT}" arrives intact; the forwarded plaintext escapes it', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const body = { k: '{ENCRYPT}', '{ENCRYPT}': ['{ENCRYPT}', 'x"{ENCRYPT}"y'] }
      a.message('beta', 'delim', body)
      const got = await b.next()
      const raw = decryptRaw(PARTIES.beta.privateKey, got.body)
      const text = raw.slice(0, raw.lastIndexOf(DELIM))
      expect(text).toContain('\\u007bENCRYPT}')
      expect(text).not.toContain(DELIM)
      expect(JSON.parse(text)).toEqual(body)
      expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual(body)
    })

    test('D11 a top-level id does not control the padding: the forwarded plaintext ends with PAD16', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const id = newId()
      const frame = {
        id: 'TOPLEVELID',
        headers: { id, to: 'beta', type: 'message', handle: 'pad', encrypted: true },
        body: encrypt(PARTIES.alpha.privateKey, JSON.stringify({ p: 1 }), id)
      }
      await a.send(frame)
      const got = await b.next()
      expect(got.headers.id).toBe(id)
      const raw = decryptRaw(PARTIES.beta.privateKey, got.body)
      expect(raw).toBe('{"p":1}' + DELIM + PAD16)
      expect(raw).not.toContain('TOPLEVELID')
    })

    test('D12 a frame without body is malformed: no reply, no delivery', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const id = newId()
      await a.send({ headers: { id, to: 'beta', type: 'message', handle: 'nobody', encrypted: false } })
      const ev = await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_malformed')
      expect(ev.raw).toMatchObject({ id: connId('alpha'), message: { headers: { id } } })
      await barrier(a, 'alpha')
      await expectPair(a, b)
    })

    test.each([
      ['null handle', { handle: null }],
      ['numeric handle', { handle: 5 }],
      ['object handle', { handle: { x: 1 } }],
      ['empty handle', { handle: '' }],
      ['missing handle', { handle: undefined }],
      ['missing id', { id: undefined }],
      ['missing to', { to: undefined }],
      ['missing type', { type: undefined }]
    ])('D14 %s is message_malformed with no reply', async (_name, patch) => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const headers = { id: newId(), to: 'beta', type: 'message', handle: 'h', encrypted: false, ...patch }
      await a.send({ headers, body: { x: 1 } })
      const ev = await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_malformed')
      expect(ev.Error).toBe('Malformed message received.')
      await barrier(a, 'alpha')
      await expectPair(a, b)
    })

    test('D14 frames without headers, or whose headers is not an object, are malformed', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      await a.send({ body: { x: 1 } })
      await a.send({ headers: 'nope', body: 1 })
      await a.send('[1,2,3]\n')
      await barrier(a, 'alpha')
      expect(ctx.events.filter(([n, p]) => n === 'messageError' && p.code === 'ricochet.message_malformed')).toHaveLength(3)
      await expectPair(a, b)
    })

    test.each(['bogus', 'ricochet.bogus', 42])('D18 an unknown unrouted code (%p) maps to message_norecipient', async (code) => {
      await start({ unrouted: (data, cb) => cb(code) })
      const a = await join(PARTIES.alpha)
      const sent = a.message('elsewhere', 'x', {}, { encrypted: false })
      const reply = await a.next()
      expect(reply.headers.id).toBe(sent.headers.id)
      expect(reply.body).toEqual({ error: TEXT.norecipient, code: 'ricochet.message_norecipient' })
      // The server survived.
      const b = await join(PARTIES.beta)
      await expectPair(a, b)
    })

    test('D22 per-client stats and server.stats.messages increase', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      expect(ctx.server.stats).toEqual({ messages: 0 })
      for (let i = 0; i < 3; i++) await expectPair(a, b, `n${i}`)
      b.message('alpha', 'back', { z: 1 })
      await a.next()
      // A refused frame is not counted as routed.
      a.message('nobody', 'x', {}, { encrypted: false })
      await a.next()
      expect(ctx.server.stats).toEqual({ messages: 4 })
      const list = ctx.server.getClients()
      const byChannel = Object.fromEntries(list.map((c) => [c.channel, c]))
      expect(byChannel.alpha).toMatchObject({ ip: '127.0.0.1', groups: ['g1'], stats: { sent: 3, received: 1 } })
      expect(byChannel.beta).toMatchObject({ ip: '127.0.0.1', groups: ['g1', 'g2'], stats: { sent: 1, received: 3 } })
      expect(typeof byChannel.alpha.id).toBe('string')
      expect(byChannel.alpha.id).toHaveLength(32)
    })

    test('D22 message and clientInput events carry connection ids and frames', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const sent = a.message('beta', 'ev', { e: 1 })
      const got = await b.next()
      const msg = await waitForEvent(ctx.events, 'message', (p) => p.message.headers.id === sent.headers.id)
      expect(msg.id).toBe(connId('beta'))
      expect(msg.message).toEqual(got)
      const input = await waitForEvent(ctx.events, 'clientInput', (p) => p.message.headers && p.message.headers.id === sent.headers.id)
      expect(input.id).toBe(connId('alpha'))
      expect(input.message).toEqual(sent)
    })

    test('D24 a self-addressed frame gets a message_self error reply', async () => {
      await start()
      const a = await join(PARTIES.alpha)
      const b = await join(PARTIES.beta)
      const sent = a.message('alpha', 'me', { m: 1 }, { type: 'request', timeout: 200 })
      const reply = await a.next()
      expect(reply.headers).toEqual({ id: sent.headers.id, from: 'alpha', to: 'alpha', type: 'reply', status: 'error', encrypted: true, groups: ['g1'] })
      expect(errorBody(reply, PARTIES.alpha.privateKey)).toEqual({ error: TEXT.self, code: 'ricochet.message_self' })
      await waitForEvent(ctx.events, 'messageError', (p) => p.code === 'ricochet.message_self')
      await expectPair(a, b)
    })

    test('D25 an unauthenticated connection is never routed to; channel "null" is reached only after auth', async () => {
      const NULLP = { publicKey: 'pub-null', privateKey: 'priv-null-0000', authKey: 'auth-null' }
      const parties = partiesAuth()
      const auth = (data, cb) => {
        if (data.publicKey !== NULLP.publicKey) return parties(data, cb)
        cb(null, { ip: '', privateKey: NULLP.privateKey, publicKey: NULLP.publicKey, authKey: NULLP.authKey, channel: 'null', groups: ['g1'] })
      }
      await start({ auth })
      const a = await join(PARTIES.alpha)
      const idle = await connect() // never authenticates
      await waitForEvent(ctx.events, 'clientConnected', () => ctx.server.getClients().length === 2)
      for (const to of ['null', null]) {
        const sent = a.message(to, 'to.null', { n: 1 }, { encrypted: false })
        const reply = await a.next()
        expect(reply.headers).toMatchObject({ id: sent.headers.id, status: 'error' })
        expect(reply.body.code).toBe('ricochet.message_norecipient')
      }
      const n = await join(NULLP)
      expect(n.frames[0]).toEqual({ auth: true, channel: 'null', groups: ['g1'] })
      const sent = a.message('null', 'to.null', { n: 2 })
      const got = await n.next()
      expect(got.headers).toMatchObject({ id: sent.headers.id, to: 'null', from: 'alpha' })
      expect(JSON.parse(decrypt(NULLP.privateKey, got.body))).toEqual({ n: 2 })
      await barrier(a, 'alpha')
      expect(idle.frames).toEqual([])
      expect(idle.closed).toBe(false)
    })
  })
})
