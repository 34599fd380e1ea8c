"""Managed identity through the agent with the unmodified azure-identity ManagedIdentityCredential.

The test sets either AZURE_POD_IDENTITY_AUTHORITY_HOST (IMDS) or IDENTITY_ENDPOINT and
IDENTITY_HEADER (App Service); this script only names the identity to use. Prints one JSON
document with each token's claims, and how a request for an identity the resource does not hold
failed."""
import json
import os
import uuid

import jwt
from azure.identity import ManagedIdentityCredential

scope = os.environ.get("SCOPE", "https://vault.azure.net/.default")


def claims(credential):
    token = credential.get_token(scope).token
    decoded = jwt.decode(token, options={"verify_signature": False})
    return {key: decoded.get(key) for key in ("oid", "appid", "xms_mirid", "xms_az_rid", "aud", "tid", "idtyp")}


result = {
    "system": claims(ManagedIdentityCredential()),
    "by_client_id": claims(ManagedIdentityCredential(client_id=os.environ["CLIENT_ID"])),
    "by_object_id": claims(ManagedIdentityCredential(identity_config={"object_id": os.environ["OBJECT_ID"]})),
    "by_resource_id": claims(ManagedIdentityCredential(identity_config={"resource_id": os.environ["RESOURCE_ID"]})),
}
try:
    ManagedIdentityCredential(client_id=str(uuid.uuid4())).get_token(scope)
    result["not_held"] = "got a token"
except Exception as error:  # noqa: BLE001 - the class name is what the test checks
    result["not_held"] = type(error).__name__
    result["not_held_message"] = str(error)[:300]
print(json.dumps(result))
