//! Secure transport: the service's clients, configured as `config/churnwatch.example.toml`
//! shows (`security.protocol = SASL_SSL`, SCRAM, `ssl.ca.location`), complete a TLS
//! handshake with a listener whose certificate a test CA signed, and send their first
//! Kafka request inside the TLS session. With another CA the handshake must fail. The CA
//! and certificates are made here, at test time, with OpenSSL (the library librdkafka
//! links); the listener is a plain OpenSSL acceptor on 127.0.0.1.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use churnwatch::config::Config;
use churnwatch::kafka::{client_config, producer};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::Producer;

/// How long the test waits for the listener's verdict: a safety limit, not a pause.
const VERDICT_TIMEOUT: Duration = Duration::from_secs(30);

/// A key pair and its certificate.
struct Issued {
    key: PKey<Private>,
    cert: X509,
}

fn key() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("pkey")
}

fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().expect("name");
    n.append_entry_by_text("CN", cn).expect("cn");
    n.build()
}

/// A self-signed certificate authority.
fn ca(cn: &str) -> Issued {
    let key = key();
    let mut b = X509::builder().expect("x509");
    b.set_version(2).expect("version");
    b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .expect("serial");
    b.set_subject_name(&name(cn)).expect("subject");
    b.set_issuer_name(&name(cn)).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    Issued {
        key,
        cert: b.build(),
    }
}

/// A server certificate for `localhost` (and 127.0.0.1) signed by `ca`.
fn server_cert(ca: &Issued) -> Issued {
    let key = key();
    let mut b = X509::builder().expect("x509");
    b.set_version(2).expect("version");
    b.set_serial_number(&BigNum::from_u32(2).unwrap().to_asn1_integer().unwrap())
        .expect("serial");
    b.set_subject_name(&name("localhost")).expect("subject");
    b.set_issuer_name(ca.cert.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(Some(&ca.cert), None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&ca.key, MessageDigest::sha256()).expect("sign");
    Issued {
        key,
        cert: b.build(),
    }
}

/// What the listener saw on its first connection: the name the client asked for (SNI) and
/// the API key of the first Kafka request it decrypted, or why the handshake failed.
type Verdict = Result<(Option<String>, i16), String>;

/// A TLS listener on 127.0.0.1 presenting `server`; returns its port and the verdict on
/// the first connection (later ones, librdkafka's reconnects, are left unanswered).
fn listen(server: Issued) -> (u16, mpsc::Receiver<Verdict>) {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    acceptor.set_private_key(&server.key).unwrap();
    acceptor.set_certificate(&server.cert).unwrap();
    acceptor.set_verify(SslVerifyMode::NONE);
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let verdict = match listener.accept() {
            Err(e) => Err(format!("accept: {e}")),
            Ok((tcp, _)) => match acceptor.accept(tcp) {
                Err(e) => Err(format!("handshake: {e}")),
                Ok(mut tls) => {
                    let sni = tls
                        .ssl()
                        .servername(openssl::ssl::NameType::HOST_NAME)
                        .map(str::to_string);
                    // A Kafka request: a 4-byte size, then the 2-byte API key.
                    let mut head = [0u8; 6];
                    match tls.read_exact(&mut head) {
                        Ok(()) => Ok((sni, i16::from_be_bytes([head[4], head[5]]))),
                        Err(e) => Err(format!("read after handshake: {e}")),
                    }
                }
            },
        };
        let _ = tx.send(verdict);
        // Keep the listener open (refusing nothing, answering nothing) until the client
        // goes away with the test.
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    (port, rx)
}

/// The service's configuration, loaded as `churnwatch run` loads it, with the security
/// options of the example config and `ca` as the trusted CA.
fn secure_config(dir: &Path, port: u16, ca: &X509) -> Config {
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.to_pem().unwrap()).unwrap();
    let toml = format!(
        r#"
[kafka]
brokers = "localhost:{port}"
[kafka.options]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "churnwatch"
"sasl.password" = "secret"
"ssl.ca.location" = "{}"
# The listener is on 127.0.0.1 only; "localhost" may resolve to ::1 first.
"broker.address.family" = "v4"
"#,
        ca_file.display()
    );
    Config::from_toml(&toml).expect("config")
}

