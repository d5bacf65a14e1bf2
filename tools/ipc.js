'use strict'

// IPC plumbing shared by the bench and soak child processes and their drivers.

/**
 * Sets a forked child up to report failures to its parent and to exit with it (IPC closed) or
 * on SIGTERM (a clean exit lets --cpu-prof write its profile). Returns `{send, fail}`.
 */
function childSetup () {
  const send = (msg) => { if (process.connected) process.send(msg) }
  const fail = (err) => {
    const error = err && err.stack ? err.stack : String(err)
    if (process.connected) process.send({ type: 'error', error }, () => process.exit(1))
    else process.exit(1)
  }
  process.on('uncaughtException', fail)
  process.on('unhandledRejection', fail)
  process.on('disconnect', () => process.exit(0))
  process.on('SIGTERM', () => process.exit(0))
  return { send, fail }
}

/**
 * Resolves with the first IPC message of `type` from `child`; rejects on an {type:'error'}
 * message, when the child exits (`describeExit(child)` says how) or after `ms`.
 */
function waitMsg (child, type, ms, name, describeExit) {
  return new Promise((resolve, reject) => {
    const done = (fn, v) => {
      clearTimeout(timer)
      child.off('message', onMsg)
      child.off('exit', onExit)
      fn(v)
    }
    const onMsg = (m) => {
      if (m && m.type === type) done(resolve, m)
      else if (m && m.type === 'error') done(reject, new Error(`${name}: ${m.error}`))
    }
    const onExit = () => done(reject, new Error(describeExit(child)))
    const timer = setTimeout(() => done(reject, new Error(`${name}: no '${type}' within ${ms} ms`)), ms)
    if (child.exitInfo) return onExit()
    child.on('message', onMsg)
    child.once('exit', onExit)
  })
}

module.exports = { childSetup, waitMsg }

/**
 * Makes a driver kill `children()` when it exits, is signalled (then reaps them, bounded by
 * `graceMs`) or crashes; `label` prefixes its messages.
 */
function installCleanup ({ label, children, killAll, graceMs = 1000 }) {
  process.on('exit', killAll)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`${label}: ${sig}, killing child processes`)
      const left = [...children()]
      killAll()
      Promise.race([
        Promise.all(left.map((c) => new Promise((resolve) => (c.exitInfo ? resolve() : c.once('exit', resolve))))),
        new Promise((resolve) => setTimeout(resolve, graceMs))
      ]).then(() => process.exit(130))
    })
  }
  const crash = (err) => {
    console.error(`${label}: driver error:`, err && err.stack ? err.stack : err)
    killAll()
    process.exit(2)
  }
  process.on('uncaughtException', crash)
  process.on('unhandledRejection', crash)
}

module.exports.installCleanup = installCleanup
