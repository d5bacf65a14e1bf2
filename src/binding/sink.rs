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
    /// The JS thread is reading a socket itself and delivers what it routed when done.
    hold: bool,
    /// A weak reference to the JS function, for calls made on the JS thread itself.
    direct: Option<Direct>,
    /// The threadsafe function failed (environment going away): no direct calls either.
    direct_dead: bool,
    /// Told, under this lock so the signals keep their order, when JS gets a batch (true)
    /// and when it has handled everything (false).
    busy: Option<BusyHook>,
}

/// `napi_env`, `napi_ref` of the event function and the async context direct calls run in,
/// as addresses (used on the JS thread only).
#[derive(Clone, Copy)]
struct Direct {
    env: usize,
    func: usize,
    ctx: usize,
}

impl Direct {
    /// Creates the reference (weak: the threadsafe function keeps the function alive for as
    /// long as it is used) and an async context named `ricochet:events`.
    ///
    /// # Safety
    /// JS thread, with the env and value napi gave the current call.
    unsafe fn new(env: napi::sys::napi_env, value: napi::sys::napi_value) -> Option<Direct> {
        use napi::sys;
        let ok = sys::Status::napi_ok;
        let mut func = std::ptr::null_mut();
        if sys::napi_create_reference(env, value, 0, &mut func) != ok {
            return None;
        }
        let name = "ricochet:events";
        let mut name_js = std::ptr::null_mut();
        let mut ctx = std::ptr::null_mut();
        if sys::napi_create_string_utf8(
            env,
            name.as_ptr().cast(),
            name.len() as isize,
            &mut name_js,
        ) != ok
            || sys::napi_async_init(env, std::ptr::null_mut(), name_js, &mut ctx) != ok
        {
            sys::napi_delete_reference(env, func);
            return None;
        }
        Some(Direct {
            env: env as usize,
            func: func as usize,
            ctx: ctx as usize,
        })
    }

    /// # Safety
    /// JS thread; not used afterwards.
    unsafe fn release(self) {
        napi::sys::napi_async_destroy(self.env as _, self.ctx as _);
        napi::sys::napi_delete_reference(self.env as _, self.func as _);
    }
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
/// Runs on the JS thread after each delivered batch (the client's socket watcher starts there).
pub(crate) type JsHook = Arc<dyn Fn(napi::sys::napi_env) + Send + Sync>;

#[derive(Default)]
pub(crate) struct JsSink {
    state: Mutex<State>,
    hook: Mutex<Option<JsHook>>,
}

/// See [`JsSink::set_busy_hook`].
pub(crate) type BusyHook = Arc<dyn Fn(bool) + Send + Sync>;

impl JsSink {
    fn lock(&self) -> MutexGuard<'_, State> {
        crate::net::lock(&self.state)
    }

    /// An [`EventSink`] feeding this JS sink.
    pub fn sink(self: &Arc<Self>) -> EventSink {
        let me = self.clone();
        let gauge = self.clone();
        EventSink::from_fn(move |ev| me.push(ev)).with_backlog(move || gauge.lock().queued)
    }

    /// Starts delivering to `on_events`; events queued before are delivered first.
    pub fn start(self: &Arc<Self>, on_events: Function<String, ()>) -> Result<()> {
        let raw = on_events.value();
        // SAFETY: called on the JS thread with the env and value napi gave this call.
        let direct = unsafe { Direct::new(raw.env, raw.value) };
        let tsfn: EventFn = on_events
            .build_threadsafe_function()
            .callee_handled::<false>()
            .build()?;
        let mut st = self.lock();
        st.tsfn = Some(Arc::new(tsfn));
        st.direct_dead = false;
        if let Some(old) = std::mem::replace(&mut st.direct, direct) {
            // SAFETY: on the JS thread; the old reference is not used again.
            unsafe { old.release() };
        }
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
        if !st.in_flight && !st.hold && st.tsfn.is_some() {
            self.fire(st);
        }
    }

    /// Sets the JS-thread hook (see [`JsHook`]).
    pub fn set_hook(&self, hook: JsHook) {
        *crate::net::lock(&self.hook) = Some(hook);
    }

    /// Sets what is told when JS gets a batch to handle (true) and when it has handled
    /// everything (false), and tells it the present state: the client's tokio reader leaves
    /// the socket to the JS thread while JS is idle.
    pub fn set_busy_hook(&self, hook: Option<BusyHook>) {
        let mut st = self.lock();
        st.busy = hook;
        let busy = !Self::is_idle(&st);
        Self::tell_busy(&st, busy);
    }

    fn tell_busy(st: &State, busy: bool) {
        if let Some(h) = &st.busy {
            h(busy);
        }
    }

    fn is_idle(st: &State) -> bool {
        !st.in_flight && st.queued == 0 && st.dropped == 0
    }

    /// True when nothing waits for JS and no call is on its way.
    pub fn idle(&self) -> bool {
        Self::is_idle(&self.lock())
    }

    /// After a panic on the JS thread's read path: stop holding and hand what is queued to
    /// the threadsafe function.
    pub fn recover(self: &Arc<Self>) {
        let mut st = self.lock();
        st.hold = false;
        if !st.in_flight && st.queued > 0 {
            self.fire(st);
        }
    }

