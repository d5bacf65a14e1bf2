// Compares ways of turning a batch of received frames into JS objects (run: node bench/micro/parse-batch.js).
const frame = JSON.stringify({ headers: { id: 'A'.repeat(32), to: 'receiver', type: 'message', handle: 'bench.msg', encrypted: false, from: 'sender', groups: ['bench'] }, body: { seq: 1, ts: 1700000000000, data: 'x'.repeat(160) } })
const N = 1000, R = 300
const joined = '[' + Array.from({ length: N }, () => '"frame",' + frame).join(',') + ']'
const lines = Array.from({ length: N }, () => frame).join('\n')
const arr = Array.from({ length: N }, () => frame)
function bench (name, fn) { fn(); const t = process.hrtime.bigint(); for (let i = 0; i < R; i++) fn(); const ns = Number(process.hrtime.bigint() - t) / (R * N); console.log(name.padEnd(40), ns.toFixed(0), 'ns/frame') }
for (let k = 0; k < 2; k++) {
bench('one JSON.parse per batch (current)', () => JSON.parse(joined))
bench('split(\\n) + JSON.parse per line', () => lines.split('\n').map((l) => JSON.parse(l)))
bench('string[] + JSON.parse each', () => arr.map((l) => JSON.parse(l)))
}
