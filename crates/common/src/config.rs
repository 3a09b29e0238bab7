//! Typed configuration from environment variables.
//!
//! A service reads an [`Env`] snapshot once at start-up into its own `Config` struct built
//! from the pieces here. A missing or malformed variable is a [`ConfigError`] naming it, and
//! `main` exits with that message. Tests build `Config` values directly instead.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::auth::keys::PublicKey;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration variable {name}: {problem}")]
pub struct ConfigError {
    pub name: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(name: &str, problem: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            problem: problem.into(),
        }
    }
}

/// A snapshot of the variables a service may read.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// The raw value; an empty string counts as unset.
    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.optional(name)?
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    pub fn optional<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.raw(name)
            .map(|raw| {
                raw.parse()
                    .map_err(|e| ConfigError::new(name, format!("invalid value {raw:?}: {e}")))
            })
            .transpose()
    }

    pub fn or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.optional(name)?.unwrap_or(default))
    }

    /// A secret: never printed, not even in the error (only its name is).
    pub fn secret(&self, name: &str) -> Result<Secret, ConfigError> {
        self.raw(name)
            .map(|v| Secret::new(v.to_owned()))
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    pub fn optional_secret(&self, name: &str) -> Option<Secret> {
        self.raw(name).map(|v| Secret::new(v.to_owned()))
    }

    /// Seconds as a [`Duration`]; must be positive.
    pub fn seconds(&self, name: &str, default: u64) -> Result<Duration, ConfigError> {
        match self.or::<u64>(name, default)? {
            0 => Err(ConfigError::new(
                name,
                "must be a positive number of seconds",
            )),
            secs => Ok(Duration::from_secs(secs)),
        }
    }
}

/// A value that must not reach logs. `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where the service runs; production refuses unsafe settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppEnv {
    #[default]
    Development,
    Production,
}

impl FromStr for AppEnv {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            other => Err(format!("expected development or production, got {other:?}")),
        }
    }
}

impl AppEnv {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.or("APP_ENV", Self::Development)
    }
}

/// Where the HTTP server listens (`HOST`, `PORT`).
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    pub addr: SocketAddr,
}

impl HttpConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let host: IpAddr = env.or("HOST", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
        let port: u16 = env.or("PORT", 3000)?;
        Ok(Self {
            addr: SocketAddr::new(host, port),
        })
    }

    /// Loopback on a port the OS picks: for tests.
    pub fn ephemeral() -> Self {
        Self {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        }
    }
}

/// The public keys that verify session tokens (`JWT_PUBLIC_KEYS`: one or more PEM
/// `PUBLIC KEY` blocks; several during a key rotation).
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub public_keys: Vec<PublicKey>,
}

impl JwtConfig {
    pub const VAR: &str = "JWT_PUBLIC_KEYS";

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let pem: String = env.required(Self::VAR)?;
        Self::parse(&pem)
    }

    /// As [`Self::from_env`], but none is fine (auth, which knows its own key).
    pub fn optional_from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.optional::<String>(Self::VAR)? {
            Some(pem) => Self::parse(&pem),
            None => Ok(Self {
                public_keys: Vec::new(),
            }),
        }
    }

    fn parse(pem: &str) -> Result<Self, ConfigError> {
        let public_keys = PublicKey::parse_all(pem)
            .map_err(|err| ConfigError::new(Self::VAR, err.to_string()))?;
        Ok(Self { public_keys })
    }
}

/// Which MongoDB server and database a service owns (`MONGO_URL`, `MONGO_DB`).
///
/// `MONGO_URL` may be `mongodb+srv://` (SRV and TXT lookups, as managed MongoDB hands
/// out) and carry the driver's TLS options (`tls=true&tlsCAFile=/path/ca.crt`); a CA or key
/// file it names must be readable at start-up. `Debug` hides the URL's credentials.
#[derive(Clone)]
pub struct MongoConfig {
    pub url: String,
    pub database: String,
}

impl MongoConfig {
    pub fn from_env(env: &Env, default_database: &str) -> Result<Self, ConfigError> {
        let url: String = env.required("MONGO_URL")?;
        if !url.starts_with("mongodb://") && !url.starts_with("mongodb+srv://") {
            return Err(ConfigError::new(
                "MONGO_URL",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        // The syntax, without the DNS lookups of a mongodb+srv URL (those are retried at
        // start-up: common::mongo::open).
        mongodb::options::ConnectionString::parse(&url)
            .map_err(|err| ConfigError::new("MONGO_URL", format!("malformed: {}", err.kind)))?;
        check_mongo_tls_files(&url)?;
        Ok(Self {
            url,
            database: env.or("MONGO_DB", default_database.to_owned())?,
        })
    }
}

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("url", &redacted_url(&self.url))
            .field("database", &self.database)
            .finish()
    }
}

/// The driver reads `tlsCAFile` and `tlsCertificateKeyFile` only when it first connects,
/// inside the retried start-up, where a missing file would read like a server still down.
/// Checked here instead, so a missing secret mount stops the process with its name.
fn check_mongo_tls_files(url: &str) -> Result<(), ConfigError> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(());
    };
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let path = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        if key.eq_ignore_ascii_case("tlsCAFile") {
            read_ca_file("MONGO_URL", Path::new(path.as_ref()))?;
        } else if key.eq_ignore_ascii_case("tlsCertificateKeyFile") {
            std::fs::metadata(path.as_ref()).map_err(|err| {
                ConfigError::new(
                    "MONGO_URL",
                    format!("tlsCertificateKeyFile {path}: cannot read it: {err}"),
                )
            })?;
        }
    }
    Ok(())
}

