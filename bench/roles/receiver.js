'use strict'

// Receiver process. W1: counts messages, checks seq order, reports first→last timing.
// W2/W3: echoes requests. Driver messages: 'sent' (sender finished: report once complete or
// idle for IDLE_MS), 'report' (report now).
const { cfg, send, fail, connect } = require('./common')

const IDLE_MS = 1500

async function main () {
  const sys = await connect('receiver')
  if (cfg.workload !== 'W1') {
    await sys.serveEcho()
    send({ type: 'ready' })
    process.on('message', (m) => {
      if (m && m.type === 'report') send({ type: 'done', errors: sys.errors() })
    })
    return
  }

  let received = 0
  let expected = 0
  let outOfOrder = 0
  let first = 0n
  let last = 0n
  let reported = false
  const report = (why) => {
    if (reported) return
    reported = true
    send({ type: 'done', why, received, outOfOrder, firstNs: String(first), lastNs: String(last), errors: sys.errors() })
  }
  await sys.onMessage((body) => {
    const now = process.hrtime.bigint()
    if (received === 0) first = now
    last = now
    received++
    if (body.seq !== expected) outOfOrder++
    expected = body.seq + 1
    if (received === cfg.count) report('complete')
  })
  send({ type: 'ready' })

  process.on('message', (m) => {
    if (!m) return
    if (m.type === 'report') report('asked')
    if (m.type === 'sent') {
      let seen = received
      let idleSince = Date.now()
      const t = setInterval(() => {
        if (reported) return clearInterval(t)
        if (received !== seen) {
          seen = received
          idleSince = Date.now()
        } else if (Date.now() - idleSince >= IDLE_MS) {
          clearInterval(t)
          report('idle')
        }
      }, 50)
    }
  })
}

main().catch(fail)
