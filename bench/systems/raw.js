'use strict'

// Raw baseline adapter: plain `net` newline-delimited JSON through bench/raw-broker.js.
// Frames: {to, from, id, type: 'msg' | 'req' | 'res', body}. Writes issued in one tick are
// corked together; the sender waits for 'drain' when socket.write returns false.
const path = require('node:path')
const net = require('node:net')

function startServer () {
  return require('../harness').startNodeServer(path.join(__dirname, '..', 'raw-broker.js'), 'raw-broker')
}

async function connect (role, cfg) {
  const peer = role === 'sender' ? 'receiver' : 'sender'
  const sock = net.connect(cfg.port, '127.0.0.1')
  sock.setNoDelay(true)
  sock.setEncoding('utf8')
  const errors = { socketError: 0, closed: 0, first: null }
  sock.on('error', (e) => { errors.socketError++; errors.first = errors.first || e.code })
  sock.on('close', () => { errors.closed++ })

  let corked = false
  const uncork = () => { corked = false; sock.uncork() }
  const write = (text) => {
    if (!corked) {
      corked = true
      sock.cork()
      process.nextTick(uncork)
    }
    return sock.write(text)
  }

  let onFrame = () => {}
  let rem = ''
  sock.on('data', (chunk) => {
    const s = rem.length ? rem + chunk : chunk
    let start = 0
    let i
    while ((i = s.indexOf('\n', start)) !== -1) {
      onFrame(JSON.parse(s.slice(start, i)))
      start = i + 1
    }
    rem = start === s.length ? '' : s.slice(start)
  })

  await new Promise((resolve, reject) => {
    sock.once('error', reject)
    onFrame = (f) => { if (f.ok) resolve() }
    sock.once('connect', () => write(JSON.stringify({ hello: role }) + '\n'))
  })

  let nextId = 0
  const pending = new Map()
  let onMsg = null
  let echo = false
  onFrame = (f) => {
    if (f.type === 'res') {
      const p = pending.get(f.id)
      if (p) { pending.delete(f.id); p(f.body) }
    } else if (f.type === 'req' && echo) {
      write(JSON.stringify({ to: f.from, from: role, id: f.id, type: 'res', body: f.body }) + '\n')
    } else if (f.type === 'msg' && onMsg) {
      onMsg(f.body)
    }
  }

  return {
    send (body) {
      return write(JSON.stringify({ to: peer, from: role, id: nextId++, type: 'msg', body }) + '\n')
    },
    waitDrain: () => new Promise((resolve) => sock.once('drain', resolve)),
    flush () {
      return new Promise((resolve) => (sock.writableLength === 0 ? resolve() : sock.once('drain', resolve)))
    },
    request (body) {
      const id = nextId++
      return new Promise((resolve) => {
        pending.set(id, resolve)
        write(JSON.stringify({ to: peer, from: role, id, type: 'req', body }) + '\n')
      })
    },
    onMessage (fn) { onMsg = fn },
    serveEcho () { echo = true },
    errors: () => errors,
    close: () => new Promise((resolve) => sock.end(resolve))
  }
}

module.exports = { startServer, connect }
