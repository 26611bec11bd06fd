//! One canonical host per request (RFC 9112 §3.2, RFC 3986 §3.2.2).
//!
//! Backends normalise host spellings before they pick a virtual host: nginx and Django read
//! `ADMIN.example.com.` and `admin.example.com:80` as `admin.example.com`. If tollgate matched
//! routes on the spelling as sent, such a request would miss the `admin.example.com` route and
//! reach the same backend through a looser one. So the authority is validated and canonicalised
//! once, and that one value is what routes match, what `X-Forwarded-Host` carries and what a
//! `preserve_host` route sends upstream. Spellings a backend could read differently (userinfo,
//! a second port, a second `Host`) are refused instead of guessed at.

use std::borrow::Cow;

use http::header::HOST;
use http::{HeaderMap, HeaderValue, Uri, Version};

/// The port a plain-HTTP listener implies; written out it is removed.
pub const DEFAULT_PORT: u16 = 80;

/// Why a request's authority was refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// HTTP/1.1 without `Host` and without an absolute-form target (RFC 9112 §3.2).
    #[error("missing Host header")]
    Missing,
    /// More than one `Host` field line (RFC 9112 §3.2).
    #[error("more than one Host header")]
    Repeated,
    /// `user@host`: userinfo has no place in a request's authority (RFC 9110 §4.2.4).
    #[error("userinfo in host")]
    Userinfo,
    /// A port that is not 1–5 digits up to 65535, or a second port.
    #[error("invalid port in host")]
    BadPort,
    /// A character outside the host grammar, an empty label, or an empty host.
    #[error("invalid host")]
    Invalid,
    /// `Host` names another authority than the request target or `:authority`.
    #[error("Host header differs from the request target")]
    Conflict,
}

/// A validated host: lower case, no trailing dot, no default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalHost {
    value: HeaderValue,
    name_len: usize,
}

impl CanonicalHost {
    /// `host` or `host:port`, as the `Host` and `X-Forwarded-Host` headers carry it.
    pub fn header(&self) -> &HeaderValue {
        &self.value
    }

    /// The whole canonical authority as text.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII checked below, so always text.
        self.value.to_str().unwrap_or_default()
    }

    /// The host without its port, as routes match it.
    pub fn name(&self) -> &str {
        &self.as_str()[..self.name_len]
    }
}

