//! Starting and stopping the gateway: listeners, admin endpoints, graceful drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admin::endpoints::{self as admin, AdminState};
use crate::conn::tls;
use crate::gateway::Gateway;
use crate::listen::{connection, limits, listener, lot};
use crate::metrics::Metrics;
use tollgate_config::Config;
use tollgate_http::BoxFuture;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificates could not be loaded (they changed since the config was checked).
    #[error("TLS: {0}")]
    Tls(String),
}

/// A started gateway: its bound addresses and the handle to stop it.
#[derive(Debug)]
pub struct RunningGateway {
    /// Bound data listener addresses, in config order.
    pub data_addrs: Vec<SocketAddr>,
    /// Bound TLS listener addresses, in config order.
    pub tls_addrs: Vec<SocketAddr>,
    /// Bound admin address, if enabled.
    pub admin_addr: Option<SocketAddr>,
    state: Arc<AdminState>,
    current: Arc<ArcSwap<Gateway>>,
    /// What a reload cannot change without a restart: listeners and connection limits.
    fixed: std::sync::Mutex<FixedSettings>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug, Clone, PartialEq)]
struct FixedSettings {
    listen: Vec<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    tls: Option<tollgate_config::tls::TlsConfig>,
    limits: String,
}

impl FixedSettings {
    fn of(config: &Config) -> Self {
        Self {
            listen: config.listen.clone(),
            admin_listen: config.admin_listen,
            tls: config.tls.clone(),
            limits: format!("{:?} {:?}", config.limits, config.admin_limits),
        }
    }
}

impl RunningGateway {
    /// Starts draining: readiness turns 503, listeners stop accepting, requests in flight
    /// continue up to the drain timeout.
    pub fn shutdown(&self) {
        self.state.start_draining();
        let _ = self.stop.send(true);
    }

    /// Applies a new, already validated config: routes, policies, issuers and providers take
    /// effect for new requests; requests in flight finish under the config they started with;
    /// caches of unchanged issuers and providers are kept. Listener addresses and limits need
    /// a restart, and a warning says so.
    pub fn reload(&self, config: Config) {
        let previous = self.current.load_full();
        let gateway = Arc::new(Gateway::reusing(
            &config,
            previous.metrics().clone(),
            Some(&previous),
        ));
        gateway.start();
        self.state.set_jwks(tollgate_config::keygen::published_jwks(
            &config.issuers,
            config.assertion.as_deref().map(|s| s.public_jwk()),
        ));
        self.current.store(gateway);
        let fixed = FixedSettings::of(&config);
        if let Ok(mut current) = self.fixed.lock()
            && *current != fixed
        {
            warn!(
                "listener addresses, TLS settings or limits changed: they take effect after a restart (certificate files are reloaded by themselves)"
            );
            *current = fixed;
        }
        warn_development_secret(&config);
        info!(
            routes = config.routes.len(),
            issuers = config.issuers.len(),
            providers = config.providers.len(),
            "config reloaded"
        );
    }

    /// Waits until the drain has finished.
    #[inline(never)]
    pub fn wait(self) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Err(e) = self.task.await {
                warn!(error = %e, "server task failed");
            }
        })
    }
}

/// Warns, loudly, for each issuer still on the built-in development secret.
fn warn_development_secret(config: &Config) {
    for issuer in config
        .issuers
        .iter()
        .filter(|i| i.uses_development_secret())
    {
        warn!(
            issuer = %issuer.name,
            "USING THE BUILT-IN DEVELOPMENT SECRET: anyone can mint tokens; set TOLLGATE_JWT_SECRET"
        );
    }
}

