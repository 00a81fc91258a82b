"""Verifies a Tessera ID token exactly as an independent backend would.

Usage: verify_id_token.py ISSUER CLIENT_ID ID_TOKEN [MAX_AGE_SECONDS]

Discovery gives the jwks_uri; PyJWT's PyJWKClient fetches the key named by the token's kid;
the signature (RS256 only), iss, aud and exp are checked; then the reauthentication rule of
a sensitive operation: auth_time must be within MAX_AGE_SECONDS (default 300). Prints the
verdict as JSON and exits 0 when the token verifies and is fresh, 1 when it is stale, 2 when
it does not verify.
"""

import json
import sys
import time
import urllib.request

import jwt


def main() -> int:
    issuer, client_id, token = sys.argv[1], sys.argv[2], sys.argv[3]
    max_age = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as response:
        discovery = json.load(response)
    jwks = jwt.PyJWKClient(discovery["jwks_uri"])
    try:
        key = jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=discovery["issuer"],
            options={"require": ["exp", "iat", "iss", "aud", "sub", "auth_time"]},
        )
    except jwt.PyJWTError as error:
        print(json.dumps({"verified": False, "error": str(error)}))
        return 2
    age = int(time.time()) - int(claims["auth_time"])
    fresh = age <= max_age
    print(json.dumps({
        "verified": True,
        "kid": key.key_id,
        "sub": claims["sub"],
        "auth_time": claims["auth_time"],
        "auth_age": age,
        "fresh": fresh,
        "can_reauthenticate": claims.get("can_reauthenticate"),
    }))
    return 0 if fresh else 1


if __name__ == "__main__":
    sys.exit(main())
