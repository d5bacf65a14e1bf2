'use strict'

// An SVG bar chart of a bench run: one panel per throughput figure (W1 msgs/s, W2 and W3 round
// trips/s), one bar per system. Plain string building, no dependencies.

const PANELS = [
  { workload: 'W1', metric: 'throughput', title: 'W1 one-way (msgs/s)' },
  { workload: 'W2', metric: 'rps', title: 'W2 req/reply, 1 in flight (rt/s)' },
  { workload: 'W3', metric: 'rps', title: 'W3 req/reply, 64 in flight (rt/s)' }
]
const COLORS = { 'ricochet-enc': '#2b6cb0', 'ricochet-plain': '#63b3ed', 'ricochet-native': '#dd6b20', 'ricochet-cluster': '#805ad5', nats: '#38a169', raw: '#a0aec0' }

function esc (s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** SVG text for `doc` (the JSON a bench run writes: {systems, medians, runs, machine}). */
function renderSvg (doc) {
  const systems = doc.systems
  const panelW = Math.max(300, 40 + 64 * systems.length) // room for each bar's label
  const panelH = 220
  const top = 50
  const W = panelW * PANELS.length + 20
  const H = top + panelH + 60
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="10" y="20" font-size="14" font-weight="bold">ricochet vs nats-server vs raw Node broker — medians of ${Array.isArray(doc.runs) ? doc.runs.length : doc.runs} run(s), ${esc(doc.machine && doc.machine.cpus)} CPUs</text>`]
  PANELS.forEach((p, i) => {
    const x0 = 10 + i * panelW
    const values = systems.map((s) => {
      const m = doc.medians[s.id] && doc.medians[s.id][p.workload] && doc.medians[s.id][p.workload][p.metric]
      return m && typeof m.value === 'number' ? m.value : 0
    })
    const max = Math.max(1, ...values)
    const barW = (panelW - 40) / systems.length
    out.push(`<text x="${x0}" y="${top - 8}" font-weight="bold">${esc(p.title)}</text>`)
    out.push(`<line x1="${x0}" y1="${top + panelH}" x2="${x0 + panelW - 20}" y2="${top + panelH}" stroke="#333"/>`)
    systems.forEach((s, j) => {
      const h = Math.round((values[j] / max) * (panelH - 20))
      const x = x0 + 5 + j * barW
      out.push(`<rect x="${x.toFixed(1)}" y="${top + panelH - h}" width="${(barW - 8).toFixed(1)}" height="${h}" fill="${COLORS[s.id] || '#718096'}"/>`)
      out.push(`<text x="${(x + (barW - 8) / 2).toFixed(1)}" y="${top + panelH - h - 4}" text-anchor="middle">${Math.round(values[j]).toLocaleString('en-US')}</text>`)
      // Two-word labels ("ricochet cluster") go on two lines.
      const words = String(s.label).split(' ')
      const lines = words.length > 1 ? [words[0], words.slice(1).join(' ')] : words
      const cx = (x + (barW - 8) / 2).toFixed(1)
      lines.forEach((l, k) => out.push(`<text x="${cx}" y="${top + panelH + 14 + 13 * k}" text-anchor="middle">${esc(l)}</text>`))
    })
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

module.exports = { renderSvg }
