//! Email templates: MJML for the HTML part and plain text for the other, one pair per email
//! in `services/notifications/templates/`, compiled into the binary.
//!
//! MJML is compiled to HTML (mrml), with the `{{ }}` placeholders still in place, and the
//! result is kept in the process (by the source's SHA-256) and cached in Redis under the
//! same hash, for the replicas that start later. A process compiles a template at most
//! once unless Redis fails; it asks Redis only when it has not compiled or read that source
//! yet. Two replicas that miss the cache at the same moment both compile and both store
//! (the same HTML; the last write wins). A read does not refresh the entry's expiry: it
//! expires [`CACHE_TTL`] after it was stored, however much it is used, and the next
//! process to miss it compiles and stores it again. Each email then renders its variables
//! into that HTML (minijinja, HTML-escaped) and into the text template (not escaped).
//!
//! The cache is an optimisation, never a dependency: compiling takes milliseconds. When
//! Redis cannot be reached (or answers with an error), the template is compiled in the
//! process, the error counted (`email_template_cache_total{result="error"}`) and logged,
//! and the email goes out all the same. The connection is made lazily, on first use, so
//! start-up and readiness never wait for Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::redis::RedisConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

/// How long a compiled template stays in Redis after it was stored (reads do not extend
/// it). Not tunable: an entry is a few kilobytes per template version, and an expired one
/// costs a compilation of milliseconds; this only bounds what old versions leave behind.
const CACHE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest one Redis command (with its connection) may take before the template is
/// compiled in the process instead. Not tunable: waiting longer than a compilation takes
/// gains nothing.
const REDIS_TIMEOUT: Duration = Duration::from_millis(1500);

/// Every email the service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    Welcome,
    Reservation,
    Receipt,
    OrderCancelled,
    Refund,
    PasswordReset,
}

impl Template {
    pub const ALL: [Self; 6] = [
        Self::Welcome,
        Self::Reservation,
        Self::Receipt,
        Self::OrderCancelled,
        Self::Refund,
        Self::PasswordReset,
    ];

    /// The files' stem, and the `template` label of the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::Reservation => "reservation",
            Self::Receipt => "receipt",
            Self::OrderCancelled => "order_cancelled",
            Self::Refund => "refund",
            Self::PasswordReset => "password_reset",
        }
    }

    /// The subject line, itself a template of the same variables (not escaped).
    fn subject(self) -> &'static str {
        match self {
            Self::Welcome => "Welcome to GitTix",
            Self::Reservation => "Your reservation of {{ ticket_title }}: pay by {{ pay_by }}",
            Self::Receipt => "Your receipt for {{ ticket_title }}",
            Self::OrderCancelled => {
                "{% if expired %}Your reservation of {{ ticket_title }} expired\
                 {% else %}Your order for {{ ticket_title }} was cancelled{% endif %}"
            }
            Self::Refund => "Your refund of {{ amount }} for {{ ticket_title }}",
            Self::PasswordReset => "Reset your GitTix password",
        }
    }
}

/// A template's two sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub mjml: String,
    pub text: String,
}

/// The sources of every template.
pub type Sources = HashMap<Template, Source>;

/// The templates in `services/notifications/templates/`, as compiled into the binary.
pub fn embedded() -> Sources {
    macro_rules! source {
        ($template:expr, $stem:literal) => {
            (
                $template,
                Source {
                    mjml: include_str!(concat!("../templates/", $stem, ".mjml")).to_owned(),
                    text: include_str!(concat!("../templates/", $stem, ".txt")).to_owned(),
                },
            )
        };
    }
    HashMap::from([
        source!(Template::Welcome, "welcome"),
        source!(Template::Reservation, "reservation"),
        source!(Template::Receipt, "receipt"),
        source!(Template::OrderCancelled, "order_cancelled"),
        source!(Template::Refund, "refund"),
        source!(Template::PasswordReset, "password_reset"),
    ])
}

/// A rendered email's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Where the compiled HTML came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Redis had it.
    Hit,
    /// Compiled here, and stored in Redis.
    Miss,
    /// This process had compiled or read it before.
    Memory,
    /// Redis failed (unreachable, or an error): compiled here.
    Error,
}

impl Cache {
    /// The `result` label of `email_template_cache_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Memory => "memory",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template itself is broken (MJML that does not compile, a variable it names that
    /// the email does not have): a bug to fix, not a moment to wait out.
    #[error("template {template}: {problem}")]
    Template {
        template: &'static str,
        problem: String,
    },
}

#[derive(Clone)]
pub struct Templates {
    sources: Arc<Sources>,
    env: Arc<Environment<'static>>,
    redis: ConnectionManager,
    prefix: String,
    /// Compiled HTML by cache key (the source's hash): a handful of entries, one per
    /// template version this process renders.
    compiled: Arc<Mutex<HashMap<String, String>>>,
}

