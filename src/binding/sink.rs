//! Events into JS without a hop through another task: the emitting thread appends the event to
//! a pending batch and, when no call is in flight, hands the batch to the threadsafe function
//! itself. When JS returns, the next batch (whatever piled up meanwhile) goes at once from the
//! JS thread. So there is exactly one call in flight, batches grow while JS is busy, and an
//! idle connection's event reaches JS with one thread switch.

use crate::server::{Event, EventSink};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use std::sync::{Arc, Mutex, MutexGuard};

type EventFn = ThreadsafeFunction<String, (), String, Status, false>;

#[derive(Default)]
struct State {
    tsfn: Option<Arc<EventFn>>,
    /// Pending events as `"name",payload` pairs joined by commas.
    pending: String,
    in_flight: bool,
    /// `_closed` was queued: release the function once it is delivered.
    closing: bool,
    /// Frame-copying events dropped because JS fell too far behind.
    dropped: u64,
}

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
        EventSink::from_fn(move |ev| me.push(ev)).with_backlog(move || gauge.lock().pending.len())
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
        if !st.pending.is_empty() && !st.in_flight {
            self.fire(st);
        }
        Ok(())
    }

    fn push(self: &Arc<Self>, ev: Event) {
        let mut st = self.lock();
        if st.pending.len() > MAX_PENDING && droppable(ev.name) {
            st.dropped += 1;
            return;
        }
        if !st.pending.is_empty() {
            st.pending.push(',');
        }
        st.pending.push('"');
        st.pending.push_str(ev.name);
        st.pending.push_str("\",");
        st.pending.push_str(&ev.payload);
        if ev.name == "_closed" {
            st.closing = true;
        }
        if !st.in_flight && st.tsfn.is_some() {
            self.fire(st);
        }
    }

    fn fire(self: &Arc<Self>, mut st: MutexGuard<'_, State>) {
        let Some(tsfn) = st.tsfn.clone() else { return };
        if st.dropped > 0 {
            // Tell JS how many were dropped (`eventsDropped`), after what was kept.
            let note = format!(",\"eventsDropped\",{{\"count\":{}}}", st.dropped);
            let note = if st.pending.is_empty() {
                &note[1..]
            } else {
                &note[..]
            };
            st.pending.push_str(note);
            st.dropped = 0;
        }
        let mut batch = String::with_capacity(st.pending.len() + 2);
        batch.push('[');
        batch.push_str(&st.pending);
        batch.push(']');
        st.pending.clear();
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
        if !st.pending.is_empty() {
            self.fire(st);
        } else if st.closing {
            // Releasing the function lets Node exit once the server or client is closed.
            st.tsfn = None;
        }
    }
}
