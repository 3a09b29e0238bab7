//! Managed data stores over TLS (DigitalOcean's Valkey/Redis and MongoDB): `rediss://` and
//! Mongo's `tls=true&tlsCAFile=` against real servers behind certificates of a throwaway CA,
//! trusted through the CA file a Kubernetes secret would mount; the wrong CA, none, or a
//! name the certificate does not cover must fail. And `mongodb+srv://` is understood.
//!
//! Redis: Debian's redis-server with its own TLS port, started per test. Mongo: a TLS front
//! (tokio-rustls) before the Mongo-compatible test server, which speaks plain TCP.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bson::doc;
use common::config::{ConfigError, Env, MongoConfig};
use common::redis::RedisConfig;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use testkit::TestDatabase;

/// A throwaway CA, a server certificate it signed for `localhost` only, and a second CA
/// that signed nothing here; all as PEM files in a folder removed on drop.
struct Pki {
    dir: PathBuf,
    ca_file: PathBuf,
    other_ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

impl Pki {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gittix-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca_pem, issuer) = new_ca("GitTix test CA");
        let (other_ca_pem, _) = new_ca("Some other CA");
        // `localhost` only: connecting by 127.0.0.1 must fail the name check.
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let pki = Self {
            ca_file: dir.join("ca.crt"),
            other_ca_file: dir.join("other-ca.crt"),
            cert_file: dir.join("server.crt"),
            key_file: dir.join("server.key"),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
            dir,
        };
        std::fs::write(&pki.ca_file, ca_pem).unwrap();
        std::fs::write(&pki.other_ca_file, other_ca_pem).unwrap();
        std::fs::write(&pki.cert_file, cert.pem()).unwrap();
        std::fs::write(&pki.key_file, key.serialize_pem()).unwrap();
        pki
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![self.cert_der.clone()], key)
                .unwrap(),
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// redis-server answering TLS only, on a port of its own; killed on drop.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(pki: &Pki) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&pki.dir)
            .arg("--tls-cert-file")
            .arg(&pki.cert_file)
            .arg("--tls-key-file")
            .arg(&pki.key_file)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca_file)
            // Clients show no certificate of their own (managed Valkey asks for none).
            .args(["--tls-auth-clients", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/install.sh installs it)");
        let mut server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while StdStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server exited with {status}: does it support --tls-port?");
            }
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// As the services connect: the config from the environment, a connection manager with
/// short limits, then a round trip.
async fn redis_round_trip(config: &RedisConfig) -> Result<String, String> {
    let client = config.client().map_err(|e| e.to_string())?;
    let limits = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(3)))
        .set_number_of_retries(0);
    let mut redis = ConnectionManager::new_with_config(client, limits)
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("SET")
        .arg("gittix:tls")
        .arg("over TLS")
        .query_async::<()>(&mut redis)
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("GET")
        .arg("gittix:tls")
        .query_async::<String>(&mut redis)
        .await
        .map_err(|e| e.to_string())
}

fn redis_config(url: &str, ca_file: Option<&Path>) -> Result<RedisConfig, ConfigError> {
    let mut pairs = vec![("REDIS_URL", url)];
    if let Some(ca_file) = ca_file {
        pairs.push(("REDIS_CA_FILE", ca_file.to_str().unwrap()));
    }
    RedisConfig::from_env(&Env::from_pairs(pairs))
}

#[tokio::test]
async fn rediss_trusting_the_ca_file_connects_and_runs_commands() {
    let pki = Pki::new();
    let server = TlsRedis::start(&pki);
    let url = format!("rediss://localhost:{}", server.port);
    let config = redis_config(&url, Some(&pki.ca_file)).unwrap();
    assert_eq!(redis_round_trip(&config).await.unwrap(), "over TLS");
}

#[tokio::test]
async fn rediss_fails_without_the_ca_with_the_wrong_ca_or_for_another_name() {
    let pki = Pki::new();
    let server = TlsRedis::start(&pki);
    let url = format!("rediss://localhost:{}", server.port);
    let by_address = format!("rediss://127.0.0.1:{}", server.port);
    for (case, config, expected) in [
        // The public roots do not know the throwaway CA.
        (
            "no CA file",
            redis_config(&url, None).unwrap(),
            "UnknownIssuer",
        ),
        (
            "another CA",
            redis_config(&url, Some(&pki.other_ca_file)).unwrap(),
            "UnknownIssuer",
        ),
        (
            "a name the certificate does not cover",
            redis_config(&by_address, Some(&pki.ca_file)).unwrap(),
            "not valid for name",
        ),
    ] {
        let err = redis_round_trip(&config).await.unwrap_err();
        assert!(
            err.contains("invalid peer certificate") && err.contains(expected),
            "{case}: {err}"
        );
    }
    // Plain Redis to the TLS port: no answer it understands.
    let plain = redis_config(&format!("redis://localhost:{}", server.port), None).unwrap();
    assert!(redis_round_trip(&plain).await.is_err());
}

