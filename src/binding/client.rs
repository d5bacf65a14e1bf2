//! `NativeClient`, the native half of `lib/client.js`.

use super::send::{Raw, SendCore};
use super::sink::JsSink;
use crate::client::{Client, ClientOptions};
use crate::net::lock;
use crate::server::{Event, EventSink};
use crate::wire::seal::Encryption;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;
use std::time::Duration;

/// Connection options, validated by `lib/client-options.js`.
#[napi(object)]
pub struct NativeClientOptions {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u32,
    /// Local address to bind.
    pub local_address: Option<String>,
    /// `publicKey` as JSON.
    pub public_key_json: String,
    /// Encryption password.
    pub private_key: String,
    /// authKey.
    pub auth_key: String,
    /// First reconnect delay in ms.
    pub reconnect: f64,
    /// Longest reconnect delay in ms.
    pub reconnect_max: f64,
    /// Longest accepted line.
    pub max_message_size: f64,
    /// Outbound buffer bound in bytes.
    pub max_buffer: f64,
    /// Outbound high-water mark in bytes.
    pub high_water: f64,
    /// `timeouts.idle` in ms; 0 disables.
    pub idle_timeout: f64,
    /// `keepAlive` in ms; 0 disables.
    pub keepalive: f64,
    /// `encryption`: `aes-256-xts` or `aes-256-gcm`.
    pub encryption: String,
}

/// A record of a batch that was not sent.
#[napi(object)]
pub struct FailedSend {
    /// Its position in the batch.
    pub index: u32,
    /// The `ricochet.*` code.
    pub code: String,
}

/// What `takeFailed()` reports after a `send` that returned -1.
#[napi(object)]
pub struct SendBatchResult {
    /// Bytes waiting for the socket after the batch.
    pub buffered: f64,
    /// Records that were not sent.
    pub failed: Vec<FailedSend>,
}

/// The native client behind `lib/client.js`.
#[napi]
pub struct NativeClient {
    core: Arc<SendCore>,
    sink: EventSink,
    #[cfg(unix)]
    poller: Option<Arc<super::poll::JsPoller>>,
}

impl Default for NativeClient {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
impl NativeClient {
    /// A client that is not connected.
    #[napi(constructor)]
    pub fn new() -> Self {
        let (sink, _rx) = EventSink::channel();
        NativeClient {
            core: Arc::new(SendCore::default()),
            sink,
            #[cfg(unix)]
            poller: None,
        }
    }

    /// Starts connecting; events go to `on_events` until `close()`.
    #[napi]
    pub fn connect(
        &mut self,
        opts: NativeClientOptions,
        on_events: Function<String, ()>,
    ) -> Result<()> {
        let js = Arc::new(JsSink::default());
        js.start(on_events)?;
        let sink = js.sink();
        let options = ClientOptions {
            host: opts.host,
            port: opts.port as u16,
            local_address: opts.local_address,
            public_key_json: opts.public_key_json,
            private_key: opts.private_key,
            auth_key: opts.auth_key,
            reconnect: Duration::from_millis(opts.reconnect.max(1.0) as u64),
            reconnect_cap: Duration::from_millis(opts.reconnect_max.max(1.0) as u64),
            max_message_size: opts.max_message_size.max(64.0) as usize,
            max_buffer: opts.max_buffer.max(1.0) as usize,
            high_water: opts.high_water.max(1.0) as usize,
            idle_timeout: (opts.idle_timeout > 0.0)
                .then(|| Duration::from_millis(opts.idle_timeout as u64)),
            keepalive: (opts.keepalive > 0.0).then(|| Duration::from_millis(opts.keepalive as u64)),
            encryption: Encryption::parse(&opts.encryption).unwrap_or_default(),
            header_templates: true,
        };
        #[cfg(unix)]
        let handoff = {
            self.poller = super::poll::JsPoller::new(js.clone());
            self.poller
                .clone()
                .map(|p| p as Arc<dyn crate::client::ReadHandoff>)
        };
        #[cfg(not(unix))]
        let handoff = None;
        let s = sink.clone();
        let client = napi::bindgen_prelude::within_runtime_if_available(move || {
            Client::start_with(options, s, handoff)
        });
        *lock(&self.core.client) = Some(client);
        self.sink = sink;
        Ok(())
    }

    /// This client's `send(batch)` function (see `binding::send`): bytes buffered after the
    /// batch, or -1 when some record failed (then `takeFailed()` says which).
    #[napi(ts_return_type = "(batch: string) => number")]
    pub fn send_function(&self, env: Env) -> Result<Raw> {
        // SAFETY: a synchronous method: its env, on the JS thread.
        unsafe { super::send::function(env.raw(), self.core.clone()) }
    }

    /// The failures of the last `send` call that returned -1.
    #[napi]
    pub fn take_failed(&self) -> Option<SendBatchResult> {
        lock(&self.core.failed).take()
    }

    /// How many frames this client read and routed on the JS thread (0 when that reader is
    /// off); for diagnostics and tests.
    #[napi]
    pub fn js_thread_frames(&self) -> f64 {
        #[cfg(unix)]
        if let Some(p) = &self.poller {
            return p.frames() as f64;
        }
        0.0
    }

    /// Bytes waiting to be written.
    #[napi]
    pub fn buffered(&self) -> f64 {
        lock(&self.core.client)
            .as_ref()
            .map_or(0.0, |c| c.buffered() as f64)
    }

    /// Stops reconnecting and closes; `_closed` is the last event.
    #[napi]
    pub async fn close(&self) -> Result<()> {
        // Poison-proof: a panic caught in `send` must not keep close() from stopping the client.
        let client = lock(&self.core.client).take();
        if let Some(c) = client {
            c.close().await;
        }
        self.sink.send(Event {
            name: "_closed",
            payload: "null".into(),
        });
        Ok(())
    }
}
