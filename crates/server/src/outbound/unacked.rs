//! A new upstream connection whose request the upstream's kernel never takes.
//!
//! When an upstream's listen backlog overflows, Linux answers the SYN with a SYN cookie: the
//! connect succeeds, but the handshake's last ACK and the request behind it are dropped while
//! the accept queue is full. The request is then retransmitted with exponential backoff
//! (0.2 s, 0.4 s … 25.6 s), so a request can sit unacknowledged past the 30 s response timeout
//! on a connection that looks established (`ss`: `bytes_acked:1`; `nstat`:
//! `TcpExtTCPReqQFullDoCookies`). `TCP_USER_TIMEOUT` bounds that wait: a request not
//! acknowledged within the connect timeout aborts the connection with `ETIMEDOUT`, and the
//! pool may send a bodiless idempotent request once more on another connection. The limit
//! only guards the first request: it is lifted at the first response byte, since a slow
//! reader of a later request's body is not a connect failure.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream whose unacknowledged data abort it after a deadline, until the first byte
/// read from it.
#[derive(Debug)]
pub struct Unacked {
    stream: TcpStream,
    armed: bool,
}

impl Unacked {
    /// Wraps `stream`, its first request bounded by `deadline` when given (and the platform
    /// has `TCP_USER_TIMEOUT`).
    pub fn new(stream: TcpStream, deadline: Option<Duration>) -> Self {
        let armed = deadline.is_some_and(|d| set_user_timeout(&stream, Some(d)));
        Self { stream, armed }
    }

    /// Whether the first request is bounded by the deadline.
    pub fn armed(&self) -> bool {
        self.armed
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_user_timeout(stream: &TcpStream, timeout: Option<Duration>) -> bool {
    socket2::SockRef::from(stream)
        .set_tcp_user_timeout(timeout)
        .is_ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_user_timeout(_: &TcpStream, _: Option<Duration>) -> bool {
    false
}

/// Whether `error` (or one of its sources) is a connection aborted because what it sent went
/// unacknowledged (`ETIMEDOUT`).
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = e.source();
    }
    false
}

impl AsyncRead for Unacked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        if self.armed && buf.filled().len() > before {
            // The upstream has answered: it took the request.
            self.armed = false;
            set_user_timeout(&self.stream, None);
        }
        poll
    }
}

impl AsyncWrite for Unacked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
