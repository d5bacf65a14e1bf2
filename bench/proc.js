'use strict'

// Reads a process's CPU time and memory from /proc (Linux only).
const fs = require('node:fs')
const { execFileSync } = require('node:child_process')

let clkTck = null
function ticksPerSecond () {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch (_) {
      clkTck = 100
    }
  }
  return clkTck
}

/** utime + stime of `pid` (all threads) in µs. */
function cpuMicros (pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(rest[11]) + Number(rest[12])
  return (ticks * 1e6) / ticksPerSecond()
}

/** A `Vm*` line of /proc/<pid>/status in KiB (VmHWM = peak RSS, VmRSS = current). */
function memKiB (pid, key = 'VmHWM') {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = status.match(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm'))
  return m ? Number(m[1]) : null
}

module.exports = { cpuMicros, memKiB, ticksPerSecond }
