//! `cargo bench --bench xts`: ns per encrypt/decrypt of a W1-sized plaintext (245 bytes) with
//! the pipelined XTS next to the `xts-mode` crate's block-by-block loop, in one run.

mod common;

use std::hint::black_box;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::KeyInit;
use aes::Aes256;
use ricochet::wire::xts::Xts;
use xts_mode::Xts128;

const ROUNDS: u32 = 200_000;

fn main() {
    let key = [7u8; 64];
    let tweak = [9u8; 16];
    let fast = Xts::new(&key, tweak);
    let reference = Xts128::new(
        Aes256::new(GenericArray::from_slice(&key[..32])),
        Aes256::new(GenericArray::from_slice(&key[32..])),
    );
    for len in [245usize, 4096] {
        let mut unit = vec![0x5au8; len];
        println!("{len}-byte data unit");
        let f = common::time("  pipelined encrypt", ROUNDS, || {
            fast.encrypt(black_box(&mut unit))
        });
        let r = common::time("  xts-mode encrypt", ROUNDS, || {
            reference.encrypt_sector(black_box(&mut unit), tweak)
        });
        let fd = common::time("  pipelined decrypt", ROUNDS, || {
            fast.decrypt(black_box(&mut unit))
        });
        let rd = common::time("  xts-mode decrypt", ROUNDS, || {
            reference.decrypt_sector(black_box(&mut unit), tweak)
        });
        println!("  speed-up: encrypt {:.2}x, decrypt {:.2}x", r / f, rd / fd);
    }
}
