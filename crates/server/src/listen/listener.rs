//! The data listener: the accept loop, its connection limit and the per-address limit.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::debug;

use super::connection::{self, Protocols};
use super::limits::{AddressSlot, Held, PerAddress};
use crate::conn::accept;
use crate::conn::stream::ClientStream;
use crate::gateway::Gateway;
use tollgate_auth::certificate::ClientCertificate;

/// What a TLS listener adds to a plain one.
pub struct TlsListener {
    /// The handshake.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Certificate identity → service, for client certificates.
    pub client_services: std::collections::BTreeMap<String, String>,
}

impl TlsListener {
    /// Completes the handshake within `deadline`; `None` (counted) when it fails.
    async fn handshake(
        &self,
        stream: tokio::net::TcpStream,
        deadline: std::time::Duration,
        metrics: &crate::metrics::Metrics,
    ) -> Option<(ClientStream, Option<Arc<ClientCertificate>>)> {
        match tokio::time::timeout(deadline, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                let session = tls.get_ref().1;
                metrics.record_tls_handshake(
                    session.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
                );
                let certificate = session
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| {
                        crate::conn::client_certificate::read(leaf.as_ref(), &self.client_services)
                    })
                    .map(Arc::new);
                Some((ClientStream::Tls(Box::new(tls)), certificate))
            }
            Ok(Err(e)) => {
                metrics.connection_closed("tls_handshake");
                debug!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                metrics.connection_closed("tls_handshake");
                debug!("no TLS handshake within the header read timeout");
                None
            }
        }
    }
}

/// Accepts connections until `stop` turns true; each connection holds a permit until it closes.
/// A client address with `max_connections_per_ip` open has further connections closed on
/// accept, so one client cannot take every slot (trusted proxies, which carry many clients,
/// are exempt).
pub async fn accept_loop(
    listener: TcpListener,
    current: Arc<ArcSwap<Gateway>>,
    protocols: Arc<Protocols>,
    connections: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
    tls: Option<Arc<TlsListener>>,
    stop: watch::Receiver<bool>,
) {
    let serving = stop.clone();
    accept::accept_loop(
        "data",
        listener,
        connections,
        stop,
        move |stream, remote, permit| {
            let max = protocols.max_connections_per_ip();
            let slot = address_slot(&current, &per_address, max, remote)?;
            let _ = stream.set_nodelay(true);
            let held = Held { permit, slot };
            let (current, protocols) = (current.clone(), protocols.clone());
            let (tls, stop) = (tls.clone(), serving.clone());
            Some(serve_accepted(
                (stream, remote, held),
                tls,
                current,
                protocols,
                stop,
            ))
        },
    )
    .await;
}

/// The slot `remote` takes against its address's limit: `Some(None)` for a trusted proxy,
/// which carries many clients and is exempt; `None` (counted) when the address is at `max`.
fn address_slot(
    current: &ArcSwap<Gateway>,
    per_address: &Arc<PerAddress>,
    max: usize,
    remote: SocketAddr,
) -> Option<Option<AddressSlot>> {
    let gateway = current.load();
    if gateway.core().trusted_proxies().contains(remote.ip()) {
        return Some(None);
    }
    match per_address.enter(remote.ip(), max) {
        Some(slot) => Some(Some(slot)),
        None => {
            gateway.metrics().connection_closed("client_ip_limit");
            debug!(%remote, "connection limit per client address reached; closed");
            None
        }
    }
}

/// Completes the TLS handshake when the listener has one, then serves the connection, which
/// holds `held` until it closes.
async fn serve_accepted(
    (stream, remote, held): (TcpStream, SocketAddr, Held),
    tls: Option<Arc<TlsListener>>,
    current: Arc<ArcSwap<Gateway>>,
    protocols: Arc<Protocols>,
    stop: watch::Receiver<bool>,
) {
    let (stream, certificate) = match tls {
        None => (ClientStream::Plain(stream), None),
        Some(tls) => {
            let metrics = current.load().metrics().clone();
            let deadline = protocols.header_read_timeout();
            // Boxed: rustls' handshake state would size every connection's task.
            match Box::pin(tls.handshake(stream, deadline, &metrics)).await {
                Some(handshaken) => handshaken,
                None => return,
            }
        }
    };
    let accepted = connection::Accepted {
        stream,
        remote,
        certificate,
        held,
    };
    connection::serve(accepted, current, protocols, stop).await;
}
