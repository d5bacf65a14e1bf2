//! XTS-AES-256 (IEEE 1619) over one data unit, with the AES calls pipelined.
//!
//! Same transform as `xts_mode::Xts128<Aes256>` (which the tests keep as the reference), but
//! up to sixteen blocks go through the cipher at once: four 512-bit registers where the CPU
//! has VAES (`super::xts_vaes`), else `aes`' `encrypt_blocks`/`decrypt_blocks`. AES-NI
//! rounds have a latency of several cycles and a throughput of one per cycle, so one block at
//! a time leaves the unit mostly idle: the block-by-block loop measured ~30 ns per block here,
//! which made encryption the largest cost of an encrypted message.
//!
//! Ricochet uses one fixed tweak per key (the iv of the key derivation), so the tweaks of a
//! unit's first blocks are computed once per key instead of once per message.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes256, Block};

#[cfg(target_arch = "x86_64")]
use super::xts_vaes;

/// Blocks handed to the `aes` crate at once: its AES-NI backend works on 8 in parallel.
const LANES: usize = 8;

/// Blocks per batch: what the VAES backend takes in one call (four 512-bit registers), and
/// two `aes` calls of [`LANES`] otherwise.
const BATCH: usize = 16;

/// Tweaks kept per key: the blocks of a 1 KiB unit and the one after it. The tweak is fixed
/// per key, so the tweak of block `j` is the same in every message; a longer unit computes
/// the rest as it goes.
const TABLE: usize = 65;

/// Which code runs the AES rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// VAES with AVX-512 where the CPU has it (x86-64), else [`Backend::Portable`].
    Best,
    /// The `aes` crate (AES-NI where the CPU has it, else its constant-time software AES).
    Portable,
}

/// An XTS-AES-256 key whose tweak is fixed.
pub struct Xts {
    /// Data key schedule (key1), for the portable batch and the stolen block.
    data: Aes256,
    /// The same key's schedules for the VAES batch, where the CPU has VAES.
    #[cfg(target_arch = "x86_64")]
    vaes: Option<Box<xts_vaes::Keys>>,
    /// `E_key2(tweak) * alpha^j` for block `j < TABLE`.
    tweaks: Box<[u128; TABLE]>,
}

impl Xts {
    /// Builds the key schedules from the 64-byte XTS key (`key1 ‖ key2`) and the tweak.
    pub fn new(key: &[u8; 64], tweak: [u8; 16]) -> Xts {
        Xts::with_backend(key, tweak, Backend::Best)
    }