/// The request's host: the target's authority (absolute form, HTTP/2 `:authority`), else the
/// one `Host` header. `None` when the request names none and may omit it (HTTP/1.0, HTTP/2
/// without `:authority`, an empty `Host`).
pub fn request_host(
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Option<CanonicalHost>, HostError> {
    let mut lines = headers.get_all(HOST).iter();
    let header = lines.next();
    if lines.next().is_some() {
        return Err(HostError::Repeated);
    }
    let from_header = match header {
        Some(value) if !value.is_empty() => {
            let text = value.to_str().map_err(|_| HostError::Invalid)?;
            Some(canonical(text, Some(value))?)
        }
        _ => None,
    };
    match (uri.authority(), from_header) {
        (Some(authority), header) => {
            let target = canonical(authority.as_str(), None)?;
            // RFC 9113 §8.3.1 and RFC 9112 §3.2.2: one request, one authority.
            if header.is_some_and(|h| h != target) {
                return Err(HostError::Conflict);
            }
            Ok(Some(target))
        }
        (None, Some(host)) => Ok(Some(host)),
        (None, None) if version == Version::HTTP_11 && header.is_none() => Err(HostError::Missing),
        (None, None) => Ok(None),
    }
}

/// Validates and canonicalises one authority; `original` is reused when already canonical.
pub fn canonical(text: &str, original: Option<&HeaderValue>) -> Result<CanonicalHost, HostError> {
    let (name, port) = if text.starts_with('[') {
        split_ip_literal(text)?
    } else {
        split_reg_name(text)?
    };
    let port = match port {
        None | Some("") => None,
        Some(digits) => match parse_port(digits)? {
            DEFAULT_PORT => None,
            n => Some((n, digits)),
        },
    };
    let name_len = name.len();
    let unchanged = matches!(name, Cow::Borrowed(_))
        && match port {
            None => text.len() == name_len,
            Some((_, digits)) => {
                !digits.starts_with('0') && text.len() == name_len + 1 + digits.len()
            }
        };
    let value = match original {
        Some(original) if unchanged => original.clone(),
        _ => {
            let mut out = String::with_capacity(name_len + 6);
            out.push_str(&name);
            if let Some((n, _)) = port {
                use std::fmt::Write;
                let _ = write!(out, ":{n}");
            }
            HeaderValue::from_str(&out).map_err(|_| HostError::Invalid)?
        }
    };
    Ok(CanonicalHost { value, name_len })
}

/// A reg-name and its port text, in one pass over the bytes (this runs on every request).
/// Letters, digits, `-`, `_` and `~` in non-empty dot-separated labels: percent-encoding and
/// sub-delims are refused, backends disagree on what they mean. One trailing dot is removed
/// (an absolute DNS name is the same host). Borrowed unless it had upper-case letters.
fn split_reg_name(text: &str) -> Result<(Cow<'_, str>, Option<&str>), HostError> {
    let bytes = text.as_bytes();
    let (mut upper, mut label_len, mut end) = (false, 0usize, bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => label_len += 1,
            b'A'..=b'Z' => {
                upper = true;
                label_len += 1;
            }
            b'.' if label_len > 0 => label_len = 0,
            b':' => {
                end = i;
                break;
            }
            b'@' => return Err(HostError::Userinfo),
            _ => return Err(HostError::Invalid),
        }
    }
    let port = (end < bytes.len()).then(|| &text[end + 1..]);
    let name = &text[..end];
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(HostError::Invalid);
    }
    let name = if upper {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    Ok((name, port))
}

/// An IPv6 literal in brackets (no zone id: `%` would be read differently by different
/// parsers), lower-cased, and its port text.
fn split_ip_literal(text: &str) -> Result<(Cow<'_, str>, Option<&str>), HostError> {
    if text.contains('@') {
        return Err(HostError::Userinfo);
    }
    let end = text.find(']').ok_or(HostError::Invalid)?;
    let (name, rest) = text.split_at(end + 1);
    let port = match rest.strip_prefix(':') {
        Some(port) => Some(port),
        None if rest.is_empty() => None,
        None => return Err(HostError::Invalid),
    };
    name[1..end]
        .parse::<std::net::Ipv6Addr>()
        .map_err(|_| HostError::Invalid)?;
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    Ok((name, port))
}

