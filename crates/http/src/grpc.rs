//! gRPC over HTTP/2 as a proxy sees it (the gRPC "PROTOCOL-HTTP2" spec): which requests are
//! gRPC calls, the `grpc-timeout` deadline, the status a refusal maps to, and the
//! percent-encoded `grpc-message`.

use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode, Version};

/// `grpc-status`: the call's outcome, in the trailers (or the headers of a trailers-only answer).
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`: the outcome's text, percent-encoded.
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-timeout`: how long the client waits for the call.
pub static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Whether a request is a gRPC call: HTTP/2 with `content-type: application/grpc`, alone or
/// with a `+format` or `;parameters` suffix. gRPC-Web (`application/grpc-web*`, also over
/// HTTP/1.1) is a different wire format and is not one.
pub fn is_call(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_2 && headers.get(CONTENT_TYPE).is_some_and(is_grpc_content_type)
}

fn is_grpc_content_type(value: &HeaderValue) -> bool {
    let value = value.as_bytes();
    value
        .get(..16)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"application/grpc"))
        && matches!(value.get(16), None | Some(b'+' | b';'))
}

/// gRPC status codes a gateway answers with (the full list is in the gRPC spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// 2: no more precise code fits.
    Unknown = 2,
    /// 3: the request itself is malformed.
    InvalidArgument = 3,
    /// 4: the deadline passed before the call completed.
    DeadlineExceeded = 4,
    /// 7: the caller is known but not allowed.
    PermissionDenied = 7,
    /// 8: a size or rate limit was hit.
    ResourceExhausted = 8,
    /// 12: no route serves the method.
    Unimplemented = 12,
    /// 13: a gateway bug.
    Internal = 13,
    /// 14: the service cannot be reached now; retrying may help.
    Unavailable = 14,
    /// 16: no valid credentials.
    Unauthenticated = 16,
}

impl Code {
    /// The code for a gateway answer of `status`: the gRPC spec's HTTP-to-gRPC mapping, with
    /// the statuses that spec leaves to `UNKNOWN` given the code the gateway's reason means
    /// (a 413 is a size limit, a 504 or 408 a deadline, a 400 a malformed request).
    pub fn for_status(status: StatusCode) -> Code {
        match status.as_u16() {
            400 | 414 | 431 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            408 | 504 => Code::DeadlineExceeded,
            413 | 429 => Code::ResourceExhausted,
            500 => Code::Internal,
            502 | 503 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// The `grpc-status` header value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from(u16::from(self as u8))
    }
}

/// `grpc-message` for `text`: the spec's percent-encoding (every byte outside printable
/// ASCII, and `%`), so any reason travels intact in a header.
pub fn message_value(text: &str) -> HeaderValue {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    // Every byte is now printable ASCII.
    HeaderValue::try_from(encoded).unwrap_or(HeaderValue::from_static(""))
}

/// A `grpc-timeout` value (`TimeoutValue TimeoutUnit`: at most 8 digits, then one of `H M S m
/// u n`); `None` when malformed, which the spec says to treat as no deadline.
pub fn parse_timeout(value: &HeaderValue) -> Option<Duration> {
    let bytes = value.as_bytes();
    let (&unit, digits) = bytes.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    match unit {
        b'H' => Some(Duration::from_secs(n * 3600)),
        b'M' => Some(Duration::from_secs(n * 60)),
        b'S' => Some(Duration::from_secs(n)),
        b'm' => Some(Duration::from_millis(n)),
        b'u' => Some(Duration::from_micros(n)),
        b'n' => Some(Duration::from_nanos(n)),
        _ => None,
    }
}

/// The `grpc-timeout` value for `timeout`, in the finest unit that fits 8 digits, rounded up
/// (a deadline sent on must not be earlier than the one that was meant).
pub fn timeout_value(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    let (n, unit) = units
        .iter()
        .map(|&(per, unit)| (nanos.div_ceil(per), unit))
        .find(|&(n, _)| n <= MAX)
        .unwrap_or((MAX, 'H'));
    HeaderValue::try_from(format!("{n}{unit}")).unwrap_or(HeaderValue::from_static("99999999H"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        h
    }

    #[test]
    fn grpc_calls_are_http2_with_a_grpc_content_type() {
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC+json",
            "application/grpc;charset=utf-8",
        ] {
            assert!(is_call(Version::HTTP_2, &headers(yes)), "{yes}");
            assert!(!is_call(Version::HTTP_11, &headers(yes)), "{yes} over h1");
        }
        for no in [
            "application/grpc-web",
            "application/grpc-web-text+proto",
            "application/grpcx",
            "application/json",
            "application/grp",
        ] {
            assert!(!is_call(Version::HTTP_2, &headers(no)), "{no}");
        }
        assert!(!is_call(Version::HTTP_2, &HeaderMap::new()));
    }

    #[test]
    fn timeouts_parse_as_the_spec_writes_them() {
        let parse = |s: &'static str| parse_timeout(&HeaderValue::from_static(s));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse("30S"), Some(Duration::from_secs(30)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "S", "123456789S", "1s", "-1S", "1.5S", " 1S", "1 S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn timeouts_are_written_in_the_finest_unit_that_fits_and_round_trip() {
        let write = |d: Duration| timeout_value(d).to_str().unwrap().to_owned();
        assert_eq!(write(Duration::from_nanos(5)), "5n");
        assert_eq!(write(Duration::from_millis(250)), "250000u");
        assert_eq!(write(Duration::from_secs(30)), "30000000u");
        assert_eq!(write(Duration::from_secs(86_400 * 365)), "31536000S");
        assert_eq!(write(Duration::from_secs(u64::MAX)), "99999999H");
        for d in [
            Duration::from_nanos(1),
            Duration::from_micros(123_456_789),
            Duration::from_secs(7),
        ] {
            let back = parse_timeout(&timeout_value(d)).unwrap();
            assert!(
                back >= d && back - d < Duration::from_millis(1),
                "{d:?} → {back:?}"
            );
        }
    }

    #[test]
    fn refusals_map_to_the_codes_clients_act_on() {
        assert_eq!(
            Code::for_status(StatusCode::UNAUTHORIZED),
            Code::Unauthenticated
        );
        assert_eq!(
            Code::for_status(StatusCode::FORBIDDEN),
            Code::PermissionDenied
        );
        assert_eq!(Code::for_status(StatusCode::NOT_FOUND), Code::Unimplemented);
        assert_eq!(Code::for_status(StatusCode::BAD_GATEWAY), Code::Unavailable);
        assert_eq!(
            Code::for_status(StatusCode::SERVICE_UNAVAILABLE),
            Code::Unavailable
        );
        assert_eq!(
            Code::for_status(StatusCode::GATEWAY_TIMEOUT),
            Code::DeadlineExceeded
        );
        assert_eq!(
            Code::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            Code::ResourceExhausted
        );
        assert_eq!(Code::for_status(StatusCode::IM_A_TEAPOT), Code::Unknown);
        assert_eq!(Code::Unauthenticated.header_value(), "16");
        assert_eq!(Code::Unknown.header_value(), "2");
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(message_value("no token"), "no token");
        assert_eq!(message_value("100% sure"), "100%25 sure");
        assert_eq!(message_value("line\r\nbreak"), "line%0D%0Abreak");
        assert_eq!(message_value("café"), "caf%C3%A9");
    }
}
