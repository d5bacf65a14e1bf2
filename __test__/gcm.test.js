'use strict'

// encryption: 'aes-256-gcm' — authenticated bodies for deployments that run this
// implementation at both ends. The oracle below is Node's own crypto (HKDF-SHA256 +
// AES-256-GCM), independent of the Rust code.
const crypto = require('node:crypto')
const { Client } = require('..')
const { RawClient } = require('./helpers/wire')
const { startServer, PARTIES, waitForEvent } = require('./helpers/server')

const DELIM = '"{ENCRYPT}"'
const PAD16 = '\n'.repeat(16)

function key (password) {
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(password), Buffer.from('ricochet aes-256-gcm v1'), Buffer.from('ricochet body key'), 32))
}

function seal (password, data, pad) {
  const nonce = crypto.randomBytes(12)
  const c = crypto.createCipheriv('aes-256-gcm', key(password), nonce)
  const ct = Buffer.concat([c.update(String(data) + DELIM + (pad || PAD16), 'utf8'), c.final()])
  return Buffer.concat([nonce, ct, c.getAuthTag()]).toString('hex')
}

function open (password, hex) {
  const buf = Buffer.from(hex, 'hex')
  const d = crypto.createDecipheriv('aes-256-gcm', key(password), buf.subarray(0, 12))
  d.setAuthTag(buf.subarray(buf.length - 16))
  const text = Buffer.concat([d.update(buf.subarray(12, buf.length - 16)), d.final()]).toString('utf8')
  return text.slice(0, text.lastIndexOf(DELIM))
}

function gcmAuthFrame ({ publicKey, privateKey, authKey }) {
  const authStamp = seal(privateKey, Date.now())
  return { publicKey, authKey: seal(privateKey, authKey, authStamp), authStamp }
}

const GCM = { encryption: 'aes-256-gcm' }

describe('aes-256-gcm', () => {
  let ctx
  const raws = []
  const clients = []
  beforeEach(async () => { ctx = await startServer({ config: GCM }) })
  afterEach(async () => {
    await Promise.all(raws.splice(0).map((r) => r.close()))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await ctx.close()
  })

  async function rawLogin (party) {
    const raw = await RawClient.connect(ctx.port)
    raws.push(raw)
    await raw.send(gcmAuthFrame(party))
    expect(await raw.next()).toMatchObject({ auth: true })
    return raw
  }

  function gcmFrame (from, to, body, id = 'I'.repeat(32)) {
    return { headers: { id, to, type: 'message', handle: 'h.x', encrypted: true }, body: seal(from.privateKey, JSON.stringify(body), id) }
  }

  test('a body sealed by the sender is opened and re-sealed for the recipient with a fresh nonce', async () => {
    const a = await rawLogin(PARTIES.alpha)
    const b = await rawLogin(PARTIES.beta)
    const frame = gcmFrame(PARTIES.alpha, 'beta', { hi: 'ümlaut' })
    await a.send(frame)
    const got = await b.next()
    expect(got.headers).toMatchObject({ from: 'alpha', to: 'beta', encrypted: true })
    expect(got.body).not.toBe(frame.body)
    expect(JSON.parse(open(PARTIES.beta.privateKey, got.body))).toEqual({ hi: 'ümlaut' })
  })

  test('a tampered body is rejected with ricochet.message_decrypt', async () => {
    const a = await rawLogin(PARTIES.alpha)
    await rawLogin(PARTIES.beta)
    const frame = gcmFrame(PARTIES.alpha, 'beta', { amount: 10 })
    const flipped = (parseInt(frame.body[40], 16) ^ 1).toString(16)
    frame.body = frame.body.slice(0, 40) + flipped + frame.body.slice(41)
    await a.send(frame)
    const reply = await a.next()
    expect(reply.headers).toMatchObject({ type: 'reply', status: 'error', from: 'beta' })
    expect(JSON.parse(open(PARTIES.alpha.privateKey, reply.body))).toEqual({ error: 'Message failed to decrypt.', code: 'ricochet.message_decrypt' })
    const ev = await waitForEvent(ctx.events, 'messageError')
    expect(ev.code).toBe('ricochet.message_decrypt')
  })

  test('an xts (ricochet.js) auth frame cannot log in to a gcm server', async () => {
    const raw = await RawClient.connect(ctx.port)
    raws.push(raw)
    const reply = await raw.auth(PARTIES.alpha)
    expect(reply).toMatchObject({ auth: false, code: 'ricochet.auth_authkey' })
  })

  test('two gcm Clients exchange requests', async () => {
    const ready = (c) => new Promise((resolve) => c.once('ready', resolve))
    const a = new Client(GCM)
    const b = new Client(GCM)
    clients.push(a, b)
    a.connect({ port: ctx.port, ...PARTIES.alpha })
    b.connect({ port: ctx.port, ...PARTIES.beta })
    await Promise.all([ready(a), ready(b)])
    b.handle('echo', (body, reply) => reply.emit('response', null, body))
    await expect(a.requestAsync('beta', 'echo', { n: [1, 2, 3] })).resolves.toEqual({ n: [1, 2, 3] })
  })
})
