'use strict'

// server.metrics() and the Prometheus endpoint served by the core (metrics: {port}).
const http = require('node:http')
const { Client } = require('..')
const { startServer, PARTIES } = require('./helpers/server')
const { RawClient } = require('./helpers/wire')

function scrape (port, path = '/metrics') {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }))
    }).on('error', reject)
  })
}

function ready (party, port) {
  return new Promise((resolve) => {
    const c = new Client()
    c.once('ready', () => resolve(c))
    c.connect({ port, ...party })
  })
}

describe('metrics', () => {
  let ctx
  const clients = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    if (ctx) await ctx.close()
    ctx = null
  })

  test('server.metrics() counts connections, logins, routed and failed messages and bytes', async () => {
    ctx = await startServer()
    const a = await ready(PARTIES.alpha, ctx.port)
    const b = await ready(PARTIES.beta, ctx.port)
    clients.push(a, b)
    b.handle('echo', (body, reply) => reply.emit('response', null, body))
    await a.requestAsync('beta', 'echo', { x: 1 })
    await expect(a.requestAsync('nobody', 'echo', {})).rejects.toMatchObject({ code: 'ricochet.message_norecipient' })
    const bad = await RawClient.connect(ctx.port)
    await bad.send({ publicKey: 'pub-alpha' })
    await bad.ended()
    await bad.close()
    const m = ctx.server.metrics()
    expect(m).toMatchObject({ connections: 2, authenticated: 2, messagesRouted: 2, authSuccessTotal: 2, connectionsTotal: 3 })
    expect(m.authFailuresTotal).toBe(1)
    expect(m.messagesFailed).toEqual({ 'ricochet.message_norecipient': 1 })
    expect(m.bytesInTotal).toBeGreaterThan(0)
    expect(m.bytesOutTotal).toBeGreaterThan(0)
    expect(m.framesInTotal).toBeGreaterThanOrEqual(5)
    expect(m.queuedBytes).toBe(0)
  })

  test('metrics: {port} serves Prometheus text on GET /metrics and 404 elsewhere, until close', async () => {
    ctx = await startServer({ config: { metrics: { port: 0 } } })
    const a = await ready(PARTIES.alpha, ctx.port)
    clients.push(a)
    const { port } = ctx.server.metricsAddress()
    const res = await scrape(port)
    expect(res.status).toBe(200)
    expect(res.type).toMatch(/^text\/plain/)
    expect(res.body).toMatch(/^# TYPE ricochet_connections gauge$/m)
    expect(res.body).toMatch(/^ricochet_connections 1$/m)
    expect(res.body).toMatch(/^ricochet_authenticated 1$/m)
    expect(res.body).toMatch(/^ricochet_messages_routed_total 0$/m)
    expect((await scrape(port, '/other')).status).toBe(404)
    await ctx.close()
    ctx = null
    await expect(scrape(port)).rejects.toThrow()
  })

  test('invalid metrics options throw naming the option', () => {
    const { Server } = require('..')
    expect(() => new Server({ metrics: { port: -1 } })).toThrow(/metrics\.port/)
    expect(() => new Server({ metrics: 9090 })).toThrow(TypeError)
    expect(new Server().metricsAddress()).toBeNull()
  })
})
