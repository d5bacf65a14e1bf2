'use strict'

// A raw-socket client that speaks the captured frames of shared/vectors/frames.json byte for
// byte. Every captured client→server line is replayed exactly as recorded (`frame.raw`), and
// what our server writes back is compared with the captured server→client bytes.

const { RawClient, encrypt, decrypt, decryptRaw, loadFrames, DELIM, PAD16 } = require('./helpers/wire')
const { startServer, partiesAuth, waitForEvent, PARTIES } = require('./helpers/server')

const CAPTURE = loadFrames()
const BY_SEQ = new Map(CAPTURE.frames.map((f) => [f.seq, f]))
const INDEX = CAPTURE.index

/** The captured frame with this seq (throws on a typo so a test can never silently pass). */
function cap (seq) {
  const f = BY_SEQ.get(seq)
  if (!f) throw new Error(`no captured frame with seq ${seq}`)
  return f
}

/** Exact captured bytes of a frame, including its LF. */
const rawOf = (seq) => cap(seq).raw

/** The first captured client→server auth frame of a connection (e.g. `alpha#1` → seq 1). */
function authSeqOf (connection) {
  const f = CAPTURE.frames.find((x) => x.connection === connection && x.direction === 'client->server' &&
    x.kind === 'auth_request')
  if (!f) throw new Error(`no captured auth frame for ${connection}`)
  return f.seq
}

/** The captured server→client auth reply of a connection (e.g. `alpha#1` → seq 5). */
function authReplySeqOf (connection) {
  const f = CAPTURE.frames.find((x) => x.connection === connection && x.direction === 'server->client' &&
    String(x.kind).startsWith('auth_reply'))
  if (!f) throw new Error(`no captured auth reply for ${connection}`)
  return f.seq
}

/** The channel a captured connection authenticates as (raw-extra and alpha-dup use alpha's frame). */
function channelOf (connection) {
  return JSON.parse(rawOf(authSeqOf(connection))).publicKey.replace(/^pub-/, '')
}

const TEXT = {
  auth_authkey: 'Client provided invalid authkey.',
  auth_channel: 'Channel is already occupied by another client.',
  auth_failure: 'Client failed to authenticate with server.',
  auth_ip: 'Client failed to match expected IP.',
  auth_malformed: 'Malformed authentication request.',
  auth_nogroups: 'Client tried to authenticate with invalid, or no active groups.',
  message_decrypt: 'Message failed to decrypt.'
}

/** Compares received bytes with an expected UTF-8 string, byte for byte (latin1 view). */
function expectBytes (buf, expected) {
  expect(buf.toString('latin1')).toBe(Buffer.from(expected, 'utf8').toString('latin1'))
}

let ctx = null
const clients = []

/** A raw socket that records every byte it receives. */
async function connect () {
  const c = await RawClient.connect(ctx.port)
  clients.push(c)
  const chunks = []
  c.socket.on('data', (chunk) => chunks.push(chunk))
  c.bytes = () => Buffer.concat(chunks)
  return c
}

/**
 * Opens a socket for a captured connection and replays its captured auth frame byte for byte.
 * Resolves once the (successful) auth reply is in; checks it against the captured reply bytes.
 */
async function login (connection) {
  const c = await connect()
  c.connection = connection
  c.authRaw = rawOf(authReplySeqOf(connection))
  await c.send(rawOf(authSeqOf(connection)))
  const reply = await c.next()
  expect(reply).toMatchObject({ auth: true, channel: channelOf(connection) })
  expectBytes(c.bytes(), c.authRaw)
  return c
}

beforeEach(async () => {
  // The captured stamps are from November 2023: widen the D1 replay window so they are fresh.
  ctx = await startServer({ config: { timeouts: { authKey: 1e13 } }, auth: partiesAuth() })
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await RawClient.closeAll()
  if (ctx) await ctx.close()
  ctx = null
})

