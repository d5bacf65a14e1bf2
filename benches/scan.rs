//! `cargo bench --bench scan`: ns per received frame (a W1 plaintext one and an encrypted one)
//! through serde_json's visitors (what `Frame::parse` used before), the validating scanner's
//! full pass, and a connection's remembered layout, in one run.

mod common;

use std::hint::black_box;

use ricochet::wire::scan::{frame, frame_with, Layout};
use serde_json::value::RawValue;

const ROUNDS: u32 = 300_000;

fn line(encrypted: bool) -> String {
    let body = if encrypted {
        format!("\"{}\"", "0123456789abcdef".repeat(31))
    } else {
        format!(
            r#"{{"seq":123456,"ts":1764085860123,"data":"{}"}}"#,
            "x".repeat(160)
        )
    };
    format!(
        r#"{{"headers":{{"id":"AbCdEfGhIjKlMnOpQrStUvWxYz012345","to":"receiver","type":"message","handle":"bench.msg","encrypted":{encrypted},"from":"sender","groups":["g"]}},"body":{body}}}"#
    )
}

fn main() {
    for encrypted in [false, true] {
        let text = line(encrypted);
        println!(
            "{} frame, {} bytes",
            if encrypted { "encrypted" } else { "plaintext" },
            text.len()
        );
        let serde = common::time("  serde_json (map of raw values)", ROUNDS, || {
            let map: indexmap::IndexMap<&str, &RawValue> =
                serde_json::from_str(black_box(&text)).unwrap_or_default();
            black_box(map);
        });
        let full = common::time("  scanner, full pass", ROUNDS, || {
            black_box(frame(black_box(&text)));
        });
        let mut layout = Layout::default();
        let reused = common::time("  scanner, remembered layout", ROUNDS, || {
            black_box(frame_with(black_box(&text), &mut layout));
        });
        println!(
            "  serde/full {:.2}x, serde/layout {:.2}x ({} reads through the layout)",
            serde / full,
            serde / reused,
            layout.reused()
        );
    }
}
