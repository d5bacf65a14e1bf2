'use strict'

// ricochet adapter. Driver side: forks bench/ricochet-server.js. Role side: a Client on the
// sender or receiver channel; `plain` sends every message/request after client.insecure().
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')
const HIGH_WATER = 4 * 1024 * 1024 // stop sending while this much waits for the socket

const USERS = {
  'bench-sender': { channel: 'sender', privateKey: 'priv-sender-5d1e8a', authKey: 'auth-sender', groups: ['bench'] },
  'bench-receiver': { channel: 'receiver', privateKey: 'priv-receiver-a94c2f', authKey: 'auth-receiver', groups: ['bench'] }
}

function startServer () {
  return require('../harness').startNodeServer(path.join(__dirname, '..', 'ricochet-server.js'), 'ricochet-server')
}

async function connect (role, cfg) {
  const { Client } = require(ROOT)
  const publicKey = `bench-${role}`
  const user = USERS[publicKey]
  const c = new Client()
  const errors = { sendError: 0, receiveError: 0, disconnected: 0, first: null }
  const note = (kind, e) => { errors[kind]++; if (!errors.first) errors.first = `${kind} ${e && e.code ? e.code : ''}`.trim() }
  c.on('sendError', (e) => note('sendError', e))
  c.on('receiveError', (e) => note('receiveError', e))
  c.on('disconnected', () => note('disconnected'))
  c.on('error', () => {})
  await new Promise((resolve, reject) => {
    c.once('ready', resolve)
    c.once('authFail', (e) => reject(new Error(`authFail ${JSON.stringify(e.message)}`)))
    c.connect({ host: '127.0.0.1', port: cfg.port, publicKey, privateKey: user.privateKey, authKey: user.authKey })
  })
  const plain = !!cfg.plain
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

  return {
    send (body) {
      if (plain) c.insecure()
      c.message('receiver', 'bench.msg', body)
      return c.bufferedAmount < HIGH_WATER
    },
    // 'drain' fires below highWaterMark (1 MiB); the poll is a safety net against a missed event.
    waitDrain () {
      return new Promise((resolve) => {
        const done = () => { clearInterval(poll); c.off('drain', done); resolve() }
        const poll = setInterval(() => { if (c.bufferedAmount < HIGH_WATER / 4) done() }, 20)
        c.once('drain', done)
      })
    },
    async flush () {
      while (c.bufferedAmount > 0) await sleep(2)
    },
    request (body) {
      if (plain) c.insecure()
      return c.requestAsync('receiver', 'bench.echo', body)
    },
    onMessage (fn) {
      c.handle('bench.msg', (body) => fn(body))
    },
    serveEcho () {
      c.handle('bench.echo', (body, reply) => reply.emit('response', null, body))
    },
    errors: () => errors,
    close: () => c.close()
  }
}

module.exports = { USERS, startServer, connect }
