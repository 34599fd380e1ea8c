"""ManagedIdentityCredential against an endpoint with injected errors: N tokens, each for another
audience so no cache can answer, each a fresh credential. Prints {"ok": count, "errors": [...]}.

Usage: mi_retries.py N."""
import json
import sys

from azure.identity import ManagedIdentityCredential

ok, errors = 0, []
for n in range(int(sys.argv[1])):
    try:
        ManagedIdentityCredential().get_token(f"https://retry-{n}.example/.default")
        ok += 1
    except Exception as error:  # The test reads the failures from the output.
        errors.append(f"{type(error).__name__}: {error}")
print(json.dumps({"ok": ok, "errors": errors}))
