"""A workload under `ambient run --flavour X`: ManagedIdentityCredential and
DefaultAzureCredential, constructed with no arguments, each get a Key Vault token and read one
secret with the real azure-keyvault-secrets.

Usage: flavour_read.py VAULT_URL [SECONDS]. Prints {"env": [...], "mi": {...}, "dac": {...}}:
the identity variables the workload saw, and for each credential the token's oid and appid and
the secret's value (or the error). With SECONDS, it then waits until the federated token file it
started with has expired plus SECONDS, and reads again with fresh credentials ("later"), as a
long-running workload does.

Names under .localhost resolve to 127.0.0.1 here (as systemd-resolved does), since the test
machine's resolver may not know the vault's name; nothing else is changed."""
import base64
import json
import os
import socket
import sys
import time

import jwt
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

_getaddrinfo = socket.getaddrinfo


def _localhost_getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _localhost_getaddrinfo
PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")


def read(name, credential):
    try:
        token = credential.get_token("https://vault.azure.net/.default").token
        claims = jwt.decode(token, options={"verify_signature": False})
        value = SecretClient(sys.argv[1], credential).get_secret("db-password").value
        return {"oid": claims.get("oid"), "appid": claims.get("appid"), "value": value}
    except Exception as error:  # The test reads the failure from the output.
        return {"error": f"{name}: {type(error).__name__}: {error}"}


def file_claims():
    with open(os.environ["AZURE_FEDERATED_TOKEN_FILE"]) as file:
        payload = file.read().strip().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


result = {"env": sorted(name for name in os.environ if name.startswith(PREFIXES))}
first_file = file_claims() if "AZURE_FEDERATED_TOKEN_FILE" in os.environ else None
result["mi"] = read("ManagedIdentityCredential", ManagedIdentityCredential())
result["dac"] = read("DefaultAzureCredential", DefaultAzureCredential())
if len(sys.argv) > 2 and first_file:
    time.sleep(max(0, first_file["exp"] - time.time()) + float(sys.argv[2]))
    result["later"] = read("ManagedIdentityCredential", ManagedIdentityCredential())
    result["files"] = {"first_exp": first_file["exp"], "later_exp": file_claims()["exp"], "now": int(time.time())}
print(json.dumps(result))
