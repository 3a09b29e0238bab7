use std::time::Duration;

use common::bus::BusConfig;
use common::config::{ConfigError, Env, HttpConfig, MongoConfig, Secret};
use common::redis::RedisConfig;
use lettre::message::Mailbox;

/// How emails leave (`MAIL_TRANSPORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// SendGrid's v3 Mail Send API at `api_url` (`SENDGRID_API_URL`), authorised by
    /// `SENDGRID_API_KEY` (never printed: [`Secret`]).
    SendGrid { api_key: Secret, api_url: String },
    /// Plain SMTP (`smtp://host:port`), e.g. a relay in the cluster or Mailpit locally.
    Smtp { host: String, port: u16 },
}

/// Everything the notifications service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub mongo: MongoConfig,
    pub bus: BusConfig,
    /// `REDIS_URL`, `REDIS_CA_FILE`: the compiled-template cache.
    pub redis: RedisConfig,
    /// `NOTIFICATIONS_KEY_PREFIX`: namespace of this deployment's keys in Redis.
    pub key_prefix: String,
    pub transport: TransportConfig,
    /// `MAIL_FROM`: the sender of every email.
    pub from: Mailbox,
    /// `PUBLIC_URL`: the origin of links in emails, without a trailing slash.
    pub public_url: String,
    /// `MAIL_SEND_TIMEOUT_SECONDS`: the longest one send may take.
    pub send_timeout: Duration,
    /// `MAIL_MAX_EVENT_AGE_HOURS`: an event older than this sends no email (a first
    /// deployment reads the stream's whole history; nobody wants last month's welcome).
    pub max_event_age: Duration,
}

pub const DEFAULT_FROM: &str = "GitTix <no-reply@gittix.dev>";
pub const DEFAULT_SENDGRID_API_URL: &str = "https://api.sendgrid.com";

/// A send must end well within the listener's limit on a handler (its ack wait, 30 s, less
/// a second): a handler aborted mid-send leaves its claim, and the email is lost.
const MAX_SEND_TIMEOUT: Duration = Duration::from_secs(20);

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let from: String = env.or("MAIL_FROM", DEFAULT_FROM.to_owned())?;
        let from = from
            .parse::<Mailbox>()
            .map_err(|err| ConfigError::new("MAIL_FROM", format!("not an email address: {err}")))?;
        Ok(Self {
            http: HttpConfig::from_env(env)?,
            mongo: MongoConfig::from_env(env, "notifications")?,
            bus: BusConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            key_prefix: env.or(
                "NOTIFICATIONS_KEY_PREFIX",
                "gittix:notifications".to_owned(),
            )?,
            transport: transport(env)?,
            from,
            public_url: public_url(env)?,
            send_timeout: send_timeout(env)?,
            max_event_age: max_event_age(env)?,
        })
    }
}

/// The most `MAIL_MAX_EVENT_AGE_HOURS` may be: a year. Delivery records are kept a day
/// longer than this (a TTL index, whose expiry MongoDB bounds to a 32-bit count of seconds).
const MAX_EVENT_AGE_HOURS: u64 = 365 * 24;

fn max_event_age(env: &Env) -> Result<Duration, ConfigError> {
    let hours: u64 = env.or("MAIL_MAX_EVENT_AGE_HOURS", 72)?;
    if hours == 0 {
        return Err(ConfigError::new(
            "MAIL_MAX_EVENT_AGE_HOURS",
            "must be a positive number of hours",
        ));
    }
    if hours > MAX_EVENT_AGE_HOURS {
        return Err(ConfigError::new(
            "MAIL_MAX_EVENT_AGE_HOURS",
            format!("must be at most {MAX_EVENT_AGE_HOURS} hours (a year), got {hours}"),
        ));
    }
    // Cannot overflow below the bound; checked all the same.
    hours
        .checked_mul(3600)
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::new("MAIL_MAX_EVENT_AGE_HOURS", "too large"))
}

fn transport(env: &Env) -> Result<TransportConfig, ConfigError> {
    let raw: String = env.required("MAIL_TRANSPORT")?;
    if raw == "sendgrid" {
        let api_url: String = env.or("SENDGRID_API_URL", DEFAULT_SENDGRID_API_URL.to_owned())?;
        if !api_url.starts_with("https://") && !api_url.starts_with("http://") {
            return Err(ConfigError::new(
                "SENDGRID_API_URL",
                "must start with https:// (or http:// for a stand-in)",
            ));
        }
        return Ok(TransportConfig::SendGrid {
            api_key: env.secret("SENDGRID_API_KEY")?,
            api_url: api_url.trim_end_matches('/').to_owned(),
        });
    }
    let smtp = raw.strip_prefix("smtp://").ok_or_else(|| {
        ConfigError::new(
            "MAIL_TRANSPORT",
            format!("expected sendgrid or smtp://host:port, got {raw:?}"),
        )
    })?;
    let (host, port) = smtp.trim_end_matches('/').rsplit_once(':').ok_or_else(|| {
        ConfigError::new("MAIL_TRANSPORT", "an smtp:// transport needs host:port")
    })?;
    let port: u16 = port
        .parse()
        .map_err(|_| ConfigError::new("MAIL_TRANSPORT", format!("invalid port {port:?}")))?;
    if host.is_empty() || host.contains(['@', '/']) {
        return Err(ConfigError::new(
            "MAIL_TRANSPORT",
            "an smtp:// transport is host:port, without credentials or a path",
        ));
    }
    Ok(TransportConfig::Smtp {
        host: host.to_owned(),
        port,
    })
}