/// 1–5 digits, 1 to 65535; a second `:` (a second port) or userinfo after it is refused.
fn parse_port(digits: &str) -> Result<u16, HostError> {
    let (mut port, mut digits_only) = (0u32, true);
    for b in digits.bytes() {
        match b {
            b'0'..=b'9' => port = port.saturating_mul(10).saturating_add(u32::from(b - b'0')),
            b'@' => return Err(HostError::Userinfo),
            _ => digits_only = false,
        }
    }
    if !digits_only || digits.len() > 5 {
        return Err(HostError::BadPort);
    }
    match u16::try_from(port) {
        Ok(0) | Err(_) => Err(HostError::BadPort),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Result<String, HostError> {
        canonical(text, None).map(|h| h.as_str().to_owned())
    }

    #[test]
    fn canonicalises_spellings_backends_treat_as_one() {
        let cases = [
            ("admin.example.com", "admin.example.com"),
            ("ADMIN.Example.COM", "admin.example.com"),
            ("admin.example.com.", "admin.example.com"),
            ("admin.example.com:80", "admin.example.com"),
            ("admin.example.com.:080", "admin.example.com"),
            ("admin.example.com:", "admin.example.com"),
            ("admin.example.com:8080", "admin.example.com:8080"),
            ("admin.example.com:08080", "admin.example.com:8080"),
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("[::1]:8080", "[::1]:8080"),
            ("[::FFFF:7f00:1]", "[::ffff:7f00:1]"),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input).as_deref(), Ok(want), "{input}");
        }
        let host = canonical("Admin.example.com:8080", None).unwrap();
        assert_eq!(host.name(), "admin.example.com");
    }

    #[test]
    fn refuses_ambiguous_authorities() {
        let cases = [
            ("admin.example.com:80:80", HostError::BadPort),
            ("admin.example.com:http", HostError::BadPort),
            ("admin.example.com:65536", HostError::BadPort),
            ("admin.example.com:0", HostError::BadPort),
            ("admin.example.com:123456", HostError::BadPort),
            ("x@admin.example.com", HostError::Userinfo),
            ("admin.example.com@evil", HostError::Userinfo),
            ("admin.example.com:80@evil", HostError::Userinfo),
            ("[::1]@evil", HostError::Userinfo),
            (".", HostError::Invalid),
            ("", HostError::Invalid),
            ("admin.example.com..", HostError::Invalid),
            ("admin..example.com", HostError::Invalid),
            (".admin.example.com", HostError::Invalid),
            ("admin%2eexample.com", HostError::Invalid),
            ("admin.example.com/x", HostError::Invalid),
            ("admin example.com", HostError::Invalid),
            ("admin.example.com,evil", HostError::Invalid),
            (":80", HostError::Invalid),
            ("[::1", HostError::Invalid),
            ("[::1]x", HostError::Invalid),
            ("[fe80::1%25eth0]", HostError::Invalid),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input), Err(want), "{input}");
        }
    }

    #[test]
    fn unchanged_header_is_reused_not_rebuilt() {
        let value = HeaderValue::from_static("api.example.com:8080");
        let host = canonical("api.example.com:8080", Some(&value)).unwrap();
        assert_eq!(host.header(), &value);
        assert_eq!(
            canonical("api.example.com:080", Some(&value))
                .unwrap()
                .as_str(),
            "api.example.com:80".replace(":80", "")
        );
    }

    fn headers(hosts: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for host in hosts {
            h.append(HOST, HeaderValue::from_str(host).unwrap());
        }
        h
    }

    #[test]
    fn one_host_per_request() {
        let origin: Uri = "/x".parse().unwrap();
        let absolute: Uri = "http://Admin.example.com./x".parse().unwrap();
        let host = |version, uri: &Uri, hosts: &[&str]| {
            request_host(version, uri, &headers(hosts)).map(|h| h.map(|h| h.as_str().to_owned()))
        };
        assert_eq!(
            host(Version::HTTP_11, &origin, &["a.example"]),
            Ok(Some("a.example".into()))
        );
        assert_eq!(
            host(Version::HTTP_11, &origin, &[]),
            Err(HostError::Missing)
        );
        assert_eq!(host(Version::HTTP_10, &origin, &[]), Ok(None));
        assert_eq!(host(Version::HTTP_11, &origin, &[""]), Ok(None));
        assert_eq!(
            host(Version::HTTP_11, &origin, &["a.example", "b.example"]),
            Err(HostError::Repeated)
        );
        assert_eq!(
            host(Version::HTTP_11, &absolute, &["admin.example.com"]),
            Ok(Some("admin.example.com".into()))
        );
        assert_eq!(
            host(Version::HTTP_11, &absolute, &["other.example"]),
            Err(HostError::Conflict)
        );
        assert_eq!(
            host(Version::HTTP_2, &absolute, &[]),
            Ok(Some("admin.example.com".into()))
        );
        let userinfo: Uri = "http://x@admin.example.com/".parse().unwrap();
        assert_eq!(
            host(Version::HTTP_2, &userinfo, &[]),
            Err(HostError::Userinfo)
        );
    }
}
