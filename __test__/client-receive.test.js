'use strict'

// The client's checks on frames from the server once it is ready (PROTOCOL.md §5 steps 1–4):
// what is delivered (and with which body), what becomes receiveError with which code, and what
// is dropped silently. A raw TCP server plays the server side so any bytes can be sent.

const { until, useCleanups } = require('./helpers/waiting')
const { fakeServer, readyAlpha } = require('./helpers/fake-server')
const { PARTIES } = require('./helpers/server')
const { encrypt } = require('./helpers/wire')

const ALPHA = PARTIES.alpha

const onCleanup = useCleanups()

/**
 * A fake server that answers the auth frame with `authReply`, then writes `lines` (one frame
 * each); returns a ready client of alpha with its collected messages, requests and receiveErrors.
 */
async function clientReceiving (lines, authReply) {
  const srv = await fakeServer({ authReply, afterAuth: lines })
  onCleanup(srv.close)
  const got = { messages: [], requests: [], errors: [] }
  const c = await readyAlpha(srv.port, {}, (c) => {
    c.handle('chat.*', (body, msg) => got.messages.push({ body, headers: msg.headers }))
    c.handle('job.*', (body, reply, msg) => got.requests.push({ body, headers: msg.headers }))
    c.on('receiveError', (e) => got.errors.push(e))
  })
  onCleanup(() => c.close())
  return got
}

const frame = (headers, body) => JSON.stringify({ headers: { to: 'alpha', from: 'beta', id: 'id1', type: 'message', handle: 'chat.x', groups: ['g1'], ...headers }, body })

describe('frames a ready client accepts', () => {
  test('a plaintext frame is delivered with its body and headers as sent', async () => {
    const got = await clientReceiving([frame({ id: 'p1' }, { n: 1, s: 'é\u2028' })])
    await until(() => got.messages.length === 1, 3000, 'one message')
    expect(got.messages[0].body).toEqual({ n: 1, s: 'é\u2028' })
    expect(got.messages[0].headers).toMatchObject({ id: 'p1', from: 'beta', to: 'alpha' })
  })

  test('an encrypted frame is delivered with its body decrypted, whatever the spacing and extra keys around it', async () => {
    const hex = encrypt(ALPHA.privateKey, JSON.stringify({ secret: [1, 2] }), 'e1')
    const line = `{ "extra" : 5, "headers":{"to":"alpha","from":"beta","id":"e1","type":"message","handle":"chat.x","groups":["g1"],"encrypted":true}, "body" : "${hex}" , "tail":"t"}`
    const got = await clientReceiving([line])
    await until(() => got.messages.length === 1, 3000, 'one message')
    expect(got.messages[0].body).toEqual({ secret: [1, 2] })
    expect(got.errors).toEqual([])
  })

  test('a duplicate body key uses the last one, as JSON.parse does', async () => {
    const hex = encrypt(ALPHA.privateKey, JSON.stringify({ v: 'last' }), 'd1')
    const line = `{"headers":{"to":"alpha","from":"beta","id":"d1","type":"message","handle":"chat.x","groups":["g1"],"encrypted":true},"body":"not hex","body":"${hex}"}`
    const got = await clientReceiving([line])
    await until(() => got.messages.length === 1, 3000, 'one message')
    expect(got.messages[0].body).toEqual({ v: 'last' })
  })

  test('`to` written with escapes still names the channel, and a sender with groups true passes (D5)', async () => {
    const got = await clientReceiving([
      frame({ to: 'alph\\u0061', id: 'esc' }, 1).replace('alph\\\\u0061', 'alph\\u0061'),
      frame({ groups: true, id: 'all' }, 2)
    ])
    await until(() => got.messages.length === 2, 3000, 'two messages')
    expect(got.messages.map((m) => m.headers.id)).toEqual(['esc', 'all'])
  })

  test('a client whose groups are true accepts any sender', async () => {
    const got = await clientReceiving([frame({ groups: ['other'] }, 3)], { auth: true, channel: 'alpha', groups: true })
    await until(() => got.messages.length === 1, 3000, 'one message')
    expect(got.messages[0].body).toBe(3)
  })
})

describe('frames a ready client refuses', () => {
  test('each bad frame gives receiveError with its code; falsy JSON lines are dropped silently', async () => {
    const bad = [
      'not json',
      'null',
      '0',
      '[1,2]',
      frame({ to: 'someone' }, 1),
      frame({ groups: ['g2', 1] }, 1),
      JSON.stringify({ headers: { to: 'alpha', from: 'beta', id: 'x', type: 'message' } }),
      JSON.stringify({ headers: { to: 'alpha', from: 'beta', type: 'message' }, body: 1 }),
      JSON.stringify({ headers: 'h', body: 1 }),
      frame({ encrypted: true }, 'abcd'),
      frame({ encrypted: true }, encrypt(ALPHA.privateKey, 'null', 'n1')),
      frame({ id: 'ok' }, 'fine')
    ]
    const got = await clientReceiving(bad)
    await until(() => got.messages.length === 1, 3000, 'the good message after the bad ones')
    expect(got.errors.map((e) => e.code.replace('ricochet.', ''))).toEqual([
      'message_badjson', 'message_malformed', 'message_channel', 'message_group', 'message_malformed',
      'message_malformed', 'message_malformed', 'message_decrypt', 'message_decrypt'
    ])
    expect(got.errors[0].message).toBe('not json')
    expect(got.errors[2].message.headers.to).toBe('someone')
    expect(got.messages[0].body).toBe('fine')
  })
})

describe('bursts', () => {
  test('a burst of 5,000 frames (many batches into JS) arrives complete and in order', async () => {
    const lines = []
    for (let i = 0; i < 5000; i++) lines.push(frame({ id: `b${i}` }, { i, pad: 'p'.repeat(300) }))
    const got = await clientReceiving(lines)
    await until(() => got.messages.length === 5000, 10000, 'all 5,000 messages')
    expect(got.messages.every((m, i) => m.body.i === i)).toBe(true)
    expect(got.errors).toEqual([])
  })
})