/// Asks for metadata with the service's producer on a thread of its own (it blocks until
/// the listener answers, which it never does) and returns the listener's verdict.
fn connect(cfg: &Config, verdict: &mpsc::Receiver<Verdict>) -> Verdict {
    let producer = producer::create(cfg).expect("the service's producer builds with SASL_SSL");
    std::thread::spawn(move || {
        let _ = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(60));
    });
    verdict
        .recv_timeout(VERDICT_TIMEOUT)
        .expect("the listener saw no connection")
}

#[test]
fn sasl_ssl_clients_complete_a_tls_handshake_with_the_trusted_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("churnwatch test CA");
    let (port, verdict) = listen(server_cert(&ca));
    let cfg = secure_config(dir.path(), port, &ca.cert);

    // Every kind of client the service makes builds with these settings.
    let admin: Result<AdminClient<DefaultClientContext>, _> = client_config(&cfg).create();
    admin.expect("admin client");
    let consumer: Result<BaseConsumer, _> = client_config(&cfg).set("group.id", "g").create();
    consumer.expect("consumer");

    let (sni, api_key) = connect(&cfg, &verdict).expect("TLS handshake");
    assert_eq!(sni.as_deref(), Some("localhost"), "SNI of the client hello");
    // librdkafka's first request on a connection is ApiVersions (18); that the listener
    // could read it means the TLS session carries the Kafka protocol.
    assert_eq!(api_key, 18, "first request inside TLS");
}

#[test]
fn a_listener_signed_by_another_ca_fails_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = ca("churnwatch test CA");
    let other = ca("someone else's CA");
    let (port, verdict) = listen(server_cert(&other));
    let cfg = secure_config(dir.path(), port, &trusted.cert);

    let err = connect(&cfg, &verdict).expect_err("the client must reject the certificate");
    assert!(err.starts_with("handshake:"), "{err}");
}

/// The example config's `[kafka.options]` with its commented security lines switched on,
/// as an operator would; the CA file it names is replaced by a real one (the example's
/// path does not exist here, and librdkafka reads the file when a client is created).
fn example_with_security_on(ca_file: &Path) -> String {
    let example = include_str!("../config/churnwatch.example.toml");
    let mut out = String::new();
    let mut in_options = false;
    let mut uncommented = 0;
    for line in example.lines() {
        if line.starts_with('[') {
            in_options = line == "[kafka.options]";
        }
        let line = match line.strip_prefix("# \"") {
            Some(setting) if in_options => {
                uncommented += 1;
                if setting.starts_with("ssl.ca.location\"") {
                    format!("\"ssl.ca.location\" = \"{}\"", ca_file.display())
                } else {
                    format!("\"{setting}")
                }
            }
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert_eq!(
        uncommented, 5,
        "the example's security lines under [kafka.options]"
    );
    out
}

#[test]
fn the_example_security_section_builds_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca("churnwatch test CA").cert.to_pem().unwrap()).unwrap();
    let cfg = Config::from_toml(&example_with_security_on(&ca_file)).expect("example config");
    let options = &cfg.kafka.options;
    assert_eq!(options["security.protocol"], "SASL_SSL");
    assert_eq!(options["sasl.mechanism"], "SCRAM-SHA-512");
    assert_eq!(options["sasl.username"], "churnwatch");

    // A librdkafka built without TLS or SCRAM refuses these at client creation
    // ("Unsupported value ... OpenSSL not available at build time").
    let _producer = producer::create(&cfg).expect("the service's producer");
    let admin: Result<AdminClient<DefaultClientContext>, _> = client_config(&cfg).create();
    admin.expect("admin client");
    let consumer: Result<BaseConsumer, _> = client_config(&cfg)
        .set("group.id", &cfg.kafka.group_id)
        .create();
    consumer.expect("consumer");
    // PLAIN and SCRAM-SHA-256 too.
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let mut c = cfg.clone();
        c.kafka
            .options
            .insert("sasl.mechanism".into(), mechanism.into());
        let _producer = producer::create(&c).unwrap_or_else(|e| panic!("{mechanism}: {e}"));
    }
}

