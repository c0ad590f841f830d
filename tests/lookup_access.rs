//! Subscriber look-ups are served only on their own listener and only with the bearer
//! token; the metrics listener no longer answers them. Both listeners are started the way
//! `churnwatch run` starts them (`http::start`, on ephemeral ports), over a stand-in
//! partition task that holds one subscriber. Requests are raw HTTP/1.1 over TCP: the
//! listeners are bound before `start` returns, so nothing waits or sleeps.

use churnwatch::config::HttpConfig;
use churnwatch::detect::engine::SubscriberSummary;
use churnwatch::http::{self, Bound, HttpError};
use churnwatch::kafka::service::Shared;
use churnwatch::kafka::shared::Control;
use std::io::{Read, Write};

use tokio::sync::mpsc;

const TOKEN: &str = "lookup-token-for-tests-0123456789";
const HELD: &str = "8613012345678";
const NOT_HELD: &str = "8613099999999";

/// A partition task that knows one subscriber, [`HELD`].
fn shared_holding_one_subscriber() -> Shared {
    let shared = Shared::default();
    let (tx, mut rx) = mpsc::channel(8);
    shared.partitions.insert(0, tx);
    tokio::spawn(async move {
        while let Some(control) = rx.recv().await {
            if let Control::Describe(m, reply) = control {
                let held = m.0.to_string() == HELD;
                let _ = reply.send(held.then(|| SubscriberSummary {
                    subscriber: HELD.into(),
                    tier: "vip".into(),
                    first_seen_day: None,
                    last_7_days_voice_minutes: 0,
                    last_7_days_data_mib: 0,
                    last_7_days_spend_yuan: 0.0,
                    do_not_disturb: false,
                    key_person: false,
                    suspended: false,
                    churned: false,
                    active_signals: vec![],
                }));
            }
        }
    });
    shared
}

async fn start(env_token: Option<&str>) -> Result<Bound, HttpError> {
    let cfg = HttpConfig {
        listen: "127.0.0.1:0".into(),
        lookup_listen: "127.0.0.1:0".into(),
        lookup_token_file: String::new(),
        ..HttpConfig::default()
    };
    let shared = shared_holding_one_subscriber();
    http::start(
        &cfg,
        env_token.map(String::from),
        shared,
        std::future::pending,
    )
    .await
}

/// Sends one GET and returns the status code and the body (a blocking socket on a
/// blocking thread: the crate builds tokio without its I/O helpers).
async fn get(addr: std::net::SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[tokio::test]
async fn look_ups_need_the_token_and_live_only_on_their_own_listener() {
    let bound = start(Some(TOKEN)).await.unwrap();
    let (ops, lookup) = (bound.ops.unwrap(), bound.lookup.unwrap());
    assert_ne!(ops, lookup);
    let held = format!("/subscribers/{HELD}");
    let right = format!("Bearer {TOKEN}");

    for auth in [
        None,
        Some("Bearer wrong-token-of-enough-length"),
        Some(TOKEN),
    ] {
        let (status, body) = get(lookup, &held, auth).await;
        assert_eq!(status, 401, "{auth:?}");
        assert!(!body.contains(HELD) && body.trim().is_empty(), "{body}");
    }
    // Any path on the lookup port needs the token: no probing for what exists.
    assert_eq!(get(lookup, "/metrics", None).await.0, 401);

    let (status, body) = get(lookup, &held, Some(&right)).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["subscriber"], HELD);
    assert_eq!(json["tier"], "vip");
    let not_held = format!("/subscribers/{NOT_HELD}");
    assert_eq!(get(lookup, &not_held, Some(&right)).await.0, 404);

    // The metrics listener keeps its routes and no longer serves look-ups, token or not.
    assert_eq!(get(ops, &held, Some(&right)).await.0, 404);
    assert_eq!(get(ops, &held, None).await.0, 404);
    assert_eq!(get(ops, "/healthz", None).await.0, 200);
    assert_eq!(get(ops, "/metrics", None).await.0, 200);
}

#[tokio::test]
async fn the_lookup_listener_does_not_start_without_a_long_enough_token() {
    for token in [None, Some(""), Some("too-short")] {
        let err = start(token).await.unwrap_err().to_string();
        assert!(
            err.contains("http.lookup_token_file") || err.contains("CHURNWATCH_LOOKUP_TOKEN"),
            "{token:?}: {err}"
        );
    }
}

#[tokio::test]
async fn look_ups_stay_off_unless_configured() {
    let cfg = HttpConfig {
        listen: "127.0.0.1:0".into(),
        ..HttpConfig::default()
    };
    let bound = http::start(&cfg, None, Shared::default(), std::future::pending)
        .await
        .unwrap();
    assert!(bound.ops.is_some());
    assert_eq!(bound.lookup, None);
    let held = format!("/subscribers/{HELD}");
    assert_eq!(get(bound.ops.unwrap(), &held, None).await.0, 404);
}