describe('captured auth frames', () => {
  test.each([
    ['alpha#1', 1, 5],
    ['beta#1', 2, 6],
    ['gamma#1', 3, 7],
    ['admin#1', 4, 8]
  ])('the captured auth frame of %s (seq %i) gets the captured success reply (seq %i) byte for byte',
    async (connection, sendSeq, replySeq) => {
      expect(authSeqOf(connection)).toBe(sendSeq)
      const c = await connect()
      await c.send(rawOf(sendSeq))
      const reply = await c.next()
      expect(reply).toEqual(cap(replySeq).json)
      expectBytes(c.bytes(), rawOf(replySeq))
      await waitForEvent(ctx.events, 'clientReady')
      expect(c.closed).toBe(false)
    })

  test('delta\'s captured wrong-key auth frame (seq 9) is refused like seq 10, with code ricochet.auth_authkey, and the socket is ended', async () => {
    expect(INDEX.auth_reply_failure_bad_authkey).toBe(10)
    const c = await connect()
    await c.send(rawOf(9))
    const reply = await c.next()
    // Captured: {"auth":false}. Ours adds the reason (D19), which stock clients ignore.
    expect(reply).toMatchObject(cap(10).json)
    expect(reply).toEqual({ auth: false, code: 'ricochet.auth_authkey', error: TEXT.auth_authkey })
    expect(c.lines[0].startsWith('{"auth":false,')).toBe(true)
    await c.ended(3000)
    const ev = await waitForEvent(ctx.events, 'clientAuthFail')
    expect(ev.code).toBe('ricochet.auth_authkey')
    expect(ev.raw.message).toEqual(cap(9).json)
    expect(c.lines).toHaveLength(1)
  })

  test.each([
    ['wrongip#1', 17, 18, 'auth_ip'],
    ['nogroups#1', 21, 22, 'auth_nogroups'],
    ['unknown#1', 29, 30, 'auth_failure']
  ])('the captured auth frame of %s (seq %i) is refused like seq %i, with code ricochet.%s',
    async (connection, sendSeq, replySeq, code) => {
      expect(authSeqOf(connection)).toBe(sendSeq)
      const c = await connect()
      await c.send(rawOf(sendSeq))
      const reply = await c.next()
      expect(reply).toMatchObject(cap(replySeq).json)
      expect(reply).toEqual({ auth: false, code: 'ricochet.' + code, error: TEXT[code] })
      await c.ended(3000)
      const ev = await waitForEvent(ctx.events, 'clientAuthFail')
      expect(ev.code).toBe('ricochet.' + code)
    })

  test('the captured malformed auth frame (seq 78) is refused like seq 79, with code ricochet.auth_malformed', async () => {
    expect(INDEX.auth_reply_failure_malformed).toBe(79)
    const c = await connect()
    await c.send(rawOf(78))
    const reply = await c.next()
    expect(reply).toMatchObject(cap(79).json)
    expect(reply).toEqual({ auth: false, code: 'ricochet.auth_malformed', error: TEXT.auth_malformed })
    await c.ended(3000)
    const ev = await waitForEvent(ctx.events, 'clientAuthFail')
    expect(ev).toMatchObject({ code: 'ricochet.auth_malformed', raw: { message: { foo: 1 } } })
  })

  test('the captured second alpha login (seq 33) is refused like seq 34, with code ricochet.auth_channel, while alpha is connected', async () => {
    const alpha = await login('alpha#1')
    const dup = await connect()
    await dup.send(rawOf(33))
    const reply = await dup.next()
    expect(reply).toMatchObject(cap(34).json)
    expect(reply).toEqual({ auth: false, code: 'ricochet.auth_channel', error: TEXT.auth_channel })
    await dup.ended(3000)
    const ev = await waitForEvent(ctx.events, 'clientAuthFail')
    expect(ev).toMatchObject({ code: 'ricochet.auth_channel', provided: 'alpha' })
    expect(alpha.closed).toBe(false)
  })

  test('the captured lookup login (seq 25, result without ip) is accepted because ip is only checked when given', async () => {
    const c = await connect()
    await c.send(rawOf(25))
    expect(await c.next()).toEqual({ auth: true, channel: 'lookup', groups: ['g1'] })
  })

  test('D9 the captured empty-authKey login (seq 13) succeeds instead of the captured failure (seq 14)', async () => {
    expect(cap(14).json).toEqual({ auth: false })
    const c = await connect()
    await c.send(rawOf(13))
    const reply = await c.next()
    expect(reply).toEqual({ auth: true, channel: 'empty', groups: ['g1'] })
    expectBytes(c.bytes(), '{"auth":true,"channel":"empty","groups":["g1"]}\n')
  })
})

