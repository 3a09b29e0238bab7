use std::net::SocketAddr;

use common::config::{ConfigError, Env, HttpConfig};
use reqwest::Url;

/// Everything the client reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub services: ServiceUrls,
    /// `STRIPE_PUBLISHABLE_KEY`: turns on Stripe Elements on the order page. Without it the
    /// order page offers the simulated gateway's "Pay (test mode)" button.
    pub stripe_publishable_key: Option<String>,
    /// `TRUSTED_PROXY_HOPS`: proxies in front of the client that append to
    /// `X-Forwarded-For` (the ingress). The visitor's address read this way is passed on
    /// to the services, whose per-address limits then count visitors, not the client.
    pub trusted_hops: usize,
    /// `METRICS_PORT`: where `GET /metrics` is served, apart from the pages: the ingress
    /// sends every path to the client's port, so metrics there would be public. None
    /// without it.
    pub metrics_addr: Option<SocketAddr>,
}

/// Internal URLs of the services the pages call (`AUTH_URL`, `TICKETS_URL`, …).
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    pub auth: Url,
    pub tickets: Url,
    pub orders: Url,
    pub payments: Url,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let http = HttpConfig::from_env(env)?;
        let metrics_port: Option<u16> = env.optional("METRICS_PORT")?;
        if metrics_port.is_some_and(|port| port == http.addr.port()) {
            return Err(ConfigError::new(
                "METRICS_PORT",
                "must differ from PORT: the pages' port is public through the ingress",
            ));
        }
        Ok(Self {
            metrics_addr: metrics_port.map(|port| SocketAddr::new(http.addr.ip(), port)),
            http,
            services: ServiceUrls {
                auth: service_url(env, "AUTH_URL")?,
                tickets: service_url(env, "TICKETS_URL")?,
                orders: service_url(env, "ORDERS_URL")?,
                payments: service_url(env, "PAYMENTS_URL")?,
            },
            stripe_publishable_key: publishable_key(env)?,
            trusted_hops: env.or("TRUSTED_PROXY_HOPS", 1)?,
        })
    }
}

/// A plain `http://` base URL: the services are reached inside the cluster and this build
/// carries no TLS stack.
fn service_url(env: &Env, name: &str) -> Result<Url, ConfigError> {
    let url: Url = env.required(name)?;
    if url.scheme() != "http" {
        return Err(ConfigError::new(
            name,
            "must be an http:// URL (services are called inside the cluster, without TLS)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(name, "must not have a query or fragment"));
    }
    Ok(url)
}

/// The key ends up in every order page, so only a publishable key is accepted: a secret
/// key put here by mistake is refused without being printed.
fn publishable_key(env: &Env) -> Result<Option<String>, ConfigError> {
    let key: Option<String> = env.optional("STRIPE_PUBLISHABLE_KEY")?;
    match key {
        Some(key) if !key.starts_with("pk_") => Err(ConfigError::new(
            "STRIPE_PUBLISHABLE_KEY",
            "must be a publishable key (pk_…); it is sent to browsers",
        )),
        key => Ok(key),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> Env {
        let mut pairs = vec![
            ("AUTH_URL", "http://auth:3000"),
            ("TICKETS_URL", "http://tickets:3000/"),
            ("ORDERS_URL", "http://orders:3000"),
            ("PAYMENTS_URL", "http://payments:3000"),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs)
    }

    #[test]
    fn metrics_get_a_port_of_their_own_or_none() {
        assert!(Config::from_env(&env(&[])).unwrap().metrics_addr.is_none());
        let config = Config::from_env(&env(&[("METRICS_PORT", "9100")])).unwrap();
        assert_eq!(config.metrics_addr.unwrap().port(), 9100);
        let err = Config::from_env(&env(&[("METRICS_PORT", "3000")])).unwrap_err();
        assert_eq!(err.name, "METRICS_PORT");
    }

    #[test]
    fn https_and_garbage_urls_are_rejected_by_name() {
        let err = Config::from_env(&env(&[("AUTH_URL", "https://auth")])).unwrap_err();
        assert_eq!(err.name, "AUTH_URL");
        let err = Config::from_env(&env(&[("ORDERS_URL", "not a url")])).unwrap_err();
        assert_eq!(err.name, "ORDERS_URL");
    }

    #[test]
    fn a_secret_stripe_key_is_refused_without_being_printed() {
        let err = Config::from_env(&env(&[("STRIPE_PUBLISHABLE_KEY", "sk_test_abc")])).unwrap_err();
        assert_eq!(err.name, "STRIPE_PUBLISHABLE_KEY");
        assert!(!err.to_string().contains("sk_test_abc"));
        let config = Config::from_env(&env(&[("STRIPE_PUBLISHABLE_KEY", "pk_test_abc")])).unwrap();
        assert_eq!(
            config.stripe_publishable_key.as_deref(),
            Some("pk_test_abc")
        );
        assert!(
            Config::from_env(&env(&[]))
                .unwrap()
                .stripe_publishable_key
                .is_none()
        );
    }
}
