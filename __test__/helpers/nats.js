'use strict'

const { freePort } = require('./net')

// A real nats-server for cluster tests: found on PATH or installed from Debian's package, started
// on a free port, restartable on the same port.
const net = require('node:net')
const { spawn, execFileSync } = require('node:child_process')

function onPath () {
  for (const bin of ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' })
      return bin
    } catch (_) {}
  }
  return null
}

/** The nats-server binary, installing Debian's package when it is missing. */
function findNats () {
  const found = onPath()
  if (found) return found
  try {
    execFileSync('sh', ['-c', 'apt-get install -y -qq nats-server || (apt-get update -qq && apt-get install -y -qq nats-server)'],
      { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 180000 })
  } catch (_) {}
  const installed = onPath()
  if (!installed) throw new Error('nats-server is not installed and could not be installed (apt-get install nats-server)')
  return installed
}


/** Resolves once something accepts TCP connections on `port`. */
async function waitPort (port, ms = 10000) {
  const end = Date.now() + ms
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > end) throw new Error(`nothing listens on ${port}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Starts nats-server; `stop()` kills it, `start()` runs it again on the same port. */
async function startNats () {
  const bin = findNats()
  const port = await freePort()
  const nats = { port, url: `nats://127.0.0.1:${port}`, proc: null }
  nats.start = async () => {
    nats.proc = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
    nats.exited = new Promise((resolve) => nats.proc.on('exit', resolve))
    await waitPort(port)
  }
  nats.stop = async () => {
    if (!nats.proc) return
    nats.proc.kill('SIGKILL')
    await nats.exited
    nats.proc = null
  }
  await nats.start()
  return nats
}

module.exports = { startNats }