impl Templates {
    /// Templates cached in the Redis `redis` names, under `prefix`. Does not connect: the
    /// connection is made on first use (and remade after a failure), so this succeeds
    /// whether Redis is up or not; only a malformed URL or a missing source fails.
    pub async fn connect(
        redis: &RedisConfig,
        prefix: &str,
        sources: Sources,
    ) -> anyhow::Result<Self> {
        let client = redis.client()?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            // One attempt per use: the caller compiles instead of waiting.
            .set_number_of_retries(0);
        let redis = ConnectionManager::new_lazy_with_config(client, config)?;
        for template in Template::ALL {
            anyhow::ensure!(
                sources.contains_key(&template),
                "no source for template {}",
                template.name()
            );
        }
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // A placeholder the email does not fill is an error, not an empty string.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        Ok(Self {
            sources: Arc::new(sources),
            env: Arc::new(env),
            redis,
            prefix: prefix.to_owned(),
            compiled: Arc::default(),
        })
    }

    /// The Redis key of a compiled MJML source: its SHA-256.
    pub fn cache_key(&self, mjml: &str) -> String {
        format!(
            "{}:template:{}",
            self.prefix,
            hex::encode(Sha256::digest(mjml.as_bytes()))
        )
    }

    /// The template's HTML with its placeholders: from this process, from Redis, or
    /// compiled (and stored in both). A Redis failure is not an error: the template is
    /// compiled here.
    pub async fn compiled(&self, template: Template) -> Result<(String, Cache), RenderError> {
        let source = self.source(template)?;
        let key = self.cache_key(&source.mjml);
        let (html, cache) = match self.remembered(&key) {
            Some(html) => (html, Cache::Memory),
            None => {
                self.cached_or_compiled(template, &source.mjml, &key)
                    .await?
            }
        };
        metrics::counter!("email_template_cache_total", "result" => cache.label()).increment(1);
        Ok((html, cache))
    }

    fn remembered(&self, key: &str) -> Option<String> {
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn remember(&self, key: &str, html: &str) {
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_owned(), html.to_owned());
    }

    async fn cached_or_compiled(
        &self,
        template: Template,
        mjml: &str,
        key: &str,
    ) -> Result<(String, Cache), RenderError> {
        let name = template.name();
        let mut redis = self.redis.clone();
        let mut get = redis::cmd("GET");
        get.arg(key);
        let cached = match bounded(get.query_async::<Option<String>>(&mut redis)).await {
            Ok(cached) => cached,
            Err(err) => {
                tracing::warn!(template = name, error = %err, "template cache unavailable; compiling in the process");
                let html = compile(template, mjml)?;
                self.remember(key, &html);
                return Ok((html, Cache::Error));
            }
        };
        if let Some(html) = cached {
            self.remember(key, &html);
            return Ok((html, Cache::Hit));
        }
        let html = compile(template, mjml)?;
        self.remember(key, &html);
        let mut set = redis::cmd("SET");
        set.arg(key).arg(&html).arg("EX").arg(CACHE_TTL.as_secs());
        match bounded(set.query_async::<()>(&mut redis)).await {
            Ok(()) => {
                tracing::info!(template = name, key, "template compiled and cached");
                Ok((html, Cache::Miss))
            }
            Err(err) => {
                tracing::warn!(template = name, error = %err, "template compiled, but not cached");
                Ok((html, Cache::Error))
            }
        }
    }

    /// Subject, HTML and text of `template` with `vars`.
    pub async fn render(&self, template: Template, vars: Value) -> Result<Rendered, RenderError> {
        let (html, _) = self.compiled(template).await?;
        let source = self.source(template)?;
        let name = template.name();
        let render = |suffix: &str, source: &str| {
            self.env
                .render_named_str(&format!("{name}.{suffix}"), source, vars.clone())
                .map_err(|err| RenderError::Template {
                    template: name,
                    problem: format!("{suffix}: {err:#}"),
                })
        };
        Ok(Rendered {
            subject: render("subject", template.subject())?.trim().to_owned(),
            html: render("html", &html)?,
            text: render("txt", &source.text)?,
        })
    }

    /// Whether Redis answers (for logs: readiness does not depend on it).
    pub async fn ping(&self) -> Result<(), String> {
        let mut redis = self.redis.clone();
        bounded(redis::cmd("PING").query_async::<String>(&mut redis))
            .await
            .map(|_| ())
            .map_err(|e| format!("redis: {e}"))
    }

    fn source(&self, template: Template) -> Result<&Source, RenderError> {
        self.sources
            .get(&template)
            .ok_or_else(|| RenderError::Template {
                template: template.name(),
                problem: "no source".into(),
            })
    }
}

/// A Redis command, bounded by [`REDIS_TIMEOUT`] (the connection included).
async fn bounded<T>(command: impl Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(REDIS_TIMEOUT, command).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {REDIS_TIMEOUT:?}")),
    }
}

/// MJML to HTML, placeholders and all.
pub fn compile(template: Template, mjml: &str) -> Result<String, RenderError> {
    let problem = |problem: String| RenderError::Template {
        template: template.name(),
        problem,
    };
    let parsed = mrml::parse(mjml).map_err(|err| problem(format!("MJML: {err}")))?;
    parsed
        .element
        .render(&mrml::prelude::render::RenderOptions::default())
        .map_err(|err| problem(format!("MJML rendering: {err}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_embedded_template_compiles_with_its_placeholders_in_place() {
        let sources = embedded();
        for template in Template::ALL {
            let html = compile(template, &sources[&template].mjml).unwrap();
            assert!(html.contains("<html"), "{}", template.name());
            assert!(
                html.contains("{{"),
                "{}: placeholders survive compilation",
                template.name()
            );
        }
    }

    #[test]
    fn broken_mjml_is_a_template_error() {
        let err = compile(Template::Welcome, "<mjml><mj-body><mj-section>").unwrap_err();
        assert!(matches!(err, RenderError::Template { .. }), "{err}");
    }
}
