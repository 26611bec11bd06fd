//! The parking lot: idle plain HTTP/1.1 connections wait here as bare sockets, with no task,
//! no timer and no runtime registration of their own.
//!
//! A parked connection in its own task still costs the task (its future is sized for the
//! whole connection), the socket's registration with the runtime and a timer entry: a few KB
//! each. Here a parked socket is an entry in a slab, registered with one `epoll` instance of
//! the lot's own (nested in the runtime's, so the lot's task wakes when any of them is
//! readable), and its deadline is a row in one heap. The first readable byte sends the socket
//! back to the runtime and the connection is served again in a new task; a deadline, or the
//! drain, closes it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::OwnedFd;
use std::time::Duration;

use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

/// Why a parked connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Its deadline passed with no new request.
    Deadline,
    /// Closed without being served again: the gateway is draining, or the socket could not
    /// move between the runtime and the lot.
    Stopped,
}

/// What a parked connection needs to be served again, or to be closed.
pub trait Resume: Send + 'static {
    /// Serves the connection again on `stream`, which has bytes (or an end) to read.
    fn resume(self: Box<Self>, stream: TcpStream);
    /// The lot has closed the socket.
    fn closed(self: Box<Self>, why: Closed);
}

/// A socket on its way into the lot.
struct Arrival {
    stream: std::net::TcpStream,
    deadline: Instant,
    resume: Box<dyn Resume>,
}

/// A socket waiting in the lot.
struct Waiting {
    stream: mio::net::TcpStream,
    deadline: Instant,
    resume: Box<dyn Resume>,
}

/// Where idle connections are sent to wait; cloned by every connection that may park.
#[derive(Clone)]
pub struct Lot {
    arrivals: mpsc::UnboundedSender<Arrival>,
}

impl Lot {
    /// Starts the lot's task, which closes every parked connection when `stop` turns true.
    pub fn start(stop: watch::Receiver<bool>) -> std::io::Result<Self> {
        // Deprecated since tokio 1.54 (its safe constructors cannot know that the descriptor
        // stays open and the same); a `mio::Poll` owns its epoll descriptor from creation to
        // drop and never swaps it, which is what the unsafe `register_with_interest` asks
        // its caller to promise, and this crate forbids `unsafe`.
        #[allow(deprecated)]
        let poll = AsyncFd::with_interest(mio::Poll::new()?, tokio::io::Interest::READABLE)?;
        let (arrivals, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(poll, receiver, stop));
        Ok(Self { arrivals })
    }

    /// Parks `stream` until it is readable (then `resume` serves it again) or until
    /// `deadline` (then it is closed and `resume` told so).
    pub fn park(&self, stream: TcpStream, deadline: Instant, resume: Box<dyn Resume>) {
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                debug!(error = %e, "a connection could not be parked; closed");
                resume.closed(Closed::Stopped);
                return;
            }
        };
        if let Err(refused) = self.arrivals.send(Arrival {
            stream,
            deadline,
            resume,
        }) {
            // The lot has stopped: the gateway is draining.
            close(refused.0.stream, refused.0.resume, Closed::Stopped);
        }
    }
}

/// Ends a connection the lot will not serve: FIN to the client, then the descriptor closed.
fn close(stream: std::net::TcpStream, resume: Box<dyn Resume>, why: Closed) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    drop(stream);
    resume.closed(why);
}

/// Readiness events read from the lot's `epoll` per turn.
const EVENTS: usize = 256;

