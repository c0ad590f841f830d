//! Wiring for `churnwatch run`: HTTP, the config reloader and the Kafka service, with
//! shutdown as a parameter (mini-redis's `server::run(listener, shutdown)`). This and the
//! Kafka adapter are the only places that read the wall clock.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{Config, ConfigError};
use crate::detect::engine::PortedNumber;
use crate::kafka::service::{self, Shared};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    #[error(transparent)]
    Service(#[from] crate::kafka::Error),
}

/// Runs HTTP and the Kafka service until `shutdown` resolves. On SIGHUP, and when the
/// config file changes, the rule, tier and routing sections are re-read, validated and
/// swapped in with all state kept; an invalid file is rejected with a logged reason and
/// the old rules stay.
pub async fn run(
    cfg: Config,
    path: Option<PathBuf>,
    ported: Vec<PortedNumber>,
    shared: Shared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let token_env = std::env::var(crate::http::token::TOKEN_ENV).ok();
    crate::http::start(&cfg.http, token_env, shared.clone(), &stopped).await?;
    let (reload_tx, reload_rx) = watch::channel(Arc::new(cfg.clone()));
    if let Some(path) = path.clone() {
        tokio::spawn(reloader(path, reload_tx, shared.clone(), stopped()));
    }
    let result = service::run(cfg, ported, shared, reload_rx, shutdown).await;
    let _ = stop_tx.send(true);
    result.map_err(AppError::from)
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

async fn reloader(
    path: PathBuf,
    tx: watch::Sender<Arc<Config>>,
    shared: Shared,
    stopped: impl Future<Output = ()>,
) {
    tokio::pin!(stopped);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = modified(&path);
    let mut poll = tokio::time::interval(Duration::from_secs(2));
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        tokio::select! {
            _ = &mut stopped => return,
            _ = hangup => info!("SIGHUP: reloading the config"),
            _ = poll.tick() => {
                let now = modified(&path);
                if now == last { continue; }
                last = now;
                info!("config file changed: reloading");
            }
        }
        match Config::load(Some(&path)) {
            Ok(next) => {
                shared
                    .metrics
                    .config_reloads
                    .with_label_values(&["accepted"])
                    .inc();
                let _ = tx.send(Arc::new(next));
            }
            Err(e) => {
                shared
                    .metrics
                    .config_reloads
                    .with_label_values(&["rejected"])
                    .inc();
                warn!(error = %e, "new config rejected; the running rules stay");
            }
        }
    }
}