describe('captured frames are routed byte for byte', () => {
  test('a captured message (seq 37) sent by alpha reaches beta exactly as captured seq 38', async () => {
    expect(INDEX.message_sent).toBe(37)
    expect(INDEX.message_forwarded).toBe(38)
    const alpha = await login('alpha#1')
    const beta = await login('beta#1')
    await alpha.send(rawOf(37))
    const got = await beta.next()
    expect(got).toEqual(cap(38).json)
    expectBytes(beta.bytes(), beta.authRaw + rawOf(38))
    const ev = await waitForEvent(ctx.events, 'clientReady')
    expect(ev).toHaveProperty('id')
    expect(alpha.unread()).toEqual([])
  })

  // Every captured client→server frame that the original forwarded, paired with what the
  // recipient got. The server keeps no request state, so each pair can be replayed on its own.
  const FORWARDED = [
    [39, 40, 'request'],
    [41, 42, 'update reply'],
    [43, 44, 'response reply'],
    [45, 46, 'request'],
    [47, 48, 'response reply with an error string'],
    [49, 50, 'request'],
    [51, 52, 'error reply with a custom body'],
    [53, 54, 'request'],
    [55, 56, 'error reply message_nothandled'],
    [57, 58, 'request with timeout 300'],
    [59, 60, 'error reply message_timeout from the responder'],
    [69, 70, 'request to a groups:true recipient'],
    [74, 75, 'request'],
    [76, 77, 'update reply']
  ]

  test('the captured index names the reply kinds that are replayed here', () => {
    const recvSeqs = FORWARDED.map(([, r]) => r)
    for (const key of ['request_forwarded', 'reply_update_forwarded', 'reply_response_forwarded',
      'reply_response_with_error_string', 'reply_error_custom_body', 'reply_error_not_handled',
      'reply_error_responder_timeout']) {
      expect(recvSeqs).toContain(INDEX[key])
    }
  })

  test.each(FORWARDED)('captured seq %i is delivered exactly as captured seq %i (%s)',
    async (sendSeq, recvSeq) => {
      const sent = cap(sendSeq)
      const recv = cap(recvSeq)
      expect(sent.direction).toBe('client->server')
      expect(recv.direction).toBe('server->client')
      expect(recv.json.headers.id).toBe(sent.json.headers.id)
      const sender = await login(sent.connection)
      const receiver = await login(recv.connection)
      await sender.send(sent.raw)
      const got = await receiver.next()
      expect(got).toEqual(recv.json)
      expectBytes(receiver.bytes(), receiver.authRaw + recv.raw)
      expect(sender.unread()).toEqual([])
    })

  test('D2 a captured unencrypted frame (seq 96) is forwarded verbatim as captured seq 97', async () => {
    expect(INDEX.unencrypted_message_forwarded).toBe(97)
    const extra = await login('raw-extra#1')
    const beta = await login('beta#1')
    await extra.send(rawOf(96))
    expect(await beta.next()).toEqual(cap(97).json)
    expectBytes(beta.bytes(), beta.authRaw + rawOf(97))
  })
})

describe('synthesized error replies', () => {
  test.each([
    [61, 'message_norecipient (request)', 62, ['alpha#1']],
    [63, 'message_norecipient (plain message)', 64, ['alpha#1']],
    [65, 'message_group', 66, ['alpha#1', 'gamma#1']],
    [92, 'message_decrypt', 93, ['raw-extra#1', 'beta#1']]
  ])('captured seq %i is answered with the captured %s reply (seq %i) byte for byte',
    async (sendSeq, _what, replySeq, connections) => {
      const sent = cap(sendSeq)
      const reply = cap(replySeq)
      expect(reply.kind).toBe('reply_error_synthesized_by_server')
      expect(reply.connection).toBe(sent.connection)
      const peers = {}
      for (const conn of connections) peers[conn] = await login(conn)
      const sender = peers[sent.connection]
      await sender.send(sent.raw)
      const got = await sender.next()
      expect(got).toEqual(reply.json)
      expectBytes(sender.bytes(), sender.authRaw + reply.raw)
      const err = await waitForEvent(ctx.events, 'messageError')
      expect(err.code).toBe(reply.decryption.body_json.code)
      for (const conn of connections) {
        if (conn !== sent.connection) expect(peers[conn].unread()).toEqual([])
      }
    })

  test('the captured synthesized-error seqs are the ones named in the index', () => {
    expect(INDEX.synthesized_error_norecipient).toBe(62)
    expect(INDEX.synthesized_error_group).toBe(66)
    expect(INDEX.synthesized_error_decrypt).toBe(93)
    expect(INDEX.synthesized_error_group_true_sender).toBe(68)
  })

  test('D3 a captured encrypted frame with a non-hex body (seq 102) gets a message_decrypt reply instead of crashing the server', async () => {
    const beta = await login('beta#1')
    const gamma = await login('gamma#1')
    const sent = cap(102)
    await beta.send(sent.raw)
    const got = await beta.next()
    const body = encrypt(PARTIES.beta.privateKey,
      JSON.stringify({ error: TEXT.message_decrypt, code: 'ricochet.message_decrypt' }))
    const expected = '{"headers":{"id":"' + sent.json.headers.id + '","from":"gamma","to":"beta","type":"reply",' +
      '"status":"error","encrypted":true,"groups":["g1","g2"]},"body":"' + body + '"}\n'
    expect(got.headers).toMatchObject({ status: 'error', from: 'gamma', to: 'beta' })
    expectBytes(beta.bytes(), beta.authRaw + expected)
    expect(gamma.unread()).toEqual([])
    // The server keeps routing afterwards.
    const alpha = await login('alpha#1')
    await alpha.send(rawOf(37))
    expect(await beta.next()).toEqual(cap(38).json)
    expectBytes(beta.bytes(), beta.authRaw + expected + rawOf(38))
  })

  test('a captured frame without a handle (seq 101) gets no reply and a message_malformed event; the connection keeps working', async () => {
    const extra = await login('raw-extra#1')
    const beta = await login('beta#1')
    await extra.send(rawOf(101))
    const ev = await waitForEvent(ctx.events, 'messageError')
    expect(ev.code).toBe('ricochet.message_malformed')
    await extra.send(rawOf(37))
    expect(await beta.next()).toEqual(cap(38).json)
    expectBytes(beta.bytes(), beta.authRaw + rawOf(38))
    expectBytes(extra.bytes(), extra.authRaw)
  })
})

