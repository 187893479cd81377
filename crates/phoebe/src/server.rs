//! The server: opens the store and the inbox, starts digest, builds the router (SDK ingest,
//! `/api/0`, health and metrics) and serves it until shutdown. `run` takes a bound listener and
//! a shutdown future, so tests run it on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::digest::{Digester, ProcessOptions};
use crate::inbox::Inbox;
use crate::ingest::{self, keys::KeyCache, IngestState};
use crate::ops::Ops;
use crate::quota::Quotas;
use crate::retention::Retention;
use crate::store::{Store, UsageStore};
use crate::telemetry::Metrics;
use crate::ui;

/// State for health and metrics endpoints.
struct Health {
    store: Arc<dyn Store>,
    inbox: Arc<Inbox>,
    metrics: Arc<Metrics>,
    max_backlog: i64,
}

/// Opens the main database the configuration names, creating the data folder.
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::open(config)
}

/// Runs Phoebe on `listener` until `shutdown` resolves, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let watermark = store.digest_watermark()?;
    let inbox = Arc::new(Inbox::start(
        crate::store::open_inbox(&config, watermark)?,
        config.inbox.max_batch,
        config.inbox.max_backlog,
    )?);
    if inbox.pending() > 0 {
        tracing::info!(
            pending = inbox.pending(),
            "digesting the backlog left by the previous run"
        );
    }
    // Digest rings it when a batch recorded domain events: alerts start at once.
    let alert_events = Arc::new(crate::alerts::Signal::default());
    let digester = Digester::start(
        store.clone(),
        inbox.clone(),
        metrics.clone(),
        config.digest.batch_size,
        ProcessOptions {
            max_body_bytes: config.limits.max_envelope_bytes,
            zstd_level: config.store.zstd_level,
            bounds: config.retention.event_bounds(),
            frames: Some(Arc::new(crate::artifacts::SourceMaps::new(store.clone()))),
        },
        {
            let signal = alert_events.clone();
            Arc::new(move || signal.ring())
        },
    )?;
    let outbound = crate::alerts::Outbound::from_config(&config).map_err(anyhow::Error::msg)?;
    let alerts = crate::alerts::Alerts::start(
        store.clone(),
        crate::alerts::Settings {
            public_url: config.public_url.clone(),
            outbound: outbound.clone(),
        },
        alert_events,
    )
    .context("starting the alert threads")?;
    let retention = Retention::start(store.clone(), &config.retention)
        .context("starting the retention thread")?;
    let day_ago = chrono::Utc::now().timestamp_millis() - 86_400_000;
    let quotas = Arc::new(Quotas::new(
        config.quotas.clone(),
        &store.accepted_since(day_ago)?,
    ));
    let usage_writer = tokio::spawn(write_usage_forever(quotas.clone(), store.clone()));
    let ingest_state = Arc::new(IngestState {
        keys: KeyCache::new(store.clone())?,
        inbox: inbox.writer(),
        limits: config.limits.clone(),
        metrics: metrics.clone(),
        budget: ingest::budget::MemoryBudget::new(config.server.max_in_flight_bytes as usize),
        quotas: quotas.clone(),
    });
    let refresher = {
        let state = ingest_state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ingest::keys::REFRESH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let state = state.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || state.keys.reload()).await {
                    tracing::warn!(error = %e, "reloading DSN keys failed; keeping the previous ones");
                }
            }
        })
    };
    let ops = Ops::new(store.clone(), &config.public_url)
        .with_policy(crate::ops::limits::Policy::of(&config))
        .with_outbound(outbound);
    // Live-update streams end when shutdown begins; otherwise an open dashboard tab would keep
    // the graceful shutdown waiting forever.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    };
    let ui_state = Arc::new(ui::UiState::new(ops.clone(), metrics.clone(), stopping));
    let api_state = Arc::new(ApiState { ops });
    let health = Arc::new(Health {
        store: store.clone(),
        inbox: inbox.clone(),
        metrics,
        max_backlog: config.inbox.max_backlog as i64,
    });

    let app = Router::new()
        .merge(api::router(api_state))
        .merge(ui::router(ui_state))
        .merge(
            Router::new()
                .route("/healthz", get(|| async { "ok" }))
                .route("/readyz", get(readyz))
                .route("/metrics", get(metrics_text))
                .with_state(health),
        )
        .fallback_service(
            Router::new()
                .fallback(ingest::handle)
                .with_state(ingest_state),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.server.request_timeout_secs.max(1)),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked; answering 500");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"detail": "internal error"})),
            )
                .into_response()
        }));

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving HTTP")?;
    refresher.abort();
    usage_writer.abort();
    let usage_store: Arc<dyn UsageStore> = store.clone();
    write_usage(&quotas, &usage_store).await;
    retention.stop();
    alerts.stop();
    tracing::info!("stopped accepting; finishing digest batch");
    digester.stop();
    drop(inbox);
    Ok(())
}

/// How often the door's usage counts and spike states are written to the store.
const USAGE_INTERVAL: Duration = Duration::from_secs(5);

async fn write_usage_forever(quotas: Arc<Quotas>, store: Arc<dyn UsageStore>) {
    let mut tick = tokio::time::interval(USAGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        write_usage(&quotas, &store).await;
    }
}

/// Writes the usage counted since the last call; on failure it is kept for the next try.
async fn write_usage(quotas: &Arc<Quotas>, store: &Arc<dyn UsageStore>) {
    let rows = quotas.take_usage();
    let spikes = quotas.spikes(chrono::Utc::now().timestamp_millis());
    let (q, s) = (quotas.clone(), store.clone());
    let result = tokio::task::spawn_blocking(move || {
        let r = s.record_door_usage(&rows, &spikes);
        if r.is_err() {
            q.restore_usage(rows);
        }
        r
    })
    .await;
    if let Ok(Err(e)) = result {
        tracing::warn!(error = %e, "writing usage counts failed; will retry");
    }
}

async fn readyz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let store = h.store.clone();
    let db_ok = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::task::spawn_blocking(move || store.ping()),
    )
    .await
    .is_ok_and(|r| r.is_ok_and(|r| r.is_ok()));
    let pending = h.inbox.pending();
    let backlog_ok = pending < h.max_backlog;
    let status = if db_ok && backlog_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(
            serde_json::json!({ "database": db_ok, "inbox_pending": pending, "inbox_max_backlog": h.max_backlog }),
        ),
    )
}

async fn metrics_text(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let store = h.store.clone();
    let size = tokio::task::spawn_blocking(move || store.size_bytes().unwrap_or(0))
        .await
        .unwrap_or(0);
    (
        [("content-type", "text/plain; version=0.0.4")],
        h.metrics.render(h.inbox.pending(), size),
    )
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
