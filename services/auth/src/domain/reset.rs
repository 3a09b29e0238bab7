//! Password-reset tokens: 32 random bytes, base64url (43 characters), single use.
//!
//! Only the token's SHA-256 is stored (on the user document); the token in clear leaves
//! auth once, in the `user.password_reset_requested` event for notifications to email. A
//! plain SHA-256 suffices: 256 random bits leave nothing to guess or to brute-force.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The length of a token: 32 bytes in base64url without padding.
pub const TOKEN_LEN: usize = 43;

pub const INVALID_TOKEN: &str = "This password reset link is invalid, expired or already used";

/// A reset token in clear; never printed.
pub struct ResetToken(String);

impl ResetToken {
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
    }

    /// Only for the event that carries it to notifications.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetToken([redacted])")
    }
}

/// The stored form of a token: SHA-256, hex.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `raw` could be a token we issued (so that anything else is refused before
/// a lookup).
pub fn plausible(raw: &str) -> bool {
    raw.len() == TOKEN_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_unique_and_hidden() {
        let (a, b) = (ResetToken::generate(), ResetToken::generate());
        assert!(plausible(a.expose()), "{}", a.expose());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), hash(a.expose()));
        assert_eq!(a.hash().len(), 64);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn anything_else_is_not_a_token() {
        for raw in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
        ] {
            assert!(!plausible(raw), "{raw}");
        }
        assert!(plausible(&"a".repeat(43)));
    }
}
