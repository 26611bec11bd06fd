//! Path normalisation: the one canonical form of a request path.
//!
//! The path is normalised once, before routing; that one string is what routes match, what
//! policies judge and what is forwarded, so what was authorized is exactly what the upstream
//! receives.

use std::borrow::Cow;

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not an absolute path (`*`, empty, or relative).
    #[error("path must start with '/'")]
    NotAbsolute,
    /// `%2F` or `%5C`: an encoded separator would be read differently by different servers.
    #[error("encoded '/' or '\\' in path")]
    EncodedSeparator,
    /// A raw backslash, which some backends treat as a separator.
    #[error("backslash in path")]
    Backslash,
    /// `%00` or a raw control character.
    #[error("NUL or control character in path")]
    ControlCharacter,
    /// `%` not followed by two hex digits.
    #[error("malformed percent-encoding in path")]
    BadPercentEncoding,
    /// `..` past the root.
    #[error("path climbs above the root")]
    AboveRoot,
    /// A `;` parameter: servlet containers and others strip `;...` from segments, so
    /// `/internal;x/y` would reach them as `/internal/y` while matching no `/internal` route.
    #[error("path parameters (';') are not allowed")]
    PathParameter,
}

/// Normalises a request path (RFC 3986 §6.2.2): decodes percent-encoded unreserved characters,
/// upper-cases the remaining escapes, merges repeated slashes and resolves dot segments (§5.2.4).
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = path.as_bytes();
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlCharacter);
    }
    if bytes.contains(&b'\\') {
        return Err(PathError::Backslash);
    }
    if bytes.contains(&b';') {
        return Err(PathError::PathParameter);
    }
    let needs_work = bytes.contains(&b'%') || path.contains("//") || path.contains("/.");
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(bytes)?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)?))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_unreserved(bytes: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(PathError::BadPercentEncoding);
        };
        let value = hi << 4 | lo;
        match value {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            0..0x20 | 0x7f => return Err(PathError::ControlCharacter),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(value as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(value >> 4) as usize] as char);
                out.push(HEX[(value & 0xf) as usize] as char);
            }
        }
        i += 3;
    }
    Ok(out)
}

fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/').skip(1) {
        trailing_slash = false;
        match segment {
            "" => trailing_slash = true,
            "." => trailing_slash = true,
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let cases = [
            ("/a/b", "/a/b"),
            ("/", "/"),
            ("//a///b", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/%62%2d", "/a/b-"),
            ("/a/%2e%2E/x", "/x"),
            ("/a/%7e%41", "/a/~A"),
            ("/a/%c3%a9", "/a/%C3%A9"),
            ("/a/", "/a/"),
            ("/.", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_path(input).unwrap(), want, "{input}");
        }
        assert!(matches!(normalize_path("/a/b"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn refuses_dangerous_paths() {
        let cases = [
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%5Cb", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/a%00", PathError::ControlCharacter),
            ("/a%0d%0a", PathError::ControlCharacter),
            ("/a%zz", PathError::BadPercentEncoding),
            ("/a%4", PathError::BadPercentEncoding),
            ("/..", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
            ("/%2e%2e/x", PathError::AboveRoot),
            ("*", PathError::NotAbsolute),
            ("/internal;x/y", PathError::PathParameter),
            ("/a;", PathError::PathParameter),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_path(input), Err(want), "{input}");
        }
    }
}
