//! What a data connection holds until it closes: a permit against the gateway's connection
//! limit and a slot against its client address's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedSemaphorePermit;

/// A connection's places under the limits, given back when it is dropped (when the connection
/// closes, wherever it is then: in its task or parked in the lot).
pub struct Held {
    /// Against `max_connections`.
    pub permit: OwnedSemaphorePermit,
    /// Against `max_connections_per_ip` (`None` for a trusted proxy, which is exempt).
    pub slot: Option<AddressSlot>,
}

/// Open connections per client address, shared by every data listener.
#[derive(Debug, Default)]
pub struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address until dropped.
pub struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    /// A slot for `ip`, or `None` when it already has `max` connections open.
    pub fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
