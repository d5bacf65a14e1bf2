//! Hex decoding that checks and decodes in one pass.
//!
//! `faster_hex::hex_decode` checks the whole input (16 bytes at a time) and then decodes it
//! (32 at a time): two passes over every encrypted body, ~490 hex digits, on the server and
//! on the receiving client. Here each 64-byte block is classified, checked and decoded in
//! AVX2 registers at once; CPUs without AVX2 keep `faster_hex`.

/// Decodes `src` (even length, `dst.len() == src.len() / 2`) into `dst`. Returns `false` if
/// `src` holds a byte that is not an ASCII hex digit (either case); `dst` is then unspecified.
pub fn decode(src: &[u8], dst: &mut [u8]) -> bool {
    assert!(src.len().is_multiple_of(2) && dst.len() == src.len() / 2);
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected; the lengths were checked above.
        return unsafe { avx2::decode(src, dst) };
    }
    faster_hex::hex_decode(src, dst).is_ok()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Input bytes per step: two registers of digits, one of output after packing.
    const STEP: usize = 64;

    /// See [`super::decode`]. Inputs of 64 bytes or more run in 64-byte steps, the last one
    /// overlapping the one before it (it writes the same bytes again); shorter ones are
    /// padded with `'0'` in a stack buffer.
    #[target_feature(enable = "avx2")]
    pub unsafe fn decode(src: &[u8], dst: &mut [u8]) -> bool {
        let len = src.len();
        if len < STEP {
            let mut pad = [b'0'; STEP];
            pad[..len].copy_from_slice(src);
            let mut out = [0u8; STEP / 2];
            let ok = step(pad.as_ptr(), out.as_mut_ptr());
            dst.copy_from_slice(&out[..len / 2]);
            return ok;
        }
        let mut at = 0;
        loop {
            // Even offsets only, so a digit pair is never split.
            let start = at.min(len - STEP);
            if !step(src.as_ptr().add(start), dst.as_mut_ptr().add(start / 2)) {
                return false;
            }
            if start + STEP == len {
                return true;
            }
            at += STEP;
        }
    }

    /// Checks and decodes the 64 digits at `src` into the 32 bytes at `dst`.
    #[target_feature(enable = "avx2")]
    unsafe fn step(src: *const u8, dst: *mut u8) -> bool {
        let (a, ok_a) = nibbles(_mm256_loadu_si256(src.cast()));
        let (b, ok_b) = nibbles(_mm256_loadu_si256(src.add(32).cast()));
        // Each 16-bit lane: first digit * 16 + second digit (maddubs: u8 x i8 pairs summed).
        let weights = _mm256_set1_epi16(0x0110);
        let wa = _mm256_maddubs_epi16(a, weights);
        let wb = _mm256_maddubs_epi16(b, weights);
        // packus works per 128-bit lane: quads come out as a.lo, b.lo, a.hi, b.hi.
        let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi16(wa, wb));
        _mm256_storeu_si256(dst.cast(), packed);
        _mm256_movemask_epi8(_mm256_and_si256(ok_a, ok_b)) == -1
    }

    /// The value of every digit of `c`, and a mask of the bytes that are hex digits.
    #[target_feature(enable = "avx2")]
    unsafe fn nibbles(c: __m256i) -> (__m256i, __m256i) {
        let digit = _mm256_sub_epi8(c, _mm256_set1_epi8(b'0' as i8));
        let is_digit = _mm256_cmpeq_epi8(_mm256_min_epu8(digit, _mm256_set1_epi8(9)), digit);
        // `| 0x20` folds 'A'..='F' onto 'a'..='f' and nothing else onto them.
        let lower = _mm256_or_si256(c, _mm256_set1_epi8(0x20));
        let alpha = _mm256_sub_epi8(lower, _mm256_set1_epi8(b'a' as i8));
        let is_alpha = _mm256_cmpeq_epi8(_mm256_min_epu8(alpha, _mm256_set1_epi8(5)), alpha);
        let value = _mm256_blendv_epi8(
            _mm256_add_epi8(alpha, _mm256_set1_epi8(10)),
            digit,
            is_digit,
        );
        (value, _mm256_or_si256(is_digit, is_alpha))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(src: &[u8]) -> Option<Vec<u8>> {
        hex::decode(src).ok()
    }

    #[test]
    fn every_length_up_to_300_digits_decodes_like_the_hex_crate_in_both_cases() {
        for len in (0..300).step_by(2) {
            let bytes: Vec<u8> = (0..len / 2).map(|i| (i * 37 + len) as u8).collect();
            for text in [hex::encode(&bytes), hex::encode_upper(&bytes)] {
                let mut out = vec![0u8; len / 2];
                assert!(decode(text.as_bytes(), &mut out), "len {len}");
                assert_eq!(out, bytes, "len {len}");
            }
        }
    }

    #[test]
    fn every_byte_value_at_every_position_is_accepted_exactly_when_it_is_a_hex_digit() {
        for len in [2usize, 30, 62, 64, 66, 126, 128, 130, 490] {
            let base = "0123456789abcdefABCDEF".repeat(len).into_bytes()[..len].to_vec();
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut text = base.clone();
                    text[pos] = c;
                    let mut out = vec![0u8; len / 2];
                    let ok = decode(&text, &mut out);
                    let want = reference(&text);
                    assert_eq!(ok, want.is_some(), "len {len}, byte {c:#x} at {pos}");
                    if let Some(want) = want {
                        assert_eq!(out, want, "len {len}, byte {c:#x} at {pos}");
                    }
                }
            }
        }
    }
}
