//! The one HTTP server helper of the project: serve an axum router on an already bound listener
//! until a shutdown token fires, with graceful close. Receivers with HTTP endpoints and the
//! self-metrics endpoint all use it. Also the pieces HTTP receivers share: reading a body under
//! a size limit ([`read_limited`]) and checking a `host:port` endpoint ([`validate_endpoint`]).

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{header, HeaderMap};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::config::ValidationError;
use crate::error::ReceiverError;
use crate::telemetry::Counter;
use crate::CancellationToken;

/// How long a client has to send a request's headers (the Collector's `read_header_timeout`):
/// from the connection's accept for its first request, from the request's start for the next
/// ones. A connection that trickles them is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections one server keeps open at most; one more is closed as soon as it is accepted
/// (the client sees a reset and retries), so idle or slow clients cannot take every socket and
/// task of the process.
pub const MAX_CONNECTIONS: usize = 1024;

/// Binds `endpoint` (`host:port`), turning failures into a message that names it.
pub async fn bind(endpoint: &str) -> Result<TcpListener, ReceiverError> {
    TcpListener::bind(endpoint)
        .await
        .map_err(|source| ReceiverError::Bind {
            endpoint: endpoint.to_string(),
            source,
        })
}

/// Serves `router` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown` fires; connections in
/// flight finish. Requests whose headers take longer than [`HEADER_READ_TIMEOUT`] close their
/// connection; at most [`MAX_CONNECTIONS`] are open at once, and each connection closed for
/// being one too many is counted in `refused`.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    refused: Counter,
) -> Result<(), ReceiverError> {
    serve_with(
        listener,
        router,
        shutdown,
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        },
        refused,
    )
    .await
}

/// The name of the counter of connections closed at accept for being one too many (with the
/// receiver's label; the self-metrics endpoint's has none).
pub const REFUSED_CONNECTIONS: &str = "sluice_receiver_refused_connections";

/// The bounds [`serve`] applies (tests shrink them).
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    max_connections: usize,
}

async fn serve_with(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    limits: Limits,
    refused: Counter,
) -> Result<(), ReceiverError> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let mut builder = Builder::new(TokioExecutor::new());
    // hyper's deadline covers every request of a keep-alive connection; the one on the reads
    // (`HeaderDeadline`) also covers the wait for the first request and HTTP/2's preface.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(router);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted: the
                // listener itself is fine. Back off a little so a persistent error does not spin.
                tracing::debug!(error = %e, "Accepting an HTTP connection failed.");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if refused.get() == 0 {
                tracing::warn!(%peer, max = limits.max_connections, counter = REFUSED_CONNECTIONS, "Closing HTTP connections at accept: too many open (the first is logged, every one counted).");
            }
            refused.add(1);
            drop(stream);
            continue;
        };
        // Nagle's algorithm with the client's delayed ACKs stalls small responses by ~40 ms;
        // gRPC and OTLP/HTTP answers are small and latency-bound.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "Cannot set TCP_NODELAY on an accepted connection.");
        }
        let io = HeaderDeadline {
            io: stream,
            deadline: Some(Box::pin(tokio::time::sleep(limits.header_read_timeout))),
            end: HeaderEnd::default(),
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service.clone())
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error.");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A connection whose reads fail with `TimedOut` once the header deadline has passed without
/// the end of the first request's headers: hyper's own deadline starts only when a request
/// does, and it knows nothing of HTTP/2's preface, which ends with such a blank line too.
struct HeaderDeadline {
    io: TcpStream,
    /// Pending until the end of the headers has been read, then `None`.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    end: HeaderEnd,
}

/// Finds the blank line that ends a request's headers across reads.
#[derive(Default)]
struct HeaderEnd {
    /// Whether the request line has begun: empty lines before it (which parsers skip) end
    /// nothing.
    started: bool,
    /// Line feeds seen in a row (carriage returns between them ignored): two end the headers.
    newlines: u8,
}

