//! Credentials for an on-premises gateway: the operator encrypts them with the gateway's public
//! key as Microsoft's SDKs do, and the simulator's gateway (its own decryption, written from the
//! same description) reads them back, for both key sizes; a changed byte is refused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use powerbi_sim::Gateway;
use powerbi_sim::seed::GatewaySeed;
use xero_operator::powerbi::gateway_key::encrypt_credentials;
use xero_operator::powerbi::models::GatewayPublicKey;

const CREDENTIALS: &str = r#"{"credentialData":[{"name":"accessToken","value":"eyJhbGciOiJSUzI1NiIsImtpZCI6IjFDQUY4RTY2NzcyRDZEQzAyOEQ2NzI2RkQwMjYxNTgxNTcwRUZDMTkiLCJ0eXAiOiJKV1QifQ.payload-of-a-xero-access-token-long-enough-for-several-rsa-segments.signature"}]}"#;

fn gateway(key_bits: u32) -> (Gateway, GatewayPublicKey) {
    let seed = GatewaySeed {
        id: format!("gw-{key_bits}"),
        name: None,
        key_bits,
        admins: None,
    };
    let gateway = Gateway::from_seeds(&[seed]).expect("gateway").remove(0);
    let published = gateway.to_json();
    let key = GatewayPublicKey {
        exponent: published["publicKey"]["exponent"]
            .as_str()
            .unwrap()
            .to_owned(),
        modulus: published["publicKey"]["modulus"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    (gateway, key)
}

#[test]
fn a_1024_bit_key_takes_85_byte_segments_each_sealed_into_128_bytes() {
    let (gateway, key) = gateway(1024);
    let sealed = encrypt_credentials(CREDENTIALS, &key).expect("encrypted");
    let bytes = STANDARD.decode(&sealed).expect("one base64 string");
    assert_eq!(bytes.len(), CREDENTIALS.len().div_ceil(85) * 128);
    assert_eq!(gateway.decrypt(&sealed).expect("decrypted"), CREDENTIALS);
    // Encryption is randomised: the same text seals differently each time.
    assert_ne!(encrypt_credentials(CREDENTIALS, &key).unwrap(), sealed);

    for position in (0..bytes.len()).step_by(7) {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x01;
        assert!(
            gateway.decrypt(&STANDARD.encode(&tampered)).is_err(),
            "byte {position} changed"
        );
    }
}

#[test]
fn a_larger_key_wraps_an_aes_and_an_hmac_key_and_authenticates_the_text() {
    let (gateway, key) = gateway(2048);
    let sealed = encrypt_credentials(CREDENTIALS, &key).expect("encrypted");
    // base64 of the 256-byte wrapped keys (344 characters), then base64 of the ciphertext.
    let (keys, message) = sealed.split_at(344);
    assert_eq!(STANDARD.decode(keys).expect("keys").len(), 256);
    let message = STANDARD.decode(message).expect("ciphertext");
    assert_eq!(&message[..2], &[0, 0], "AES-256-CBC-PKCS7 and HMAC-SHA256");
    assert_eq!(
        message.len(),
        2 + 32 + 16 + (CREDENTIALS.len() / 16 + 1) * 16
    );
    assert_eq!(gateway.decrypt(&sealed).expect("decrypted"), CREDENTIALS);

    // Any changed byte of the ciphertext fails the tag; a changed byte of the wrapped keys
    // fails RSA-OAEP.
    for position in 0..message.len() {
        let mut tampered = message.clone();
        tampered[position] ^= 0x80;
        let forged = format!("{keys}{}", STANDARD.encode(&tampered));
        assert!(
            gateway.decrypt(&forged).is_err(),
            "ciphertext byte {position}"
        );
    }
    let wrapped = STANDARD.decode(keys).unwrap();
    for position in (0..wrapped.len()).step_by(17) {
        let mut tampered = wrapped.clone();
        tampered[position] ^= 0x01;
        let forged = format!(
            "{}{}",
            STANDARD.encode(&tampered),
            STANDARD.encode(&message)
        );
        assert!(gateway.decrypt(&forged).is_err(), "key byte {position}");
    }
    // Plain credentials are not read as encrypted ones.
    assert!(gateway.decrypt(CREDENTIALS).is_err());
}
