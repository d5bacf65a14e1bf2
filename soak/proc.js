'use strict'

const ipc = require('../tools/ipc')

// Child processes of the soak driver: spawning Node scripts with IPC (through `bash -c 'ulimit -n …'`
// when the open-file limit is too low), IPC waits, /proc readings, and killing every child on
// exit, signal, deadline or crash.
const fs = require('node:fs')
const { spawn, execFileSync } = require('node:child_process')

const children = new Set()

/** {soft, hard} open-file limits of `pid` (default: this process) from /proc/<pid>/limits. */
function fdLimits (pid = 'self') {
  const text = fs.readFileSync(`/proc/${pid}/limits`, 'utf8')
  const m = text.match(/^Max open files\s+(\S+)\s+(\S+)/m)
  const num = (s) => (s === 'unlimited' ? Infinity : Number(s))
  return m ? { soft: num(m[1]), hard: num(m[2]) } : { soft: Infinity, hard: Infinity }
}

/** A `Vm*` line of /proc/<pid>/status in KiB (VmRSS = current RSS, VmHWM = peak RSS). */
function memKiB (pid, key = 'VmRSS') {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = status.match(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm'))
    return m ? Number(m[1]) : null
  } catch (_) {
    return null // the process is gone
  }
}

/** Number of open file descriptors of `pid`, or null. */
function openFds (pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length
  } catch (_) {
    return null
  }
}

let hasPdeath = null
function pdeathAvailable () {
  if (hasPdeath === null) {
    try {
      hasPdeath = /pdeathsig/.test(execFileSync('setpriv', ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
    } catch (_) {
      hasPdeath = false
    }
  }
  return hasPdeath
}

/**
 * Starts `node script ...args` with an IPC channel, stdout/stderr captured (last 8 kB kept in
 * `child.tailText`, and echoed with a prefix when `echo`). `fdLimit`: when set, the child is
 * started as `bash -c 'ulimit -n <fdLimit> && exec node …'`. Under `setpriv --pdeathsig KILL`
 * when available, so the kernel kills the child if the driver dies hard.
 */
function startNode (script, args, { name, fdLimit = null, env = {}, echo = true } = {}) {
  let cmd = process.execPath
  let argv = [script, ...args]
  if (fdLimit) {
    argv = ['-c', `ulimit -n ${Number(fdLimit)} && exec "$@"`, `soak-${name}`, process.execPath, script, ...args]
    cmd = 'bash'
  }
  if (pdeathAvailable()) {
    argv = ['--pdeathsig', 'KILL', '--', cmd, ...argv]
    cmd = 'setpriv'
  }
  const child = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ...env }
  })
  child.soakName = name
  child.tailText = ''
  const keep = (d) => {
    const s = d.toString()
    child.tailText = (child.tailText + s).slice(-8000)
    if (echo) {
      for (const line of s.split('\n')) if (line.trim()) process.stderr.write(`[${name}] ${line}\n`)
    }
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  children.add(child)
  child.once('exit', (code, signal) => {
    child.exitInfo = { code, signal }
    children.delete(child)
  })
  child.on('error', (err) => { child.spawnError = err })
  return child
}

function describeExit (child) {
  const e = child.exitInfo || {}
  const lines = child.tailText.split('\n').map((l) => l.trim()).filter(Boolean)
  const tail = lines.slice(-3).join(' | ').slice(0, 400)
  return `${child.soakName} exited (code ${e.code}, signal ${e.signal})${tail ? ': ' + tail : ''}`
}

/** Resolves with the first IPC message of `type` (see tools/ipc.js). */
function waitMsg (child, type, ms) {
  return ipc.waitMsg(child, type, ms, child.soakName, describeExit)
}

function send (child, msg) {
  if (child && child.connected) {
    try { child.send(msg) } catch (_) {}
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once every given child has exited. */
function stop (list, graceMs = 3000) {
  return Promise.all(list.filter(Boolean).map((c) => new Promise((resolve) => {
    if (c.exitInfo) return resolve()
    const t = setTimeout(() => { try { c.kill('SIGKILL') } catch (_) {} }, graceMs)
    const hard = setTimeout(resolve, graceMs + 3000) // never wait forever
    c.once('exit', () => { clearTimeout(t); clearTimeout(hard); resolve() })
    try { c.kill('SIGTERM') } catch (_) { resolve() }
  })))
}

/** Resolves once `child` exits by itself, or after `ms` (then false). */
function waitExit (child, ms) {
  return new Promise((resolve) => {
    if (child.exitInfo) return resolve(true)
    const t = setTimeout(() => resolve(false), ms)
    child.once('exit', () => { clearTimeout(t); resolve(true) })
  })
}

function killAll () {
  for (const c of children) {
    try { c.kill('SIGKILL') } catch (_) {}
  }
}

function liveChildren () {
  return [...children]
}

let installed = false
/** Kills every child when the driver exits, is signalled or crashes (tools/ipc.js). */
function installCleanup () {
  if (installed) return
  installed = true
  ipc.installCleanup({ label: 'soak', children: () => children, killAll, graceMs: 2000 })
}

module.exports = { fdLimits, memKiB, openFds, startNode, describeExit, waitMsg, waitExit, send, stop, killAll, liveChildren, installCleanup }
