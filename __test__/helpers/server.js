'use strict'

// Shared set-up for server tests: a real server on an ephemeral port with the parties of
// ../shared/vectors/frames.json as its users.
const { Server } = require('../..')
const { loadFrames } = require('./wire')

const PARTIES = loadFrames().parties

/** An authCallback answering with 0.3.16's six-key shape for every party of frames.json. */
function partiesAuth (overrides = {}) {
  return (data, cb) => {
    const name = Object.keys(PARTIES).find((k) => PARTIES[k].publicKey === data.publicKey)
    const p = PARTIES[name]
    if (!p || name === 'unknown') return cb('unknown publicKey')
    const result = {
      ip: p.auth_result_ip,
      privateKey: p.privateKey,
      publicKey: p.publicKey,
      authKey: p.authKey,
      channel: name,
      groups: p.groups,
      ...(overrides[name] || {})
    }
    if (name === 'lookup') delete result.ip
    cb(null, result)
  }
}

/**
 * Starts a server on 127.0.0.1:0. Returns {server, port, events, close}; `events` records every
 * server event as [name, payload] in order.
 */
async function startServer ({ config, auth = partiesAuth(), unrouted, listen = true } = {}) {
  const server = new Server(config)
  server.authCallback = auth
  if (unrouted) server.unroutedCallback = unrouted
  const events = []
  const names = ['clientConnected', 'clientReady', 'clientAuthFail', 'clientDisconnected',
    'clientError', 'clientEnd', 'clientTimeout', 'clientInput', 'clientRejected', 'message',
    'messageError', 'invalidMessage']
  for (const n of names) server.on(n, (p) => events.push([n, p]))
  if (listen) await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = listen ? server.address().port : undefined
  return { server, port, events, close: () => server.close() }
}

/** Resolves when `events` holds an event named `name` matching `pred`, polling briefly. */
async function waitForEvent (events, name, pred = () => true, timeoutMs = 3000) {
  const start = Date.now()
  for (;;) {
    const hit = events.find(([n, p]) => n === name && pred(p))
    if (hit) return hit[1]
    if (Date.now() - start > timeoutMs) throw new Error(`timeout waiting for server event ${name}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

module.exports = { PARTIES, partiesAuth, startServer, waitForEvent }
