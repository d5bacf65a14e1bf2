//! Replays every input saved under `fuzz/corpus/<target>/` (and `fuzz/artifacts/`) through the
//! fuzz entry points, so CI re-checks what fuzzing found without running a fuzzer.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [
        root.join("corpus").join(target),
        root.join("artifacts").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                run(&data);
                n += 1;
            }
        }
    }
    n
}

#[test]
fn frame_decoder_corpus_replays_without_panics() {
    assert!(replay("frame_decoder", ricochet::fuzzing::frame_decoder) > 0);
}

#[test]
fn decrypt_corpus_replays_without_panics() {
    assert!(replay("decrypt", ricochet::fuzzing::decrypt) > 0);
}

#[test]
fn auth_check_corpus_replays_without_panics() {
    assert!(replay("auth_check", ricochet::fuzzing::auth_check) > 0);
}

#[test]
fn server_frame_corpus_replays_without_panics() {
    assert!(replay("server_frame", ricochet::fuzzing::server_frame) > 0);
}
