//! Each per-request line against tracing's own formatter, byte for byte.

use std::time::SystemTime;

use super::*;
use crate::telemetry::line::{Stamp, Style};
use crate::telemetry::test_support::Captured;

fn access_lines() -> Vec<AccessLine<'static>> {
    let plain = AccessLine {
        request_id: "5b30a77f-cfff-4e17-b36e-db66974227fc",
        client: Some("127.0.0.1"),
        client_request_id: None,
        method: "GET",
        path: "/echo/x",
        route: "echo",
        status: 200,
        duration_us: 49,
        upstream_us: None,
        bytes_out: Some(477),
        trace_id: None,
    };
    let hostile = AccessLine {
        client_request_id: Some("id \"quoted\" \\ back"),
        path: "/a\u{1b}[31m\n\t\u{7f}\u{85}é\u{0}",
        route: "-",
        status: 502,
        upstream_us: Some(1_234_567),
        bytes_out: None,
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        ..plain
    };
    let bare = AccessLine {
        client: None,
        method: "PROPFIND",
        status: 404,
        duration_us: 0,
        bytes_out: None,
        ..plain
    };
    vec![plain, hostile, bare]
}

fn audit_lines() -> Vec<AuditLine<'static>> {
    let allow = AuditLine {
        request_id: "5b30a77f-cfff-4e17-b36e-db66974227fc",
        client_request_id: Some("audit-allow"),
        route: "/internal",
        policy: "service",
        method: "GET",
        path: "/internal/a",
        decision: "allow",
        reason: "",
        service: Some("orders"),
        user_id: Some("svc:orders"),
        token_type: Some("service"),
    };
    let deny = AuditLine {
        client_request_id: None,
        route: "odd \"route\"",
        path: "/internal/\u{1b}]0;x\u{7}",
        decision: "deny",
        reason: "token missing",
        service: None,
        user_id: None,
        token_type: None,
        ..allow
    };
    vec![allow, deny]
}

/// What tracing-subscriber itself writes in `style` for the event `log` emits.
fn by_tracing(style: Style, log: impl Fn()) -> String {
    let out = Captured::default();
    let builder = tracing_subscriber::fmt().with_writer(out.clone());
    match style {
        Style::Json => {
            tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), log)
        }
        Style::Text { ansi } => {
            tracing::subscriber::with_default(builder.with_ansi(ansi).finish(), log)
        }
    }
    out.text()
}

/// `line` as the writer writes it, in `style`.
fn by_hand(style: Style, line: Line<'_>) -> String {
    let mut out = Vec::new();
    line.write(style, SystemTime::now(), &mut Stamp::default(), &mut out);
    String::from_utf8(out).unwrap()
}

/// `text` with its timestamp cut out (the two were written at different times).
fn untimed(style: Style, text: &str) -> String {
    match style {
        Style::Json => {
            let start = text.find("\"timestamp\":\"").unwrap() + 13;
            let end = start + text[start..].find('"').unwrap();
            format!("{}{}", &text[..start], &text[end..])
        }
        Style::Text { .. } => text.split_once(' ').unwrap().1.to_owned(),
    }
}

const STYLES: [Style; 3] = [
    Style::Json,
    Style::Text { ansi: false },
    Style::Text { ansi: true },
];

#[test]
fn an_access_line_is_byte_for_byte_what_tracing_writes() {
    for style in STYLES {
        for access in access_lines() {
            let fields = access.fields();
            let ours = by_hand(
                style,
                Line {
                    target: "access",
                    fields: &fields,
                },
            );
            let theirs = by_tracing(style, || access.fallback());
            assert_eq!(untimed(style, &ours), untimed(style, &theirs), "{style:?}");
            if style == Style::Json {
                let parsed: serde_json::Value = serde_json::from_str(&ours).unwrap();
                assert_eq!(parsed["path"], access.path);
            }
        }
    }
}

#[test]
fn an_audit_line_is_byte_for_byte_what_tracing_writes() {
    for style in STYLES {
        for audit in audit_lines() {
            let fields = audit.fields();
            let ours = by_hand(
                style,
                Line {
                    target: "audit",
                    fields: &fields,
                },
            );
            let theirs = by_tracing(style, || audit.fallback());
            assert_eq!(untimed(style, &ours), untimed(style, &theirs), "{style:?}");
        }
    }
}
