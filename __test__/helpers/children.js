'use strict'

// Ricochet servers and clients in child processes (helpers/server-process.js), for tests that
// kill, restart or measure them. Every child is remembered so killAll() can clean up.
const path = require('node:path')
const { fork } = require('node:child_process')

const HELPER = path.join(__dirname, 'server-process.js')
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function makeChildren () {
  const children = []

  function forkHelper (args) {
    const child = fork(HELPER, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    const entry = { child, pid: child.pid, messages: [], stderr: '', exited: false, exitInfo: null }
    entry.exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        entry.exited = true
        entry.exitInfo = { code, signal }
        resolve(entry.exitInfo)
      })
    })
    child.on('message', (m) => entry.messages.push(m))
    child.on('error', () => {})
    child.stderr.on('data', (d) => { if (entry.stderr.length < 20000) entry.stderr += d })
    children.push(entry)
    return entry
  }

  /** Resolves with the first IPC message matching `pred`; fails early if the child exits. */
  async function childMessage (entry, pred, ms = 10000, label = 'child message') {
    const start = Date.now()
    for (;;) {
      const hit = entry.messages.find(pred)
      if (hit) return hit
      if (entry.exited) throw new Error(`child exited (${JSON.stringify(entry.exitInfo)}) before ${label}: ${entry.stderr}`)
      if (Date.now() - start > ms) throw new Error(`timeout waiting for ${label}: ${entry.stderr}`)
      await delay(10)
    }
  }

  /** A ricochet Server in a child process on 127.0.0.1:`port` (0 = free). */
  async function serverChild (port = 0, config) {
    const args = [String(port)]
    if (config) args.push(JSON.stringify(config))
    const entry = forkHelper(args)
    const msg = await childMessage(entry, (m) => m.type === 'listening' || m.type === 'error', 15000, 'listening')
    if (msg.type === 'error') throw new Error(`server child failed to listen: ${msg.code} ${msg.message}`)
    entry.port = msg.port
    return entry
  }

  /** A ricochet Client logged in as `party` in a child process. */
  async function clientChild (port, party) {
    const entry = forkHelper(['client', String(port), party])
    await childMessage(entry, (m) => m.type === 'ready', 10000, `${party} ready`)
    return entry
  }

  /** Server events the child reported, as [name, payload]. */
  function childEvents (entry) { return entry.messages.filter((m) => m.type === 'event').map((m) => [m.name, m.payload]) }

  /** SIGKILLs a child (if still running) and waits for it to exit. */
  async function killChild (entry) {
    if (!entry.exited) {
      try { entry.child.kill('SIGKILL') } catch (_) {}
    }
    let t
    await Promise.race([entry.exit, new Promise((resolve) => { t = setTimeout(resolve, 5000) })])
    clearTimeout(t)
  }


  async function killAll () {
    await Promise.all(children.splice(0).map((c) => killChild(c)))
  }

  return { forkHelper, childMessage, serverChild, clientChild, childEvents, killChild, killAll }
}

module.exports = { makeChildren }
