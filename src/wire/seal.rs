//! The payload cipher a deployment chose: `aes-256-xts`, byte-compatible with ricochet.js (the
//! default), or `aes-256-gcm` for deployments that control both ends (authenticated, a random
//! nonce per message, key derived with HKDF-SHA256 from the private key).
//!
//! Both keep the ricochet plaintext layout (data ‖ DELIM ‖ pad) so everything above this layer
//! (auth checks, the receiver split, delimiter escaping) is shared. GCM's wire form is the hex of
//! nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes).

use super::crypto::{
    receiver_piece_in, receiver_piece_owned, Cipher, CryptoError, MAX_PLAINTEXT, PAD16,
};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use std::borrow::Cow;

const NONCE: usize = 12;
const TAG: usize = 16;
const HKDF_SALT: &[u8] = b"ricochet aes-256-gcm v1";
const HKDF_INFO: &[u8] = b"ricochet body key";

/// Which cipher encrypts bodies and auth fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// `aes-256-xts`: wire-compatible with ricochet.js 0.3.x.
    #[default]
    Xts,
    /// `aes-256-gcm`: authenticated; both ends must use it.
    Gcm,
}

impl Encryption {
    /// Parses the `encryption` option.
    pub fn parse(name: &str) -> Option<Encryption> {
        match name {
            "aes-256-xts" => Some(Encryption::Xts),
            "aes-256-gcm" => Some(Encryption::Gcm),
            _ => None,
        }
    }
}

/// A password's cipher of the chosen kind.
#[derive(Clone)]
pub enum Seal {
    /// AES-256-XTS, as `crypto.createCipher('aes-256-xts', password)`.
    Xts(Cipher),
    /// AES-256-GCM with an HKDF-SHA256 key.
    Gcm(Box<Aes256Gcm>),
}

impl Seal {
    /// Derives the cipher for `password`.
    pub fn new(kind: Encryption, password: &[u8]) -> Seal {
        match kind {
            Encryption::Xts => Seal::Xts(Cipher::new(password)),
            Encryption::Gcm => {
                let mut key = [0u8; 32];
                // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
                let _ = Hkdf::<Sha256>::new(Some(HKDF_SALT), password).expand(HKDF_INFO, &mut key);
                Seal::Gcm(Box::new(Aes256Gcm::new(&key.into())))
            }
        }
    }

    /// Encrypts data ‖ DELIM ‖ (pad or PAD16) and appends lowercase hex to `out`.
    pub fn encrypt_hex_into(
        &self,
        data: &[u8],
        pad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        match self {
            Seal::Xts(c) => c.encrypt_hex_into(data, pad, out),
            Seal::Gcm(g) => {
                let pad = if pad.is_empty() { PAD16 } else { pad };
                let mut plain =
                    Vec::with_capacity(data.len() + super::crypto::DELIM.len() + pad.len());
                plain.extend_from_slice(data);
                plain.extend_from_slice(super::crypto::DELIM);
                plain.extend_from_slice(pad);
                if plain.len() > MAX_PLAINTEXT {
                    return Err(CryptoError::TooLong);
                }
                let nonce: [u8; NONCE] = rand::random();
                let sealed = g
                    .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
                    .map_err(|_| CryptoError::TooLong)?;
                out.reserve(2 * (NONCE + sealed.len()));
                for b in nonce.iter().chain(sealed.iter()) {
                    out.extend_from_slice(&hex_pair(*b));
                }
                Ok(())
            }
        }
    }

    /// Like [`Seal::encrypt_hex_into`], returning a String.
    pub fn encrypt_hex(&self, data: &[u8], pad: &[u8]) -> Result<String, CryptoError> {
        let mut out = Vec::new();
        self.encrypt_hex_into(data, pad, &mut out)?;
        String::from_utf8(out).map_err(|_| CryptoError::OddHex)
    }

