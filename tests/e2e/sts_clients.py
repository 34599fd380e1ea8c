"""Token service against real clients: azure-identity credentials and an independent PyJWT check.

Reads AMBIENT_URL, AMBIENT_TENANT_ID, SECRET_APP_ID, SECRET, CERT_APP_ID, CERT_FILE from the
environment; prints one JSON document with what it found.
"""
import json
import os
import ssl
import time
import uuid

import jwt
import requests
from azure.identity import CertificateCredential, ClientSecretCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

url = os.environ["AMBIENT_URL"]
tenant = os.environ["AMBIENT_TENANT_ID"]
ca = os.environ["AMBIENT_CA_BUNDLE"]
scope = "https://management.azure.com/.default"
result = {}

secret_credential = ClientSecretCredential(
    tenant, os.environ["SECRET_APP_ID"], os.environ["SECRET"], authority=url, disable_instance_discovery=True
)
secret_token = secret_credential.get_token(scope)
cert_credential = CertificateCredential(
    tenant, os.environ["CERT_APP_ID"], certificate_path=os.environ["CERT_FILE"], authority=url, disable_instance_discovery=True
)
cert_token = cert_credential.get_token(scope)

jwks = jwt.PyJWKClient(f"{url}/{tenant}/discovery/v2.0/keys", ssl_context=ssl.create_default_context(cafile=ca))
for name, token in [("secret", secret_token), ("certificate", cert_token)]:
    key = jwks.get_signing_key_from_jwt(token.token)
    claims = jwt.decode(
        token.token, key.key, algorithms=["RS256"], audience="https://management.azure.com/", issuer=f"{url}/{tenant}/"
    )
    result[name] = {
        "appid": claims["appid"],
        "appidacr": claims["appidacr"],
        "tid": claims["tid"],
        "oid": claims["oid"],
        "ver": claims["ver"],
        "lifetime": claims["exp"] - claims["iat"],
        "expires_on_matches": abs(token.expires_on - claims["exp"]) <= 1,
        "kid": jwt.get_unverified_header(token.token)["kid"],
    }

# Hand-made client assertions: expired, then the same valid one twice.
with open(os.environ["CERT_FILE"], "rb") as handle:
    pem = handle.read()
private_key = serialization.load_pem_private_key(pem, password=None)
certificate = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
thumbprint = jwt.utils.base64url_encode(certificate.fingerprint(hashes.SHA1())).decode()
endpoint = f"{url}/{tenant}/oauth2/v2.0/token"


def assertion(exp_offset):
    now = int(time.time())
    claims = {"aud": endpoint, "iss": os.environ["CERT_APP_ID"], "sub": os.environ["CERT_APP_ID"],
              "jti": str(uuid.uuid4()), "iat": now, "nbf": now - 5, "exp": now + exp_offset}
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"x5t": thumbprint})


def post(client_assertion):
    body = {"client_id": os.environ["CERT_APP_ID"], "grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion}
    response = requests.post(endpoint, data=body, verify=ca, timeout=30)
    return response.status_code, response.json()


status, body = post(assertion(-3600))
result["expired_assertion"] = {"status": status, "error": body.get("error"), "codes": body.get("error_codes")}
fresh = assertion(600)
first_status, _ = post(fresh)
status, body = post(fresh)
result["replayed_assertion"] = {"first": first_status, "status": status, "error": body.get("error"), "codes": body.get("error_codes")}
print(json.dumps(result))
