//! Email templates: MJML for the HTML part and plain text for the other, one pair per email
//! in `services/notifications/templates/`, compiled into the binary.
//!
//! MJML is compiled to HTML (mrml) once per template source, with the `{{ }}` placeholders
//! still in place, and the result is cached in Redis under the source's SHA-256: every
//! replica shares it, and a changed template (a new hash) is compiled once. Each email then
//! renders its variables into that HTML (minijinja, HTML-escaped) and into the text
//! template (not escaped).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

/// How long a compiled template stays cached unused by a deployment; then it is compiled
/// again, once.
const CACHE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

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

/// Whether the compiled HTML came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    Hit,
    Miss,
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
    /// The cache could not be read or written: try again.
    #[error("template cache: {0}")]
    Cache(#[from] redis::RedisError),
}

#[derive(Clone)]
pub struct Templates {
    sources: Arc<Sources>,
    env: Arc<Environment<'static>>,
    redis: ConnectionManager,
    prefix: String,
}

impl Templates {
    /// Templates cached in the Redis at `redis_url`, under `prefix`.
    pub async fn connect(redis_url: &str, prefix: &str, sources: Sources) -> anyhow::Result<Self> {
        let client = redis::Client::open(redis_url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)));
        let redis = ConnectionManager::new_with_config(client, config).await?;
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

    /// The template's HTML with its placeholders, from the cache or compiled (and cached).
    pub async fn compiled(&self, template: Template) -> Result<(String, Cache), RenderError> {
        let source = self.source(template)?;
        let key = self.cache_key(&source.mjml);
        let mut redis = self.redis.clone();
        let cached: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut redis).await?;
        let (html, cache) = match cached {
            Some(html) => (html, Cache::Hit),
            None => {
                let html = compile(template, &source.mjml)?;
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&html)
                    .arg("EX")
                    .arg(CACHE_TTL.as_secs())
                    .query_async::<()>(&mut redis)
                    .await?;
                tracing::info!(
                    template = template.name(),
                    key,
                    "template compiled and cached"
                );
                (html, Cache::Miss)
            }
        };
        let result = match cache {
            Cache::Hit => "hit",
            Cache::Miss => "miss",
        };
        metrics::counter!("email_template_cache_total", "result" => result).increment(1);
        Ok((html, cache))
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

    pub async fn ping(&self) -> Result<(), String> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.redis.clone())
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
