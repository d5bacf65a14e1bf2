//! The XTS batch on VAES with AVX-512: four AES blocks per instruction.
//!
//! `aes` 0.8 runs AES-NI on eight 128-bit blocks at a time; `aes` 0.9 has a VAES backend but
//! engages it only for 64 blocks at once (1 KiB), and a ricochet body is ~16 blocks, which it
//! would then take one block at a time. Here a batch of up to sixteen blocks is four 512-bit
//! registers, so the fourteen rounds of every block of a typical body run side by side.
//!
//! Only [`super::xts::Xts`] calls this, after [`Keys::detect`] has checked the CPU; the
//! results are compared with the `xts-mode` crate for every length in the tests there.

use std::arch::x86_64::*;

/// Rounds of AES-256 plus one: the number of round keys.
const ROUND_KEYS: usize = 15;

/// Blocks in one call of [`Keys::crypt`]: four 512-bit registers.
pub const BATCH: usize = 16;

/// The data key's schedules, for encryption and for the equivalent inverse cipher.
pub struct Keys {
    enc: [[u8; 16]; ROUND_KEYS],
    dec: [[u8; 16]; ROUND_KEYS],
}

impl Keys {
    /// The schedules of `key`, if this CPU has VAES, AVX-512 (F, and BW with VL for masked
    /// loads and stores) and AES-NI (the key expansion and the stolen block); `None`
    /// otherwise.
    pub fn detect(key: &[u8; 32]) -> Option<Keys> {
        let ok = is_x86_feature_detected!("aes")
            && is_x86_feature_detected!("vaes")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl");
        // SAFETY: the features the function is compiled for were just detected.
        ok.then(|| unsafe { expand(key) })
    }

    /// XORs each of the `n = data.len() / 16` blocks of `data` with its tweak, encrypts or
    /// decrypts it, and XORs it with the tweak again. `n <= BATCH` and `tweaks.len() >= n`.
    ///
    /// With `steal = (partial, tweak)` (1..=15 bytes, `n >= 1`), ciphertext stealing
    /// follows: the partial block borrows the rest of the last processed block, goes through
    /// the cipher with `tweak` and takes that block's place, and `partial` gets the block's
    /// first bytes. The last block is taken from the register it was computed in, so the
    /// stolen block does not wait for a store to be read back.
    pub fn crypt(
        &self,
        data: &mut [u8],
        tweaks: &[u128],
        decrypt: bool,
        steal: Option<(&mut [u8], u128)>,
    ) {
        let n = data.len() / 16;
        assert!(n <= BATCH && tweaks.len() >= n && data.len() == n * 16);
        if let Some((partial, _)) = &steal {
            assert!(n >= 1 && (1..16).contains(&partial.len()));
        }
        let keys = if decrypt { &self.dec } else { &self.enc };
        // SAFETY: a `Keys` exists only where `detect` found the features; the lengths were
        // checked above, and the masked loads and stores touch only the first `n * 16` bytes
        // of `data` and the `partial.len()` bytes of `partial`.
        unsafe {
            match n.div_ceil(4) {
                0 => {}
                1 => batch::<1>(keys, data, tweaks, decrypt, steal),
                2 => batch::<2>(keys, data, tweaks, decrypt, steal),
                3 => batch::<3>(keys, data, tweaks, decrypt, steal),
                _ => batch::<4>(keys, data, tweaks, decrypt, steal),
            }
        }
    }
}

/// `Z` registers of four blocks; the last one masked to the bytes that exist.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,aes")]
unsafe fn batch<const Z: usize>(
    keys: &[[u8; 16]; ROUND_KEYS],
    data: &mut [u8],
    tweaks: &[u128],
    decrypt: bool,
    steal: Option<(&mut [u8], u128)>,
) {
    let bytes = data.len();
    let d = data.as_mut_ptr();
    let t = tweaks.as_ptr().cast::<u8>();
    let mut masks = [u64::MAX; Z];
    let rest = bytes - (Z - 1) * 64;
    if rest < 64 {
        masks[Z - 1] = (1u64 << rest) - 1;
    }
    let mut tw = [_mm512_setzero_si512(); Z];
    let mut x = [_mm512_setzero_si512(); Z];
    let rk = |i: usize| _mm512_broadcast_i32x4(_mm_loadu_si128(keys[i].as_ptr().cast()));
    for z in 0..Z {
        // u128 tweaks are little-endian in memory: the byte order of the block they mask.
        tw[z] = _mm512_maskz_loadu_epi8(masks[z], t.add(64 * z).cast());
        let block = _mm512_maskz_loadu_epi8(masks[z], d.add(64 * z).cast());
        x[z] = _mm512_xor_si512(_mm512_xor_si512(block, tw[z]), rk(0));
    }
    for r in 1..ROUND_KEYS - 1 {
        let k = rk(r);
        for v in x.iter_mut() {
            *v = if decrypt {
                _mm512_aesdec_epi128(*v, k)
            } else {
                _mm512_aesenc_epi128(*v, k)
            };
        }
    }
    let k = rk(ROUND_KEYS - 1);
    for z in 0..Z {
        let v = if decrypt {
            _mm512_aesdeclast_epi128(x[z], k)
        } else {
            _mm512_aesenclast_epi128(x[z], k)
        };
        x[z] = _mm512_xor_si512(v, tw[z]);
        _mm512_mask_storeu_epi8(d.add(64 * z).cast(), masks[z], x[z]);
    }
    let Some((partial, tweak)) = steal else {
        return;
    };
    let last = bytes / 16 - 1;
    let lane = (last % 4) as i64;
    let processed = _mm512_castsi512_si128(_mm512_permutexvar_epi64(
        _mm512_set_epi64(0, 0, 0, 0, 0, 0, 2 * lane + 1, 2 * lane),
        x[last / 4],
    ));
    let m: __mmask16 = (1u16 << partial.len()) - 1;
    let p = partial.as_mut_ptr();
    let stolen = _mm_mask_blend_epi8(m, processed, _mm_maskz_loadu_epi8(m, p.cast()));
    let t = _mm_loadu_si128((&tweak as *const u128).cast());
    let key = |i: usize| _mm_loadu_si128(keys[i].as_ptr().cast());
    let mut b = _mm_xor_si128(_mm_xor_si128(stolen, t), key(0));
    for r in 1..ROUND_KEYS - 1 {
        b = if decrypt {
            _mm_aesdec_si128(b, key(r))
        } else {
            _mm_aesenc_si128(b, key(r))
        };
    }
    b = if decrypt {
        _mm_aesdeclast_si128(b, key(ROUND_KEYS - 1))
    } else {
        _mm_aesenclast_si128(b, key(ROUND_KEYS - 1))
    };
    _mm_storeu_si128(d.add(16 * last).cast(), _mm_xor_si128(b, t));
    _mm_mask_storeu_epi8(p.cast(), m, processed);
}

