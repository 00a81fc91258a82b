"""Verifies a stream of Tessera ID tokens with one long-lived PyJWKClient, as a backend
that caches the JWKS (PyJWT's defaults) would across signing-key rotations.

Usage: verify_loop.py ISSUER CLIENT_ID

Reads one ID token per line on stdin and prints one JSON verdict per line:
{"ok": true, "kid": ...} or {"ok": false, "error": ...}. Ends at end of input.
"""

import json
import sys
import urllib.request

import jwt


def main() -> int:
    issuer, client_id = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as response:
        discovery = json.load(response)
    jwks = jwt.PyJWKClient(discovery["jwks_uri"])
    for line in sys.stdin:
        token = line.strip()
        if not token:
            continue
        try:
            key = jwks.get_signing_key_from_jwt(token)
            jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=client_id,
                issuer=discovery["issuer"],
            )
            verdict = {"ok": True, "kid": jwt.get_unverified_header(token).get("kid")}
        except Exception as error:  # every failure is reported, none is fatal
            verdict = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(verdict), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
