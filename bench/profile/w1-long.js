'use strict'

// One long W1 run of one system, for a profiler attached to the whole machine:
//   perf record -a -F 1999 -o enc.data -- node bench/profile/w1-long.js ricochet-enc 2000000
// Prints throughput, loss and the CPU per message of the server, sender and receiver.
const { installCleanup } = require('../harness')
const { runWorkload } = require('../workload')

const SYSTEMS = {
  'ricochet-enc': { adapter: 'ricochet', plain: false },
  'ricochet-plain': { adapter: 'ricochet', plain: true },
  'ricochet-native': { adapter: 'ricochet-native', plain: true },
  nats: { adapter: 'nats' },
  raw: { adapter: 'raw' }
}

const id = process.argv[2] || 'ricochet-enc'
const count = Number(process.argv[3] || 2e6)
if (!SYSTEMS[id]) throw new Error(`unknown system ${id} (one of ${Object.keys(SYSTEMS).join(', ')})`)
if (!Number.isInteger(count) || count < 1) throw new Error('the count must be a positive integer')
const sys = { id, label: id, ...SYSTEMS[id] }
sys.mod = require(`../systems/${sys.adapter}`)
installCleanup()
// W1's 20 s bound scaled to the count (200k messages per 20 s is far below any system's rate).
runWorkload(sys, { id: 'W1', params: { count } }, Math.max(20000, count / 10)).then((r) => {
  console.log(JSON.stringify({
    system: id,
    msgsPerSec: Math.round(r.throughput || 0),
    loss: r.loss,
    serverUs: r.cpuPerMsgUs,
    senderUs: r.senderCpuPerMsgUs,
    receiverUs: r.receiverCpuPerMsgUs,
    error: r.error
  }))
})