fn send_timeout(env: &Env) -> Result<Duration, ConfigError> {
    let timeout = env.seconds("MAIL_SEND_TIMEOUT_SECONDS", 10)?;
    if timeout > MAX_SEND_TIMEOUT {
        return Err(ConfigError::new(
            "MAIL_SEND_TIMEOUT_SECONDS",
            format!("must be at most {} seconds", MAX_SEND_TIMEOUT.as_secs()),
        ));
    }
    Ok(timeout)
}

const UNFIT_IN_AN_ORIGIN: [char; 8] = ['?', '#', ' ', '"', '\'', '<', '>', '&'];

fn public_url(env: &Env) -> Result<String, ConfigError> {
    let url: String = env.required("PUBLIC_URL")?;
    let origin = url.trim_end_matches('/');
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        // Links go into HTML unescaped (`emails::link`): nothing in the origin may need it.
        Some(host) if !host.is_empty() && !host.contains(UNFIT_IN_AN_ORIGIN) => {
            Ok(origin.to_owned())
        }
        _ => Err(ConfigError::new(
            "PUBLIC_URL",
            "must be an http(s) origin such as https://gittix.dev",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> Env {
        let mut pairs = vec![
            ("MONGO_URL", "mongodb://localhost"),
            ("NATS_URL", "nats://localhost"),
            ("REDIS_URL", "redis://localhost"),
            ("PUBLIC_URL", "https://gittix.dev/"),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs)
    }

    #[test]
    fn smtp_transports_are_host_and_port() {
        let config = Config::from_env(&env(&[("MAIL_TRANSPORT", "smtp://mailpit:1025")])).unwrap();
        assert_eq!(
            config.transport,
            TransportConfig::Smtp {
                host: "mailpit".into(),
                port: 1025
            }
        );
        assert_eq!(config.public_url, "https://gittix.dev");
        assert_eq!(config.from.to_string(), DEFAULT_FROM);
        assert_eq!(config.mongo.database, "notifications");
        assert_eq!(config.key_prefix, "gittix:notifications");
        assert_eq!(config.send_timeout, Duration::from_secs(10));
        assert_eq!(config.max_event_age, Duration::from_secs(72 * 3600));
        let err = Config::from_env(&env(&[
            ("MAIL_TRANSPORT", "smtp://mailpit:1025"),
            ("MAIL_SEND_TIMEOUT_SECONDS", "30"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, "MAIL_SEND_TIMEOUT_SECONDS");
        for huge in ["8761", "5124095576030431"] {
            let err = Config::from_env(&env(&[
                ("MAIL_TRANSPORT", "smtp://mailpit:1025"),
                ("MAIL_MAX_EVENT_AGE_HOURS", huge),
            ]))
            .unwrap_err();
            assert_eq!(err.name, "MAIL_MAX_EVENT_AGE_HOURS", "{huge}");
        }
        let config = Config::from_env(&env(&[
            ("MAIL_TRANSPORT", "smtp://mailpit:1025"),
            ("MAIL_MAX_EVENT_AGE_HOURS", "8760"),
        ]))
        .unwrap();
        assert_eq!(config.max_event_age, Duration::from_secs(8760 * 3600));
        for bad in [
            "smtp://mailpit",
            "smtp://u:p@mailpit:25",
            "mailpit:25",
            "ses",
        ] {
            let err = Config::from_env(&env(&[("MAIL_TRANSPORT", bad)])).unwrap_err();
            assert_eq!(err.name, "MAIL_TRANSPORT", "{bad}");
        }
    }

    #[test]
    fn sendgrid_needs_its_key_and_never_prints_it() {
        let err = Config::from_env(&env(&[("MAIL_TRANSPORT", "sendgrid")])).unwrap_err();
        assert_eq!(err.name, "SENDGRID_API_KEY");
        let config = Config::from_env(&env(&[
            ("MAIL_TRANSPORT", "sendgrid"),
            ("SENDGRID_API_KEY", "SG.very-secret-key"),
            (
                "REDIS_URL",
                "rediss://default:very-secret-password@valkey:25061",
            ),
        ]))
        .unwrap();
        let TransportConfig::SendGrid { api_url, .. } = &config.transport else {
            panic!("{:?}", config.transport)
        };
        assert_eq!(api_url, DEFAULT_SENDGRID_API_URL);
        assert!(!format!("{config:?}").contains("very-secret"), "{config:?}");
    }

    #[test]
    fn public_url_and_sender_are_checked() {
        for bad in [
            "gittix.dev",
            "https://",
            "ftp://gittix.dev",
            "https://gittix.dev\"><script>",
        ] {
            let err = Config::from_env(&env(&[
                ("MAIL_TRANSPORT", "smtp://mailpit:1025"),
                ("PUBLIC_URL", bad),
            ]))
            .unwrap_err();
            assert_eq!(err.name, "PUBLIC_URL", "{bad}");
        }
        let err = Config::from_env(&env(&[
            ("MAIL_TRANSPORT", "smtp://mailpit:1025"),
            ("MAIL_FROM", "not an address"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, "MAIL_FROM");
    }
}
