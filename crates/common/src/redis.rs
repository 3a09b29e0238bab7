//! Which Redis a service uses (`REDIS_URL`) and the CA it trusts for it (`REDIS_CA_FILE`).
//!
//! `rediss://` connects over TLS (rustls on ring), as managed Valkey/Redis requires. The
//! server's certificate is checked against the public (webpki) roots, or, when
//! `REDIS_CA_FILE` names a PEM file (a Kubernetes secret mounted as a file), against the
//! CAs in that file instead. The file is read at start-up: a missing or empty one is a
//! configuration error, and a rotated CA takes a restart. Certificates are always verified:
//! the driver's `#insecure` is refused.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, Env, read_ca_file, redacted_url};

#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    ca: Option<Ca>,
}

#[derive(Clone)]
struct Ca {
    path: PathBuf,
    pem: Vec<u8>,
}

impl RedisConfig {
    pub const URL_VAR: &str = "REDIS_URL";
    pub const CA_FILE_VAR: &str = "REDIS_CA_FILE";

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url: String = env.required(Self::URL_VAR)?;
        let ca_file: Option<PathBuf> = env.optional(Self::CA_FILE_VAR)?;
        Self::new(url, ca_file.as_deref())
    }

    /// Checks `url` with the driver's own parser, and reads `ca_file` if given.
    pub fn new(url: impl Into<String>, ca_file: Option<&Path>) -> Result<Self, ConfigError> {
        let url = url.into();
        let tls = url.starts_with("rediss://");
        if !tls && !url.starts_with("redis://") {
            return Err(ConfigError::new(
                Self::URL_VAR,
                "must start with redis:// or rediss://",
            ));
        }
        if url.contains('#') {
            return Err(ConfigError::new(
                Self::URL_VAR,
                "a #fragment (such as #insecure) is not supported: certificates are always verified",
            ));
        }
        // The driver's messages name the problem, never the URL (nor its password).
        ::redis::Client::open(url.as_str())
            .map_err(|err| ConfigError::new(Self::URL_VAR, format!("not a Redis URL: {err}")))?;
        let ca = match ca_file {
            None => None,
            Some(_) if !tls => {
                return Err(ConfigError::new(
                    Self::CA_FILE_VAR,
                    "is set, but REDIS_URL is not rediss:// (TLS)",
                ));
            }
            Some(path) => Some(Ca {
                path: path.to_owned(),
                pem: read_ca_file(Self::CA_FILE_VAR, path)?,
            }),
        };
        Ok(Self { url, ca })
    }

    /// A URL without a CA file: tests and local servers.
    pub fn plain(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca: None,
        }
    }

    /// The URL with its credentials hidden, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redacted_url(&self.url)
    }

    /// A client for this server (connecting happens on first use); TLS trusting the CA
    /// file when one is configured.
    pub fn client(&self) -> ::redis::RedisResult<::redis::Client> {
        match &self.ca {
            None => ::redis::Client::open(self.url.as_str()),
            Some(ca) => ::redis::Client::build_with_tls(
                self.url.as_str(),
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.pem.clone()),
                },
            ),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("ca_file", &self.ca.as_ref().map(|ca| &ca.path))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<RedisConfig, ConfigError> {
        RedisConfig::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn redis_and_rediss_urls_are_accepted_others_named() {
        assert!(from(&[("REDIS_URL", "redis://localhost:6379")]).is_ok());
        assert!(from(&[("REDIS_URL", "rediss://default:pw@db.example.com:25061")]).is_ok());
        for bad in [
            "http://localhost",
            "localhost:6379",
            "rediss://localhost:6379/#insecure",
            "redis://localhost:6379/notanumber",
        ] {
            let err = from(&[("REDIS_URL", bad)]).unwrap_err();
            assert_eq!(err.name, "REDIS_URL", "{bad}: {err}");
        }
        assert_eq!(from(&[]).unwrap_err().name, "REDIS_URL");
    }

    #[test]
    fn a_ca_file_that_is_missing_or_not_pem_is_a_clear_error() {
        let err = from(&[
            ("REDIS_URL", "rediss://localhost:6379"),
            ("REDIS_CA_FILE", "/nonexistent/redis-ca.crt"),
        ])
        .unwrap_err();
        assert_eq!(err.name, "REDIS_CA_FILE");
        assert!(
            err.problem.contains("/nonexistent/redis-ca.crt")
                && err.problem.contains("cannot read"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("gittix-redis-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not-pem.crt");
        std::fs::write(&not_pem, "hello").unwrap();
        let err = from(&[
            ("REDIS_URL", "rediss://localhost:6379"),
            ("REDIS_CA_FILE", not_pem.to_str().unwrap()),
        ])
        .unwrap_err();
        assert!(err.problem.contains("no PEM certificate"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_ca_file_needs_a_tls_url() {
        let err = from(&[
            ("REDIS_URL", "redis://localhost:6379"),
            ("REDIS_CA_FILE", "/etc/hostname"),
        ])
        .unwrap_err();
        assert_eq!(err.name, "REDIS_CA_FILE");
        assert!(err.problem.contains("rediss://"), "{err}");
    }

    #[test]
    fn the_password_never_shows() {
        let config =
            from(&[("REDIS_URL", "rediss://default:hunter2@db.example.com:25061")]).unwrap();
        let shown = format!("{config:?} {}", config.redacted_url());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("rediss://***@db.example.com:25061"),
            "{shown}"
        );
    }
}