    /// Decrypts to the raw plaintext; a tampered or foreign GCM body is [`CryptoError::Forged`].
    pub fn decrypt_hex(&self, hex: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self {
            Seal::Xts(c) => c.decrypt_hex(hex),
            Seal::Gcm(g) => {
                if !hex.len().is_multiple_of(2) {
                    return Err(CryptoError::OddHex);
                }
                let bytes = hex::decode(hex).map_err(|_| CryptoError::Forged)?;
                if bytes.len() < NONCE + TAG {
                    return Err(CryptoError::TooShort);
                }
                if bytes.len() > NONCE + TAG + MAX_PLAINTEXT {
                    return Err(CryptoError::TooLong);
                }
                let (nonce, sealed) = bytes.split_at(NONCE);
                g.decrypt(Nonce::from_slice(nonce), sealed)
                    .map_err(|_| CryptoError::Forged)
            }
        }
    }

    /// Decrypts a body and applies the receiver split (§2.6 with the D6 fix).
    pub fn decrypt_piece(&self, hex: &[u8]) -> Result<Option<String>, CryptoError> {
        self.decrypt_hex(hex).map(receiver_piece_owned)
    }

    /// [`Seal::decrypt_piece`] through `buf`, a buffer the caller keeps between messages: the
    /// piece is borrowed from it unless the plaintext needed a lossy UTF-8 repair.
    pub fn decrypt_piece_in<'b>(
        &self,
        hex: &[u8],
        buf: &'b mut Vec<u8>,
    ) -> Result<Option<Cow<'b, str>>, CryptoError> {
        match self {
            Seal::Xts(c) => c.decrypt_hex_into(hex, buf)?,
            Seal::Gcm(_) => *buf = self.decrypt_hex(hex)?,
        }
        Ok(receiver_piece_in(buf))
    }
}

fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcm_round_trips_and_uses_a_fresh_nonce_per_message() {
        let s = Seal::new(Encryption::Gcm, b"secret");
        let a = s.encrypt_hex(b"{\"a\":1}", b"").expect("enc");
        let b = s.encrypt_hex(b"{\"a\":1}", b"").expect("enc");
        assert_ne!(a, b);
        assert_eq!(
            s.decrypt_piece(a.as_bytes()),
            Ok(Some("{\"a\":1}".to_string()))
        );
        let mut buf = vec![7u8; 100];
        assert_eq!(
            s.decrypt_piece_in(a.as_bytes(), &mut buf),
            Ok(Some(Cow::Borrowed("{\"a\":1}")))
        );
        assert_eq!(
            s.decrypt_piece_in(b"abc", &mut buf),
            Err(CryptoError::OddHex)
        );
    }

    #[test]
    fn gcm_rejects_tampered_bodies_and_foreign_keys() {
        let s = Seal::new(Encryption::Gcm, b"secret");
        let mut hex = s.encrypt_hex(b"{\"a\":1}", b"").expect("enc").into_bytes();
        let last = hex.len() - 1;
        hex[last] = if hex[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.decrypt_hex(&hex), Err(CryptoError::Forged));
        let good = s.encrypt_hex(b"{\"a\":1}", b"").expect("enc");
        let other = Seal::new(Encryption::Gcm, b"other");
        assert_eq!(other.decrypt_hex(good.as_bytes()), Err(CryptoError::Forged));
        assert_eq!(s.decrypt_hex(b"zz"), Err(CryptoError::Forged));
        assert_eq!(s.decrypt_hex(b"abc"), Err(CryptoError::OddHex));
        assert_eq!(s.decrypt_hex(b"00"), Err(CryptoError::TooShort));
    }

    #[test]
    fn xts_seal_is_the_compatible_cipher() {
        let s = Seal::new(Encryption::Xts, b"secret");
        let c = Cipher::new(b"secret");
        assert_eq!(
            s.encrypt_hex(b"hello", b"").ok(),
            c.encrypt_hex(b"hello", b"").ok()
        );
    }

    #[test]
    fn encryption_names_parse() {
        assert_eq!(Encryption::parse("aes-256-gcm"), Some(Encryption::Gcm));
        assert_eq!(Encryption::parse("aes-256-xts"), Some(Encryption::Xts));
        assert_eq!(Encryption::parse("des"), None);
    }
}
