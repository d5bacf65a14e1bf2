//! The client's send call, `send(batch)`, as a plain Node-API function bound to one client.
//!
//! It runs once per tick that sends anything, and for request/reply with one request in
//! flight that is once per message. As a `#[napi]` class method it paid napi-rs' per-call
//! machinery (unwrapping the instance, registering and releasing a native borrow, a class
//! identity check; a no-op method costs ~260 ns here) plus a two-pass string conversion
//! (`napi_get_value_string_utf8` once for the length, once to copy). This function carries its
//! client as its own callback data (so no argument can point it at anything else) and copies
//! the string in one pass into a reused buffer sized from its UTF-16 length (at most three
//! UTF-8 bytes per unit).

// Reached only through napi registration, which unit-test builds leave out.
#![cfg_attr(test, allow(dead_code))]

use super::client::{FailedSend, SendBatchResult};
use crate::client::Client;
use crate::net::lock;
use napi::bindgen_prelude::{Result, ToNapiValue};
use napi::sys;
use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::Mutex;

/// What a client's send handle reaches: the running client, and the failures of the last
/// call that had any (read with `takeFailed`).
#[derive(Default)]
pub(crate) struct SendCore {
    pub client: Mutex<Option<Client>>,
    pub failed: Mutex<Option<SendBatchResult>>,
}

/// A `napi_value` made by hand, handed back to napi-rs as is.
pub struct Raw(sys::napi_value);

impl ToNapiValue for Raw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}

impl SendCore {
    /// Sends `batch` (see `Client::send_batch`): the buffered byte count after it when every
    /// record went out, else -1 with the failed records kept for `takeFailed()`.
    fn send(&self, batch: &[u8]) -> f64 {
        let guard = lock(&self.client);
        let (buffered, failed): (f64, Vec<FailedSend>) = match guard.as_ref() {
            None => (
                0.0,
                (0..batch.split(|b| *b == 1).filter(|r| !r.is_empty()).count())
                    .map(|i| FailedSend {
                        index: i as u32,
                        code: crate::codes::CLIENT_CONNECTION.full(),
                    })
                    .collect(),
            ),
            Some(client) => {
                let failed = client
                    .send_batch(batch)
                    .into_iter()
                    .map(|(i, e)| FailedSend {
                        index: i as u32,
                        code: e.code().full(),
                    })
                    .collect();
                (client.buffered() as f64, failed)
            }
        };
        drop(guard);
        if failed.is_empty() {
            return buffered;
        }
        *lock(&self.failed) = Some(SendBatchResult { buffered, failed });
        -1.0
    }
}

/// A `send(batch)` function bound to `core`: returns the bytes buffered after the batch, or -1
/// when some record failed (then `takeFailed()` says which).
///
/// The function's callback data is a boxed `Arc<SendCore>`, owned by an external stored on the
/// function as a read-only, non-configurable property: the box lives exactly as long as the
/// function can be called, and the external's finalizer frees it.
///
/// # Safety
/// `env` is the current call's environment, on the JS thread.
pub(crate) unsafe fn function(env: sys::napi_env, core: std::sync::Arc<SendCore>) -> Result<Raw> {
    unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
        // SAFETY: `data` is the box made below, finalized once by Node.
        drop(unsafe { Box::from_raw(data.cast::<std::sync::Arc<SendCore>>()) });
    }
    let fail = |what: &str| napi::Error::from_reason(format!("could not create {what}"));
    let data = Box::into_raw(Box::new(core)).cast::<c_void>();
    let mut owner = ptr::null_mut();
    // SAFETY: JS thread, live env; if Node does not take `data`, it is reclaimed here.
    unsafe {
        if sys::napi_create_external(env, data, Some(finalize), ptr::null_mut(), &mut owner)
            != sys::Status::napi_ok
        {
            drop(Box::from_raw(data.cast::<std::sync::Arc<SendCore>>()));
            return Err(fail("the send handle"));
        }
    }
    let mut func = ptr::null_mut();
    let name = "send";
    // SAFETY: JS thread, live env; the name is passed with its length. From here the external
    // owns `data`; the function only borrows it while the external is alive.
    unsafe {
        if sys::napi_create_function(
            env,
            name.as_ptr().cast::<c_char>(),
            name.len() as isize,
            Some(send_batch),
            data,
            &mut func,
        ) != sys::Status::napi_ok
        {
            return Err(fail("the send function"));
        }
        let key = c"_owner";
        let prop = sys::napi_property_descriptor {
            utf8name: key.as_ptr(),
            name: ptr::null_mut(),
            method: None,
            getter: None,
            setter: None,
            value: owner,
            attributes: sys::PropertyAttributes::default,
            data: ptr::null_mut(),
        };
        if sys::napi_define_properties(env, func, 1, &prop) != sys::Status::napi_ok {
            return Err(fail("the send function"));
        }
    }
    Ok(Raw(func))
}

