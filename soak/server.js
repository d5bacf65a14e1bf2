'use strict'

// Soak server process: one ricochet Server granting publicKey `k<i>` (i < clients) the channel
// `c<i>` in group 'soak' with the shared privateKey/authKey. Listens on 127.0.0.1:0 and reports
// {type:'listening', port, pid, fdLimit}. Answers {type:'stats'} with its counters and
// {type:'close'} by closing the server (disconnecting every client) and exiting.
const path = require('node:path')
const { Server } = require(path.join(__dirname, '..'))
const { fdLimits } = require('./proc')
const { PRIVATE_KEY, AUTH_KEY, GROUP } = require('./shared')

const cfg = JSON.parse(process.argv[2])

const { send, fail } = require('../tools/ipc').childSetup()

const counters = {
  connected: 0,
  ready: 0,
  disconnected: 0,
  authFail: 0,
  authCalls: 0,
  rejected: 0,
  clientError: 0,
  clientTimeout: 0,
  messageError: 0,
  invalidMessage: 0,
  eventsDropped: 0,
  examples: []
}
const example = (kind, e) => {
  if (counters.examples.length < 10) {
    counters.examples.push(`${kind}: ${e && (e.code || e.Error || e.message) ? (e.code || e.Error || e.message) : JSON.stringify(e).slice(0, 200)}`)
  }
}

const server = new Server({ maxConnections: cfg.maxConnections })
server.authCallback = async ({ publicKey }) => {
  counters.authCalls++
  const m = typeof publicKey === 'string' && /^k(\d+)$/.exec(publicKey)
  const i = m ? Number(m[1]) : -1
  if (!(i >= 0 && i < cfg.clients)) throw new Error(`unknown publicKey ${publicKey}`)
  return { publicKey, channel: `c${i}`, privateKey: PRIVATE_KEY, authKey: AUTH_KEY, groups: [GROUP] }
}
server.on('clientConnected', () => { counters.connected++ })
server.on('clientReady', () => { counters.ready++ })
server.on('clientDisconnected', () => { counters.disconnected++ })
server.on('clientAuthFail', (e) => { counters.authFail++; example('clientAuthFail', e) })
server.on('clientRejected', (e) => { counters.rejected++; example('clientRejected', e) })
server.on('clientError', (e) => { counters.clientError++; example('clientError', e) })
server.on('clientTimeout', (e) => { counters.clientTimeout++; example('clientTimeout', e) })
// messageError copies frames, so it is only produced while listened to; it should never fire here.
server.on('messageError', (e) => { counters.messageError++; example('messageError', e) })
server.on('invalidMessage', (e) => { counters.invalidMessage++; example('invalidMessage', e) })
server.on('eventsDropped', ({ count }) => { counters.eventsDropped += count })
server.on('error', (err) => fail(new Error(`server error: ${err.code || ''} ${err.message}`)))

server.listen(0, '127.0.0.1', (err) => {
  if (err) return fail(new Error(`listen: ${err.code} ${err.message}`))
  send({ type: 'listening', port: server.address().port, pid: process.pid, fdLimit: fdLimits().soft })
})

process.on('message', (m) => {
  if (!m) return
  if (m.type === 'stats') {
    const stats = { routed: server.stats.messages, ...counters }
    if (m.clients) stats.clientsListed = server.getClients().filter((c) => c.channel !== null).length
    send({ type: 'stats', stats })
  } else if (m.type === 'close') {
    server.close().then(() => {
      send({ type: 'closed', stats: { routed: server.stats.messages, ...counters } })
      setTimeout(() => process.exit(0), 50)
    })
  }
})
