//! Watching a client's socket from the JS thread's own event loop (libuv `uv_poll_t`), so that
//! an idle JS thread is woken by the socket itself and reads and dispatches the frames there:
//! one thread wake-up per incoming batch instead of two (tokio worker, then JS). The tokio
//! reader keeps running beside it (see `client::reader`); this is only a faster path, and
//! without libuv (or with `RICOCHET_JS_READ=0`) everything goes through tokio as before.
//!
//! libuv is resolved from the running process (Node exports it to addons) the way `napi-sys`
//! resolves Node-API, so nothing links against it. All handle calls happen on the JS thread.

use super::sink::JsSink;
use crate::client::{Pumped, ReadHandoff, SocketReader};
use napi::sys;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

type PollCb = unsafe extern "C" fn(*mut c_void, c_int, c_int);
type CloseCb = unsafe extern "C" fn(*mut c_void);

/// `UV_POLL` in `uv_handle_type`.
const UV_POLL: c_int = 8;
/// Frames routed per call into JS from the watcher, and calls per readable event.
const JS_FRAMES: usize = 32;
const JS_ROUNDS: usize = 16;

/// `UV_READABLE` in `uv_poll_event`.
const UV_READABLE: c_int = 1;

type HandleSizeFn = unsafe extern "C" fn(c_int) -> usize;
type PollInitFn = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;
type PollStartFn = unsafe extern "C" fn(*mut c_void, c_int, PollCb) -> c_int;
type PollStopFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type CloseFn = unsafe extern "C" fn(*mut c_void, CloseCb);
type UnrefFn = unsafe extern "C" fn(*mut c_void);

/// The few libuv entry points used here.
struct Uv {
    handle_size: HandleSizeFn,
    poll_init: PollInitFn,
    poll_start: PollStartFn,
    poll_stop: PollStopFn,
    close: CloseFn,
    unref: UnrefFn,
}

fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(|| {
        if std::env::var("RICOCHET_JS_READ").is_ok_and(|v| v == "0") {
            return None;
        }
        let sym = |name: &[u8]| {
            // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the loaded process.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr().cast::<c_char>()) };
            (!p.is_null()).then_some(p)
        };
        // SAFETY: the symbols are libuv's, with the signatures of uv.h declared above.
        unsafe {
            Some(Uv {
                handle_size: std::mem::transmute::<*mut c_void, HandleSizeFn>(sym(
                    b"uv_handle_size\0",
                )?),
                poll_init: std::mem::transmute::<*mut c_void, PollInitFn>(sym(b"uv_poll_init\0")?),
                poll_start: std::mem::transmute::<*mut c_void, PollStartFn>(sym(
                    b"uv_poll_start\0",
                )?),
                poll_stop: std::mem::transmute::<*mut c_void, PollStopFn>(sym(b"uv_poll_stop\0")?),
                close: std::mem::transmute::<*mut c_void, CloseFn>(sym(b"uv_close\0")?),
                unref: std::mem::transmute::<*mut c_void, UnrefFn>(sym(b"uv_unref\0")?),
            })
        }
    })
    .as_ref()
}

/// What a watched handle points at (its `data`); freed by the close callback.
struct Watch {
    reader: Arc<SocketReader>,
    sink: Arc<JsSink>,
    /// `uv_close` was called: never call it twice.
    closing: AtomicBool,
    /// Size of the handle's allocation in words.
    words: usize,
    /// The poller's slot for its current handle, cleared when this one is freed.
    slot: Arc<Mutex<Option<usize>>>,
    /// The poller's count of frames routed on the JS thread.
    frames: Arc<AtomicU64>,
}

/// A client's second reader: connections attached on tokio threads are watched from the JS
/// thread once it next runs the sink's hook.
pub(crate) struct JsPoller {
    sink: Arc<JsSink>,
    /// Weak: a connection that ended before the JS thread got to it is not kept alive here.
    pending: Mutex<Option<std::sync::Weak<SocketReader>>>,
    /// The handle being watched, as an address (JS thread only).
    current: Arc<Mutex<Option<usize>>>,
    /// Frames routed on the JS thread (diagnostics and tests).
    frames: Arc<AtomicU64>,
    /// The environment is being torn down: watch nothing more.
    dead: AtomicBool,
}

