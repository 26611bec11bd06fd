"""Verifying tollgate's identity assertion with PyJWT: the README's Python example, run as is
by tests/identity_assertion.rs (pip install "pyjwt[crypto]").

Run as a script, it reads {"jwks": {...}, "cases": [{"name", "token", "method", "path",
"host"}]} on stdin and prints {name: "accepted" | "refused: <why>"}.
"""
import json
import sys

import jwt


def verify_assertion(token, jwks, method, path, host, issuer="tollgate", leeway=5):
    """The claims of a genuine assertion for the request this service received, or raises."""
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "tollgate-assertion+jwt":
        raise jwt.InvalidTokenError("not a tollgate assertion")
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]  # KeyError: unknown kid
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=issuer, leeway=leeway,
                        options={"require": ["exp", "iat", "iss", "rid", "htm", "htu"]})
    # Bound to one request: the same assertion replayed to another method, path or host fails.
    if (claims["htm"], claims["htu"], claims.get("host")) != (method, path, host):
        raise jwt.InvalidTokenError("assertion is for another request")
    return claims


if __name__ == "__main__":
    given = json.load(sys.stdin)
    verdicts = {}
    for case in given["cases"]:
        try:
            verify_assertion(case["token"], given["jwks"], case["method"], case["path"],
                             case["host"])
            verdicts[case["name"]] = "accepted"
        except (jwt.PyJWTError, KeyError) as e:
            verdicts[case["name"]] = f"refused: {type(e).__name__}: {e}"
    print(json.dumps(verdicts))
