//! First start of a deployment: one tenant, one default subscription, and an admin service
//! principal that owns the subscription. Later starts find the record and reuse it.
//!
//! The admin's client secret is written to `admin.json` (mode 0600) before the database commit,
//! so an acknowledged bootstrap always has its credential on disk. Several servers sharing one
//! PostgreSQL database race safely: the loser of the commit reads the winner's deployment.

use std::path::Path;

use serde::{Deserialize, Serialize};
use store::{
    CredentialRecord, PrincipalRecord, RoleAssignmentRecord, Store, SubscriptionRecord,
    TenantRecord, Write,
};

use crate::StartError;
use crate::data_dir::write_private;

const DEPLOYMENT_SETTING: &str = "deployment";
/// Owner, as in Azure.
const OWNER_ROLE_ID: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const ADMIN_DISPLAY_NAME: &str = "ambient-admin";

/// The identity of this deployment, fixed at first start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub tenant_id: String,
    pub subscription_id: String,
    pub admin_app_id: String,
    pub admin_object_id: String,
}

/// The admin credential file, shaped like `az ad sp create-for-rbac` output.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCredential {
    pub app_id: String,
    pub display_name: String,
    pub password: String,
    pub tenant: String,
}

/// Returns the deployment, creating it when the database has none.
pub async fn ensure(
    store: &dyn Store,
    clock: &dyn domain::Clock,
    hasher: &crypto::hash::SecretHasher,
    data_dir: &Path,
) -> Result<Deployment, StartError> {
    if let Some(existing) = read(store).await? {
        return Ok(existing);
    }
    let now = clock.now().millis();
    let deployment = Deployment {
        tenant_id: domain::Guid::new_random().to_string(),
        subscription_id: domain::Guid::new_random().to_string(),
        admin_app_id: domain::Guid::new_random().to_string(),
        admin_object_id: domain::Guid::new_random().to_string(),
    };
    let secret = crypto::random::random_token(domain::limits::CLIENT_SECRET_BYTES);
    let credential_path = data_dir.join("admin.json");
    let credential = AdminCredential {
        app_id: deployment.admin_app_id.clone(),
        display_name: ADMIN_DISPLAY_NAME.to_owned(),
        password: secret.clone(),
        tenant: deployment.tenant_id.clone(),
    };
    let json = serde_json::to_vec_pretty(&credential)
        .map_err(|error| StartError::Key(error.to_string()))?;
    write_private(&credential_path, &json)
        .map_err(|error| StartError::DataDir { path: credential_path.clone(), error })?;

    let scope = format!("/subscriptions/{}", deployment.subscription_id);
    let assignment_name = domain::Guid::new_random().to_string();
    let assignment_id =
        format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment_name}");
    let writes = vec![
        Write::PutTenant(TenantRecord {
            id: deployment.tenant_id.clone(),
            display_name: "Default Directory".to_owned(),
            created_at: now,
        }),
        Write::PutSubscription(SubscriptionRecord {
            id: deployment.subscription_id.clone(),
            tenant_id: deployment.tenant_id.clone(),
            display_name: "Ambient Subscription".to_owned(),
            state: "Enabled".to_owned(),
            created_at: now,
        }),
        Write::PutPrincipal(PrincipalRecord {
            object_id: deployment.admin_object_id.clone(),
            tenant_id: deployment.tenant_id.clone(),
            kind: "ServicePrincipal".to_owned(),
            app_id: deployment.admin_app_id.clone(),
            display_name: ADMIN_DISPLAY_NAME.to_owned(),
            managed_by_key: None,
            identity_kind: None,
            enabled: true,
            created_at: now,
        }),
        Write::PutCredential(CredentialRecord {
            id: domain::Guid::new_random().to_string(),
            principal_id: deployment.admin_object_id.clone(),
            kind: "secret".to_owned(),
            display_name: "bootstrap".to_owned(),
            secret_hash: Some(hasher.hash(secret.as_bytes()).to_vec()),
            hint: Some(secret.chars().take(3).collect()),
            thumbprint_sha1: None,
            thumbprint_sha256: None,
            certificate_der: None,
            expires_at: now + domain::limits::CLIENT_SECRET_LIFETIME_SECS_DEFAULT * 1000,
            created_at: now,
        }),
        Write::InsertRoleAssignment(RoleAssignmentRecord {
            key: assignment_id.to_ascii_lowercase(),
            id: assignment_id,
            name: assignment_name,
            scope: scope.clone(),
            scope_key: scope.to_ascii_lowercase(),
            role_definition_id: OWNER_ROLE_ID.to_owned(),
            principal_id: deployment.admin_object_id.clone(),
            principal_type: "ServicePrincipal".to_owned(),
            description: Some("bootstrap administrator".to_owned()),
            created_by: None,
            created_at: now,
            updated_at: now,
        }),
        // Owner at the tenant root too: the directory (service principals, sign-in log, signing
        // keys) is authorized at `/`.
        Write::InsertRoleAssignment(root_owner(&deployment, now)),
        Write::PutSetting {
            name: DEPLOYMENT_SETTING.to_owned(),
            value: serde_json::to_string(&deployment)
                .map_err(|error| StartError::Key(error.to_string()))?,
        },
    ];
    match store.apply(writes).await {
        Ok(()) => {
            tracing::info!(tenant = %deployment.tenant_id, subscription = %deployment.subscription_id, "bootstrapped deployment");
            Ok(deployment)
        }
        Err(store::Error::Conflict(_)) => read(store).await?.ok_or_else(|| {
            StartError::Store(store::Error::Conflict(
                "deployment bootstrap raced and lost".to_owned(),
            ))
        }),
        Err(error) => Err(StartError::Store(error)),
    }
}

fn root_owner(deployment: &Deployment, now: i64) -> RoleAssignmentRecord {
    let name = domain::Guid::new_random().to_string();
    let id = format!("/providers/Microsoft.Authorization/roleAssignments/{name}");
    RoleAssignmentRecord {
        key: id.to_ascii_lowercase(),
        id,
        name,
        scope: "/".to_owned(),
        scope_key: "/".to_owned(),
        role_definition_id: OWNER_ROLE_ID.to_owned(),
        principal_id: deployment.admin_object_id.clone(),
        principal_type: "ServicePrincipal".to_owned(),
        description: Some("bootstrap administrator (tenant root)".to_owned()),
        created_by: None,
        created_at: now,
        updated_at: now,
    }
}

async fn read(store: &dyn Store) -> Result<Option<Deployment>, StartError> {
    match store.get_setting(DEPLOYMENT_SETTING).await.map_err(StartError::Store)? {
        Some(json) => serde_json::from_str(&json).map(Some).map_err(|error| {
            StartError::Store(store::Error::Corrupt(format!("deployment record: {error}")))
        }),
        None => Ok(None),
    }
}
