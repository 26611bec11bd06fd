//! An HTTP/1.1 upstream that keeps the raw bytes it received on each TCP connection, so a test
//! can assert on exactly what went over the wire (header case, order, framing, smuggled bytes)
//! rather than on what a parser made of it.
//!
//! Each accepted socket is wrapped in a [`Recorder`] that appends every byte read to that
//! connection's record before hyper sees it. After an upgrade, hyper's `Upgraded` reads through
//! the same wrapper, so tunnelled bytes land in the record too, once, in order.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::TIMEOUT;

/// One connection's received bytes.
type Record = Arc<Mutex<Vec<u8>>>;

/// How the upstream answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `200 ok` to everything.
    Normal,
    /// `101` to requests with `Upgrade`, then echoes the tunnel; `200 ok` to the rest.
    AcceptUpgrades,
    /// `101` with `upgrade: h2c` to every request, asked for or not.
    Unsolicited101,
    /// `200` with JSON describing the request as parsed from the received bytes, in the
    /// built-in echo's shape: `{"method", "path", "query", "headers": {name: [values]}}`.
    Describe,
}

/// A stream that appends every byte read from it to a [`Record`].
struct Recorder {
    inner: TcpStream,
    record: Record,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            self.record.lock().unwrap().extend_from_slice(new);
        }
        polled
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An HTTP/1.1 upstream on 127.0.0.1 recording the raw bytes of every connection.
#[derive(Clone)]
pub struct RecordingUpstream {
    pub addr: SocketAddr,
    connections: Arc<Mutex<Vec<Record>>>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RecordingUpstream {
    /// Reads each request's whole body and answers `200` with body `ok`.
    pub async fn start() -> Self {
        Self::spawn(Mode::Normal).await
    }

    /// Like [`start`](Self::start), but a request with an `Upgrade` header is answered `101`
    /// with the same `upgrade` value and the tunnel's bytes are echoed back until EOF.
    pub async fn accepting_upgrades() -> Self {
        Self::spawn(Mode::AcceptUpgrades).await
    }

    /// Answers `200` with JSON describing each request as its bytes were parsed (the shape of
    /// the built-in echo's answer, so echo-based assertions can run against a real socket).
    pub async fn describing() -> Self {
        Self::spawn(Mode::Describe).await
    }

    /// Answers every request `101 Switching Protocols`, `upgrade: h2c`, whatever was asked, so
    /// a test can check that a gateway never tunnels a 101 it did not ask for. Hyper sends the
    /// 101 and then closes the connection unless the request itself asked for an upgrade.
    pub async fn unsolicited_101() -> Self {
        Self::spawn(Mode::Unsolicited101).await
    }

    async fn spawn(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Self {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            lines: Arc::default(),
        };
        let (connections, lines) = (upstream.connections.clone(), upstream.lines.clone());
        tokio::spawn(async move {
            // Ends with the test's runtime; each connection gives up on an idle head after
            // TIMEOUT and every read inside the service is bounded too.
            while let Ok((stream, _)) = listener.accept().await {
                let record = Record::default();
                connections.lock().unwrap().push(record.clone());
                let lines = lines.clone();
                let service = service_fn(move |request| answer(mode, lines.clone(), request));
                let io = TokioIo::new(Recorder {
                    inner: stream,
                    record,
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(TIMEOUT)
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        upstream
    }

    /// `http://addr`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The raw bytes received on each connection, in accept order.
    pub fn connections(&self) -> Vec<Vec<u8>> {
        let connections = self.connections.lock().unwrap();
        connections
            .iter()
            .map(|r| r.lock().unwrap().clone())
            .collect()
    }

    /// Every connection's bytes, concatenated in accept order, as lossy UTF-8.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.connections().concat()).into_owned()
    }

    /// Request heads hyper handed to the service.
    pub fn requests(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Each request's first line as hyper parsed it: `METHOD target HTTP/1.1`.
    pub fn request_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived; panics after [`TIMEOUT`].
    pub async fn wait_requests(&self, n: usize) {
        let deadline = Instant::now() + TIMEOUT;
        while self.requests() < n {
            assert!(
                Instant::now() < deadline,
                "upstream saw {} requests, not {n}; raw bytes: {:?}",
                self.requests(),
                self.raw()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Answers one request according to `mode`.
async fn answer(
    mode: Mode,
    lines: Arc<Mutex<Vec<String>>>,
    mut request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (method, uri, version) = (request.method(), request.uri(), request.version());
    lines
        .lock()
        .unwrap()
        .push(format!("{method} {uri} {version:?}"));
    let switching = |upgrade: &header::HeaderValue| {
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, upgrade)
            .header(header::CONNECTION, "upgrade")
            .body(Full::default())
            .unwrap()
    };
    if mode == Mode::Unsolicited101 {
        return Ok(switching(&header::HeaderValue::from_static("h2c")));
    }
    if let (Mode::AcceptUpgrades, Some(upgrade)) =
        (mode, request.headers().get(header::UPGRADE).cloned())
    {
        let on = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            let Ok(Ok(upgraded)) = tokio::time::timeout(TIMEOUT, on).await else {
                return;
            };
            // Reads go through the Recorder, so the tunnel is recorded as it is echoed.
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 8192];
            while let Ok(Ok(n @ 1..)) = tokio::time::timeout(TIMEOUT, io.read(&mut buf)).await {
                if !matches!(
                    tokio::time::timeout(TIMEOUT, io.write_all(&buf[..n])).await,
                    Ok(Ok(()))
                ) {
                    return;
                }
            }
            let _ = tokio::time::timeout(TIMEOUT, io.shutdown()).await;
        });
        return Ok(switching(&upgrade));
    }
    if mode == Mode::Describe {
        let mut headers = serde_json::Map::new();
        for (name, value) in request.headers() {
            let values = headers
                .entry(name.as_str())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(values) = values {
                values.push(String::from_utf8_lossy(value.as_bytes()).into());
            }
        }
        let described = serde_json::json!({
            "method": request.method().as_str(),
            "path": request.uri().path(),
            "query": request.uri().query(),
            "headers": headers,
        });
        let _ = tokio::time::timeout(TIMEOUT, request.into_body().collect()).await;
        return Ok(Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(described.to_string())))
            .unwrap());
    }
    let _ = tokio::time::timeout(TIMEOUT, request.into_body().collect()).await;
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// The `n`-th (from 0) request head in `raw`, up to but excluding its blank line: a head starts
/// at a line that looks like `METHOD target HTTP/x.y`. Panics, showing `raw`, if there is none.
pub fn head_of(raw: &str, n: usize) -> String {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let is_request_line = |line: &str| match line.split(' ').collect::<Vec<_>>()[..] {
        [method, target, version] => {
            !method.is_empty()
                && method.bytes().all(tchar)
                && !target.is_empty()
                && version.starts_with("HTTP/")
        }
        _ => false,
    };
    let mut heads = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let rest = &raw[at..];
        let line_end = rest.find("\r\n").unwrap_or(rest.len());
        if is_request_line(&rest[..line_end]) {
            let end = rest.find("\r\n\r\n").unwrap_or(rest.len());
            heads.push(rest[..end].to_owned());
            at += (end + 4).min(rest.len());
        } else {
            at += (line_end + 2).min(rest.len());
        }
    }
    heads
        .get(n)
        .cloned()
        .unwrap_or_else(|| panic!("no request head #{n} in {} heads of {raw:?}", heads.len()))
}
