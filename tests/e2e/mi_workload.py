"""A long-running workload for restart tests: started once (by `ambient run`), it asks for a
managed-identity token with the unmodified azure-identity ManagedIdentityCredential each time the
test drops a trigger file, for a new audience each time so neither the SDK's nor the agent's
cache can answer.

Usage: mi_workload.py DIR. For n = 1, 2, ... it waits for DIR/go-n, then writes DIR/out-n (one
JSON object: the token's claims, or the error). DIR/stop ends it."""
import json
import os
import sys
import time

import jwt
from azure.identity import ManagedIdentityCredential

directory = sys.argv[1]
credential = ManagedIdentityCredential()
n = 1
while True:
    trigger = os.path.join(directory, f"go-{n}")
    deadline = time.time() + 300
    while not os.path.exists(trigger):
        if os.path.exists(os.path.join(directory, "stop")) or time.time() > deadline:
            sys.exit(0)
        time.sleep(0.05)
    try:
        token = credential.get_token(f"https://workload-{n}.example/.default").token
        decoded = jwt.decode(token, options={"verify_signature": False})
        result = {"ok": True, "aud": decoded.get("aud"), "oid": decoded.get("oid"), "iss": decoded.get("iss")}
    except Exception as error:  # The test reads the failure from the file.
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    temporary = os.path.join(directory, f"out-{n}.tmp")
    with open(temporary, "w") as out:
        json.dump(result, out)
    os.rename(temporary, os.path.join(directory, f"out-{n}"))
    n += 1
