//! An axum service with tollgate's authentication in-process: a public route, a route for
//! user access tokens and a route only the `billing` service's token may call.
//!
//! ```sh
//! cargo run -p tollgate-auth --example axum_service   # listens on 127.0.0.1:3000 (LISTEN overrides)
//! cargo build --release                              # the tollgate CLI, which mints tokens
//! USER_TOKEN=$(./target/release/tollgate token issue-access --user-id u1 --role admin)
//! BILLING_TOKEN=$(./target/release/tollgate token issue billing)
//! curl localhost:3000/health                                             # ok
//! curl -H "Authorization: Bearer $USER_TOKEN" localhost:3000/me          # hello u1 (admin)
//! curl -H "Authorization: Bearer $BILLING_TOKEN" localhost:3000/me       # 403 user access token required
//! curl -H "Authorization: Bearer $BILLING_TOKEN" localhost:3000/internal/invoices   # invoices for billing
//! curl localhost:3000/internal/invoices                                  # 401 token missing
//! ```

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Router};
use tollgate_auth::Identity;
use tollgate_auth::layer::{AuthLayer, Policy};

/// The issuers, in the gateway's own config format: here the default config's development
/// issuer, so `tollgate token issue` with the default config mints tokens it accepts.
pub const CONFIG: &str = r#"
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "${TOLLGATE_JWT_SECRET:-tollgate-development-secret-do-not-use-in-production}"
"#;

/// The routes, each behind the policy it needs.
pub fn app(auth: &AuthLayer) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/me", get(me).route_layer(auth.with(Policy::access())))
        .route(
            "/internal/invoices",
            get(invoices).route_layer(auth.with(Policy::service(["billing"]))),
        )
}

/// The typed identity is a request extension.
async fn me(Extension(caller): Extension<Identity>) -> String {
    format!(
        "hello {} ({})",
        caller.subject,
        caller.role.as_deref().unwrap_or("no role")
    )
}

/// The identity headers are there too, as a gateway's upstream would receive them.
async fn invoices(headers: HeaderMap) -> String {
    let service = headers
        .get("x-service-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nobody");
    format!("invoices for {service}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let auth = AuthLayer::from_toml(CONFIG)?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "axum_service listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app(&auth)).await?;
    Ok(())
}
