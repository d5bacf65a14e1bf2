'use strict'

// DEBUG=ricochet:* tracing (the `debug` package's convention). Listeners are attached only when
// a namespace is enabled, so tracing costs nothing when off; the core then produces the
// frame-copying events it would otherwise skip (messageError, invalidMessage).
const createDebug = require('debug')

const serverLog = createDebug('ricochet:server')
const clientLog = createDebug('ricochet:client')

/** Traces connections, auth decisions and routing failures of a Server. */
function traceServer (server) {
  if (!serverLog.enabled) return
  const log = serverLog
  server.on('listening', () => log('listening %o', server.address()))
  server.on('clientConnected', (p) => log('connected %s from %s', p.id, p.ip))
  server.on('clientReady', (p) => log('authenticated %s', p.id))
  server.on('clientAuthFail', (p) => log('auth failed %s: %s', p.id || (p.raw && p.raw.id), p.code))
  server.on('clientDisconnected', (p) => log('disconnected %s', p.id))
  server.on('clientError', (p) => log('socket error %s: %s', p.id, p.code))
  server.on('clientTimeout', (p) => log('idle timeout %s', p.id))
  server.on('clientRejected', (p) => log('refused %s: %s', p.ip, p.code))
  server.on('messageError', (p) => log('routing failed from %s: %s', p.raw && p.raw.id, p.code))
  server.on('invalidMessage', (p) => log('invalid JSON from %s', p.id))
  server.on('eventsDropped', (p) => log('%d events dropped: JS fell behind', p.count))
}

/** Traces connection attempts, auth results and send/receive failures of a Client. */
function traceClient (client) {
  if (!clientLog.enabled) return
  const log = clientLog
  client.on('connected', () => log('connected'))
  client.on('reconnected', () => log('reconnected'))
  client.on('connectionFail', (p) => log('connection failed: %s', p.err && p.err.code))
  client.on('ready', (p) => log('ready as %s %o', p.channel, p.groups))
  client.on('authFail', (p) => log('auth refused: %s', p.message && p.message.code))
  client.on('disconnected', (hadError) => log('disconnected (error: %s)', hadError))
  client.on('sendError', (p) => log('send failed: %s', p.code))
  client.on('receiveError', (p) => log('receive failed: %s', p.code))
}

module.exports = { traceServer, traceClient }
