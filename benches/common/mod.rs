//! What the hand-rolled benches share: warm up, then time `rounds` calls.

use std::time::Instant;

/// Runs `f` `rounds / 10` times to warm up, then `rounds` times; prints and returns ns per call.
pub fn time(label: &str, rounds: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..rounds / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(rounds);
    println!("{label:<34} {ns:>8.1} ns");
    ns
}
