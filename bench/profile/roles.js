'use strict'

// Where two W1 recordings (bench/profile/w1-long.js under `perf record -a -F HZ`) differ, per
// process role and symbol, in ns of CPU per message:
//   node bench/profile/roles.js enc.data plain.data [--count 2000000] [--hz 1999] [--top 25]
// Roles are told apart by what they run: the sender stringifies JSON, the receiver parses it,
// the server does neither. The .node file must be the one that was recorded, built with
// symbols (CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only).
const { execFileSync } = require('node:child_process')

function args (argv) {
  const o = { files: [], count: 2e6, hz: 1999, top: 25 }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) o[argv[i].slice(2)] = Number(argv[++i])
    else o.files.push(argv[i])
  }
  if (o.files.length !== 2) throw new Error('two perf.data files are needed')
  return o
}

function load (file) {
  const out = execFileSync('perf', ['script', '-i', file, '-F', 'pid,ip,sym,dso'], { maxBuffer: 1 << 30, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const byPid = new Map()
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+\S+\s+(.*?)\s+\((.*)\)\s*$/.exec(line)
    if (!m || m[1] === '0') continue
    const file = m[3].split('/').pop()
    const dso = /^perf-\d+\.map$/.test(file) ? 'JIT' : file
    const sym = m[2] === '[unknown]' ? `[unknown ${dso}]` : m[2].slice(0, 80)
    if (!byPid.has(m[1])) byPid.set(m[1], { total: 0, syms: new Map() })
    const p = byPid.get(m[1])
    p.total++
    p.syms.set(sym, (p.syms.get(sym) || 0) + 1)
  }
  const roles = {}
  for (const p of byPid.values()) {
    if (p.total < 200) continue
    const share = (re) => [...p.syms].reduce((n, [s, c]) => n + (re.test(s) ? c : 0), 0) / p.total
    const role = share(/JsonStringifier/) > 0.05 ? 'sender' : share(/JsonParser/) > 0.05 ? 'receiver' : 'server'
    roles[role] = p
  }
  return roles
}

const o = args(process.argv.slice(2))
const [a, b] = o.files.map(load)
const ns = (samples) => samples * 1e9 / o.hz / o.count
const fmt = (x) => x.toFixed(0).padStart(7)
for (const role of ['sender', 'server', 'receiver']) {
  const pa = a[role] || { total: 0, syms: new Map() }
  const pb = b[role] || { total: 0, syms: new Map() }
  console.log(`== ${role}: ${fmt(ns(pa.total))} vs ${fmt(ns(pb.total))} ns/msg`)
  const keys = new Set([...pa.syms.keys(), ...pb.syms.keys()])
  const rows = [...keys].map((s) => [s, pa.syms.get(s) || 0, pb.syms.get(s) || 0])
  rows.sort((x, y) => Math.abs(y[1] - y[2]) - Math.abs(x[1] - x[2]))
  for (const [s, x, y] of rows.slice(0, o.top)) {
    console.log(`   ${s.padEnd(72)} ${fmt(ns(x))} ${fmt(ns(y))}  ${(ns(x - y) >= 0 ? '+' : '') + ns(x - y).toFixed(0)}`)
  }
}
