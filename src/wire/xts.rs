//! XTS-AES-256 (IEEE 1619) over one data unit, with the AES calls pipelined.
//!
//! Same transform as `xts_mode::Xts128<Aes256>` (which the tests keep as the reference), but
//! up to eight blocks go through `aes`' `encrypt_blocks`/`decrypt_blocks` at once. AES-NI
//! rounds have a latency of several cycles and a throughput of one per cycle, so one block at
//! a time leaves the unit mostly idle: the block-by-block loop measured ~30 ns per block here,
//! which made encryption the largest cost of an encrypted message.
//!
//! Ricochet uses one fixed tweak per key (the iv of the key derivation), so the encrypted
//! tweak is computed once per key instead of once per message.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes256, Block};

/// Blocks handed to the cipher at once: the AES-NI and VAES backends work on 8 in parallel.
const LANES: usize = 8;

/// An XTS-AES-256 key whose tweak is fixed.
pub struct Xts {
    /// Data key schedule (key1).
    data: Aes256,
    /// `E_key2(tweak)`: the tweak of the first block.
    first_tweak: u128,
}

impl Xts {
    /// Builds the key schedules from the 64-byte XTS key (`key1 ‖ key2`) and the tweak.
    pub fn new(key: &[u8; 64], tweak: [u8; 16]) -> Xts {
        let mut k1 = [0u8; 32];
        let mut k2 = [0u8; 32];
        k1.copy_from_slice(&key[..32]);
        k2.copy_from_slice(&key[32..]);
        let mut first_tweak = Block::from(tweak);
        Aes256::new(&k2.into()).encrypt_block(&mut first_tweak);
        Xts {
            data: Aes256::new(&k1.into()),
            first_tweak: load(&first_tweak),
        }
    }

    /// Encrypts `unit` in place (ciphertext stealing for a partial last block).
    ///
    /// Callers check the length first; a unit shorter than one block is left unchanged.
    pub fn encrypt(&self, unit: &mut [u8]) {
        self.transform(unit, Direction::Encrypt);
    }

    /// Decrypts `unit` in place; the inverse of [`Xts::encrypt`].
    pub fn decrypt(&self, unit: &mut [u8]) {
        self.transform(unit, Direction::Decrypt);
    }

    fn transform(&self, unit: &mut [u8], dir: Direction) {
        if unit.len() < 16 {
            return;
        }
        let tail = unit.len() % 16;
        let full = unit.len() / 16;
        let (head, partial) = unit.split_at_mut(full * 16);
        let mut tweak = self.first_tweak;
        // The tweak of the last full block, for the stolen block of a decryption.
        let mut last_tweak = tweak;
        let mut done = 0;
        let mut lanes = [Block::default(); LANES];
        let mut tweaks = [0u128; LANES];
        for chunk in head.chunks_mut(16 * LANES) {
            let n = chunk.len() / 16;
            for ((block, lane), t) in chunk.chunks_exact(16).zip(&mut lanes).zip(&mut tweaks) {
                let next = mul_alpha(tweak);
                done += 1;
                last_tweak = tweak;
                // With stealing, the last full block goes through the pipeline too (IEEE 1619
                // §5.3.2 / §5.4.2): encryption seals it with its own tweak; decryption opens it
                // with the partial block's tweak, the one it was last sealed with. Only the
                // stolen block then waits for it: one AES call in sequence instead of two.
                *t = if done == full && tail != 0 && matches!(dir, Direction::Decrypt) {
                    next
                } else {
                    tweak
                };
                *lane = Block::from((load(block) ^ *t).to_le_bytes());
                tweak = next;
            }
            match dir {
                Direction::Encrypt => self.data.encrypt_blocks(&mut lanes[..n]),
                Direction::Decrypt => self.data.decrypt_blocks(&mut lanes[..n]),
            }
            for ((block, lane), t) in chunk.chunks_exact_mut(16).zip(&lanes).zip(&tweaks) {
                block.copy_from_slice(&(load(lane) ^ t).to_le_bytes());
            }
        }
        if tail != 0 {
            let second = match dir {
                Direction::Encrypt => tweak,
                Direction::Decrypt => last_tweak,
            };
            self.steal(&mut head[(full - 1) * 16..], partial, second, dir);
        }
    }

    /// The stolen block: `last` is the processed last full block, `partial` the partial block
    /// after it (1..15 bytes). The partial block borrows the rest of `last`, goes through the
    /// cipher with `tweak`, and takes `last`'s place; `partial` gets `last`'s first bytes.
    fn steal(&self, last: &mut [u8], partial: &mut [u8], tweak: u128, dir: Direction) {
        let tail = partial.len();
        let mut stolen = [0u8; 16];
        stolen.copy_from_slice(last);
        stolen[..tail].copy_from_slice(partial);
        let sealed = self.one(load(&stolen), tweak, dir);
        partial.copy_from_slice(&last[..tail]);
        last.copy_from_slice(&sealed);
    }

    /// One block through the cipher between two xors with `tweak`.
    fn one(&self, block: u128, tweak: u128, dir: Direction) -> [u8; 16] {
        let mut b = Block::from((block ^ tweak).to_le_bytes());
        match dir {
            Direction::Encrypt => self.data.encrypt_block(&mut b),
            Direction::Decrypt => self.data.decrypt_block(&mut b),
        }
        (load(&b) ^ tweak).to_le_bytes()
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

/// A 16-byte block as a little-endian number (the order IEEE 1619 multiplies tweaks in).
fn load(block: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&block[..16]);
    u128::from_le_bytes(b)
}

/// Multiplies the tweak by α in GF(2^128).
fn mul_alpha(t: u128) -> u128 {
    let carry = if t >> 127 != 0 { 0x87 } else { 0 };
    (t << 1) ^ carry
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::generic_array::GenericArray;
    use xts_mode::Xts128;

    /// Deterministic bytes without pulling a seeded RNG into the test (xorshift).
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn matches_the_xts_mode_crate_for_every_length_up_to_600_bytes_and_some_large_ones() {
        for (seed, len) in (16..600).chain([1023, 4096, 4097, 65_551]).enumerate() {
            let key: [u8; 64] = bytes(seed as u64 + 7, 64).try_into().expect("64 bytes");
            let tweak: [u8; 16] = bytes(seed as u64 + 99, 16).try_into().expect("16 bytes");
            let reference = Xts128::new(
                Aes256::new(GenericArray::from_slice(&key[..32])),
                Aes256::new(GenericArray::from_slice(&key[32..])),
            );
            let fast = Xts::new(&key, tweak);
            let plain = bytes(seed as u64 + 1234, len);

            let mut expected = plain.clone();
            reference.encrypt_sector(&mut expected, tweak);
            let mut sealed = plain.clone();
            fast.encrypt(&mut sealed);
            assert_eq!(sealed, expected, "encrypt, len {len}");

            fast.decrypt(&mut sealed);
            assert_eq!(sealed, plain, "decrypt, len {len}");
        }
    }

    #[test]
    fn a_unit_shorter_than_a_block_is_left_alone() {
        let fast = Xts::new(&[1u8; 64], [2u8; 16]);
        let mut short = *b"fifteen bytes!!";
        fast.encrypt(&mut short);
        assert_eq!(&short, b"fifteen bytes!!");
    }
}
