//! Credentials for a data source on an on-premises gateway travel encrypted with the gateway's
//! public key (`encryptionAlgorithm: RSA-OAEP`), in the format of Microsoft's SDKs
//! (PowerBI-CSharp `AsymmetricKeyEncryptor` and its helpers), which the gateway decrypts:
//!
//! - a 1024-bit key (a 128-byte modulus): the UTF-8 text in segments of 85 bytes, each
//!   encrypted with RSA-OAEP (SHA-1) into 128 bytes, concatenated and base64-encoded;
//! - a larger key: a fresh AES-256 key and HMAC-SHA256 key encrypt and authenticate the text
//!   (`[0, 0] ‖ tag ‖ iv ‖ AES-256-CBC-PKCS7(text)`, the tag over `[0, 0] ‖ iv ‖ ciphertext`),
//!   and the keys (`[0, 1] ‖ aes key ‖ hmac key`) are encrypted with RSA-OAEP (SHA-256); the
//!   result is base64(encrypted keys) followed by base64(ciphertext).
//!
//! Nothing here logs or keeps the text or the keys.

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use rsa::{BigUint, Oaep, RsaPublicKey};

use super::models::GatewayPublicKey;

/// The modulus length (bytes) of the keys encrypted segment by segment.
const SEGMENTED_MODULUS_BYTES: usize = 128;
/// Plain bytes per RSA-OAEP (SHA-1) segment with a 1024-bit key.
const SEGMENT_BYTES: usize = 85;
/// `AeCipher.Aes256CbcPkcs7` and `AeMac.HMACSHA256`, the algorithm bytes of the SDK's format.
const ALGORITHMS: [u8; 2] = [0, 0];
/// `KeyLengths.KeyLength32` and `KeyLengths.KeyLength64`: the key lengths' prefix.
const KEY_LENGTHS: [u8; 2] = [0, 1];

/// Why credentials could not be encrypted: the gateway's public key is unusable.
#[derive(Debug, thiserror::Error)]
#[error("the gateway's public key cannot encrypt credentials: {0}")]
pub struct GatewayKeyError(String);

/// Encrypts `text` (the credentials JSON) with the gateway's public key as Power BI expects.
pub fn encrypt_credentials(text: &str, key: &GatewayPublicKey) -> Result<String, GatewayKeyError> {
    let decode = |name: &str, value: &str| {
        STANDARD
            .decode(value.trim())
            .map_err(|_| GatewayKeyError(format!("its {name} is not base64")))
    };
    let modulus = decode("modulus", &key.modulus)?;
    let exponent = decode("exponent", &key.exponent)?;
    let public = RsaPublicKey::new(
        BigUint::from_bytes_be(&modulus),
        BigUint::from_bytes_be(&exponent),
    )
    .map_err(|e| GatewayKeyError(e.to_string()))?;
    if modulus.len() == SEGMENTED_MODULUS_BYTES {
        encrypt_segments(text.as_bytes(), &public)
    } else {
        encrypt_with_wrapped_keys(text.as_bytes(), &public)
    }
}

fn encrypt_segments(text: &[u8], key: &RsaPublicKey) -> Result<String, GatewayKeyError> {
    let mut encrypted = Vec::with_capacity(text.len().div_ceil(SEGMENT_BYTES) * 128);
    for segment in text.chunks(SEGMENT_BYTES) {
        let sealed = key
            .encrypt(&mut OsRng, Oaep::new::<sha1::Sha1>(), segment)
            .map_err(|e| GatewayKeyError(e.to_string()))?;
        encrypted.extend_from_slice(&sealed);
    }
    Ok(STANDARD.encode(encrypted))
}

fn encrypt_with_wrapped_keys(text: &[u8], key: &RsaPublicKey) -> Result<String, GatewayKeyError> {
    let mut aes_key = [0_u8; 32];
    let mut mac_key = [0_u8; 64];
    let mut iv = [0_u8; 16];
    OsRng.fill_bytes(&mut aes_key);
    OsRng.fill_bytes(&mut mac_key);
    OsRng.fill_bytes(&mut iv);
    let ciphertext = authenticated_encrypt(&aes_key, &mac_key, &iv, text)?;
    let mut keys = Vec::with_capacity(2 + aes_key.len() + mac_key.len());
    keys.extend_from_slice(&KEY_LENGTHS);
    keys.extend_from_slice(&aes_key);
    keys.extend_from_slice(&mac_key);
    let wrapped = key
        .encrypt(&mut OsRng, Oaep::new::<sha2::Sha256>(), &keys)
        .map_err(|e| GatewayKeyError(e.to_string()))?;
    Ok(format!(
        "{}{}",
        STANDARD.encode(wrapped),
        STANDARD.encode(ciphertext)
    ))
}

/// `[0, 0] ‖ HMAC-SHA256(mac_key, [0, 0] ‖ iv ‖ c) ‖ iv ‖ c` with `c` = AES-256-CBC-PKCS7.
fn authenticated_encrypt(
    aes_key: &[u8; 32],
    mac_key: &[u8; 64],
    iv: &[u8; 16],
    text: &[u8],
) -> Result<Vec<u8>, GatewayKeyError> {
    let cipher = cbc::Encryptor::<aes::Aes256>::new(aes_key.into(), iv.into());
    let encrypted = cipher.encrypt_padded_vec_mut::<Pkcs7>(text);
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(mac_key)
        .map_err(|e| GatewayKeyError(e.to_string()))?;
    mac.update(&ALGORITHMS);
    mac.update(iv);
    mac.update(&encrypted);
    let tag = mac.finalize().into_bytes();
    let mut out = Vec::with_capacity(2 + tag.len() + iv.len() + encrypted.len());
    out.extend_from_slice(&ALGORITHMS);
    out.extend_from_slice(&tag);
    out.extend_from_slice(iv);
    out.extend_from_slice(&encrypted);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(modulus: &[u8]) -> GatewayPublicKey {
        GatewayPublicKey {
            exponent: STANDARD.encode([1, 0, 1]),
            modulus: STANDARD.encode(modulus),
        }
    }

    #[test]
    fn the_authenticated_ciphertext_has_the_sdks_layout() {
        let out =
            authenticated_encrypt(&[7; 32], &[9; 64], &[3; 16], b"0123456789abcdef!").unwrap();
        // header, tag, iv, and two AES blocks (17 bytes padded to 32).
        assert_eq!(out.len(), 2 + 32 + 16 + 32);
        assert_eq!(&out[..2], &ALGORITHMS);
        assert_eq!(&out[34..50], &[3; 16]);
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&[9; 64]).unwrap();
        mac.update(&out[..2]);
        mac.update(&out[34..]);
        mac.verify_slice(&out[2..34])
            .expect("the tag covers header, iv and ciphertext");
    }

    #[test]
    fn an_unusable_key_is_an_error_naming_it_not_the_text() {
        let bad = GatewayPublicKey {
            exponent: "AQAB".into(),
            modulus: "not base64!".into(),
        };
        let error = encrypt_credentials("secret-text", &bad).unwrap_err();
        assert!(error.to_string().contains("modulus"), "{error}");
        assert!(!error.to_string().contains("secret-text"));
        // A key too small for RSA-OAEP.
        assert!(encrypt_credentials("x", &key(&[0xff; 8])).is_err());
    }
}