/// Binds `addr`, naming it in the error.
async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Binds every listener and starts serving `config`.
#[inline(never)]
pub fn start(config: Config) -> BoxFuture<'static, Result<RunningGateway, StartError>> {
    Box::pin(async move {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let gateway = Arc::new(Gateway::new(&config, metrics.clone()));
        gateway.start();
        let current = Arc::new(ArcSwap::new(gateway));
        warn_development_secret(&config);
        let state = Arc::new(
            AdminState::with_jwks(tollgate_config::keygen::published_jwks(
                &config.issuers,
                config.assertion.as_deref().map(|s| s.public_jwk()),
            ))
            .with_gateway(current.clone()),
        );
        let (stop, stop_rx) = watch::channel(false);
        // The admin listener outlives the drain, so readiness can report it.
        let (admin_stop, admin_stop_rx) = watch::channel(false);

        let Bound {
            listeners,
            data_addrs,
            tls_addrs,
        } = bind_listeners(&config, &metrics).await?;
        let admin_addr = start_admin(&config, &state, admin_stop_rx).await?;
        let connections = Arc::new(Semaphore::new(config.limits.max_connections));
        let loops = spawn_accept_loops(listeners, &config, &current, &connections, &stop_rx);
        log_listening(&config, &data_addrs, &tls_addrs, admin_addr);
        let task = spawn_drain(loops, connections, &config, &current, admin_stop);
        Ok(RunningGateway {
            data_addrs,
            tls_addrs,
            admin_addr,
            state,
            fixed: std::sync::Mutex::new(FixedSettings::of(&config)),
            current,
            stop,
            task,
        })
    })
}

/// A data or TLS listener, with what TLS adds to it.
type Listener = (TcpListener, Option<Arc<listener::TlsListener>>);

/// The bound data and TLS listeners and their addresses, in config order.
struct Bound {
    listeners: Vec<Listener>,
    data_addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
}

/// Binds the data listeners, then the TLS ones.
async fn bind_listeners(config: &Config, metrics: &Arc<Metrics>) -> Result<Bound, StartError> {
    let mut listeners = Vec::with_capacity(config.listen.len());
    let mut data_addrs = Vec::with_capacity(config.listen.len());
    for addr in &config.listen {
        let listener = bind(*addr).await?;
        data_addrs.push(listener.local_addr().unwrap_or(*addr));
        listeners.push((listener, None));
    }
    let mut tls_addrs = Vec::new();
    if let Some(tls) = &config.tls {
        let shared = tls_listener(tls, metrics)?;
        for addr in &tls.listen {
            let listener = bind(*addr).await?;
            tls_addrs.push(listener.local_addr().unwrap_or(*addr));
            listeners.push((listener, Some(shared.clone())));
        }
    }
    Ok(Bound {
        listeners,
        data_addrs,
        tls_addrs,
    })
}

/// The handshake every TLS listener shares, with certificates reloaded when their files change.
fn tls_listener(
    tls: &tollgate_config::tls::TlsConfig,
    metrics: &Arc<Metrics>,
) -> Result<Arc<listener::TlsListener>, StartError> {
    let certificates = tls::Certificates::new(tls).map_err(StartError::Tls)?;
    certificates.watch(tls.clone(), metrics.clone());
    Ok(Arc::new(listener::TlsListener {
        acceptor: tls::acceptor(tls, certificates).map_err(StartError::Tls)?,
        client_services: tls.client_services.clone(),
    }))
}

/// Binds the admin listener, if configured, and serves it until `stop`.
async fn start_admin(
    config: &Config,
    state: &Arc<AdminState>,
    stop: watch::Receiver<bool>,
) -> Result<Option<SocketAddr>, StartError> {
    let Some(addr) = config.admin_listen else {
        return Ok(None);
    };
    let listener = bind(addr).await?;
    let bound = listener.local_addr().unwrap_or(addr);
    tokio::spawn(admin::serve(
        listener,
        state.clone(),
        (config.admin_limits.clone(), config.limits.clone()),
        stop,
    ));
    Ok(Some(bound))
}

/// One accept loop per listener; all of them share the connection limits.
fn spawn_accept_loops(
    listeners: Vec<Listener>,
    config: &Config,
    current: &Arc<ArcSwap<Gateway>>,
    connections: &Arc<Semaphore>,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let lot = lot::Lot::start(stop.clone())
        .inspect_err(|e| {
            warn!(error = %e, "no parking lot for idle connections; each waits in its own task");
        })
        .ok();
    let protocols = Arc::new(connection::Protocols::new(&config.limits, lot));
    let per_address = Arc::new(limits::PerAddress::default());
    listeners
        .into_iter()
        .map(|(l, tls)| {
            tokio::spawn(listener::accept_loop(
                l,
                current.clone(),
                protocols.clone(),
                connections.clone(),
                per_address.clone(),
                tls,
                stop.clone(),
            ))
        })
        .collect()
}

