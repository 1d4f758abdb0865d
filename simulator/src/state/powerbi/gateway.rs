//! On-premises data gateways: each holds an RSA key pair, publishes the public key as Get
//! Gateway does, and decrypts the credentials sent to its data sources in the format of
//! Microsoft's SDKs (segments of RSA-OAEP with SHA-1 for a 1024-bit key; for larger keys AES-256
//! keys wrapped with RSA-OAEP SHA-256 and an HMAC-SHA256 tag).

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey};
use serde_json::{Value, json};

use crate::seed::GatewaySeed;

/// The simulator's gateway key pairs: test keys, public by design, used nowhere else.
const KEY_1024: &str = include_str!("keys/gateway-1024.pem");
const KEY_2048: &str = include_str!("keys/gateway-2048.pem");

/// An on-premises gateway (standard mode).
#[derive(Clone)]
pub struct Gateway {
    pub(crate) id: String,
    name: String,
    key: RsaPrivateKey,
    /// Client ids of the principals that administer its data sources; everyone when `None`.
    admins: Option<Vec<String>>,
}

impl std::fmt::Debug for Gateway {
    /// Without the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("key_bits", &(self.key.size() * 8))
            .field("admins", &self.admins)
            .finish()
    }
}

impl Gateway {
    /// The gateways a seed declares.
    pub fn from_seeds(seeds: &[GatewaySeed]) -> Result<Vec<Gateway>, String> {
        seeds
            .iter()
            .map(|seed| {
                let pem = match seed.key_bits {
                    1024 => KEY_1024,
                    2048 => KEY_2048,
                    other => {
                        return Err(format!(
                            "gateway {}: keyBits is 1024 or 2048, not {other}",
                            seed.id
                        ));
                    }
                };
                let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
                Ok(Gateway {
                    id: seed.id.clone(),
                    name: seed
                        .name
                        .clone()
                        .unwrap_or_else(|| "On-premises gateway".to_owned()),
                    key,
                    admins: seed.admins.clone(),
                })
            })
            .collect()
    }

    /// Get Gateway's answer: the public key as base64 big-endian exponent and modulus.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": "Resource",
            "publicKey": {
                "exponent": STANDARD.encode(self.key.e().to_bytes_be()),
                "modulus": STANDARD.encode(self.key.n().to_bytes_be()),
            },
            "gatewayStatus": "Live",
            "gatewayAnnotation": json!({"gatewayVersion": "3000.290.5"}).to_string(),
        })
    }

    /// Whether the principal `client_id` administers the gateway's data sources.
    pub fn is_admin(&self, client_id: &str) -> bool {
        self.admins
            .as_ref()
            .is_none_or(|admins| admins.iter().any(|a| a.eq_ignore_ascii_case(client_id)))
    }

    /// The credentials text in `sealed`, or why it cannot be read.
    pub fn decrypt(&self, sealed: &str) -> Result<String, &'static str> {
        let modulus_bytes = self.key.size();
        let plain = if modulus_bytes == 128 {
            self.decrypt_segments(sealed)?
        } else {
            self.decrypt_wrapped(sealed, modulus_bytes)?
        };
        String::from_utf8(plain).map_err(|_| "the decrypted credentials are not UTF-8")
    }

    fn decrypt_segments(&self, sealed: &str) -> Result<Vec<u8>, &'static str> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| "the input is not a valid Base-64 string")?;
        if bytes.is_empty() || bytes.len() % 128 != 0 {
            return Err("the encrypted credentials are not whole 128-byte segments");
        }
        let mut plain = Vec::new();
        for segment in bytes.chunks(128) {
            let part = self
                .key
                .decrypt(Oaep::new::<sha1::Sha1>(), segment)
                .map_err(|_| "a segment does not decrypt")?;
            plain.extend_from_slice(&part);
        }
        Ok(plain)
    }

    fn decrypt_wrapped(&self, sealed: &str, modulus_bytes: usize) -> Result<Vec<u8>, &'static str> {
        // base64(wrapped keys) ‖ base64(ciphertext): the first part's length follows from the
        // modulus.
        let split = modulus_bytes.div_ceil(3) * 4;
        let (keys_text, message_text) = sealed
            .split_at_checked(split)
            .ok_or("the encrypted credentials are too short")?;
        let invalid = |_| "the input is not a valid Base-64 string";
        let wrapped = STANDARD.decode(keys_text).map_err(invalid)?;
        let message = STANDARD.decode(message_text).map_err(invalid)?;
        let keys = self
            .key
            .decrypt(Oaep::new::<sha2::Sha256>(), &wrapped)
            .map_err(|_| "the keys do not decrypt")?;
        if keys.len() != 2 + 32 + 64 || keys[..2] != [0, 1] {
            return Err("the keys have an unknown layout");
        }
        authenticated_decrypt(&keys[2..34], &keys[34..], &message)
    }
}

/// Checks the HMAC-SHA256 tag of `[0, 0] ‖ tag ‖ iv ‖ ciphertext` before it decrypts.
fn authenticated_decrypt(
    aes_key: &[u8],
    mac_key: &[u8],
    message: &[u8],
) -> Result<Vec<u8>, &'static str> {
    if message.len() < 2 + 32 + 16 + 16 || message[..2] != [0, 0] {
        return Err("the ciphertext has an unknown layout");
    }
    let (tag, rest) = message[2..].split_at(32);
    let (iv, ciphertext) = rest.split_at(16);
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(mac_key)
        .map_err(|_| "the MAC key is unusable")?;
    mac.update(&message[..2]);
    mac.update(rest);
    mac.verify_slice(tag)
        .map_err(|_| "Mismatch in signed data")?;
    let cipher = cbc::Decryptor::<aes::Aes256>::new_from_slices(aes_key, iv)
        .map_err(|_| "the AES key is unusable")?;
    cipher
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map_err(|_| "the padding is invalid")
}
