//! Ed25519 session keys: only auth holds a private key; every service holds public keys.
//!
//! Keys travel as PEM, the way `openssl genpkey -algorithm ed25519` writes them (PKCS#8
//! for the private key, SPKI for public keys). Each public key is named by its RFC 7638
//! JWK thumbprint, the `kid` in token headers and in auth's JWKS document, so no one
//! has to invent or keep key names in step.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 private key in PKCS#8 PEM")]
    Private,
    #[error("not an Ed25519 public key in SPKI PEM")]
    Public,
    #[error("no public key given")]
    Empty,
}

/// A public key that verifies session tokens, with its `kid`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    kid: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PublicKey").field(&self.kid).finish()
    }
}

impl PublicKey {
    fn new(key: VerifyingKey) -> Self {
        let kid = thumbprint(&key);
        Self { key, kid }
    }

    /// Every `PUBLIC KEY` block in `pem`, in order (one or more, as during a rotation).
    pub fn parse_all(pem: &str) -> Result<Vec<Self>, KeyError> {
        const END: &str = "-----END PUBLIC KEY-----";
        let keys = pem
            .split_inclusive(END)
            .filter(|block| !block.trim().is_empty())
            .map(|block| {
                VerifyingKey::from_public_key_pem(block.trim())
                    .map(Self::new)
                    .map_err(|_| KeyError::Public)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(keys)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw 32-byte key, as `jsonwebtoken` verifies with it.
    pub fn raw(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP",
            crv: "Ed25519",
            alg: "EdDSA",
            r#use: "sig",
            kid: self.kid.clone(),
            x: URL_SAFE_NO_PAD.encode(self.key.as_bytes()),
        }
    }
}

/// One key of a JWKS document (RFC 8037 names for Ed25519).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    pub r#use: &'static str,
    pub kid: String,
    pub x: String,
}

/// The key auth signs with. Never printed.
#[derive(Clone)]
pub struct PrivateKey {
    key: SigningKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(…)")
    }
}

impl PrivateKey {
    pub fn parse(pem: &str) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(|key| Self { key })
            .map_err(|_| KeyError::Private)
    }

    /// A new random key (`gittix keygen`, tests).
    pub fn generate() -> Self {
        Self::from_seed(rand::random())
    }

    /// A key from fixed bytes: deterministic test keys.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey::new(self.key.verifying_key())
    }

    /// PKCS#8 v1 DER (RFC 8410), as `jsonwebtoken` signs with it and openssl writes it
    /// (the v2 form with the public key inside is not read by every openssl).
    pub fn pkcs8_der(&self) -> Vec<u8> {
        let mut der = PKCS8_V1_ED25519_PREFIX.to_vec();
        der.extend_from_slice(self.key.as_bytes());
        der
    }

    pub fn to_pem(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(self.pkcs8_der());
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    }
}

/// The DER of a PKCS#8 v1 Ed25519 private key up to its 32-byte seed (RFC 8410).
const PKCS8_V1_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// RFC 7638: SHA-256 of the canonical JWK members, base64url.
fn thumbprint(key: &VerifyingKey) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(key.as_bytes())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The PKCS#8 v1 PEM `openssl genpkey -algorithm ed25519` writes for this seed (built
    /// here rather than committed: no private key block lives in the repository).
    fn openssl_private_pem(seed: [u8; 32]) -> String {
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend_from_slice(&seed);
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    }

    // `openssl pkey -pubout` of a key generated by openssl.
    const OPENSSL_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAFIarzllOrkbQNHqoPzsXVUmsi7VkRl1tN/eY5fnqHyw=
-----END PUBLIC KEY-----
";

    #[test]
    fn keys_in_openssl_formats_are_read() {
        let seed = [9; 32];
        let private = PrivateKey::parse(&openssl_private_pem(seed)).unwrap();
        assert_eq!(private.public(), PrivateKey::from_seed(seed).public());
        assert_eq!(
            private.to_pem(),
            openssl_private_pem(seed),
            "written as openssl does"
        );
        let public = PublicKey::parse_all(OPENSSL_PUBLIC).unwrap();
        assert_eq!(public[0].to_pem(), OPENSSL_PUBLIC);
    }

    #[test]
    fn several_public_keys_are_read_in_order_and_garbage_is_refused() {
        let (a, b) = (PrivateKey::generate(), PrivateKey::generate());
        let both = format!("{}\n{}", a.public().to_pem(), b.public().to_pem());
        let keys = PublicKey::parse_all(&both).unwrap();
        assert_eq!(keys, vec![a.public(), b.public()]);
        assert!(matches!(PublicKey::parse_all("  \n"), Err(KeyError::Empty)));
        assert!(
            PublicKey::parse_all("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
        assert!(PrivateKey::parse(&a.public().to_pem()).is_err());
        assert!(PrivateKey::parse(&a.to_pem()).is_ok());
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(
            PublicKey::new(key).kid(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn the_private_key_is_never_printed() {
        let key = PrivateKey::generate();
        assert_eq!(format!("{key:?}"), "PrivateKey(…)");
    }
}
