'use strict'

// A child process for the fault tests (__test__/faults.test.js), started with child_process.fork.
//
//   server mode (default): node server-process.js <port> [configJson]
//     Runs `new Server(config)` with the parties' authCallback on 127.0.0.1:<port> (0 = a free
//     port) and sends {type: 'listening', port, pid} to the parent. Server events are reported
//     as {type: 'event', name, payload} with small payloads (ids and codes, never frames).
//     A bind that fails with EADDRINUSE is retried for a few seconds (a port just freed by a
//     killed server); other bind errors are reported as {type: 'error', code, message}.
//
//     IPC command {type: 'block', ms} keeps the JS thread busy for ms, reporting 'blocking' and 'unblocked'.
//
//   client mode: node server-process.js client <port> <party> [configJson]
//     Runs a `Client` logged in as <party> of frames.json. Its handler `never` records each
//     request ({type: 'request', id, handle}) and never answers; `echo` answers at once.
//     Sends {type: 'ready', channel, pid} once authenticated.
//
// Either mode exits when the IPC channel closes (the parent died or disconnected).

const { Server, Client } = require('../..')
const { partiesAuth, PARTIES } = require('./server')

const HOST = '127.0.0.1'

function send (msg) {
  if (process.connected) {
    try {
      process.send(msg)
    } catch (_) {}
  }
}

process.on('disconnect', () => process.exit(0))

/**
 * On {type:'block', ms} keeps the JS thread busy for ms (an application doing synchronous work);
 * the native core goes on meanwhile.
 */
function onBlock () {
  process.on('message', (m) => {
    if (m && m.type === 'block') {
      send({ type: 'blocking' })
      const end = Date.now() + m.ms
      while (Date.now() < end) { /* busy */ }
      send({ type: 'unblocked' })
    }
  })
}

function runServer (port, config) {
  const server = new Server(config)
  server.authCallback = partiesAuth()

  const report = (name, pick) => server.on(name, (p) => send({ type: 'event', name, payload: pick(p || {}) }))
  report('clientConnected', (p) => ({ id: p.id }))
  report('clientReady', (p) => ({ id: p.id }))
  report('clientDisconnected', (p) => ({ id: p.id }))
  report('clientError', (p) => ({ id: p.id, code: p.code }))
  report('clientAuthFail', (p) => ({ id: p.id || (p.raw && p.raw.id), code: p.code }))
  report('clientRejected', (p) => ({ code: p.code }))
  // The raw frame can be megabytes: only its connection id and the code cross the IPC channel.
  report('messageError', (p) => ({ id: p.raw && p.raw.id, code: p.code }))
  report('eventsDropped', (p) => ({ count: p.count }))
  report('clusterConnected', () => ({}))
  report('clusterDisconnected', () => ({}))

  const deadline = Date.now() + 10000
  const attempt = () => {
    const onError = (err) => {
      if (err.code === 'EADDRINUSE' && Date.now() < deadline) {
        setTimeout(attempt, 100)
        return
      }
      send({ type: 'error', code: err.code, message: err.message })
    }
    server.once('error', onError)
    server.listen(port, HOST, () => {
      server.removeListener('error', onError)
      const addr = server.address()
      onBlock()
      send({ type: 'listening', port: addr.port, pid: process.pid })
    })
  }
  attempt()
}

function runClient (port, party, config) {
  const p = PARTIES[party]
  const client = new Client(config)
  client.on('error', () => {})
  client.handle('never', (body, reply, msg) => {
    send({ type: 'request', id: msg.headers.id, handle: msg.headers.handle })
  })
  client.handle('echo', (body, reply) => reply.emit('response', null, { echo: body }))
  client.once('ready', (r) => send({ type: 'ready', channel: r.channel, pid: process.pid }))
  client.on('disconnected', () => send({ type: 'disconnected' }))
  client.handle('flood', () => {})
  onBlock()
  client.connect({ host: HOST, port, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey })
}

const args = process.argv.slice(2)
if (args[0] === 'client') {
  runClient(Number(args[1]), args[2], args[3] ? JSON.parse(args[3]) : undefined)
} else {
  runServer(Number(args[0] || 0), args[1] ? JSON.parse(args[1]) : undefined)
}
