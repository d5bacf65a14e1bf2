'use strict'

// The ricochet server process: `new Server(opts)` granting the two bench users, on a free port
// reported to the driver over IPC. Answers {type:'stats'} with routing and error counters.
// argv[2], if given, is JSON server options (e.g. {cluster: {nats, name}} for ricochet-cluster);
// 'listening' is reported only once listen() has finished, i.e. after joining the cluster.
const path = require('node:path')
const { Server } = require(path.join(__dirname, '..'))
const { USERS } = require('./systems/ricochet')

const counters = { messageErrors: 0, clientErrors: 0, disconnects: 0, firstError: null }
const note = (e) => { if (!counters.firstError) counters.firstError = e && (e.code || e.Error) }

const server = new Server(process.argv[2] ? JSON.parse(process.argv[2]) : undefined)
server.authCallback = async ({ publicKey }) => {
  const user = USERS[publicKey]
  if (!user) throw new Error(`unknown publicKey ${publicKey}`)
  return { publicKey, ...user }
}
server.on('messageError', (e) => { counters.messageErrors++; note(e) })
server.on('clientError', (e) => { counters.clientErrors++; note(e) })
server.on('clientDisconnected', () => { counters.disconnects++ })
server.on('error', (err) => {
  process.send({ type: 'error', error: `server error: ${err.code || ''} ${err.message}` })
})

server.listen(0, '127.0.0.1', (err) => {
  if (err) return process.send({ type: 'error', error: `listen: ${err.code} ${err.message}` })
  process.send({ type: 'listening', port: server.address().port })
})
process.on('message', (m) => {
  if (m && m.type === 'stats') process.send({ type: 'stats', stats: { routed: server.stats.messages, ...counters } })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