impl ReadHandoff for JsPoller {
    fn attach(&self, reader: Arc<SocketReader>) {
        *crate::net::lock(&self.pending) = Some(Arc::downgrade(&reader));
    }
}

impl JsPoller {
    /// A poller for the client whose events go to `sink`, or `None` without libuv.
    pub fn new(sink: Arc<JsSink>) -> Option<Arc<JsPoller>> {
        uv()?;
        let poller = Arc::new(JsPoller {
            sink: sink.clone(),
            pending: Mutex::new(None),
            current: Arc::new(Mutex::new(None)),
            frames: Arc::new(AtomicU64::new(0)),
            dead: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&poller);
        sink.set_hook(Arc::new(move |env| {
            if let Some(p) = weak.upgrade() {
                p.service(env);
            }
        }));
        Some(poller)
    }

    /// How many frames the JS thread read and routed itself.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Environment teardown: stop watching for good.
    fn shut(&self) {
        self.dead.store(true, Ordering::Release);
        if let (Some(uv), Some(h)) = (uv(), crate::net::lock(&self.current).take()) {
            // SAFETY: JS thread (cleanup hooks run there); `h` is this poller's live handle.
            unsafe { close_handle(uv, h as *mut c_void) };
        }
    }

    /// JS thread: starts watching a newly attached connection (and stops the previous one).
    fn service(self: &Arc<Self>, env: sys::napi_env) {
        let Some(watched) = crate::net::lock(&self.pending)
            .take()
            .and_then(|w| w.upgrade())
        else {
            return;
        };
        let Some(uv) = uv() else { return };
        if self.dead.load(Ordering::Acquire) {
            return;
        }
        register_cleanup(env, self);
        if let Some(old) = crate::net::lock(&self.current).take() {
            // SAFETY: JS thread; `old` is a live handle this poller started.
            unsafe { close_handle(uv, old as *mut c_void) };
        }
        let mut uv_loop = std::ptr::null_mut();
        // SAFETY: JS thread, env of this addon instance.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut uv_loop) } != sys::Status::napi_ok {
            return;
        }
        // SAFETY: plain libuv calls on the loop's own thread; the handle memory is zeroed,
        // word-aligned and as large as libuv says, and lives until the close callback.
        unsafe {
            let words = (uv.handle_size)(UV_POLL).div_ceil(8);
            let mem: Box<[u64]> = vec![0u64; words].into_boxed_slice();
            let handle = Box::into_raw(mem).cast::<u64>().cast::<c_void>();
            if (uv.poll_init)(uv_loop.cast(), handle, watched.fd()) != 0 {
                free_handle(handle, words);
                return;
            }
            let watch = Box::new(Watch {
                reader: watched.clone(),
                sink: self.sink.clone(),
                closing: AtomicBool::new(false),
                words,
                slot: self.current.clone(),
                frames: self.frames.clone(),
            });
            // `data` is the first field of every libuv handle.
            *handle.cast::<*mut c_void>() = Box::into_raw(watch).cast();
            // The client's liveness is its threadsafe function's business, not this handle's.
            (uv.unref)(handle);
            if (uv.poll_start)(handle, UV_READABLE, on_readable) != 0 {
                close_handle(uv, handle);
                return;
            }
            *crate::net::lock(&self.current) = Some(handle as usize);
        }
        let weak = Arc::downgrade(&watched);
        self.sink.set_busy_hook(Some(Arc::new(move |busy| {
            if let Some(r) = weak.upgrade() {
                r.set_watcher_idle(!busy);
            }
        })));
        watched.set_watched(true);
    }
}

/// # Safety
/// JS thread; `handle` is a live poll handle started by [`JsPoller::service`].
unsafe fn close_handle(uv: &Uv, handle: *mut c_void) {
    let watch = *handle.cast::<*const Watch>();
    if (*watch).closing.swap(true, Ordering::AcqRel) {
        return;
    }
    // From here the tokio task reads this connection alone.
    (*watch).reader.set_watched(false);
    (uv.poll_stop)(handle);
    (uv.close)(handle, on_closed);
}

unsafe extern "C" fn on_closed(handle: *mut c_void) {
    let watch = Box::from_raw(*handle.cast::<*mut Watch>());
    let words = watch.words;
    let mut slot = crate::net::lock(&watch.slot);
    if *slot == Some(handle as usize) {
        *slot = None;
    }
    drop(slot);
    drop(watch);
    free_handle(handle, words);
}