describe('fixed defects on the wire', () => {
  test('D5 a groups:true sender reaches array recipients (seq 67 is delivered to beta instead of producing the seq 68 message_group error)', async () => {
    const admin = await login('admin#1')
    const beta = await login('beta#1')
    const sent = cap(67)
    expect(cap(68).decryption.body_json.code).toBe('ricochet.message_group')
    await admin.send(sent.raw)
    const got = await beta.next()
    // The recipient sees its own groups so that stock clients' receive check passes.
    const body = encrypt(PARTIES.beta.privateKey, sent.decryption.result)
    const expected = JSON.stringify({
      headers: { ...sent.json.headers, from: 'admin', groups: ['g1', 'g2'] },
      body
    }) + '\n'
    expect(got.headers).toMatchObject({ from: 'admin', to: 'beta', groups: ['g1', 'g2'] })
    expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ a: 2, b: 2 })
    expectBytes(beta.bytes(), beta.authRaw + expected)
    expect(admin.unread()).toEqual([])
    expect(ctx.events.filter(([n]) => n === 'messageError')).toEqual([])
  })

  test('D5 a groups:true sender can reply to an array recipient (seq 71 is delivered to beta instead of producing the seq 72 error)', async () => {
    const admin = await login('admin#1')
    const beta = await login('beta#1')
    // beta's request to admin (seq 69) is forwarded as captured (seq 70) ...
    await beta.send(rawOf(69))
    expect(await admin.next()).toEqual(cap(70).json)
    expectBytes(admin.bytes(), admin.authRaw + rawOf(70))
    // ... and admin's response (seq 71) now reaches beta.
    const sent = cap(71)
    await admin.send(sent.raw)
    const got = await beta.next()
    const expected = JSON.stringify({
      headers: { ...sent.json.headers, from: 'admin', groups: ['g1', 'g2'] },
      body: encrypt(PARTIES.beta.privateKey, sent.decryption.result)
    }) + '\n'
    expect(JSON.parse(decrypt(PARTIES.beta.privateKey, got.body))).toEqual({ error: null, data: { pong: true } })
    expectBytes(beta.bytes(), beta.authRaw + expected)
    expectBytes(admin.bytes(), admin.authRaw + rawOf(70))
  })

  test('D11 a top-level id (seq 94) is kept but no longer used as re-encryption padding: the body is padded with PAD16', async () => {
    expect(INDEX.forwarded_with_toplevel_id_padding).toBe(95)
    const extra = await login('raw-extra#1')
    const beta = await login('beta#1')
    const captured = cap(95)
    await extra.send(rawOf(94))
    const got = await beta.next()
    expect(got.headers).toEqual(captured.json.headers)
    expect(got.id).toBe('TOPLEVELID')
    // The captured original padded with the top-level id; ours uses sixteen LFs.
    expect(captured.decryption.plaintext.endsWith(DELIM + 'TOPLEVELID')).toBe(true)
    const plaintext = decryptRaw(PARTIES.beta.privateKey, got.body)
    expect(plaintext).toBe('{"text":"top-level id"}' + DELIM + PAD16)
    expect(got.body).not.toBe(captured.json.body)
    const expected = captured.raw.replace(captured.json.body,
      encrypt(PARTIES.beta.privateKey, '{"text":"top-level id"}'))
    expectBytes(beta.bytes(), beta.authRaw + expected)
  })

  test('D4 a captured frame split right before its LF (seq 99) is delivered once (captured twice: seq 98 and 100)', async () => {
    const extra = await login('raw-extra#1')
    const beta = await login('beta#1')
    const chunks = cap(99).raw_arrived_in_chunks
    expect(chunks.join('')).toBe(rawOf(99))
    await extra.send(chunks[0])
    await new Promise((resolve) => setTimeout(resolve, 100))
    await extra.send(chunks[1])
    expect(await beta.next()).toEqual(cap(98).json)
    // A marker frame behind it proves no duplicate was queued in between.
    await extra.send(rawOf(37))
    expect(await beta.next()).toEqual(cap(38).json)
    expectBytes(beta.bytes(), beta.authRaw + rawOf(98) + rawOf(38))
  })
})
