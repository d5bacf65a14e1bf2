'use strict'

// Received frames whose headers repeat arrive as [slot, id, body] against a headers object
// defined once per slot (src/client/templates.rs): JSON.parse of the headers was most of the
// cost of a frame. The rebuilt frame is what JSON.parse of the whole line gives: the same keys
// in the same order, and its own copy of every array value.

const SLOTS = 16

class HeaderTemplates {
  constructor () {
    this._slots = new Array(SLOTS).fill(null)
    /** Frames rebuilt from a template (diagnostics and tests). */
    this.rebuilt = 0
  }

  /** `tpl` event: `{ s: slot, h: headers with id "", a: keys holding arrays }`. */
  define (def) {
    this._slots[def.s] = def
  }

  /** `f` event: the frame `{ headers, body }`, or null for a slot never defined. */
  frame (p) {
    const t = this._slots[p[0]]
    if (t === null || t === undefined) return null
    this.rebuilt++
    const headers = { ...t.h }
    headers.id = p[1]
    const arrays = t.a
    for (let i = 0; i < arrays.length; i++) headers[arrays[i]] = headers[arrays[i]].slice()
    return { headers, body: p[2] }
  }
}

module.exports = { HeaderTemplates }
