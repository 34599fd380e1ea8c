"""Every secrets operation through the unmodified azure-keyvault-secrets SecretClient, as a
workload with DefaultAzureCredential. Usage: kv_ops.py VAULT_URL. Prints one JSON document."""
import json
import sys

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

client = SecretClient(sys.argv[1], DefaultAzureCredential())
result = {}
first = client.set_secret("api-key", "v1", content_type="text/plain", tags={"team": "stock"})
second = client.set_secret("api-key", "v2")
result["get"] = client.get_secret("api-key").value
result["get_first_version"] = client.get_secret("api-key", first.properties.version).value
result["versions"] = len(list(client.list_properties_of_secret_versions("api-key")))
for index in range(30):
    client.set_secret(f"bulk-{index:02}", str(index))
result["listed"] = len(list(client.list_properties_of_secrets()))
updated = client.update_secret_properties("api-key", second.properties.version, enabled=False, tags={"state": "off"})
result["updated_enabled"] = updated.enabled
result["updated_tags"] = updated.tags
try:
    client.get_secret("api-key")
    result["disabled_get"] = "allowed"
except Exception as error:  # noqa: BLE001
    result["disabled_get"] = type(error).__name__
client.update_secret_properties("api-key", second.properties.version, enabled=True)
deleted = client.begin_delete_secret("api-key").result()
result["deleted_recovery_id"] = deleted.recovery_id is not None
result["deleted_listed"] = [secret.name for secret in client.list_deleted_secrets()]
try:
    client.set_secret("api-key", "v3")
    result["set_while_deleted"] = "allowed"
except ResourceExistsError:
    result["set_while_deleted"] = "ResourceExistsError"
client.begin_recover_deleted_secret("api-key").result()
result["recovered"] = client.get_secret("api-key").value
backup = client.backup_secret("api-key")
client.begin_delete_secret("api-key").result()
client.purge_deleted_secret("api-key")
try:
    client.get_deleted_secret("api-key")
    result["after_purge"] = "still deleted"
except ResourceNotFoundError:
    result["after_purge"] = "ResourceNotFoundError"
restored = client.restore_secret_backup(backup)
result["restored"] = client.get_secret(restored.name).value
print(json.dumps(result))
