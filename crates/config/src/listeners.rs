//! Validation of `[server]`'s addresses: the data and TLS listeners, the admin listener and the
//! trusted proxies.

use std::net::SocketAddr;

use super::raw::RawServer;
use super::tls::TlsConfig;
use super::{ConfigError, invalid};

/// Checks `server.listen` and `[server.tls]`: at least one listener, plain or TLS.
pub(super) fn validate_listeners(
    server: &RawServer,
    file: &str,
) -> Result<(Vec<SocketAddr>, Option<TlsConfig>), ConfigError> {
    let listen = server
        .listen
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            parse_addr(addr).map_err(|e| invalid(file, &format!("server.listen[{i}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls = super::tls::validate(&server.tls).map_err(|e| e.in_file(file))?;
    if listen.is_empty() && tls.is_none() {
        return Err(invalid(
            file,
            "server.listen",
            "at least one address is required (here or in server.tls.listen)",
        ));
    }
    Ok((listen, tls))
}

/// Checks `server.admin_listen`; `""` turns the admin listener off.
pub(super) fn validate_admin_listen(
    server: &RawServer,
    file: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    match server.admin_listen.trim() {
        "" => Ok(None),
        addr => Ok(Some(
            parse_addr(addr).map_err(|e| invalid(file, "server.admin_listen", e))?,
        )),
    }
}

/// Checks `server.trusted_proxies`: networks or single addresses.
pub(super) fn validate_trusted_proxies(
    server: &RawServer,
    file: &str,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    server
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, net)| {
            parse_network(net)
                .map_err(|e| invalid(file, &format!("server.trusted_proxies[{i}]"), e))
        })
        .collect()
}

/// A CIDR network (`10.0.0.0/8`, `fd00::/8`) or a single address.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not an IP network (a.b.c.d/n) or address"))
}

/// A socket address, `host:port`.
fn parse_addr(addr: &str) -> Result<SocketAddr, String> {
    addr.trim()
        .parse()
        .map_err(|e| format!("invalid socket address {addr:?}: {e}"))
}