/// The parked sockets, their deadlines and their `epoll` instance.
struct Yard {
    waiting: Slab<Waiting>,
    /// (deadline, slab key), earliest first. Rows of sockets that left are skipped when they
    /// come up: a row counts only if its key still holds a socket with that deadline.
    deadlines: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Yard {
    /// Takes `arrival` in, registered for readability under its slab key.
    fn admit(&mut self, registry: &mio::Registry, arrival: Arrival) {
        let entry = self.waiting.vacant_entry();
        let key = entry.key();
        let mut stream = mio::net::TcpStream::from_std(arrival.stream);
        if let Err(e) = registry.register(&mut stream, mio::Token(key), mio::Interest::READABLE) {
            warn!(error = %e, "a connection could not be parked; closed");
            close(std_stream(stream), arrival.resume, Closed::Stopped);
            return;
        }
        entry.insert(Waiting {
            stream,
            deadline: arrival.deadline,
            resume: arrival.resume,
        });
        self.deadlines.push(Reverse((arrival.deadline, key)));
        self.compact();
    }

    /// Takes the socket under `key` out of the lot, if it is still there.
    fn release(&mut self, registry: &mio::Registry, key: usize) -> Option<Waiting> {
        let mut waiting = self.waiting.try_remove(key)?;
        let _ = registry.deregister(&mut waiting.stream);
        Some(waiting)
    }

    /// Closes every socket whose deadline has passed.
    fn expire(&mut self, registry: &mio::Registry, now: Instant) {
        while let Some(&Reverse((deadline, key))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if self
                .waiting
                .get(key)
                .is_some_and(|w| w.deadline == deadline)
                && let Some(waiting) = self.release(registry, key)
            {
                close(std_stream(waiting.stream), waiting.resume, Closed::Deadline);
            }
        }
    }

    /// The earliest deadline still to come, if any socket waits.
    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines
            .peek()
            .map(|Reverse((deadline, _))| *deadline)
    }

    /// Rebuilds the heap from the sockets still waiting once stale rows outnumber them: a
    /// connection that parks and wakes every second would otherwise leave a row each time.
    fn compact(&mut self) {
        if self.deadlines.len() > 2 * self.waiting.len() + 1024 {
            self.deadlines = self
                .waiting
                .iter()
                .map(|(key, w)| Reverse((w.deadline, key)))
                .collect();
        }
    }
}

/// A socket leaving the lot, as a standard one (still non-blocking).
fn std_stream(stream: mio::net::TcpStream) -> std::net::TcpStream {
    std::net::TcpStream::from(OwnedFd::from(stream))
}

/// Sends a readable socket back to the runtime to be served again.
fn wake(waiting: Waiting) {
    match TcpStream::from_std(std_stream(waiting.stream)) {
        Ok(stream) => waiting.resume.resume(stream),
        Err(e) => {
            debug!(error = %e, "a parked connection could not be served again; closed");
            waiting.resume.closed(Closed::Stopped);
        }
    }
}

/// The lot's task: takes sockets in, wakes the readable ones, closes the expired ones, and
/// closes all of them when `stop` turns true.
async fn run(
    mut poll: AsyncFd<mio::Poll>,
    mut arrivals: mpsc::UnboundedReceiver<Arrival>,
    mut stop: watch::Receiver<bool>,
) {
    let mut yard = Yard {
        waiting: Slab::new(),
        deadlines: BinaryHeap::new(),
    };
    let mut events = mio::Events::with_capacity(EVENTS);
    let mut readable = Vec::with_capacity(EVENTS);
    let far = || Instant::now() + Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(far());
    let mut sleep = std::pin::pin!(sleep);
    loop {
        tokio::select! {
            arrival = arrivals.recv() => {
                let Some(arrival) = arrival else { break };
                let deadline = arrival.deadline;
                yard.admit(poll.get_ref().registry(), arrival);
                if deadline < sleep.deadline() {
                    sleep.as_mut().reset(deadline);
                }
            }
            ready = poll.readable_mut() => {
                let Ok(mut guard) = ready else { break };
                events.clear();
                if let Err(e) = guard.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                    warn!(error = %e, "parked connections could not be polled");
                }
                readable.extend(events.iter().map(|event| event.token().0));
                // A full batch may have left more behind: look again before sleeping.
                if readable.len() < EVENTS {
                    guard.clear_ready();
                }
                let registry = guard.get_inner().registry();
                for key in readable.drain(..) {
                    if let Some(waiting) = yard.release(registry, key) {
                        wake(waiting);
                    }
                }
            }
            () = sleep.as_mut() => {
                yard.expire(poll.get_ref().registry(), Instant::now());
                sleep.as_mut().reset(yard.next_deadline().unwrap_or_else(far));
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    // Draining: nobody is served from the lot again.
    arrivals.close();
    while let Ok(arrival) = arrivals.try_recv() {
        close(arrival.stream, arrival.resume, Closed::Stopped);
    }
    for waiting in yard.waiting.drain() {
        close(std_stream(waiting.stream), waiting.resume, Closed::Stopped);
    }
}