impl HeaderEnd {
    /// Whether `data`, read after what this saw before, completes the blank line.
    fn found_in(&mut self, data: &[u8]) -> bool {
        for &b in data {
            match b {
                b'\r' | b'\n' if !self.started => {}
                b'\n' => {
                    self.newlines += 1;
                    if self.newlines == 2 {
                        return true;
                    }
                }
                b'\r' => {}
                _ => {
                    self.started = true;
                    self.newlines = 0;
                }
            }
        }
        false
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.deadline.is_some() && this.end.found_in(&buf.filled()[before..]) {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = match &mut this.deadline {
                    Some(deadline) => deadline.as_mut().poll(cx).is_ready(),
                    None => false,
                };
                if !expired {
                    return Poll::Pending;
                }
                tracing::debug!(
                    peer = ?this.io.peer_addr().ok(),
                    "Closing a connection that did not send its request headers in time."
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request headers did not arrive in time",
                )))
            }
            ready => ready,
        }
    }
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Why [`read_limited`] refused a body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body announced or passed the limit.
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body could not be read (the connection failed).
    #[error("cannot read the body: {0}")]
    Read(String),
}

/// The most a request's `Content-Length` makes [`read_limited`] allocate before data arrives.
const PREALLOCATE_MAX: u64 = 256 * 1024;

