//! `cargo bench --bench xts`: ns per encrypt/decrypt of a W1-sized plaintext (245 bytes) with
//! the VAES batch (where the CPU has it), the portable pipelined batch (`aes` crate, eight
//! blocks per call) and the `xts-mode` crate's block-by-block loop, in one run; then the hex
//! decode of such a body's ciphertext (490 digits), fused check and decode against
//! `faster_hex`'s check-then-decode.

mod common;

use std::hint::black_box;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::KeyInit;
use aes::Aes256;
use ricochet::wire::xts::{Backend, Xts};
use xts_mode::Xts128;

const ROUNDS: u32 = 200_000;

fn main() {
    let key = [7u8; 64];
    let tweak = [9u8; 16];
    let fast = Xts::new(&key, tweak);
    let portable = Xts::with_backend(&key, tweak, Backend::Portable);
    println!("backend of Xts::new: {:?}", fast.backend());
    let reference = Xts128::new(
        Aes256::new(GenericArray::from_slice(&key[..32])),
        Aes256::new(GenericArray::from_slice(&key[32..])),
    );
    for len in [245usize, 4096] {
        let mut unit = vec![0x5au8; len];
        println!("{len}-byte data unit");
        let f = common::time("  best encrypt", ROUNDS, || {
            fast.encrypt(black_box(&mut unit))
        });
        let p = common::time("  portable encrypt", ROUNDS, || {
            portable.encrypt(black_box(&mut unit))
        });
        let r = common::time("  xts-mode encrypt", ROUNDS, || {
            reference.encrypt_sector(black_box(&mut unit), tweak)
        });
        let fd = common::time("  best decrypt", ROUNDS, || {
            fast.decrypt(black_box(&mut unit))
        });
        let pd = common::time("  portable decrypt", ROUNDS, || {
            portable.decrypt(black_box(&mut unit))
        });
        let rd = common::time("  xts-mode decrypt", ROUNDS, || {
            reference.decrypt_sector(black_box(&mut unit), tweak)
        });
        println!(
            "  best vs portable: encrypt {:.2}x, decrypt {:.2}x",
            p / f,
            pd / fd
        );
        println!(
            "  best vs xts-mode: encrypt {:.2}x, decrypt {:.2}x",
            r / f,
            rd / fd
        );
    }
    let digits = faster_hex::hex_string(&[0xa7u8; 245]).into_bytes();
    let mut out = [0u8; 245];
    println!("490-digit hex decode");
    let f = common::time("  fused", ROUNDS, || {
        assert!(ricochet::wire::hex::decode(black_box(&digits), &mut out))
    });
    let r = common::time("  faster_hex", ROUNDS, || {
        assert!(faster_hex::hex_decode(black_box(&digits), &mut out).is_ok())
    });
    println!("  fused vs faster_hex: {:.2}x", r / f);
}