/// A SASL_SSL config with the Kerberos options of docs/security.md.
fn gssapi_config(dir: &Path) -> Config {
    let ca = ca("churnwatch test CA");
    let mut cfg = secure_config(dir, 9, &ca.cert);
    let options = &mut cfg.kafka.options;
    options.remove("sasl.username");
    options.remove("sasl.password");
    for (k, v) in [
        ("sasl.mechanism", "GSSAPI"),
        ("sasl.kerberos.service.name", "kafka"),
        ("sasl.kerberos.principal", "churnwatch@EXAMPLE.ORG"),
        ("sasl.kerberos.keytab", "/etc/churnwatch/churnwatch.keytab"),
        ("sasl.kerberos.min.time.before.relogin", "0"),
    ] {
        options.insert(k.into(), v.into());
    }
    cfg
}

/// GSSAPI (Kerberos) over TLS, with the `gssapi` feature (the Docker image's build): a
/// librdkafka built without Cyrus SASL refuses it at client creation ("No provider for
/// SASL mechanism GSSAPI"). No KDC here, so only the clients' creation is shown; the
/// periodic `kinit` is switched off for that.
#[cfg(feature = "gssapi")]
#[test]
fn a_sasl_ssl_gssapi_config_builds_every_client() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = gssapi_config(dir.path());
    let _producer = producer::create(&cfg).expect("the service's producer with GSSAPI");
    let admin: Result<AdminClient<DefaultClientContext>, _> = client_config(&cfg).create();
    admin.expect("admin client with GSSAPI");
    let consumer: Result<BaseConsumer, _> = client_config(&cfg).set("group.id", "g").create();
    consumer.expect("consumer with GSSAPI");
}

/// Without the `gssapi` feature (the default build) a Kerberos config fails when the
/// service starts, with librdkafka's reason, instead of at the first connection.
#[cfg(not(feature = "gssapi"))]
#[test]
fn without_the_gssapi_feature_a_kerberos_config_fails_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = gssapi_config(dir.path());
    let err = producer::create(&cfg)
        .err()
        .expect("GSSAPI refused without Cyrus SASL");
    assert!(err.to_string().contains("GSSAPI"), "{err}");
}

/// SASL OAUTHBEARER with OIDC (Strimzi with OAuth, managed clusters): the built librdkafka
/// accepts `sasl.oauthbearer.method = oidc` (it needs libcurl, linked statically by the
/// default `oidc` feature) and fetches a token from the endpoint with the client
/// credentials. The endpoint here is a plain listener that records the request.
#[cfg(feature = "oidc")]
#[test]
fn an_oidc_config_builds_every_client_and_asks_the_token_endpoint() {
    let endpoint = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let (tx, requests) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in endpoint.incoming() {
            let Ok(mut conn) = conn else { return };
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = vec![0u8; 8192];
            let n = conn.read(&mut buf).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = std::io::Write::write_all(
                &mut conn,
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
            );
        }
    });
    let toml = format!(
        r#"
[kafka]
brokers = "127.0.0.1:9"
[kafka.options]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "OAUTHBEARER"
"sasl.oauthbearer.method" = "oidc"
"sasl.oauthbearer.client.id" = "churnwatch"
"sasl.oauthbearer.client.secret" = "s3cret"
"sasl.oauthbearer.scope" = "kafka"
"sasl.oauthbearer.token.endpoint.url" = "http://127.0.0.1:{port}/realms/kafka/token"
"#
    );
    let cfg = Config::from_toml(&toml).expect("config");
    let producer = producer::create(&cfg).expect("the service's producer with OIDC");
    let admin: Result<AdminClient<DefaultClientContext>, _> = client_config(&cfg).create();
    admin.expect("admin client with OIDC");
    let consumer: Result<BaseConsumer, _> = client_config(&cfg).set("group.id", "g").create();
    consumer.expect("consumer with OIDC");
    let request = requests
        .recv_timeout(VERDICT_TIMEOUT)
        .expect("librdkafka never asked the token endpoint");
    assert!(
        request.starts_with("POST /realms/kafka/token "),
        "{request}"
    );
    assert!(
        request.contains("grant_type=client_credentials"),
        "{request}"
    );
    drop(producer);
}
