//! `/metrics` says the format it sends, and a third-party parser (Python prometheus_client,
//! the reference client library) reads both formats: every family with its help text, and
//! the counters with their samples.

mod support;

use support::*;

const PARSE: &str = r#"
import json, sys
fmt = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.readline().strip()
text = sys.stdin.read()
if fmt == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(text):
    out[family.name] = {"type": family.type, "help": family.documentation,
                        "samples": [s.name for s in family.samples]}
print(json.dumps(out))
"#;

async fn scrape(gw: &TestGateway, accept: Option<&str>) -> (String, String) {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    let reply = get(&format!("http://{}/metrics", gw.admin.unwrap()), &headers).await;
    assert_eq!(reply.status, 200);
    let content_type = reply.headers["content-type"].to_str().unwrap().to_owned();
    (content_type, reply.text())
}

#[tokio::test]
async fn metrics_are_served_in_the_format_asked_for_and_parse_with_prometheus_client() {
    let gw = spawn_gateway(&public_route("/", "echo", "")).await;
    assert_eq!(get(&gw.url("/x"), &[]).await.status, 200);

    // Content negotiation, as the Prometheus Go client does it.
    let (plain_type, plain) = scrape(&gw, None).await;
    assert_eq!(plain_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!plain.contains("# EOF"), "{plain}");
    assert!(
        plain.contains("# TYPE tollgate_requests_total counter\n"),
        "{plain}"
    );
    assert!(plain.contains("# HELP tollgate_requests_total "), "{plain}");
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (om_type, openmetrics) = scrape(&gw, Some(prometheus_accept)).await;
    assert_eq!(
        om_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert!(openmetrics.contains("# TYPE tollgate_requests counter\n"));
    let (text_type, _) = scrape(&gw, Some("text/plain")).await;
    assert_eq!(text_type, plain_type);

    if !python::has_module("prometheus_client", "prometheus_client") {
        return;
    }
    for (format, body) in [("text", &plain), ("openmetrics", &openmetrics)] {
        let parsed: serde_json::Value =
            serde_json::from_str(&python::run(PARSE, format!("{format}\n{body}").as_bytes()))
                .unwrap();
        let families = parsed.as_object().unwrap();
        assert!(families.len() >= 5, "{format}: {parsed}");
        for (name, family) in families {
            assert!(
                !family["help"].as_str().unwrap_or_default().is_empty(),
                "{format}: {name} has no help text"
            );
        }
        // The counter the request above incremented, with its sample, in both formats.
        let requests = &families["tollgate_requests"];
        assert_eq!(requests["type"], "counter", "{format}: {requests}");
        assert!(
            requests["samples"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "tollgate_requests_total"),
            "{format}: {requests}"
        );
        assert_eq!(
            families["tollgate_request_duration_seconds"]["type"],
            "histogram"
        );
    }
}

/// Before any request, every series whose labels the config fixes is there at zero, as the
/// Prometheus parser reads it: a dashboard shows 0, not "no data", and `rate()` has a start.
#[tokio::test]
async fn series_the_config_fixes_are_zero_before_the_first_request() {
    if !python::has_module("prometheus_client", "prometheus_client") {
        return;
    }
    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", jsonwebtoken::Algorithm::RS256)])).await;
    let gw = spawn_gateway(&format!(
        "[[issuers]]\nname = \"idp\"\nissuer = \"https://idp.test\"\nalgorithms = [\"RS256\"]\njwks_url = \"{}\"\n\
         [[providers]]\nname = \"vendor\"\nkind = \"login\"\nauth_url = \"http://127.0.0.1:9/login\"\nemail = \"a@b.c\"\npassword = \"pw\"\n\
         [[routes]]\nname = \"orders\"\nprefix = \"/orders\"\nupstream = \"echo\"\n",
        jwks.url()
    ))
    .await;
    let (_, text) = scrape(&gw, None).await;
    let samples = python::run(
        "import sys\n\
         from prometheus_client.parser import text_string_to_metric_families\n\
         for f in text_string_to_metric_families(sys.stdin.read()):\n\
         \x20   for s in f.samples:\n\
         \x20       print(s.name, ','.join(f'{k}={v}' for k, v in sorted(s.labels.items())), s.value)\n",
        text.as_bytes(),
    );
    // Zero until something happens (the key set fetch and the vendor login run at start, so
    // only their presence is certain).
    for wanted in [
        "tollgate_auth_decisions_total result=allowed,route=orders,token_type=service 0",
        "tollgate_upstream_errors_total kind=connect,route=orders 0",
        "tollgate_upstream_errors_total kind=timeout,route=orders 0",
        "tollgate_upstream_logins_suppressed_total provider=vendor 0",
        "tollgate_connections_open protocol=http1 0",
        "tollgate_connections_closed_total reason=idle 0",
        "tollgate_upstream_logins_total name=vendor,result=failure ",
        "tollgate_jwks_fetches_total name=idp,result=failure ",
    ] {
        let present = samples.lines().any(|l| match wanted.ends_with(' ') {
            true => l.starts_with(wanted),
            false => l == wanted,
        });
        assert!(present, "{wanted} missing:\n{samples}");
    }
}