/// A TLS front on a port of its own, relaying each connection to `upstream` in plain TCP:
/// the stand-in for a managed MongoDB's TLS.
async fn tls_front(pki: &Pki, upstream: SocketAddr) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A handshake the client refused ends here: that is what some tests check.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

fn mongo_upstream() -> SocketAddr {
    let url = &testkit::servers().mongo_url;
    let host = url
        .strip_prefix("mongodb://")
        .and_then(|rest| rest.split(['/', '?']).next())
        .unwrap_or_else(|| panic!("test MONGO_URL {url} is not mongodb://host:port"));
    std::net::ToSocketAddrs::to_socket_addrs(host)
        .unwrap()
        .next()
        .unwrap()
}

/// Connects as the services do (config, options, connect), then writes and reads back.
async fn mongo_round_trip(url: &str, database: &str) -> Result<String, String> {
    let env = Env::from_pairs([("MONGO_URL", url), ("MONGO_DB", database)]);
    let config = MongoConfig::from_env(&env, "tls").map_err(|e| e.to_string())?;
    let options = common::mongo::options(&config, "tls-test")
        .await
        .map_err(|e| e.to_string())?;
    let db = common::mongo::connect(&options, &config.database)
        .await
        .map_err(|e| e.to_string())?;
    let things = db.collection::<bson::Document>("things");
    things
        .insert_one(doc! {"_id": "one", "over": "TLS"})
        .await
        .map_err(|e| e.to_string())?;
    let found = things
        .find_one(doc! {"_id": "one"})
        .await
        .map_err(|e| e.to_string())?
        .ok_or("not found")?;
    Ok(found.get_str("over").map_err(|e| e.to_string())?.to_owned())
}

#[tokio::test]
async fn mongo_over_tls_trusting_the_ca_file_writes_and_reads() {
    let pki = Pki::new();
    let port = tls_front(&pki, mongo_upstream()).await;
    let db = TestDatabase::new("tls");
    let url = format!(
        "mongodb://localhost:{port}/?tls=true&tlsCAFile={}",
        pki.ca_file.display()
    );
    assert_eq!(mongo_round_trip(&url, &db.name).await.unwrap(), "TLS");
}

#[tokio::test]
async fn mongo_over_tls_fails_with_the_wrong_ca_and_a_missing_ca_file_is_named() {
    let pki = Pki::new();
    let port = tls_front(&pki, mongo_upstream()).await;
    let db = TestDatabase::new("tls");
    let url = format!(
        "mongodb://localhost:{port}/?tls=true&tlsCAFile={}",
        pki.other_ca_file.display()
    );
    let err = mongo_round_trip(&url, &db.name).await.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // Without a CA file, the public roots: they do not know the throwaway CA either.
    let url = format!("mongodb://localhost:{port}/?tls=true");
    let err = mongo_round_trip(&url, &db.name).await.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // A secret that was not mounted: a configuration error naming the file, at start-up.
    let url = format!("mongodb://localhost:{port}/?tls=true&tlsCAFile=/nonexistent/ca.crt");
    let err = mongo_round_trip(&url, &db.name).await.unwrap_err();
    assert!(
        err.contains("MONGO_URL") && err.contains("/nonexistent/ca.crt"),
        "{err}"
    );
}

/// `mongodb+srv://` needs the driver's `dns-resolver` feature: without it, parsing fails
/// with "mongodb+srv connection strings cannot be used when the 'dns-resolver' feature is
/// disabled". There is no DNS server here to answer SRV queries, so the lookup itself must
/// fail, as a DNS resolution error.
#[tokio::test]
async fn mongodb_srv_urls_are_parsed_and_looked_up() {
    let url = "mongodb+srv://doadmin:secret@gittix-db.mongo.example.invalid/admin?tls=true&authSource=admin";
    let parsed = mongodb::options::ConnectionString::parse(url).unwrap();
    assert!(
        matches!(
            parsed.host_info,
            mongodb::options::HostInfo::DnsRecord(ref host) if host == "gittix-db.mongo.example.invalid"
        ),
        "{:?}",
        parsed.host_info
    );
    let lookup = tokio::time::timeout(
        Duration::from_secs(60),
        mongodb::options::ClientOptions::parse(url),
    )
    .await
    .expect("the SRV lookup ends");
    let err = lookup.unwrap_err();
    assert!(
        matches!(*err.kind, mongodb::error::ErrorKind::DnsResolve { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("secret"), "{err}");
}
