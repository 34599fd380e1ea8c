"""DefaultAzureCredential as a workload sees it under `ambient run`: prints the token's claims."""
import json

import jwt
from azure.identity import DefaultAzureCredential

token = DefaultAzureCredential().get_token("https://management.azure.com/.default").token
claims = jwt.decode(token, options={"verify_signature": False})
print(json.dumps({key: claims.get(key) for key in ("oid", "appid", "xms_mirid", "aud")}))
