"""Control plane against the unmodified management SDKs: azure-mgmt-msi creates, reads, lists,
updates and deletes a user-assigned identity (and a federated credential); azure-mgmt-authorization
creates and lists a role assignment. Prints one JSON document."""
import json
import os
import uuid

from azure.core.exceptions import ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient

url = os.environ["AMBIENT_URL"]
subscription = os.environ["AMBIENT_SUBSCRIPTION_ID"]
credential = ClientSecretCredential(
    os.environ["AMBIENT_TENANT_ID"], os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"],
    authority=url, disable_instance_discovery=True,
)
scopes = ["https://management.azure.com/.default"]
msi = ManagedServiceIdentityClient(credential, subscription, base_url=url, credential_scopes=scopes)
authorization = AuthorizationManagementClient(credential, subscription, base_url=url, credential_scopes=scopes)

# The group comes from a plain ARM call through the same pipeline (azure-mgmt-resource is not needed).
group = "py-rg"
token = credential.get_token(*scopes).token
import requests  # noqa: E402

response = requests.put(
    f"{url}/subscriptions/{subscription}/resourcegroups/{group}?api-version=2021-04-01",
    json={"location": "westus"}, headers={"Authorization": f"Bearer {token}"}, timeout=30,
)
response.raise_for_status()

result = {}
created = msi.user_assigned_identities.create_or_update(group, "py-identity", {"location": "westus"})
result["created"] = {"name": created.name, "principal_id": created.principal_id, "client_id": created.client_id}
fetched = msi.user_assigned_identities.get(group, "py-identity")
assert fetched.client_id == created.client_id
updated = msi.user_assigned_identities.update(group, "py-identity", {"tags": {"team": "platform"}})
result["updated_tags"] = updated.tags
result["listed_in_group"] = [identity.name for identity in msi.user_assigned_identities.list_by_resource_group(group)]
result["listed_in_subscription"] = [identity.name for identity in msi.user_assigned_identities.list_by_subscription()]
msi.federated_identity_credentials.create_or_update(
    group, "py-identity", "k8s",
    {"issuer": "https://oidc.example/issuer", "subject": "system:serviceaccount:default:app", "audiences": ["api://AzureADTokenExchange"]},
)
result["fic_subjects"] = [fic.subject for fic in msi.federated_identity_credentials.list(group, "py-identity")]

scope = f"/subscriptions/{subscription}/resourceGroups/{group}"
reader = f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
assignment = authorization.role_assignments.create(
    scope, str(uuid.uuid4()), {"role_definition_id": reader, "principal_id": created.principal_id, "principal_type": "ServicePrincipal"},
)
result["assignment"] = {"principal_id": assignment.principal_id, "scope": assignment.scope}
result["assignments_for_principal"] = len(list(
    authorization.role_assignments.list_for_scope(scope, filter=f"principalId eq '{created.principal_id}'")
))

msi.user_assigned_identities.delete(group, "py-identity")
try:
    msi.user_assigned_identities.get(group, "py-identity")
    result["deleted_then_get"] = "still there"
except ResourceNotFoundError:
    result["deleted_then_get"] = "ResourceNotFoundError"
print(json.dumps(result))
