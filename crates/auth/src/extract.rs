//! Where tokens come from: `Authorization: Bearer`, and per-issuer cookies or query parameters.

use std::borrow::Cow;

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};

/// Cookie and query-parameter names that may carry tokens (the union over issuers).
#[derive(Debug, Clone, Default)]
pub struct TokenSources {
    /// Cookie names.
    pub cookies: Vec<String>,
    /// Query parameter names.
    pub queries: Vec<String>,
}

/// Why the presented credentials could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// `Authorization: Bearer` with nothing after it, or a non-text header.
    #[error("malformed authorization header")]
    MalformedHeader,
}

/// Every credential in the request, in order: `Authorization` headers, cookies, query.
pub fn extract<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    sources: &TokenSources,
) -> Result<Vec<&'a str>, ExtractError> {
    let mut tokens = Vec::new();
    for value in headers.get_all(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ExtractError::MalformedHeader)?;
        // RFC 9110 §11.1: the scheme is case-insensitive. Other schemes are not ours.
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            if value.trim().eq_ignore_ascii_case("bearer") {
                return Err(ExtractError::MalformedHeader);
            }
            continue;
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = token.trim();
            if token.is_empty() {
                return Err(ExtractError::MalformedHeader);
            }
            tokens.push(token);
        }
    }
    if !sources.cookies.is_empty() {
        for value in headers.get_all(COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for pair in value.split(';') {
                // Names compared trimmed: lenient cookie parsers read `session =x` as
                // `session`, so that spelling is verified like the real one.
                if let Some((name, token)) = pair.split_once('=')
                    && sources.cookies.iter().any(|c| c == name.trim())
                {
                    let token = token.trim();
                    if !token.is_empty() {
                        tokens.push(token);
                    }
                }
            }
        }
    }
    if let (Some(query), false) = (query, sources.queries.is_empty()) {
        for pair in query.split('&') {
            if let Some((name, token)) = pair.split_once('=')
                && sources.queries.iter().any(|q| q == name)
                && !token.is_empty()
            {
                tokens.push(token);
            }
        }
    }
    Ok(tokens)
}

/// The query without the token parameters, so tokens do not reach upstream logs; borrowed
/// when it has none. Names are compared form-decoded (`access%5Ftoken`, `access+token`), the
/// way the upstream's framework will read them.
pub fn query_without_tokens<'a>(query: &'a str, sources: &TokenSources) -> Option<Cow<'a, str>> {
    let is_token = |pair: &&str| {
        let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
        let decoded: Cow<'_, str> = if name.contains(['%', '+']) {
            form_urlencoded::parse(name.as_bytes())
                .next()
                .map_or(Cow::Borrowed(""), |(n, _)| Cow::Owned(n.into_owned()))
        } else {
            Cow::Borrowed(name)
        };
        sources.queries.iter().any(|q| *q == decoded)
    };
    if sources.queries.is_empty() || !query.split('&').any(|p| is_token(&p)) {
        return Some(Cow::Borrowed(query));
    }
    let kept: Vec<&str> = query.split('&').filter(|p| !is_token(p)).collect();
    (!kept.is_empty()).then(|| Cow::Owned(kept.join("&")))
}

/// Removes the token cookies from `Cookie` headers, keeping the others.
pub fn remove_token_cookies(headers: &mut HeaderMap, sources: &TokenSources) {
    if sources.cookies.is_empty() || !headers.contains_key(COOKIE) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n).trim();
            !pair.is_empty() && !sources.cookies.iter().any(|c| c == name)
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = http::HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, value);
    }
}

/// Removes the caller's `Authorization` and token cookies.
pub fn remove_credentials(headers: &mut HeaderMap, sources: &TokenSources) {
    headers.remove(http::header::AUTHORIZATION);
    remove_token_cookies(headers, sources);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn sources() -> TokenSources {
        TokenSources {
            cookies: vec!["session".into()],
            queries: vec!["access_token".into()],
        }
    }

    #[test]
    fn finds_bearer_cookie_and_query_tokens() {
        let mut h = HeaderMap::new();
        h.append(
            AUTHORIZATION,
            HeaderValue::from_static("bEaReR aaa.bbb.ccc"),
        );
        h.append(
            AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYXNz"),
        );
        h.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; session=ddd.eee.fff"),
        );
        let tokens = extract(&h, Some("a=1&access_token=ggg.hhh.iii"), &sources()).unwrap();
        assert_eq!(tokens, ["aaa.bbb.ccc", "ddd.eee.fff", "ggg.hhh.iii"]);
        assert!(extract(&h, None, &TokenSources::default()).unwrap().len() == 1);
    }

    #[test]
    fn empty_bearer_is_malformed() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer   "));
        assert_eq!(
            extract(&h, None, &sources()),
            Err(ExtractError::MalformedHeader)
        );
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(
            extract(&h, None, &sources()),
            Err(ExtractError::MalformedHeader)
        );
    }

    #[test]
    fn token_carriers_are_removed_before_forwarding() {
        assert_eq!(
            query_without_tokens("a=1&access_token=x&b=2", &sources()).as_deref(),
            Some("a=1&b=2")
        );
        assert_eq!(query_without_tokens("access_token=x", &sources()), None);
        assert_eq!(
            query_without_tokens("access%5Ftoken=x&b=1&access+token=y", &sources()).as_deref(),
            Some("b=1&access+token=y")
        );
        assert!(matches!(
            query_without_tokens("a=1", &sources()),
            Some(Cow::Borrowed("a=1"))
        ));
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("theme=dark; session=x; lang=en"),
        );
        remove_token_cookies(&mut h, &sources());
        assert_eq!(h[COOKIE], "theme=dark; lang=en");
        // Every spelling a lenient parser reads as `session` is verified and removed.
        h.insert(
            COOKIE,
            HeaderValue::from_static("session =a.b.c; theme=dark;session\t= d.e.f "),
        );
        assert_eq!(extract(&h, None, &sources()).unwrap(), ["a.b.c", "d.e.f"]);
        remove_token_cookies(&mut h, &sources());
        assert_eq!(h[COOKIE], "theme=dark");
    }
}
