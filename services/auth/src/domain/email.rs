use std::fmt;

/// A normalised email address: trimmed, lower-cased, plausibly deliverable.
///
/// `parse` is the only way in, so every `Email` in the system has passed these rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

pub const INVALID_EMAIL: &str = "Email must be valid";

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && domain.split('.').all(|label| {
                        !label.is_empty() && !label.starts_with('-') && !label.ends_with('-')
                    })
            });
        if valid {
            Ok(Self(email))
        } else {
            Err(INVALID_EMAIL)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn invalid_emails_are_rejected() {
        let cases = [
            ("", "empty"),
            ("ann", "no @"),
            ("ann@", "no domain"),
            ("@example.com", "no local part"),
            ("ann@example", "no dot in domain"),
            ("ann@@example.com", "two @"),
            ("ann smith@example.com", "inner space"),
            ("ann@example..com", "empty label"),
            ("ann@-example.com", "label starts with hyphen"),
        ];
        for (raw, why) in cases {
            assert!(
                Email::parse(raw).is_err(),
                "{raw:?} should be rejected: {why}"
            );
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
