//! Entry points for the `cargo fuzz` targets under `fuzz/`, also replayed over the committed
//! corpus by `tests/fuzz_corpus.rs`, so CI checks every saved input without fuzzing. Each one
//! must return normally for any input: a panic is a bug.

use crate::server::auth_fuzz;
use crate::wire::crypto::{self, Cipher};
use crate::wire::frame::LineCodec;
use crate::wire::json;
use crate::wire::message::{parse_line, Envelope};
use crate::wire::seal::{Encryption, Seal};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// The line decoder fed `data` in chunks whose sizes come from the data itself.
pub fn frame_decoder(data: &[u8]) {
    let (sizes, stream) = data.split_at(data.len().min(8));
    let mut codec = LineCodec::new(64);
    let mut buf = BytesMut::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(7)) % 32 + 1)
            .min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        i += 1;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(line)) => assert!(line.len() <= 64 && !line.contains(&b'\n')),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    while let Ok(Some(_)) = codec.decode_eof(&mut buf) {}
}

/// Decryption of arbitrary text with both ciphers, and every receiver split.
pub fn decrypt(data: &[u8]) {
    let xts = Cipher::new(b"fuzz-key");
    if let Ok(plain) = xts.decrypt_hex(data) {
        let _ = crypto::receiver_piece(&plain);
        let _ = crypto::receiver_piece_first(&plain);
        let _ = crypto::split_untrimmed(&plain);
    }
    let _ = Seal::new(Encryption::Gcm, b"fuzz-key").decrypt_piece(data);
    let escaped = crypto::escape_delimiter(data);
    assert!(!escaped
        .windows(crypto::DELIM.len())
        .any(|w| w == crypto::DELIM));
    if let Ok(hex) = xts.encrypt_hex(data, b"") {
        assert_eq!(
            xts.decrypt_hex(hex.as_bytes()).map(|p| p.len()).ok(),
            Some(hex.len() / 2)
        );
    }
}

/// The server's auth checks on an arbitrary auth frame (a fixed callback result).
pub fn auth_check(data: &[u8]) {
    auth_fuzz(data);
}

/// The server's handling of one frame from an authenticated client, without sockets: parse,
/// header reads, decryption of the body, and encoding of the forwarded frame. Only what the
/// line decoder can hand over reaches the router: the input up to its first LF.
pub fn server_frame(data: &[u8]) {
    let data = data.split(|b| *b == b'\n').next().unwrap_or_default();
    match Envelope::parse(data) {
        Ok(mut env) => {
            let _ = env.to();
            let _ = env.header("timeout").map(|t| t.get().parse::<f64>());
            env.set_header("from", "\"fuzz\"");
            env.set_header("groups", "[\"g\"]");
            let plain = if env.encrypted() {
                env.body()
                    .and_then(|b| json::as_str(b.get()))
                    .and_then(|hex| {
                        Cipher::new(b"k")
                            .decrypt_piece(hex.as_bytes())
                            .ok()
                            .flatten()
                    })
                    .filter(|p| json::is_truthy_json(p))
            } else {
                None
            };
            let out = env.encode(plain.as_deref().map(str::as_bytes));
            assert!(out.ends_with(b"\n") && !out[..out.len() - 1].contains(&b'\n'));
        }
        Err(_) => {
            let _ = parse_line(data);
        }
    }
}
