//! The client side of a connection, below the gateway: the socket (plain or TLS), its activity
//! (busy, idle, upgraded), the request and response bodies with their deadlines, the TLS
//! listener's certificates, a client certificate's names, hyper's timer, and the accept loop
//! every listener runs.

pub mod accept;
pub mod activity;
pub mod body;
pub mod client_certificate;
pub mod stream;
pub mod timer;
pub mod tls;
