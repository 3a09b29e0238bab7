//! The compiled-template cache in Redis: keyed by the source's hash, shared by replicas,
//! compiled again when the source changes; and without Redis, templates compile in the
//! process.

use common::redis::RedisConfig;
use minijinja::context;
use notifications::templates::{self, Cache, Template, Templates};

async fn templates(prefix: &str, sources: templates::Sources) -> Templates {
    Templates::connect(
        &RedisConfig::plain(&testkit::servers().redis_url),
        prefix,
        sources,
    )
    .await
    .unwrap()
}

async fn exists(key: &str) -> bool {
    let client = redis::Client::open(testkit::servers().redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap()
        == 1
}

#[tokio::test]
async fn a_template_is_compiled_once_shared_by_replicas_and_again_when_its_source_changes() {
    let prefix = testkit::unique_name("notifications");
    let replica_a = templates(&prefix, templates::embedded()).await;
    let replica_b = templates(&prefix, templates::embedded()).await;
    let source = &templates::embedded()[&Template::Welcome].mjml;
    let key = replica_a.cache_key(source);
    assert!(key.starts_with(&format!("{prefix}:template:")));
    assert_eq!(
        key.len(),
        prefix.len() + ":template:".len() + 64,
        "a SHA-256 in hex"
    );
    assert!(!exists(&key).await);

    let (html, cache) = replica_a.compiled(Template::Welcome).await.unwrap();
    assert_eq!(cache, Cache::Miss);
    assert!(exists(&key).await, "cached under the source's hash");
    assert!(
        html.contains("{{ email }}"),
        "placeholders kept in the cached HTML"
    );
    assert_eq!(
        replica_a.compiled(Template::Welcome).await.unwrap(),
        (html.clone(), Cache::Memory),
        "kept in the process once compiled"
    );
    assert_eq!(
        replica_b.compiled(Template::Welcome).await.unwrap(),
        (html.clone(), Cache::Hit),
        "another replica uses the same compilation"
    );
    assert_eq!(
        replica_b.compiled(Template::Receipt).await.unwrap().1,
        Cache::Miss,
        "each template has its own entry"
    );

    // A new version of the template: a new key, compiled once, then shared.
    let mut changed = templates::embedded();
    changed.get_mut(&Template::Welcome).unwrap().mjml = source.replace(
        "Browse tickets</mj-button>",
        "Browse tickets</mj-button><mj-text>New this season: gift tickets.</mj-text>",
    );
    let replica_c = templates(&prefix, changed.clone()).await;
    let new_key = replica_c.cache_key(&changed[&Template::Welcome].mjml);
    assert_ne!(new_key, key);
    let (new_html, cache) = replica_c.compiled(Template::Welcome).await.unwrap();
    assert_eq!(cache, Cache::Miss, "recompiled");
    assert!(new_html.contains("gift tickets"));
    assert!(exists(&new_key).await);
    assert_eq!(
        templates(&prefix, changed)
            .await
            .compiled(Template::Welcome)
            .await
            .unwrap(),
        (new_html, Cache::Hit)
    );
    // The old version still serves replicas that run it.
    assert_eq!(
        templates(&prefix, templates::embedded())
            .await
            .compiled(Template::Welcome)
            .await
            .unwrap(),
        (html, Cache::Hit)
    );

    let rendered = replica_c
        .render(
            Template::Welcome,
            context! { email => "a&b@example.com", tickets_url => "https://gittix.test/" },
        )
        .await
        .unwrap();
    assert!(rendered.html.contains("gift tickets"));
    assert!(
        rendered.html.contains("a&amp;b@example.com"),
        "escaped in HTML"
    );
    assert!(rendered.text.contains("a&b@example.com"), "not in text");
}

#[tokio::test]
async fn a_placeholder_the_email_does_not_fill_is_an_error() {
    let prefix = testkit::unique_name("notifications");
    let templates = templates(&prefix, templates::embedded()).await;
    let err = templates
        .render(Template::Welcome, context! { email => "a@example.com" })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("welcome"), "{err}");
}

/// A `redis://` URL nothing listens at.
pub fn unreachable_redis() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test]
async fn without_redis_templates_compile_in_the_process() {
    let prefix = testkit::unique_name("notifications");
    let started = std::time::Instant::now();
    let templates = Templates::connect(
        &RedisConfig::plain(unreachable_redis()),
        &prefix,
        templates::embedded(),
    )
    .await
    .expect("set up without Redis");
    let (html, cache) = templates.compiled(Template::Welcome).await.unwrap();
    assert_eq!(cache, Cache::Error);
    assert!(html.contains("{{ email }}"));
    assert_eq!(
        templates.compiled(Template::Welcome).await.unwrap(),
        (html, Cache::Memory),
        "compiled once, then kept"
    );
    let rendered = templates
        .render(
            Template::Welcome,
            context! { email => "a@example.com", tickets_url => "https://gittix.test/" },
        )
        .await
        .unwrap();
    assert!(rendered.html.contains("a@example.com"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
