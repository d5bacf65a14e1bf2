'use strict'

const { RawClient, decrypt } = require('./helpers/wire')
const { startServer, PARTIES } = require('./helpers/server')

describe('Server', () => {
  let ctx
  const clients = []
  beforeEach(async () => { ctx = await startServer() })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await ctx.close()
  })

  test('routes an encrypted message between two authenticated raw clients', async () => {
    const a = await RawClient.connect(ctx.port)
    const b = await RawClient.connect(ctx.port)
    clients.push(a, b)
    expect(await a.auth(PARTIES.alpha)).toEqual({ auth: true, channel: 'alpha', groups: ['g1'] })
    expect(await b.auth(PARTIES.beta)).toEqual({ auth: true, channel: 'beta', groups: ['g1', 'g2'] })
    a.message('beta', 'chat.hello', { hi: 'there' })
    const f = await b.next()
    expect(f.headers).toMatchObject({ to: 'beta', from: 'alpha', groups: ['g1'], handle: 'chat.hello' })
    expect(JSON.parse(decrypt(PARTIES.beta.privateKey, f.body))).toEqual({ hi: 'there' })
  })
})
