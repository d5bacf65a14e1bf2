'use strict'

// A plain TCP server on 127.0.0.1 playing the ricochet server by hand, so tests can send a
// Client any bytes and see exactly what it writes.

const net = require('node:net')
const { Client } = require('../..')
const { nextEvent } = require('./waiting')
const { PARTIES } = require('./server')

const HOST = '127.0.0.1'

/**
 * Answers the first line a connection sends (the auth frame) with `authReply`, then writes
 * `afterAuth` (one frame per entry); every later line it receives goes to `lines`. `write`
 * sends raw bytes to the latest connection later on; `dropAll` cuts every connection.
 */
async function fakeServer ({ authReply = { auth: true, channel: 'alpha', groups: ['g1'] }, afterAuth = [] } = {}) {
  const sockets = new Set()
  const lines = []
  let latest = null
  const srv = net.createServer((sock) => {
    sockets.add(sock)
    latest = sock
    sock.on('error', () => {})
    sock.on('close', () => sockets.delete(sock))
    let buf = ''
    let authed = false
    sock.on('data', (d) => {
      buf += d
      let at
      while ((at = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, at)
        buf = buf.slice(at + 1)
        if (authed) {
          lines.push(line)
          continue
        }
        authed = true
        sock.write(JSON.stringify(authReply) + '\n')
        for (const l of afterAuth) sock.write(l + '\n')
      }
    })
  })
  await new Promise((resolve) => srv.listen(0, HOST, resolve))
  return {
    port: srv.address().port,
    lines,
    connected: () => latest !== null,
    write: (data) => new Promise((resolve) => latest.write(data, resolve)),
    dropAll: () => {
      for (const s of sockets) s.destroy()
    },
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy()
      srv.close(() => resolve())
    })
  }
}

/** A Client of alpha (frames.json) connected to `port` and ready; `prepare` runs before connect. */
async function readyAlpha (port, config = {}, prepare = () => {}) {
  const c = new Client({ timeouts: { reconnect: 5000 }, ...config })
  prepare(c)
  const ready = nextEvent(c, 'ready')
  const p = PARTIES.alpha
  c.connect({ host: HOST, port, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey })
  await ready
  return c
}

module.exports = { fakeServer, readyAlpha }
