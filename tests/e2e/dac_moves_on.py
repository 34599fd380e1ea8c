"""DefaultAzureCredential with nothing configured, in a network namespace where
169.254.169.254 is the agent (`ambient run --isolate`): prints which token it got and the
managed-identity part of its log, so the test sees whether it moved on past IMDS."""
import json
import logging

from azure.identity import DefaultAzureCredential


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


collect = Collect()
logging.getLogger("azure.identity").addHandler(collect)
logging.getLogger("azure.identity").setLevel(logging.DEBUG)
try:
    token = DefaultAzureCredential().get_token("https://vault.azure.net/.default").token
    result = {"token": token}
except Exception as error:  # The test reads the failure from the output.
    result = {"error": f"{type(error).__name__}: {error}"}
result["log"] = [line for line in collect.lines if "ManagedIdentity" in line or "unreachable" in line]
print(json.dumps(result))