/// Logs the bound addresses and the route table, so the log says what the gateway serves.
fn log_listening(
    config: &Config,
    data_addrs: &[SocketAddr],
    tls_addrs: &[SocketAddr],
    admin_addr: Option<SocketAddr>,
) {
    for addr in data_addrs {
        info!(%addr, "listening");
    }
    for addr in tls_addrs {
        info!(%addr, "tls listening");
    }
    for line in describe_routes(config).lines() {
        info!("{line}");
    }
    if let Some(addr) = admin_addr {
        info!(%addr, "admin listening");
    }
}

/// The task that, once stopped, drains, writes the token usage and the last spans, then stops
/// the admin listener.
fn spawn_drain(
    loops: Vec<JoinHandle<()>>,
    connections: Arc<Semaphore>,
    config: &Config,
    current: &Arc<ArcSwap<Gateway>>,
    admin_stop: watch::Sender<bool>,
) -> JoinHandle<()> {
    let max_connections = config.limits.max_connections;
    let drain_timeout = config.drain_timeout;
    let last = current.clone();
    tokio::spawn(async move {
        drain(loops, connections, max_connections, drain_timeout).await;
        // What was seen since the last periodic write would otherwise be lost.
        let usage = last.load().usage().clone();
        if let Err(e) = usage.flush(tollgate_state::clock::now()).await {
            warn!(error = %e, "token usage not written at shutdown");
        }
        // The spans of the last requests, still in the exporter's batch.
        if let Some(tracing) = last.load().tracing().cloned() {
            let _ = tokio::task::spawn_blocking(move || tracing.flush()).await;
        }
        let _ = admin_stop.send(true);
    })
}

/// Waits for the accept loops to stop, then for open connections to close, up to `timeout`.
async fn drain(
    loops: Vec<JoinHandle<()>>,
    connections: Arc<Semaphore>,
    max_connections: usize,
    timeout: Duration,
) {
    for l in loops {
        let _ = l.await;
    }
    info!(timeout_secs = timeout.as_secs_f64(), "draining connections");
    // Every connection holds a permit until it closes; idle ones close at once, busy ones
    // after answering the requests they are serving.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    match tokio::time::timeout(timeout, connections.acquire_many(all)).await {
        Ok(_) => info!("drained"),
        Err(_) => warn!("drain timeout reached; closing remaining connections"),
    }
}

/// `service [billing, orders]`, `access roles [admin]`, `public`: who may use a route.
fn describe_policy(policy: &tollgate_auth::policy::RoutePolicy) -> String {
    let mut text = policy.policy.as_str().to_owned();
    if !policy.services.is_empty() {
        text.push_str(&format!(" [{}]", policy.services.join(", ")));
    }
    if !policy.roles.is_empty() {
        text.push_str(&format!(" roles [{}]", policy.roles.join(", ")));
    }
    if !policy.issuers.is_empty() {
        text.push_str(&format!(" from [{}]", policy.issuers.join(", ")));
    }
    text
}

/// The route table as `tollgate check` and startup print it, in matching order.
pub fn describe_routes(config: &Config) -> String {
    use crate::table::{Align, TextTable};
    let mut out = TextTable::new(&[
        ("route", Align::Left),
        ("prefix", Align::Left),
        ("host", Align::Left),
        ("policy", Align::Left),
        ("upstream", Align::Left),
    ]);
    for route in tollgate_core::routing::RouteTable::new(&config.routes).routes() {
        let prefix = if route.prefix.is_empty() {
            "/"
        } else {
            &route.prefix
        };
        let vendor = route
            .upstream_auth
            .and_then(|i| config.providers.get(i))
            .map(|p| format!(" (vendor token: {})", p.name))
            .unwrap_or_default();
        out.row(vec![
            route.name.to_string(),
            prefix.to_owned(),
            route.host.as_deref().unwrap_or("*").to_owned(),
            describe_policy(&route.policy),
            format!("{}{vendor}", route.upstream),
        ]);
    }
    out.render()
}