unsafe fn free_handle(handle: *mut c_void, words: usize) {
    drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
        handle.cast::<u64>(),
        words,
    )));
}

/// The socket is readable (or failed): read and dispatch here when the JS side has nothing
/// else waiting; otherwise leave it to the tokio reader, which is already awake for it.
unsafe extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
    // A panic must not unwind into libuv (that would abort Node): stop watching instead and
    // leave the connection to the tokio reader.
    let caught = std::panic::catch_unwind(|| {
        // SAFETY: libuv calls this with the handle `service` started, on the JS thread.
        unsafe { readable(handle, status) }
    });
    if caught.is_err() {
        let watch = &*(*handle.cast::<*const Watch>());
        // Events routed before the panic must still reach JS, through the threadsafe path.
        watch.sink.recover();
        if let Some(uv) = uv() {
            close_handle(uv, handle);
        }
    }
}

/// # Safety
/// JS thread, `handle` a live handle started by [`JsPoller::service`].
unsafe fn readable(handle: *mut c_void, status: c_int) {
    let Some(uv) = uv() else { return };
    let watch = &*(*handle.cast::<*const Watch>());
    if watch.closing.load(Ordering::Acquire) {
        return;
    }
    if status < 0 || !watch.reader.is_open() {
        // Closed sockets stay readable: never leave one watched.
        close_handle(uv, handle);
        return;
    }
    if !watch.sink.idle() {
        return;
    }
    // Small batches, each handed to JS before the next is read: what JS sends in reply goes
    // out (microtasks run after each call) while the peers are still busy with the rest, so
    // the processes keep working side by side instead of passing one big batch around.
    let mut rounds = 0;
    loop {
        watch.sink.hold(true);
        let pumped = watch.reader.try_pump(JS_FRAMES);
        watch.sink.hold(false);
        if let Some((_, frames)) = pumped {
            // Counted before JS sees them, so a handler reading the count includes its frame.
            watch.frames.fetch_add(frames as u64, Ordering::Relaxed);
        }
        // Delivering may run JS that closes or replaces this handle: `closing` guards it.
        watch.sink.deliver_now();
        let Some((pumped, _)) = pumped else {
            // Another thread holds the reader. After a round that stopped at its budget,
            // frames may still be buffered that no readiness will announce: make sure the
            // tokio reader looks.
            if rounds > 0 {
                watch.reader.set_watcher_idle(false);
            }
            return;
        };
        match pumped {
            Pumped::Idle => return,
            Pumped::Ended => return close_handle(uv, handle),
            Pumped::More => {}
        }
        rounds += 1;
        if rounds == JS_ROUNDS || watch.closing.load(Ordering::Acquire) || !watch.sink.idle() {
            // Frames may be left in the read buffer, which the socket's readiness does not
            // show: hand them to the tokio reader.
            watch.reader.set_watcher_idle(false);
            return;
        }
    }
}

/// Pollers per environment, so an environment's teardown (a worker thread ending) closes
/// their handles before libuv's loop is closed.
static ENVS: Mutex<Vec<(usize, Vec<std::sync::Weak<JsPoller>>)>> = Mutex::new(Vec::new());

fn register_cleanup(env: sys::napi_env, poller: &Arc<JsPoller>) {
    let mut envs = crate::net::lock(&ENVS);
    let weak = Arc::downgrade(poller);
    if let Some((_, list)) = envs.iter_mut().find(|(e, _)| *e == env as usize) {
        list.retain(|w| w.strong_count() > 0);
        if !list.iter().any(|w| w.ptr_eq(&weak)) {
            list.push(weak);
        }
        return;
    }
    envs.push((env as usize, vec![weak]));
    // SAFETY: JS thread of `env`; the hook runs once, at its teardown.
    unsafe { sys::napi_add_env_cleanup_hook(env, Some(env_cleanup), env.cast()) };
}

unsafe extern "C" fn env_cleanup(env: *mut c_void) {
    let list = {
        let mut envs = crate::net::lock(&ENVS);
        match envs.iter().position(|(e, _)| *e == env as usize) {
            Some(i) => envs.swap_remove(i).1,
            None => return,
        }
    };
    for poller in list.iter().filter_map(|w| w.upgrade()) {
        poller.shut();
    }
}
