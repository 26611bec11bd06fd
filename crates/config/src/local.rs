//! The one-route config `tollgate serve --upstream URL` builds: the defaults (development
//! secret unless `TOLLGATE_JWT_SECRET` is set, loopback listeners) and a single route, the way
//! oauth2-proxy's `--upstream` fronts a local app without a config file.

/// Route policies `--policy` accepts.
pub const POLICIES: [&str; 4] = ["public", "authenticated", "access", "service"];

/// The TOML text of the config; its listeners take `TOLLGATE_LISTEN` and
/// `TOLLGATE_ADMIN_LISTEN` like the default config, on loopback unless they say otherwise.
pub fn upstream_config(upstream: &str, prefix: &str, policy: &str) -> String {
    // Quoted by the TOML library: a URL or prefix can never break out of its string.
    let quote = |text: &str| toml::Value::String(text.to_owned()).to_string();
    format!(
        r#"[server]
listen = ["${{TOLLGATE_LISTEN:-127.0.0.1:8080}}"]
admin_listen = "${{TOLLGATE_ADMIN_LISTEN:-127.0.0.1:9901}}"

[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "${{TOLLGATE_JWT_SECRET:-{secret}}}"

[[routes]]
name = "upstream"
prefix = {prefix}
upstream = {upstream}
policy = {policy}
"#,
        secret = super::DEVELOPMENT_SECRET,
        prefix = quote(prefix),
        upstream = quote(upstream),
        policy = quote(policy),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Env};

    #[test]
    fn every_policy_builds_a_valid_loopback_config() {
        for policy in POLICIES {
            let text = upstream_config("http://localhost:3000", "/", policy);
            let config =
                Config::from_toml(&text, "--upstream", &Env::from_map::<_, String, String>([]))
                    .unwrap_or_else(|e| panic!("{policy}: {e}"));
            assert_eq!(config.routes.len(), 1);
            assert_eq!(config.routes[0].policy.policy.as_str(), policy);
            assert!(config.listen.iter().all(|a| a.ip().is_loopback()));
            assert!(config.issuers[0].uses_development_secret());
        }
    }

    #[test]
    fn hostile_values_stay_inside_their_strings() {
        let text = upstream_config("http://x\"\n[[routes]]\nprefix = \"/admin", "/", "public");
        let err = Config::from_toml(&text, "--upstream", &Env::from_map::<_, String, String>([]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("routes[0].upstream"), "{err}");
    }
}
