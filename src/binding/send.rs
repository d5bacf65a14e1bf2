//! The client's send call, `sendBatch(handle, batch)`, as a plain Node-API function.
//!
//! It runs once per tick that sends anything, and for request/reply with one request in
//! flight that is once per message. As a `#[napi]` class method it paid napi-rs' per-call
//! machinery (unwrapping the instance, registering and releasing a native borrow, a class
//! identity check; a no-op method costs ~260 ns here) plus a two-pass string conversion
//! (`napi_get_value_string_utf8` once for the length, once to copy). This function takes an
//! external handle and copies the string in one pass into a reused buffer sized from its
//! UTF-16 length (at most three UTF-8 bytes per unit).

// Reached only through napi registration, which unit-test builds leave out.
#![cfg_attr(test, allow(dead_code))]

use super::client::{FailedSend, SendBatchResult};
use crate::client::Client;
use napi::bindgen_prelude::{Either, Result, ToNapiValue};
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SendCore {
    /// Sends `batch` (see `Client::send_batch`): the buffered byte count after it when every
    /// record went out, else that count with the records that failed.
    pub fn send(&self, batch: &[u8]) -> Either<f64, SendBatchResult> {
        let guard = lock(&self.client);
        let Some(client) = guard.as_ref() else {
            let n = batch.split(|b| *b == 1).filter(|r| !r.is_empty()).count();
            return Either::B(SendBatchResult {
                buffered: 0.0,
                failed: (0..n)
                    .map(|i| FailedSend {
                        index: i as u32,
                        code: crate::codes::CLIENT_CONNECTION.full(),
                    })
                    .collect(),
            });
        };
        let failed: Vec<FailedSend> = client
            .send_batch(batch)
            .into_iter()
            .map(|(i, e)| FailedSend {
                index: i as u32,
                code: e.code().full(),
            })
            .collect();
        let buffered = client.buffered() as f64;
        if failed.is_empty() {
            Either::A(buffered)
        } else {
            Either::B(SendBatchResult { buffered, failed })
        }
    }
}

/// A JS external holding `core` (one reference, dropped when JS collects the handle).
///
/// # Safety
/// `env` is the current call's environment, on the JS thread.
pub(crate) unsafe fn handle(env: sys::napi_env, core: std::sync::Arc<SendCore>) -> Result<Raw> {
    unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
        // SAFETY: `data` is the box made below, finalized once by Node.
        drop(unsafe { Box::from_raw(data.cast::<std::sync::Arc<SendCore>>()) });
    }
    let data = Box::into_raw(Box::new(core)).cast::<c_void>();
    let mut out = ptr::null_mut();
    // SAFETY: JS thread, live env; on failure the box is reclaimed here.
    let status =
        unsafe { sys::napi_create_external(env, data, Some(finalize), ptr::null_mut(), &mut out) };
    if status != sys::Status::napi_ok {
        // SAFETY: Node did not take `data`.
        drop(unsafe { Box::from_raw(data.cast::<std::sync::Arc<SendCore>>()) });
        return Err(napi::Error::from_reason("could not create the send handle"));
    }
    Ok(Raw(out))
}

/// The `sendBatch(handle, batch)` function.
///
/// # Safety
/// `env` is the current call's environment, on the JS thread.
pub(crate) unsafe fn function(env: sys::napi_env) -> Result<Raw> {
    let mut out = ptr::null_mut();
    let name = "sendBatch";
    // SAFETY: JS thread, live env; the name is passed with its length.
    let status = unsafe {
        sys::napi_create_function(
            env,
            name.as_ptr().cast::<c_char>(),
            name.len() as isize,
            Some(send_batch),
            ptr::null_mut(),
            &mut out,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::from_reason("could not create sendBatch"));
    }
    Ok(Raw(out))
}

thread_local! {
    /// The UTF-8 copy of the batch, reused from call to call on this JS thread.
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Buffers above this are given back after the call that needed them.
const KEEP: usize = 1 << 20;

unsafe fn throw_type_error(env: sys::napi_env, msg: &str) -> sys::napi_value {
    let msg = std::ffi::CString::new(msg).unwrap_or_default();
    // SAFETY: JS thread, live env, NUL-terminated message.
    unsafe { sys::napi_throw_type_error(env, ptr::null(), msg.as_ptr()) };
    ptr::null_mut()
}

unsafe extern "C" fn send_batch(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // A panic must not unwind into Node.
    match std::panic::catch_unwind(|| unsafe { send_batch_inner(env, info) }) {
        Ok(v) => v,
        Err(_) => unsafe { throw_type_error(env, "ricochet: sendBatch failed") },
    }
}

unsafe fn send_batch_inner(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let mut argc = 2usize;
    let mut argv = [ptr::null_mut(); 2];
    // SAFETY: Node calls this with a live env and callback info; argv has room for argc.
    unsafe {
        if sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        ) != sys::Status::napi_ok
            || argc < 2
        {
            return throw_type_error(env, "ricochet: sendBatch(handle, batch)");
        }
        let mut data = ptr::null_mut();
        if sys::napi_get_value_external(env, argv[0], &mut data) != sys::Status::napi_ok
            || data.is_null()
        {
            return throw_type_error(env, "ricochet: sendBatch needs a send handle");
        }
        // SAFETY: every external this module hands out for sending holds an Arc<SendCore>,
        // alive while the handle is (it is an argument of this call).
        let core = &*data.cast::<std::sync::Arc<SendCore>>();
        let mut units = 0usize;
        if sys::napi_get_value_string_utf16(env, argv[1], ptr::null_mut(), 0, &mut units)
            != sys::Status::napi_ok
        {
            return throw_type_error(env, "ricochet: sendBatch needs a string");
        }
        let result = BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            let need = units.saturating_mul(3).saturating_add(1);
            buf.clear();
            buf.reserve(need);
            let mut written = 0usize;
            let ok = sys::napi_get_value_string_utf8(
                env,
                argv[1],
                buf.as_mut_ptr().cast::<c_char>(),
                buf.capacity(),
                &mut written,
            ) == sys::Status::napi_ok;
            let out = ok.then(|| {
                // SAFETY: Node wrote `written` bytes (without the terminator) into the buffer.
                let bytes = std::slice::from_raw_parts(buf.as_ptr(), written.min(buf.capacity()));
                core.send(bytes)
            });
            if buf.capacity() > KEEP {
                *buf = Vec::new();
            }
            out
        });
        let buffered = match result {
            None => return throw_type_error(env, "ricochet: sendBatch could not read the batch"),
            Some(Either::A(buffered)) => buffered,
            Some(Either::B(res)) => {
                *lock(&core.failed) = Some(res);
                -1.0
            }
        };
        let mut out = ptr::null_mut();
        sys::napi_create_double(env, buffered, &mut out);
        out
    }
}
