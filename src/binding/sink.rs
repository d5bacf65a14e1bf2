//! Events into JS without a hop through another task: the emitting thread appends the event to
//! a pending batch and, when no call is in flight, hands the batch to the threadsafe function
//! itself. When JS returns, the next batch (whatever piled up meanwhile) goes at once from the
//! JS thread. So there is exactly one call in flight, batches grow while JS is busy, and an
//! idle connection's event reaches JS with one thread switch.
//!
//! Batches are cut at about [`CHUNK`] bytes: a batch string that stays small is allocated in
//! V8's young generation and its parsed frames die there, where one string of megabytes (JS
//! busy, events piling up) costs page faults for every copy and promotes thousands of live
//! objects per scavenge. Measured on a receiver flooded with 200k frames: most of its CPU went
//! to page faults and scavenges before the cut.

use crate::server::{Event, EventSink};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

type EventFn = ThreadsafeFunction<String, (), String, Status, false>;

#[derive(Default)]
struct State {
    tsfn: Option<Arc<EventFn>>,
    /// Sealed batches (`[` events `]`) waiting for their turn, oldest first.
    sealed: VecDeque<String>,
    /// The batch being filled: `[` then `"name",payload` pairs joined by commas, unclosed.
    open: String,
    /// Bytes in `sealed` and `open`.
    queued: usize,
    in_flight: bool,
    /// `_closed` was queued: release the function once it is delivered.
    closing: bool,
    /// Frame-copying events dropped because JS fell too far behind.
    dropped: u64,
}

/// The size at which a batch is sealed and a new one started.
const CHUNK: usize = 64 * 1024;

/// Pending bytes beyond which events that copy frames are dropped (and counted) instead of
/// queued, so a JS thread that falls behind cannot make memory grow without bound.
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// Events that may be dropped under pressure: diagnostics copying frames, never lifecycle
/// events, callbacks or a client's incoming frames.
fn droppable(name: &str) -> bool {
    matches!(
        name,
        "message" | "clientInput" | "messageError" | "invalidMessage"
    )
}

/// The shared state behind a JS event sink.
#[derive(Default)]
pub(crate) struct JsSink {
    state: Mutex<State>,
}

impl JsSink {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An [`EventSink`] feeding this JS sink.
    pub fn sink(self: &Arc<Self>) -> EventSink {
        let me = self.clone();
        let gauge = self.clone();
        EventSink::from_fn(move |ev| me.push(ev)).with_backlog(move || gauge.lock().queued)
    }

    /// Starts delivering to `on_events`; events queued before are delivered first.
    pub fn start(self: &Arc<Self>, on_events: Function<String, ()>) -> Result<()> {
        let tsfn: EventFn = on_events
            .build_threadsafe_function()
            .callee_handled::<false>()
            .build()?;
        let mut st = self.lock();
        st.tsfn = Some(Arc::new(tsfn));
        st.closing = false;
        if st.queued > 0 && !st.in_flight {
            self.fire(st);
        }
        Ok(())
    }

    fn push(self: &Arc<Self>, ev: Event) {
        let mut st = self.lock();
        if st.queued > MAX_PENDING && droppable(ev.name) {
            st.dropped += 1;
            return;
        }
        let before = st.open.len();
        if st.open.is_empty() {
            st.open.reserve(CHUNK + 1024);
            st.open.push('[');
        } else {
            st.open.push(',');
        }
        st.open.push('"');
        st.open.push_str(ev.name);
        st.open.push_str("\",");
        st.open.push_str(&ev.payload);
        st.queued += st.open.len() - before;
        if st.open.len() >= CHUNK {
            Self::seal(&mut st);
        }
        if ev.name == "_closed" {
            st.closing = true;
        }
        if !st.in_flight && st.tsfn.is_some() {
            self.fire(st);
        }
    }

    /// Closes the open batch and queues it.
    fn seal(st: &mut State) {
        if st.open.is_empty() {
            return;
        }
        st.open.push(']');
        st.queued += 1;
        let batch = std::mem::take(&mut st.open);
        st.sealed.push_back(batch);
    }

    fn fire(self: &Arc<Self>, mut st: MutexGuard<'_, State>) {
        let Some(tsfn) = st.tsfn.clone() else { return };
        if st.sealed.is_empty() {
            if st.dropped > 0 {
                // Tell JS how many were dropped (`eventsDropped`), after what was kept.
                let note = format!("\"eventsDropped\",{{\"count\":{}}}", st.dropped);
                let sep = if st.open.is_empty() { '[' } else { ',' };
                st.open.push(sep);
                st.open.push_str(&note);
                st.queued += note.len() + 1;
                st.dropped = 0;
            }
            Self::seal(&mut st);
        }
        let Some(batch) = st.sealed.pop_front() else {
            return;
        };
        st.queued -= batch.len();
        st.in_flight = true;
        drop(st);
        let me = self.clone();
        let status = tsfn.call_with_return_value(
            batch,
            ThreadsafeFunctionCallMode::NonBlocking,
            move |_, _| {
                me.returned();
                Ok(())
            },
        );
        if status != Status::Ok {
            // The function is gone (environment shutting down): nothing more can be delivered.
            let mut st = self.lock();
            st.in_flight = false;
            st.tsfn = None;
        }
    }

    /// Runs on the JS thread after a batch was handled.
    fn returned(self: &Arc<Self>) {
        let mut st = self.lock();
        st.in_flight = false;
        if st.queued > 0 || st.dropped > 0 {
            self.fire(st);
        } else if st.closing {
            // Releasing the function lets Node exit once the server or client is closed.
            st.tsfn = None;
        }
    }
}