/// Reads the whole body, refusing it as soon as it passes `limit` bytes (or announces more in
/// `Content-Length` or its size hint).
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) || body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = pin!(body);
    // `Content-Length` is the sender's word, read before any authentication: it sizes the
    // first allocation only up to `PREALLOCATE_MAX`, the rest grows with the data received.
    let mut buf = Vec::with_capacity(announced.map_or(0, |n| n.min(PREALLOCATE_MAX) as usize));
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// Checks that the `endpoint` under `key` is `host:port` with a numeric port (`[::1]:4317` for
/// IPv6); `example` (like `127.0.0.1:4317`) goes into the message.
pub fn validate_endpoint(key: &str, endpoint: &str, example: &str) -> Result<(), ValidationError> {
    let expected = || {
        ValidationError::new(
            key,
            format!("expected `host:port`, like `{example}`, found `{endpoint}`"),
        )
    };
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(expected)?;
    let host_ok =
        !host.is_empty() && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')));
    if !host_ok || port.parse::<u16>().is_err() {
        return Err(expected());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    /// The most any test here waits for the server.
    const BOUND: Duration = Duration::from_secs(10);

    /// A server on 127.0.0.1 with `header_read_timeout`, answering `GET /` with `ok` after
    /// `delay`.
    async fn server(
        header_read_timeout: Duration,
        delay: Duration,
    ) -> (SocketAddr, CancellationToken) {
        server_limited(
            Limits {
                header_read_timeout,
                max_connections: MAX_CONNECTIONS,
            },
            delay,
        )
        .await
    }

    async fn server_limited(limits: Limits, delay: Duration) -> (SocketAddr, CancellationToken) {
        let (addr, shutdown, _) = server_counted(limits, delay).await;
        (addr, shutdown)
    }

    /// As [`server_limited`], with the counter of refused connections.
    async fn server_counted(
        limits: Limits,
        delay: Duration,
    ) -> (SocketAddr, CancellationToken, Counter) {
        let refused = crate::telemetry::Telemetry::new().counter(REFUSED_CONNECTIONS, &[]);
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move {
                tokio::time::sleep(delay).await;
                "ok"
            }),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(serve_with(
            listener,
            router,
            shutdown.clone(),
            limits,
            refused.clone(),
        ));
        (addr, shutdown, refused)
    }

    /// Everything the server sends until it closes the connection (bounded by [`BOUND`]).
    async fn read_until_closed(conn: &mut TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        match tokio::time::timeout(BOUND, conn.read_to_end(&mut got)).await {
            Ok(Ok(_)) => {}
            // A reset is a close too.
            Ok(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
            Err(_) => panic!("the server kept the connection open for {BOUND:?}"),
        }
        got
    }

    #[tokio::test]
    async fn a_connection_trickling_headers_is_closed() {
        let (addr, shutdown) = server(Duration::from_millis(200), Duration::ZERO).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let got = read_until_closed(&mut conn).await;
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        shutdown.cancel();
    }

    /// Sends `GET /` on a keep-alive connection and reads the response (`ok`, 2 bytes).
    async fn get_keep_alive(conn: &mut BufReader<TcpStream>) {
        conn.get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut status = String::new();
        tokio::time::timeout(BOUND, conn.read_line(&mut status))
            .await
            .expect("a response")
            .unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
        }
        let mut body = [0u8; 2];
        conn.read_exact(&mut body).await.unwrap();
        assert_eq!(&body, b"ok");
    }

    #[tokio::test]
    async fn a_keep_alive_connection_trickling_a_later_request_is_closed() {
        let (addr, shutdown) = server(Duration::from_millis(200), Duration::ZERO).await;
        let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
        get_keep_alive(&mut conn).await;
        // The second request's headers never end.
        conn.get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let got = read_until_closed(conn.get_mut()).await;
        // hyper answers a header timeout with 408 before it closes, or just closes.
        let got = String::from_utf8_lossy(&got);
        assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn connections_past_the_cap_are_closed_and_the_open_ones_served() {
        let limits = Limits {
            header_read_timeout: BOUND,
            max_connections: 1,
        };
        let (addr, shutdown, refused) = server_counted(limits, Duration::ZERO).await;
        let mut first = BufReader::new(TcpStream::connect(addr).await.unwrap());
        get_keep_alive(&mut first).await;
        // The first connection is open (and served): a second one is closed unanswered.
        let mut second = TcpStream::connect(addr).await.unwrap();
        // The server may close before or after this arrives; a failed write is that close.
        let _ = second.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let got = read_until_closed(&mut second).await;
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        assert_eq!(refused.get(), 1);
        get_keep_alive(&mut first).await;
        shutdown.cancel();
    }

    #[tokio::test]
    async fn the_deadline_ends_with_the_headers() {
        // The handler answers after three header timeouts: the connection survives them.
        let (addr, shutdown) = server(Duration::from_millis(100), Duration::from_millis(300)).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let got = String::from_utf8(read_until_closed(&mut conn).await).unwrap();
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(got.ends_with("ok"), "{got}");
        shutdown.cancel();
    }

    #[test]
    fn the_end_of_headers_is_found_across_reads() {
        for (chunks, ends) in [
            (&[&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]][..], true),
            (&[&b"GET / HTTP/1.1\r\nHost: x\r\n"[..], b"\r", b"\n"], true),
            (&[&b"GET / HTTP/1.1\nHost: x\n\n"[..]], true),
            (&[&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..]], true),
            (&[&b"GET / HTTP/1.1\r\nHost: x\r\n"[..], b"X: y\r\n"], false),
            (&[&b"\r\n\r\n"[..], b"GET / HTTP/1.1\r\n"], false),
        ] {
            let mut end = HeaderEnd::default();
            let found = chunks.iter().any(|c| end.found_in(c));
            assert_eq!(found, ends, "{chunks:?}");
        }
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let announced = |n: usize| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_LENGTH, n.to_string().parse().unwrap());
            h
        };
        let none = HeaderMap::new();
        let streamed = || {
            let chunks = (0..3).map(|_| Ok::<_, io::Error>(Bytes::from_static(b"12345")));
            Body::from_stream(futures_util::stream::iter(chunks))
        };
        let ok = read_limited(&none, Body::from("12345"), 5).await.unwrap();
        assert_eq!(&ok[..], b"12345");
        assert_eq!(
            &read_limited(&none, streamed(), 15).await.unwrap()[..],
            b"123451234512345"
        );
        for (headers, body) in [
            (announced(6), Body::empty()),
            (none.clone(), Body::from("123456")),
            (none.clone(), streamed()),
        ] {
            let e = read_limited(&headers, body, 5).await.unwrap_err();
            assert!(matches!(e, BodyError::TooLarge { limit: 5 }), "{e}");
        }
    }

    #[test]
    fn endpoints_are_host_and_port() {
        for ok in [
            "127.0.0.1:4317",
            "localhost:0",
            "[::1]:4318",
            "0.0.0.0:65535",
        ] {
            assert!(
                validate_endpoint("endpoint", ok, "127.0.0.1:4317").is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "4317",
            ":4317",
            "::1:4317",
            "host:port",
            "host:65536",
            "[::1]",
        ] {
            let e = validate_endpoint("a::endpoint", bad, "127.0.0.1:4317").unwrap_err();
            let text = e.to_string();
            assert!(text.contains("a::endpoint") && text.contains(bad), "{text}");
            assert!(text.contains("like `127.0.0.1:4317`"), "{text}");
        }
    }
}
