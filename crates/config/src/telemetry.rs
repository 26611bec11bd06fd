//! `[telemetry]`: OpenTelemetry traces, off unless an OTLP endpoint is given.

use std::collections::BTreeMap;

use http::Uri;
use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// `[telemetry]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// The OTLP/HTTP collector, e.g. `"http://otel-collector:4318"`: spans are POSTed as
    /// protobuf to its `/v1/traces` (or to this URL as given when it already ends so).
    /// Default: none, and traces are off.
    pub otlp_endpoint: Option<String>,
    /// The share of new traces recorded, 0.0 to 1.0 (a client's sampled `traceparent` is
    /// followed either way). Default 1.0.
    pub sample_ratio: Option<f64>,
    /// `service.name` of the spans. Default `"tollgate"`.
    pub service_name: Option<String>,
    /// More resource attributes, e.g. `{ "deployment.environment" = "prod" }`. Default none.
    #[serde(default)]
    pub resource: BTreeMap<String, String>,
}

/// Where and how traces are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// The full URL spans are POSTed to (`.../v1/traces`).
    pub traces_url: Uri,
    /// The share of new traces recorded.
    pub sample_ratio: f64,
    /// `service.name`.
    pub service_name: String,
    /// More resource attributes.
    pub resource: BTreeMap<String, String>,
}

/// Checks `[telemetry]`: `None` when no endpoint is set (traces off).
pub(super) fn validate_telemetry(
    raw: &RawTelemetry,
    file: &str,
) -> Result<Option<TelemetryConfig>, ConfigError> {
    let Some(endpoint) = &raw.otlp_endpoint else {
        if raw.sample_ratio.is_some() || raw.service_name.is_some() || !raw.resource.is_empty() {
            return Err(invalid(
                file,
                "telemetry.otlp_endpoint",
                "required by the other [telemetry] settings (traces are off without it)",
            ));
        }
        return Ok(None);
    };
    let traces_url =
        traces_url(endpoint).map_err(|e| invalid(file, "telemetry.otlp_endpoint", e))?;
    let sample_ratio = raw.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(invalid(
            file,
            "telemetry.sample_ratio",
            format!("must be between 0.0 and 1.0, got {sample_ratio}"),
        ));
    }
    Ok(Some(TelemetryConfig {
        traces_url,
        sample_ratio,
        service_name: raw
            .service_name
            .clone()
            .unwrap_or_else(|| "tollgate".to_owned()),
        resource: raw.resource.clone(),
    }))
}

/// `endpoint` + `/v1/traces`, unless it names that path already.
fn traces_url(endpoint: &str) -> Result<Uri, String> {
    let uri: Uri = endpoint
        .parse()
        .map_err(|e| format!("{endpoint:?} is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{endpoint:?} is not an http:// or https:// URL"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // The URL is logged and shown by `tollgate check`; credentials go in no URL.
        return Err("credentials in the URL are refused".to_owned());
    }
    if uri.path().ends_with("/v1/traces") {
        return Ok(uri);
    }
    let full = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    full.parse().map_err(|e| format!("{full:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(endpoint: Option<&str>, ratio: Option<f64>) -> RawTelemetry {
        RawTelemetry {
            otlp_endpoint: endpoint.map(str::to_owned),
            sample_ratio: ratio,
            ..RawTelemetry::default()
        }
    }

    #[test]
    fn the_endpoint_gets_the_traces_path_once() {
        for (given, url) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            ("https://c.example/otlp", "https://c.example/otlp/v1/traces"),
            ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
        ] {
            let config = validate_telemetry(&raw(Some(given), None), "t.toml")
                .unwrap()
                .unwrap();
            assert_eq!(config.traces_url, url);
            assert_eq!(config.sample_ratio, 1.0);
            assert_eq!(config.service_name, "tollgate");
        }
    }

    #[test]
    fn bad_settings_are_refused_with_their_key() {
        let cases = [
            (raw(Some("collector:4318"), None), "telemetry.otlp_endpoint"),
            (raw(Some("ftp://c/x"), None), "telemetry.otlp_endpoint"),
            (
                raw(Some("http://u:p@c:4318"), None),
                "telemetry.otlp_endpoint",
            ),
            (
                raw(Some("http://c:4318"), Some(1.5)),
                "telemetry.sample_ratio",
            ),
            (
                raw(Some("http://c:4318"), Some(-0.1)),
                "telemetry.sample_ratio",
            ),
            (raw(None, Some(0.5)), "telemetry.otlp_endpoint"),
        ];
        for (raw, key) in cases {
            let error = validate_telemetry(&raw, "t.toml").unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
        assert!(
            validate_telemetry(&raw(None, None), "t.toml")
                .unwrap()
                .is_none()
        );
    }
}