/// The AES-256 key expansion (FIPS 197 §5.2) with `aeskeygenassist`, and the decryption
/// schedule of the equivalent inverse cipher (§5.3.5): the keys reversed, the inner ones
/// through InvMixColumns (`aesimc`).
#[target_feature(enable = "aes")]
unsafe fn expand(key: &[u8; 32]) -> Keys {
    let mut ks = [_mm_setzero_si128(); ROUND_KEYS];
    let mut a = _mm_loadu_si128(key.as_ptr().cast());
    let mut b = _mm_loadu_si128(key.as_ptr().add(16).cast());
    ks[0] = a;
    ks[1] = b;
    // Words 8i..8i+3 from the round constant, then 8i+4..8i+7 without one (FIPS 197 §5.2:
    // SubWord alone when i mod Nk = 4); the last round has only the first half.
    macro_rules! round {
        ($i:expr, $rcon:expr) => {
            a = mix(
                a,
                _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(b)),
            );
            ks[$i] = a;
        };
        ($i:expr, $rcon:expr, both) => {
            round!($i, $rcon);
            b = mix(
                b,
                _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(a)),
            );
            ks[$i + 1] = b;
        };
    }
    round!(2, 0x01, both);
    round!(4, 0x02, both);
    round!(6, 0x04, both);
    round!(8, 0x08, both);
    round!(10, 0x10, both);
    round!(12, 0x20, both);
    round!(14, 0x40);
    let mut keys = Keys {
        enc: [[0; 16]; ROUND_KEYS],
        dec: [[0; 16]; ROUND_KEYS],
    };
    for (i, k) in ks.iter().enumerate() {
        let inv = if i == 0 || i == ROUND_KEYS - 1 {
            *k
        } else {
            _mm_aesimc_si128(*k)
        };
        _mm_storeu_si128(keys.enc[i].as_mut_ptr().cast(), *k);
        _mm_storeu_si128(keys.dec[ROUND_KEYS - 1 - i].as_mut_ptr().cast(), inv);
    }
    keys
}

/// One word step of the expansion: `w ^= w << 32; w ^= w << 64` (each word the XOR of those
/// before it), then XOR the broadcast output of `aeskeygenassist`.
#[target_feature(enable = "aes")]
unsafe fn mix(w: __m128i, assist: __m128i) -> __m128i {
    let mut w = w;
    w = _mm_xor_si128(w, _mm_slli_si128::<4>(w));
    w = _mm_xor_si128(w, _mm_slli_si128::<8>(w));
    _mm_xor_si128(w, assist)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    use aes::{Aes256, Block};

    #[test]
    fn single_blocks_match_the_aes_crate_in_both_directions() {
        let Some(_) = Keys::detect(&[0; 32]) else {
            eprintln!("this CPU has no VAES/AVX-512: the portable path is tested instead");
            return;
        };
        for seed in 0u8..32 {
            let key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ seed);
            let keys = Keys::detect(&key).expect("detected above");
            let reference = Aes256::new(&key.into());
            for n in 1..=BATCH {
                let plain: Vec<u8> = (0..n * 16)
                    .map(|i| (i as u8) ^ seed.rotate_left(3))
                    .collect();
                let mut ours = plain.clone();
                keys.crypt(&mut ours, &[0u128; BATCH], false, None);
                for (got, want) in ours.chunks(16).zip(plain.chunks(16)) {
                    let mut b = Block::clone_from_slice(want);
                    reference.encrypt_block(&mut b);
                    assert_eq!(got, b.as_slice(), "encrypt, key {seed}, {n} blocks");
                }
                let mut back = ours.clone();
                keys.crypt(&mut back, &[0u128; BATCH], true, None);
                assert_eq!(back, plain, "decrypt, key {seed}, {n} blocks");
                let mut b = Block::clone_from_slice(&ours[..16]);
                reference.decrypt_block(&mut b);
                assert_eq!(b.as_slice(), &plain[..16]);
            }
        }
    }
}