    /// While held, events are only queued; [`JsSink::deliver_now`] hands them over.
    pub fn hold(&self, on: bool) {
        self.lock().hold = on;
    }

    /// On the JS thread: calls JS with everything queued, directly instead of through the
    /// threadsafe function, until nothing is left.
    pub fn deliver_now(self: &Arc<Self>) {
        loop {
            let mut st = self.lock();
            if st.in_flight || st.hold {
                return;
            }
            let Some(direct) = st.direct.filter(|_| !st.direct_dead) else {
                if st.queued > 0 {
                    self.fire(st);
                }
                return;
            };
            let Some(batch) = Self::next_batch(&mut st) else {
                drop(st);
                self.after_js(direct.env as _);
                return;
            };
            st.in_flight = true;
            drop(st);
            // SAFETY: on the JS thread (the caller's contract), outside any other JS call.
            let delivered = unsafe { call_direct(direct, &batch) };
            let mut st = self.lock();
            st.in_flight = false;
            if !delivered {
                // JS was not called (environment going away): the batch goes back to the front
                // and the threadsafe path decides what happens next.
                st.queued += batch.len();
                st.sealed.push_front(batch);
                st.direct_dead = true;
                self.fire(st);
                return;
            }
        }
    }

    /// JS thread, after a batch: release what a closed sink holds, then run the hook.
    fn after_js(&self, env: napi::sys::napi_env) {
        let mut st = self.lock();
        if st.closing && st.queued == 0 && !st.in_flight {
            // Releasing the function lets Node exit once the server or client is closed.
            st.tsfn = None;
            if let Some(d) = st.direct.take() {
                // SAFETY: on the JS thread; nothing uses the reference after this.
                unsafe { d.release() };
            }
        }
        if Self::is_idle(&st) {
            Self::tell_busy(&st, false);
        }
        drop(st);
        let hook = crate::net::lock(&self.hook).clone();
        if let Some(h) = hook {
            h(env);
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

    /// The next batch to hand to JS, with a drop note appended when events were dropped.
    fn next_batch(st: &mut State) -> Option<String> {
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
            Self::seal(st);
        }
        let batch = st.sealed.pop_front()?;
        st.queued -= batch.len();
        Some(batch)
    }

    fn fire(self: &Arc<Self>, mut st: MutexGuard<'_, State>) {
        let Some(tsfn) = st.tsfn.clone() else { return };
        let Some(batch) = Self::next_batch(&mut st) else {
            return;
        };
        st.in_flight = true;
        Self::tell_busy(&st, true);
        drop(st);
        let me = self.clone();
        let status = tsfn.call_with_return_value(
            batch,
            ThreadsafeFunctionCallMode::NonBlocking,
            move |_, env| {
                me.returned(env.raw());
                Ok(())
            },
        );
        if status != Status::Ok {
            // The function is gone (environment shutting down): nothing more can be delivered.
            let mut st = self.lock();
            st.in_flight = false;
            st.tsfn = None;
            st.direct_dead = true;
        }
    }

    /// Runs on the JS thread after a batch was handled.
    fn returned(self: &Arc<Self>, env: napi::sys::napi_env) {
        let mut st = self.lock();
        st.in_flight = false;
        if st.queued > 0 || st.dropped > 0 {
            self.fire(st);
        } else {
            drop(st);
            self.after_js(env);
        }
    }
}

/// Calls the event function with `batch` from the JS thread's event loop (not from inside a
/// JS call): a handle scope, then `napi_make_callback` so microtasks and `nextTick`s run after
/// it as they do after any I/O callback. An exception becomes an uncaught exception.
///
/// # Safety
/// Must run on the JS thread of `direct.env`, outside any JS call.
unsafe fn call_direct(direct: Direct, batch: &str) -> bool {
    use napi::sys;
    let env = direct.env as sys::napi_env;
    let ok = sys::Status::napi_ok;
    let mut scope = std::ptr::null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != ok {
        return false;
    }
    let mut func = std::ptr::null_mut();
    let mut arg = std::ptr::null_mut();
    let mut recv = std::ptr::null_mut();
    let ready = sys::napi_get_reference_value(env, direct.func as sys::napi_ref, &mut func) == ok
        && !func.is_null()
        && sys::napi_create_string_utf8(env, batch.as_ptr().cast(), batch.len() as isize, &mut arg)
            == ok
        && sys::napi_get_global(env, &mut recv) == ok;
    if ready {
        let mut result = std::ptr::null_mut();
        let status = sys::napi_make_callback(
            env,
            direct.ctx as sys::napi_async_context,
            recv,
            func,
            1,
            &arg,
            &mut result,
        );
        let mut pending = false;
        if status != ok && sys::napi_is_exception_pending(env, &mut pending) == ok && pending {
            let mut err = std::ptr::null_mut();
            if sys::napi_get_and_clear_last_exception(env, &mut err) == ok {
                sys::napi_fatal_exception(env, err);
            }
        }
    }
    sys::napi_close_handle_scope(env, scope);
    ready
}
