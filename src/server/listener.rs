//! The data listener: the accept loop and its connection limit.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::warn;

use super::connection::{self, Protocols};
use crate::gateway::Gateway;

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// Accepts connections until `stop` turns true; each connection holds a permit until it closes.
pub async fn accept_loop(
    listener: TcpListener,
    current: Arc<ArcSwap<Gateway>>,
    protocols: Arc<Protocols>,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let current = current.clone();
        let protocols = protocols.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            // Held until the connection closes: drain waits for every permit to come back.
            let _permit = permit;
            connection::serve(stream, remote, current, protocols, stop).await;
        });
    }
}
