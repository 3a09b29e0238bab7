//! Access tokens: short-lived EdDSA JWTs that every service verifies with public keys.
//!
//! Only auth holds a [`TokenSigner`]; a service that can verify cannot mint a session.
//! A token names its key with `kid`, so during a rotation tokens signed with the old key
//! and with the new one both verify for as long as both public keys are configured.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::{PrivateKey, PublicKey};
use super::verified::VerifiedTokens;

/// What an access token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id (a Mongo ObjectId in hex).
    pub id: String,
    pub email: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// The session (refresh-token family) the token was issued in; sign-out ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token rejected: {0}")]
    Rejected(#[from] jsonwebtoken::errors::Error),
    #[error("token signed with an unknown key")]
    UnknownKey,
}

/// Verifies access tokens with the configured public keys. Cheap to clone.
#[derive(Clone)]
pub struct Jwt(Arc<Verifier>);

struct Verifier {
    keys: Vec<(String, DecodingKey)>,
    validation: Validation,
    /// The same rules without the expiry: to recognise a session whose token lapsed.
    lapsed: Validation,
    verified: VerifiedTokens,
}

impl Jwt {
    pub fn new(public_keys: &[PublicKey]) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat"]);
        let mut lapsed = validation.clone();
        lapsed.validate_exp = false;
        Self(Arc::new(Verifier {
            keys: public_keys
                .iter()
                .map(|key| (key.kid().to_owned(), DecodingKey::from_ed_der(key.raw())))
                .collect(),
            validation,
            lapsed,
            verified: VerifiedTokens::new(),
        }))
    }

    /// The claims of a valid, unexpired token signed by one of our keys. A token that
    /// verified before is recognised without checking its signature again.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        // As jsonwebtoken's own check: expired once `exp` is older than now minus leeway.
        let now = jsonwebtoken::get_current_timestamp() as i64 - self.0.validation.leeway as i64;
        if let Some(claims) = self.0.verified.get(token, now) {
            return Ok(claims);
        }
        let claims = self.decode(token, &self.0.validation)?;
        self.0.verified.insert(token, &claims, now);
        Ok(claims)
    }

    /// Claims of a token signed by one of our keys, expired or not.
    pub fn verify_ignoring_expiry(&self, token: &str) -> Result<Claims, TokenError> {
        self.decode(token, &self.0.lapsed)
    }

    fn decode(&self, token: &str, validation: &Validation) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (_, key) = self
            .0
            .keys
            .iter()
            .find(|(known, _)| *known == kid)
            .ok_or(TokenError::UnknownKey)?;
        Ok(jsonwebtoken::decode::<Claims>(token, key, validation)?.claims)
    }
}

/// Issues access tokens: auth only.
#[derive(Clone)]
pub struct TokenSigner(Arc<Signer>);

struct Signer {
    kid: String,
    key: EncodingKey,
    ttl: Duration,
}

impl TokenSigner {
    pub fn new(key: &PrivateKey, ttl: Duration) -> Self {
        Self(Arc::new(Signer {
            kid: key.public().kid().to_owned(),
            key: EncodingKey::from_ed_der(&key.pkcs8_der()),
            ttl,
        }))
    }

    pub fn ttl(&self) -> Duration {
        self.0.ttl
    }

    /// A fresh token for this user in session `sid`, valid for the configured lifetime.
    pub fn issue(&self, id: &str, email: &str, sid: Option<&str>) -> Result<String, TokenError> {
        let iat = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.0.ttl.as_secs()).unwrap_or(i64::MAX);
        self.sign(&Claims {
            id: id.to_owned(),
            email: email.to_owned(),
            iat,
            exp: iat.saturating_add(ttl),
            sid: sid.map(str::to_owned),
        })
    }

    /// Signs arbitrary claims; `issue` is the normal way in, tests use this for expired tokens.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.0.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.0.key)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn signer(key: &PrivateKey) -> TokenSigner {
        TokenSigner::new(key, Duration::from_secs(60))
    }

    fn claims(iat: i64, exp: i64) -> Claims {
        Claims {
            id: "abc".into(),
            email: "a@b.co".into(),
            iat,
            exp,
            sid: None,
        }
    }

    #[test]
    fn tokens_verify_with_the_public_key_alone() {
        let key = PrivateKey::generate();
        let token = signer(&key).issue("abc", "a@b.co", Some("s1")).unwrap();
        let claims = Jwt::new(&[key.public()]).verify(&token).unwrap();
        assert_eq!(
            (claims.id.as_str(), claims.sid.as_deref()),
            ("abc", Some("s1"))
        );
        assert_eq!(claims.exp - claims.iat, 60);
    }

    #[test]
    fn tokens_of_another_key_are_refused_and_both_keys_verify_during_a_rotation() {
        let (old, new) = (PrivateKey::generate(), PrivateKey::generate());
        let old_token = signer(&old).issue("abc", "a@b.co", None).unwrap();
        let new_token = signer(&new).issue("abc", "a@b.co", None).unwrap();
        let after = Jwt::new(&[new.public()]);
        assert!(matches!(
            after.verify(&old_token),
            Err(TokenError::UnknownKey)
        ));
        let during = Jwt::new(&[new.public(), old.public()]);
        assert!(during.verify(&old_token).is_ok() && during.verify(&new_token).is_ok());
    }

    #[test]
    fn a_token_signed_with_a_shared_secret_is_refused() {
        let key = PrivateKey::generate();
        let jwt = Jwt::new(&[key.public()]);
        let now = chrono::Utc::now().timestamp();
        let secret = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        for kid in [None, Some(key.public().kid().to_owned())] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = kid;
            let token = jsonwebtoken::encode(&header, &claims(now, now + 60), &secret).unwrap();
            assert!(jwt.verify(&token).is_err());
        }
    }

    #[test]
    fn expired_tokens_are_refused_but_still_name_their_session() {
        let key = PrivateKey::generate();
        let jwt = Jwt::new(&[key.public()]);
        let now = chrono::Utc::now().timestamp();
        let token = signer(&key).sign(&claims(now - 120, now - 60)).unwrap();
        assert!(jwt.verify(&token).is_err());
        assert_eq!(jwt.verify_ignoring_expiry(&token).unwrap().id, "abc");
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let key = PrivateKey::generate();
        let jwt = Jwt::new(&[key.public()]);
        let token = signer(&key).issue("abc", "a@b.co", None).unwrap();
        // Verified (and remembered) first: a tampered copy is still checked in full.
        assert_eq!(jwt.verify(&token).unwrap().id, "abc");
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(jwt.verify(&parts.join(".")).is_err());
        parts[1] = token.split('.').nth(1).unwrap().to_owned();
        parts[2] = parts[2].chars().rev().collect();
        assert!(jwt.verify(&parts.join(".")).is_err());
        assert!(jwt.verify("not-a-token").is_err());
    }
}
