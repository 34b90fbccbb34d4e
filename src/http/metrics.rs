//! `GET /metrics` on the HTTP listener, when `[server] metrics = true` (else 404): the
//! counters of `crate::metrics` and what the store shows at scrape time.

use crate::app::App;
use crate::store::Read;
use crate::store::notify::{OutboxEntry, OutboxState};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    if !app.config.server.metrics {
        return (StatusCode::NOT_FOUND, "metrics are off\n").into_response();
    }
    let state = tokio::task::spawn_blocking(move || scrape(&app))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::global().render(&state),
    )
        .into_response()
}

/// The figures read from the store and the log directory at scrape time.
fn scrape(app: &App) -> crate::metrics::State {
    let mut state = crate::metrics::State {
        last_applied: app.store.last_applied(),
        ..Default::default()
    };
    let wal = app.config.server.data_dir.join("wal");
    if let Ok(files) = crate::store::wal::files(&wal) {
        state.log_files = files.len() as u64;
        // The newest file is the open one; the others wait for a checkpoint.
        for (_, path) in files.iter().rev().skip(1) {
            state.backlog_bytes += std::fs::metadata(path).map_or(0, |m| m.len());
        }
    }
    let now = crate::store::issues::now();
    let _ = app.store.read(|r| {
        let mut oldest = now;
        r.visit(b"outbox/", &mut |_, v| {
            let e: OutboxEntry = postcard::from_bytes(v)?;
            match e.state {
                OutboxState::Queued => {
                    state.outbox_queued += 1;
                    oldest = oldest.min(e.created);
                }
                OutboxState::Failed => state.outbox_failed += 1,
            }
            Ok(())
        })?;
        state.outbox_oldest_age = (now - oldest).max(0);
        Ok(())
    });
    state
}
