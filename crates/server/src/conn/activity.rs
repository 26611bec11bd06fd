//! What one client connection is doing, so an idle HTTP/1 connection can be told apart from a
//! busy one and give its buffers back.
//!
//! hyper holds two 8 KiB buffers per HTTP/1 connection for as long as the connection lives.
//! The connection driver (`connection.rs`) takes the socket back from hyper once the
//! connection has been quiet for a while, and only when these counters prove hyper stands
//! between two requests: every request body read to its end, every response written out.

use super::stream::ClientStream;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// Counters one connection's requests update and its driver reads.
#[derive(Default)]
pub struct Activity {
    /// Request heads handed to the gateway.
    started: AtomicU64,
    /// Request bodies and responses not yet finished.
    open: AtomicUsize,
    /// A request body was dropped before its end: hyper closes such a connection itself, and
    /// the bytes it holds are the rest of that body, never the start of a request.
    unclean: AtomicBool,
    /// The socket refused the last write: hyper still holds response bytes.
    write_blocked: AtomicBool,
    /// Where the socket goes once a `101 Switching Protocols` has been written.
    upgrade: Mutex<Option<oneshot::Sender<ClientIo>>>,
}

impl Activity {
    /// Counts a request head handed to the gateway.
    pub fn request_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// How many request heads this connection has handed to the gateway.
    pub fn requests(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Marks something in progress until the returned guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.open.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Nothing in progress, nothing left unwritten, and no request body abandoned.
    pub fn is_between_requests(&self) -> bool {
        self.open.load(Ordering::Acquire) == 0
            && !self.write_blocked.load(Ordering::Relaxed)
            && !self.unclean.load(Ordering::Relaxed)
    }

    /// No request body or response in progress (HTTP/2's idleness: unlike
    /// [`Self::is_between_requests`], a stream the client reset earlier does not count).
    pub fn nothing_open(&self) -> bool {
        self.open.load(Ordering::Acquire) == 0
    }

    /// Registers the request that asked for an upgrade; the returned handle yields the socket.
    pub fn expect_upgrade(&self) -> ClientUpgrade {
        let (tx, rx) = oneshot::channel();
        *self.upgrade.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        ClientUpgrade(Arc::new(Mutex::new(Some(rx))))
    }

    /// Hands the socket to the tunnel waiting for it, or gives it back when none is.
    pub fn hand_over(&self, io: ClientIo) -> Result<(), ClientIo> {
        let waiting = self
            .upgrade
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match waiting {
            Some(tx) => tx.send(io),
            None => Err(io),
        }
    }
}

/// Something in progress on a connection: a request body or a response.
pub struct Busy(Arc<Activity>);

impl Busy {
    /// Records that the request body this guard covers was dropped before its end.
    pub fn request_abandoned(&self) {
        self.0.unclean.store(true, Ordering::Relaxed);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Release);
    }
}

/// The client's socket once hyper has written a `101`, for the tunnel to take. (Shared only
/// because request extensions must be `Clone`; the first `socket` call takes it.)
#[derive(Clone)]
pub struct ClientUpgrade(Arc<Mutex<Option<oneshot::Receiver<ClientIo>>>>);

impl std::fmt::Debug for ClientUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientUpgrade")
    }
}

impl ClientUpgrade {
    /// Waits for the connection to hand over its socket.
    pub async fn socket(self) -> Option<ClientIo> {
        let waiting = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        waiting?.await.ok()
    }
}

/// A client socket with the bytes already read from it put back in front.
pub struct ClientIo {
    stream: ClientStream,
    replay: Bytes,
    activity: Arc<Activity>,
}

impl ClientIo {
    /// Wraps `stream`; `replay` is read before anything from the socket.
    pub fn new(stream: ClientStream, replay: Bytes, activity: Arc<Activity>) -> Self {
        Self {
            stream,
            replay,
            activity,
        }
    }

    /// The socket and the bytes not yet read back.
    pub fn into_parts(self) -> (ClientStream, Bytes) {
        (self.stream, self.replay)
    }

    fn note_write<T>(&self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.activity
            .write_blocked
            .store(result.is_pending(), Ordering::Relaxed);
        result
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.note_write(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.note_write(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