thread_local! {
    /// The UTF-8 copy of the batch, reused from call to call on this JS thread.
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Buffers above this are given back after the call that needed them.
const KEEP: usize = 1 << 20;

/// Throws a TypeError (`type_error`) or an Error with `msg`; returns the null result.
unsafe fn throw(env: sys::napi_env, type_error: bool, msg: &str) -> sys::napi_value {
    let msg = std::ffi::CString::new(msg).unwrap_or_default();
    // SAFETY: JS thread, live env, NUL-terminated message.
    unsafe {
        if type_error {
            sys::napi_throw_type_error(env, ptr::null(), msg.as_ptr());
        } else {
            sys::napi_throw_error(env, ptr::null(), msg.as_ptr());
        }
    }
    ptr::null_mut()
}

unsafe extern "C" fn send_batch(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // A panic must not unwind into Node.
    match std::panic::catch_unwind(|| unsafe { send_batch_inner(env, info) }) {
        Ok(v) => v,
        Err(_) => unsafe { throw(env, false, "ricochet: send failed") },
    }
}

/// Bytes to reserve for the UTF-8 copy of a string of `units` UTF-16 units: the bound (3 per
/// unit) for ordinary batches, the exact length (one more pass) for huge ones.
unsafe fn utf8_room(env: sys::napi_env, value: sys::napi_value, units: usize) -> Option<usize> {
    if units <= KEEP / 3 {
        return Some(units * 3 + 1);
    }
    let mut len = 0usize;
    // SAFETY: JS thread, live env; a null buffer asks for the length only.
    let ok = unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len) }
        == sys::Status::napi_ok;
    ok.then_some(len + 1)
}

unsafe fn send_batch_inner(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let mut argc = 1usize;
    let mut argv = [ptr::null_mut(); 1];
    let mut data = ptr::null_mut();
    // SAFETY: Node calls this with a live env and callback info; argv has room for argc.
    unsafe {
        if sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        ) != sys::Status::napi_ok
            || data.is_null()
        {
            return throw(env, false, "ricochet: send called without its client");
        }
        // SAFETY: `data` is this function's own box (see `function`), alive while the
        // function is, and the function is being called.
        let core = &*data.cast::<std::sync::Arc<SendCore>>();
        let mut units = 0usize;
        if argc < 1
            || sys::napi_get_value_string_utf16(env, argv[0], ptr::null_mut(), 0, &mut units)
                != sys::Status::napi_ok
        {
            return throw(env, true, "ricochet: send(batch) needs a string");
        }
        let Some(room) = utf8_room(env, argv[0], units) else {
            return throw(env, true, "ricochet: send(batch) could not read the batch");
        };
        let result = BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.clear();
            if buf.try_reserve(room).is_err() {
                return Err("ricochet: send(batch): out of memory for the batch");
            }
            let mut written = 0usize;
            let ok = sys::napi_get_value_string_utf8(
                env,
                argv[0],
                buf.as_mut_ptr().cast::<c_char>(),
                buf.capacity(),
                &mut written,
            ) == sys::Status::napi_ok;
            let out = if ok {
                // SAFETY: Node wrote `written` bytes (without the terminator) into the buffer.
                let bytes = std::slice::from_raw_parts(buf.as_ptr(), written.min(buf.capacity()));
                Ok(core.send(bytes))
            } else {
                Err("ricochet: send(batch) could not read the batch")
            };
            if buf.capacity() > KEEP {
                *buf = Vec::new();
            }
            out
        });
        let buffered = match result {
            Err(msg) => return throw(env, false, msg),
            Ok(buffered) => buffered,
        };
        let mut out = ptr::null_mut();
        sys::napi_create_double(env, buffered, &mut out);
        out
    }
}
