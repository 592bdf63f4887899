//! The one HTTP server helper of the project: serve an axum router on an already bound listener
//! until a shutdown token fires, with graceful close. Receivers with HTTP endpoints and the
//! self-metrics endpoint all use it.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::error::ReceiverError;
use crate::CancellationToken;

/// Binds `endpoint` (`host:port`), turning failures into a message that names it.
pub async fn bind(endpoint: &str) -> Result<TcpListener, ReceiverError> {
    TcpListener::bind(endpoint)
        .await
        .map_err(|source| ReceiverError::Bind {
            endpoint: endpoint.to_string(),
            source,
        })
}

/// Serves `router` on `listener` until `shutdown` fires; connections in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> Result<(), ReceiverError> {
    use axum::serve::ListenerExt;
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    // Nagle's algorithm with the client's delayed ACKs stalls small responses by ~40 ms; gRPC
    // and OTLP/HTTP answers are small and latency-bound.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "Cannot set TCP_NODELAY on an accepted connection.");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
    .map_err(|e| ReceiverError::Io {
        what: format!(
            "HTTP server on {} failed",
            addr.map(|a| a.to_string()).unwrap_or_default()
        ),
        source: e,
    })
}