/// Reads a PEM file of CA certificates (a Kubernetes secret mounted as a file): unreadable,
/// or without one certificate, is a configuration error naming `var` and the path.
pub fn read_ca_file(var: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|err| ConfigError::new(var, format!("CA file {shown}: cannot read it: {err}")))?;
    let mut certificates = 0;
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        certificate.map_err(|err| {
            ConfigError::new(var, format!("CA file {shown}: not valid PEM: {err}"))
        })?;
        certificates += 1;
    }
    if certificates == 0 {
        return Err(ConfigError::new(
            var,
            format!("CA file {shown}: holds no PEM certificate"),
        ));
    }
    Ok(pem)
}

/// `url` without its credentials (`scheme://user:password@host` becomes
/// `scheme://***@host`), for logs and error messages.
pub fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    // The credentials end at the last `@` before the query: a password's own `@`, `/` or
    // `:` must be percent-encoded, but a stray one must not leak the rest of it.
    let authority_end = rest.find('?').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let host = &rest[at + 1..];
    if scheme.is_empty() {
        format!("***@{host}")
    } else {
        format!("{scheme}://***@{host}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_required_variable_is_named() {
        let err = JwtConfig::from_env(&Env::default()).unwrap_err();
        assert_eq!(err.name, "JWT_PUBLIC_KEYS");
        assert!(
            err.to_string().contains("JWT_PUBLIC_KEYS: is required"),
            "{err}"
        );
    }

    #[test]
    fn public_keys_are_parsed_and_a_bad_one_is_named() {
        let key = crate::auth::keys::PrivateKey::generate().public();
        let pem = key.to_pem();
        let env = Env::from_pairs([("JWT_PUBLIC_KEYS", pem.as_str())]);
        assert_eq!(JwtConfig::from_env(&env).unwrap().public_keys, vec![key]);
        let env = Env::from_pairs([("JWT_PUBLIC_KEYS", "not a key")]);
        assert_eq!(
            JwtConfig::from_env(&env).unwrap_err().name,
            "JWT_PUBLIC_KEYS"
        );
        assert!(
            JwtConfig::optional_from_env(&Env::default())
                .unwrap()
                .public_keys
                .is_empty()
        );
    }

    #[test]
    fn malformed_number_is_reported_with_its_name() {
        let env = Env::from_pairs([("PORT", "eighty")]);
        let err = HttpConfig::from_env(&env).unwrap_err();
        assert_eq!(err.name, "PORT");
    }

    #[test]
    fn zero_seconds_are_rejected() {
        let env = Env::from_pairs([("JWT_TTL_SECONDS", "0")]);
        assert_eq!(
            env.seconds("JWT_TTL_SECONDS", 900).unwrap_err().name,
            "JWT_TTL_SECONDS"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let secret = Secret::new("sk_live_abc");
        assert!(!format!("{secret:?}").contains("sk_live"));
    }

    #[test]
    fn mongo_url_needs_a_mongodb_scheme() {
        let env = Env::from_pairs([("MONGO_URL", "http://localhost")]);
        assert_eq!(
            MongoConfig::from_env(&env, "auth").unwrap_err().name,
            "MONGO_URL"
        );
        let env = Env::from_pairs([("MONGO_URL", "mongodb://localhost:27017")]);
        assert_eq!(
            MongoConfig::from_env(&env, "auth").unwrap().database,
            "auth"
        );
        let env = Env::from_pairs([(
            "MONGO_URL",
            "mongodb+srv://doadmin:pw@db-mongodb-fra1-1.mongo.ondigitalocean.com/admin?tls=true&authSource=admin",
        )]);
        assert!(MongoConfig::from_env(&env, "auth").is_ok());
        // Malformed: refused here, not retried at start-up as if the server were down.
        for url in [
            "mongodb://localhost:notaport",
            "mongodb+srv://host.example.com:27017",
        ] {
            let env = Env::from_pairs([("MONGO_URL", url)]);
            let err = MongoConfig::from_env(&env, "auth").unwrap_err();
            assert_eq!(
                (err.name.as_str(), err.problem.starts_with("malformed")),
                ("MONGO_URL", true),
                "{url}"
            );
        }
    }

    #[test]
    fn a_mongo_tls_file_that_is_missing_is_named_at_start_up() {
        for url in [
            "mongodb://localhost:27017/?tls=true&tlsCAFile=/nonexistent/mongo-ca.crt",
            "mongodb+srv://u:p@db.example.com/admin?tls=true&tlsCAFile=%2Fnonexistent%2Fmongo-ca.crt",
            "mongodb://localhost:27017/?tls=true&tlsCertificateKeyFile=/nonexistent/mongo-ca.crt",
        ] {
            let err =
                MongoConfig::from_env(&Env::from_pairs([("MONGO_URL", url)]), "auth").unwrap_err();
            assert_eq!(err.name, "MONGO_URL");
            assert!(
                err.problem.contains("/nonexistent/mongo-ca.crt"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn credentials_are_hidden_from_urls_and_debug_output() {
        for (url, shown) in [
            (
                "mongodb://u:hunter2@h:27017/db?tls=true",
                "mongodb://***@h:27017/db?tls=true",
            ),
            ("rediss://:hunter2@h:6379", "rediss://***@h:6379"),
            ("mongodb://h1,h2/db?x=a@b", "mongodb://h1,h2/db?x=a@b"),
            ("redis://u:pass@word@h", "redis://***@h"),
            ("mongodb://h:27017", "mongodb://h:27017"),
        ] {
            assert_eq!(redacted_url(url), shown);
        }
        let config = MongoConfig {
            url: "mongodb+srv://doadmin:hunter2@db.example.com/admin".to_owned(),
            database: "auth".to_owned(),
        };
        assert!(!format!("{config:?}").contains("hunter2"), "{config:?}");
    }
}
