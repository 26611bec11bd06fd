//! The `service` label, bounded by the service registry (`[tokens] services`): each service of
//! the registry has its own series, every other name is counted as `other`.

use std::sync::Arc;
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use super::{Metrics, ServiceLabel, ServiceResult, ServiceSeen};

/// A service's series, resolved once.
#[derive(Debug)]
pub(super) struct ServiceHandles {
    allowed: Counter,
    forbidden: Counter,
    revoked: Counter,
    last_seen: Gauge,
}

/// The services that get their own label (`[tokens] services`), and `other` for the rest
/// (`None` until the registry is first set).
#[derive(Debug, Default)]
pub(super) struct ServiceRegistry {
    services: Vec<(Arc<str>, ServiceHandles)>,
    other: Option<ServiceHandles>,
}

impl Metrics {
    /// Sets the service registry that bounds the `service` label (a reload may change it).
    /// Each service's series are resolved here, once, so a request only finds its handles.
    pub fn set_service_registry(&self, services: &[String]) {
        let handles = |service: &str| self.service_handles(service);
        let registry = ServiceRegistry {
            services: services
                .iter()
                .map(|s| (Arc::<str>::from(s.as_str()), handles(s)))
                .collect(),
            other: Some(handles("other")),
        };
        if let Ok(mut current) = self.service_registry.write() {
            *current = registry;
        }
    }

    /// The series of `service`, created when it has none yet.
    fn service_handles(&self, service: &str) -> ServiceHandles {
        let service: Arc<str> = Arc::from(service);
        let counter = |result: &'static str| {
            self.service_requests
                .get_or_create(&ServiceResult {
                    service: service.clone(),
                    result,
                })
                .clone()
        };
        ServiceHandles {
            allowed: counter("allowed"),
            forbidden: counter("forbidden"),
            revoked: counter("revoked"),
            last_seen: self
                .service_last_seen
                .get_or_create(&ServiceSeen {
                    service: service.clone(),
                })
                .clone(),
        }
    }

    /// Counts a request made with `service`'s valid token; services outside the registry are
    /// counted as `other`, so no caller can grow the label set. Returns the time it recorded
    /// (seconds since the epoch), for the usage log.
    pub fn record_service_request(&self, service: &str, result: &'static str) -> u64 {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let Ok(registry) = self.service_registry.read() else {
            return now;
        };
        let found = registry
            .services
            .iter()
            .find(|(name, _)| &**name == service)
            .map(|(_, handles)| handles);
        let handles = match (found, &registry.other) {
            (Some(handles), _) | (None, Some(handles)) => handles,
            (None, None) => {
                drop(registry);
                self.set_service_registry(&[]);
                return self.record_service_request(service, result);
            }
        };
        match result {
            "revoked" => {
                handles.revoked.inc();
                return now;
            }
            "allowed" => handles.allowed.inc(),
            _ => handles.forbidden.inc(),
        };
        handles
            .last_seen
            .set(i64::try_from(now).unwrap_or(i64::MAX));
        now
    }

    /// Records a service token's expiry, keeping the earliest seen.
    pub fn record_service_token(&self, service: &str, expires_at: u64) {
        let gauge = self.service_token_expiry.get_or_create(&ServiceLabel {
            service: service.to_owned(),
        });
        let expires_at = i64::try_from(expires_at).unwrap_or(i64::MAX);
        let current = gauge.get();
        if current == 0 || expires_at < current {
            gauge.set(expires_at);
        }
    }
}
