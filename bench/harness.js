'use strict'

const ipc = require('../tools/ipc')

// Child-process bookkeeping for the driver: spawn/fork with captured output, IPC waits,
// free ports, and killing every child on exit, signal or crash.
const { fork, spawn, execFileSync } = require('node:child_process')
const net = require('node:net')

const children = new Set()

function track (child, name) {
  child.benchName = name
  child.tailText = ''
  const keep = (d) => { child.tailText = (child.tailText + d).slice(-4000) }
  if (child.stdout) child.stdout.on('data', keep)
  if (child.stderr) child.stderr.on('data', keep)
  children.add(child)
  child.once('exit', (code, signal) => {
    child.exitInfo = { code, signal }
    children.delete(child)
  })
  child.on('error', (err) => { child.spawnError = err })
  return child
}

/** Forks a Node script with IPC; stdout/stderr captured (last 4 kB in `child.tailText`). */
function forkNode (script, args, name) {
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile per Node process (open them in Chrome DevTools).
  const dir = process.env.BENCH_CPU_PROF
  const execArgv = dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []
  return track(fork(script, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv }), name)
}

/** setpriv --pdeathsig makes the kernel kill a spawned binary if the driver dies hard. */
let hasPdeath = null
function spawnBin (cmd, args, name) {
  if (hasPdeath === null) {
    try {
      hasPdeath = /pdeathsig/.test(execFileSync('setpriv', ['--help'], { encoding: 'utf8' }))
    } catch (_) {
      hasPdeath = false
    }
  }
  const child = hasPdeath
    ? spawn('setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  return track(child, name)
}

function describeExit (child) {
  const e = child.exitInfo || {}
  const lines = child.tailText.split('\n').map((l) => l.trim()).filter(Boolean)
  const bad = lines.filter((l) => /error|\[ERR\]|\[FTL\]|fatal/i.test(l))
  const tail = (bad.length ? bad.slice(0, 2) : lines.slice(-1)).join(' | ').slice(0, 200)
  return `${child.benchName} exited (code ${e.code}, signal ${e.signal})${tail ? ': ' + tail : ''}`
}

/** Resolves with the first IPC message of `type` (see tools/ipc.js). */
function waitMsg (child, type, ms) {
  return ipc.waitMsg(child, type, ms, child.benchName, describeExit)
}

/** A free TCP port on 127.0.0.1 (bind to 0, close, reuse the number). */
function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Polls until `port` accepts a connection, the child exits, or `ms` passes. */
async function waitPort (port, ms, child) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (child && child.exitInfo) throw new Error(describeExit(child))
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`port ${port} not open within ${ms} ms`)
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once every given child has exited. */
function stop (list, graceMs = 500) {
  return Promise.all(list.filter(Boolean).map((c) => new Promise((resolve) => {
    if (c.exitInfo || c.exitCode !== null || c.signalCode !== null) return resolve()
    const t = setTimeout(() => { try { c.kill('SIGKILL') } catch (_) {} }, graceMs)
    const hard = setTimeout(resolve, graceMs + 1500) // never wait forever
    c.once('exit', () => { clearTimeout(t); clearTimeout(hard); resolve() })
    try { c.kill('SIGTERM') } catch (_) { resolve() }
  })))
}

function killAll () {
  for (const c of children) {
    try { c.kill('SIGKILL') } catch (_) {}
  }
}

/** Forks a broker script that listens on port 0 and reports {type:'listening', port}. */
async function startNodeServer (script, name, ms = 5000, args = []) {
  const child = forkNode(script, args, name)
  const { port } = await waitMsg(child, 'listening', ms)
  return { child, pid: child.pid, port }
}

/** Asks a forked broker for its counters ({type:'stats'}); null if it does not answer. */
function askStats (child, ms = 500) {
  if (!child || !child.connected) return Promise.resolve(null)
  const p = waitMsg(child, 'stats', ms).then((m) => m.stats, () => null)
  try { child.send({ type: 'stats' }) } catch (_) {}
  return p
}

let installed = false
/** Kills every child when the driver exits, is signalled or crashes (tools/ipc.js). */
function installCleanup () {
  if (installed) return
  installed = true
  ipc.installCleanup({ label: 'bench', children: () => children, killAll, graceMs: 1000 })
}

module.exports = { startNodeServer, askStats, forkNode, spawnBin, waitMsg, freePort, waitPort, stop, killAll, installCleanup, describeExit }
