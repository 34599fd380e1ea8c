"""The seeds' workload: read one secret with DefaultAzureCredential, nothing else configured.

Usage: kv_read.py VAULT_URL. Prints {"value": ...}, or {"status", "code"} and exits 3 when Key
Vault refuses."""
import json
import sys

from azure.core.exceptions import HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

client = SecretClient(sys.argv[1], DefaultAzureCredential())
try:
    print(json.dumps({"value": client.get_secret("db-password").value}))
except HttpResponseError as error:
    inner = None
    if error.error is not None and getattr(error.error, "innererror", None):
        inner = error.error.innererror.get("code") if isinstance(error.error.innererror, dict) else None
    print(json.dumps({"status": error.status_code, "code": error.error.code if error.error else None, "inner": inner}))
    sys.exit(3)