    /// [`Xts::new`] with the AES code chosen (benchmarks and tests compare the two).
    pub fn with_backend(key: &[u8; 64], tweak: [u8; 16], backend: Backend) -> Xts {
        let mut k1 = [0u8; 32];
        let mut k2 = [0u8; 32];
        k1.copy_from_slice(&key[..32]);
        k2.copy_from_slice(&key[32..]);
        let mut first_tweak = Block::from(tweak);
        Aes256::new(&k2.into()).encrypt_block(&mut first_tweak);
        let mut tweaks = Box::new([0u128; TABLE]);
        let mut t = load(&first_tweak);
        for slot in tweaks.iter_mut() {
            *slot = t;
            t = mul_alpha(t);
        }
        #[cfg(target_arch = "x86_64")]
        let vaes = match backend {
            Backend::Best => xts_vaes::Keys::detect(&k1).map(Box::new),
            Backend::Portable => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = backend;
        Xts {
            data: Aes256::new(&k1.into()),
            #[cfg(target_arch = "x86_64")]
            vaes,
            tweaks,
        }
    }

    /// The backend in use: [`Backend::Best`] when the VAES batch runs.
    pub fn backend(&self) -> Backend {
        #[cfg(target_arch = "x86_64")]
        if self.vaes.is_some() {
            return Backend::Best;
        }
        Backend::Portable
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
        // With stealing, the last full block goes through the batch too (IEEE 1619 §5.3.2 /
        // §5.4.2): encryption seals it with its own tweak; decryption opens it with the
        // partial block's tweak, the one it was last sealed with. Only the stolen block then
        // waits for it: one AES call in sequence instead of two.
        let swap_last = tail != 0 && matches!(dir, Direction::Decrypt);
        // Tweak of the first block past the table, and on as the batches use them.
        let mut next = mul_alpha(self.tweaks[TABLE - 1]);
        // The tweak of the last full block; the partial block's is the next one.
        let mut last_tweak = 0;
        let mut own = [0u128; BATCH];
        for (b, chunk) in head.chunks_mut(16 * BATCH).enumerate() {
            let first = b * BATCH;
            let n = chunk.len() / 16;
            let has_last = first + n == full;
            let from_table = first + n <= TABLE && !(swap_last && has_last);
            if !from_table {
                for (j, t) in own[..n].iter_mut().enumerate() {
                    *t = if first + j < TABLE {
                        self.tweaks[first + j]
                    } else {
                        let t = next;
                        next = mul_alpha(next);
                        t
                    };
                }
            }
            if has_last {
                last_tweak = if from_table {
                    self.tweaks[full - 1]
                } else {
                    own[n - 1]
                };
                if swap_last {
                    own[n - 1] = mul_alpha(last_tweak);
                }
            }
            let tweaks = if from_table {
                &self.tweaks[first..first + n]
            } else {
                &own[..n]
            };
            let steal = (has_last && tail != 0).then(|| {
                let second = match dir {
                    Direction::Encrypt => mul_alpha(last_tweak),
                    Direction::Decrypt => last_tweak,
                };
                (&mut *partial, second)
            });
            self.batch(chunk, tweaks, dir, steal);
        }
    }

    /// XTS over whole blocks: `chunk` holds `tweaks.len()` blocks, at most [`BATCH`]; then,
    /// with `steal`, the stolen block made of the partial block after them and the last one.
    fn batch(
        &self,
        chunk: &mut [u8],
        tweaks: &[u128],
        dir: Direction,
        steal: Option<(&mut [u8], u128)>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(keys) = &self.vaes {
            keys.crypt(chunk, tweaks, matches!(dir, Direction::Decrypt), steal);
            return;
        }
        let mut lanes = [Block::default(); LANES];
        for (blocks, tw) in chunk.chunks_mut(16 * LANES).zip(tweaks.chunks(LANES)) {
            let n = blocks.len() / 16;
            for ((block, lane), t) in blocks.chunks_exact(16).zip(&mut lanes).zip(tw) {
                *lane = Block::from((load(block) ^ t).to_le_bytes());
            }
            match dir {
                Direction::Encrypt => self.data.encrypt_blocks(&mut lanes[..n]),
                Direction::Decrypt => self.data.decrypt_blocks(&mut lanes[..n]),
            }
            for ((block, lane), t) in blocks.chunks_exact_mut(16).zip(&lanes).zip(tw) {
                block.copy_from_slice(&(load(lane) ^ t).to_le_bytes());
            }
        }
        if let Some((partial, tweak)) = steal {
            let last = chunk.len() - 16;
            self.steal(&mut chunk[last..], partial, tweak, dir);
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
///
/// Without a branch on the tweak's top bit: the tweak derives from the key.
fn mul_alpha(t: u128) -> u128 {
    (t << 1) ^ ((t >> 127).wrapping_neg() & 0x87)
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

    /// Lengths around every boundary: blocks, lanes, batches, the tweak table, and long units.
    fn lengths() -> impl Iterator<Item = usize> {
        (16..600)
            .chain(1000..1100)
            .chain([2047, 2048, 2049, 4096, 4097, 65_551])
    }

    #[test]
    fn both_backends_match_the_xts_mode_crate_for_every_length_up_to_600_bytes_and_past_the_tweak_table(
    ) {
        for (seed, len) in lengths().enumerate() {
            let key: [u8; 64] = bytes(seed as u64 + 7, 64).try_into().expect("64 bytes");
            let tweak: [u8; 16] = bytes(seed as u64 + 99, 16).try_into().expect("16 bytes");
            let reference = Xts128::new(
                Aes256::new(GenericArray::from_slice(&key[..32])),
                Aes256::new(GenericArray::from_slice(&key[32..])),
            );
            let plain = bytes(seed as u64 + 1234, len);
            let mut expected = plain.clone();
            reference.encrypt_sector(&mut expected, tweak);
            for backend in [Backend::Best, Backend::Portable] {
                let fast = Xts::with_backend(&key, tweak, backend);
                let mut sealed = plain.clone();
                fast.encrypt(&mut sealed);
                assert_eq!(sealed, expected, "encrypt, len {len}, {backend:?}");

                fast.decrypt(&mut sealed);
                assert_eq!(sealed, plain, "decrypt, len {len}, {backend:?}");
            }
        }
    }

    #[test]
    fn the_vaes_backend_is_chosen_where_the_cpu_has_it() {
        let xts = Xts::new(&[3u8; 64], [4u8; 16]);
        #[cfg(target_arch = "x86_64")]
        {
            let has = ["aes", "vaes", "avx512f", "avx512bw", "avx512vl"];
            let all = is_x86_feature_detected!("aes")
                && is_x86_feature_detected!("vaes")
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl");
            let want = if all {
                Backend::Best
            } else {
                Backend::Portable
            };
            assert_eq!(xts.backend(), want, "features {has:?} detected: {all}");
        }
        assert_eq!(
            Xts::with_backend(&[3u8; 64], [4u8; 16], Backend::Portable).backend(),
            Backend::Portable
        );
    }

    #[test]
    fn a_unit_shorter_than_a_block_is_left_alone() {
        let fast = Xts::new(&[1u8; 64], [2u8; 16]);
        let mut short = *b"fifteen bytes!!";
        fast.encrypt(&mut short);
        assert_eq!(&short, b"fifteen bytes!!");
    }
}
