//! Snapshot tests of the planner, per kind: rows in, a request, the plan out (`check`). GUIDs
//! are counted (`g1`, `g2`, ...) and the time is fixed, so every plan prints the same.

use std::cell::Cell;

use domain::{Guid, ResourceId, UnixTime};
use expect_test::{Expect, expect};
use serde_json::{Map, Value, json};
use store::{PrincipalRecord, SubscriptionRecord, Write};

use crate::model::{IdentityBlock, Resource, SystemIdentity, UserIdentity};
use crate::plan::{
    self, AssignmentPlan, AssignmentRequest, AssignmentRows, Context, DeleteRows, PutRequest, Rows,
};
use crate::types;

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
const TENANT: &str = "00000000-0000-0000-0000-0000000000bb";
const NOW: i64 = 1_700_000_000_000;

fn guid(n: u64) -> Guid {
    format!("00000000-0000-0000-0000-{n:012}").parse().unwrap()
}

/// Plans with counted GUIDs.
fn with_context<T>(run: impl FnOnce(&Context<'_>) -> T) -> T {
    let counter = Cell::new(0u64);
    let next = || {
        counter.set(counter.get() + 1);
        guid(counter.get())
    };
    run(&Context { now: UnixTime::from_millis(NOW), tenant_id: TENANT, new_guid: &next })
}

fn id(path: &str) -> ResourceId {
    ResourceId::parse(&format!("/subscriptions/{SUB}/resourceGroups/rg{path}")).unwrap()
}

fn resource(path: &str, type_name: &str, properties: Value) -> Resource {
    let id = id(path);
    Resource {
        name: id.name().unwrap_or_else(|| id.resource_group().unwrap()).to_owned(),
        resource_type: if path.is_empty() {
            types::resource_group()
        } else {
            types::lookup(type_name).unwrap()
        },
        id,
        subscription_id: SUB.to_owned(),
        location: "westus".to_owned(),
        tags: Map::new(),
        extras: Map::new(),
        properties: properties.as_object().cloned().unwrap_or_default(),
        identity: None,
        host: None,
        version: 3,
        created_at: NOW - 1000,
        updated_at: NOW - 1000,
    }
}

fn group() -> Resource {
    resource("", "", json!({}))
}

fn uami(name: &str, n: u64) -> Resource {
    resource(
        &format!("/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"),
        types::USER_ASSIGNED_IDENTITY,
        json!({"tenantId": TENANT, "principalId": guid(100 + n).to_string(), "clientId": guid(200 + n).to_string(), "isolationScope": "None"}),
    )
}

fn vm(name: &str, identity: Option<IdentityBlock>) -> Resource {
    let mut vm = resource(
        &format!("/providers/Microsoft.Compute/virtualMachines/{name}"),
        "Microsoft.Compute/virtualMachines",
        json!({"hostId": "local", "vmId": "vm-id"}),
    );
    vm.identity = identity;
    vm.host = Some("local".to_owned());
    vm
}

fn user_of(identity: &Resource) -> UserIdentity {
    let principal = identity.identity_principal().unwrap();
    UserIdentity {
        id: identity.id.clone(),
        principal_id: principal.principal_id,
        client_id: principal.client_id,
    }
}

fn rows() -> Rows {
    Rows {
        subscription: Some(SubscriptionRecord {
            id: SUB.to_owned(),
            tenant_id: TENANT.to_owned(),
            display_name: "s".to_owned(),
            state: "Enabled".to_owned(),
            created_at: 0,
        }),
        group: Some(group()),
        ..Rows::default()
    }
}

/// One line per write; resources as ARM renders them.
fn describe_writes(writes: &[Write]) -> String {
    let short = |text: &str| {
        text.replace(&format!("/subscriptions/{SUB}/resourceGroups/rg"), "~")
            .replace(&format!("/subscriptions/{SUB}/resourcegroups/rg"), "~")
    };
    let mut lines = Vec::new();
    for write in writes {
        let line = match write {
            Write::PutPrincipal(principal) => format!(
                "PutPrincipal {} app {} {:?} {} of {}",
                principal.object_id,
                principal.app_id,
                principal.display_name,
                principal.identity_kind.as_deref().unwrap_or("-"),
                short(principal.managed_by_key.as_deref().unwrap_or("-"))
            ),
            Write::DeletePrincipal { object_id } => format!("DeletePrincipal {object_id}"),
            Write::PutResource { record, expect } => {
                let rendered = Resource::from_record(record).unwrap().render("vault.test");
                format!("PutResource {expect:?} {}", short(&rendered.to_string()))
            }
            Write::DeleteResource { key } => format!("DeleteResource {}", short(key)),
            Write::DeleteRoleAssignmentsUnder { scope_key } => {
                format!("DeleteRoleAssignmentsUnder {}", short(scope_key))
            }
            Write::DeleteFederatedCredentialsOf { identity_key } => {
                format!("DeleteFederatedCredentialsOf {}", short(identity_key))
            }
            Write::PutFederatedCredential(record) => format!(
                "PutFederatedCredential {} of {} issuer {} subject {} audiences {}",
                short(&record.id),
                short(&record.identity_key),
                record.issuer,
                record.subject,
                record.audiences
            ),
            Write::PurgeVault { vault_key } => format!("PurgeVault {}", short(vault_key)),
            Write::InsertRoleAssignment(record) => format!(
                "InsertRoleAssignment {} role {} principal {} ({}) at {}",
                record.name,
                record.role_definition_id,
                record.principal_id,
                record.principal_type,
                short(&record.scope)
            ),
            other => format!("{other:?}"),
        };
        lines.push(line);
    }
    lines.join("\n")
}

#[track_caller]
fn check(rows: Rows, path: &str, body: Value, patch: bool, expect: Expect) {
    let target = id(path);
    let actual = with_context(|context| {
        match plan::put(context, &rows, PutRequest { id: &target, body: &body, patch }) {
            Ok(plan) => {
                let attach: Vec<String> =
                    plan.attach.iter().map(|id| id.name().unwrap_or_default().to_owned()).collect();
                format!(
                    "created={} attach={attach:?}\n{}",
                    plan.created,
                    describe_writes(&plan.writes)
                )
            }
            Err(error) => format!("error: {error}"),
        }
    });
    expect.assert_eq(&actual);
}

#[test]
fn a_group_is_created_and_updated() {
    let mut empty = rows();
    empty.group = None;
    check(
        empty,
        "",
        json!({"location": "westus", "tags": {"b": "2", "a": "1"}}),
        false,
        expect![[r#"
            created=true attach=[]
            PutResource Absent {"id":"~","name":"rg","type":"Microsoft.Resources/resourceGroups","location":"westus","tags":{"b":"2","a":"1"},"managedBy":null,"properties":{"provisioningState":"Succeeded"}}"#]],
    );
    let mut existing = rows();
    existing.existing = Some(group());
    existing.group = None;
    check(
        existing,
        "",
        json!({"tags": {"env": "test"}}),
        true,
        expect![[r#"
            created=false attach=[]
            PutResource Version(3) {"id":"~","name":"rg","type":"Microsoft.Resources/resourceGroups","location":"westus","tags":{"env":"test"},"managedBy":null,"properties":{"provisioningState":"Succeeded"}}"#]],
    );
}

#[test]
fn a_vm_with_a_system_identity_gets_a_principal() {
    check(
        rows(),
        "/providers/Microsoft.Compute/virtualMachines/vm1",
        json!({"location": "westus", "identity": {"type": "SystemAssigned"}}),
        false,
        expect![[r#"
            created=true attach=[]
            PutPrincipal 00000000-0000-0000-0000-000000000001 app 00000000-0000-0000-0000-000000000002 "vm1" SystemAssigned of ~/providers/microsoft.compute/virtualmachines/vm1
            PutResource Absent {"id":"~/providers/Microsoft.Compute/virtualMachines/vm1","name":"vm1","type":"Microsoft.Compute/virtualMachines","location":"westus","tags":{},"properties":{"hostId":"local","vmId":"00000000-0000-0000-0000-000000000003","provisioningState":"Succeeded"},"identity":{"type":"SystemAssigned","principalId":"00000000-0000-0000-0000-000000000001","tenantId":"00000000-0000-0000-0000-0000000000bb"}}"#]],
    );
}

#[test]
fn attaching_a_user_identity_needs_linked_authorization_once() {
    let id1 = uami("id1", 1);
    let mut rows = rows();
    rows.user_identities = vec![id1.clone()];
    let body = json!({"location": "westus", "identity": {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {id1.id.as_str(): {}}}});
    check(
        rows.clone(),
        "/providers/Microsoft.Compute/virtualMachines/vm1",
        body.clone(),
        false,
        expect![[r#"
            created=true attach=["id1"]
            PutPrincipal 00000000-0000-0000-0000-000000000001 app 00000000-0000-0000-0000-000000000002 "vm1" SystemAssigned of ~/providers/microsoft.compute/virtualmachines/vm1
            PutResource Absent {"id":"~/providers/Microsoft.Compute/virtualMachines/vm1","name":"vm1","type":"Microsoft.Compute/virtualMachines","location":"westus","tags":{},"properties":{"hostId":"local","vmId":"00000000-0000-0000-0000-000000000003","provisioningState":"Succeeded"},"identity":{"type":"SystemAssigned, UserAssigned","principalId":"00000000-0000-0000-0000-000000000001","tenantId":"00000000-0000-0000-0000-0000000000bb","userAssignedIdentities":{"~/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1":{"principalId":"00000000-0000-0000-0000-000000000101","clientId":"00000000-0000-0000-0000-000000000201"}}}}"#]],
    );
    // Already attached: no linked authorization, the system principal is kept.
    rows.existing = Some(vm(
        "vm1",
        Some(IdentityBlock {
            system: Some(SystemIdentity {
                principal_id: "sys".to_owned(),
                tenant_id: TENANT.to_owned(),
            }),
            user: vec![user_of(&id1)],
        }),
    ));
    check(
        rows,
        "/providers/Microsoft.Compute/virtualMachines/vm1",
        body,
        false,
        expect![[r#"
            created=false attach=[]
            PutResource Version(3) {"id":"~/providers/Microsoft.Compute/virtualMachines/vm1","name":"vm1","type":"Microsoft.Compute/virtualMachines","location":"westus","tags":{},"properties":{"hostId":"local","vmId":"vm-id","provisioningState":"Succeeded"},"identity":{"type":"SystemAssigned, UserAssigned","principalId":"sys","tenantId":"00000000-0000-0000-0000-0000000000bb","userAssignedIdentities":{"~/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1":{"principalId":"00000000-0000-0000-0000-000000000101","clientId":"00000000-0000-0000-0000-000000000201"}}}}"#]],
    );
}

#[test]
fn turning_the_system_identity_off_deletes_its_principal() {
    let mut rows = rows();
    rows.existing = Some(vm(
        "vm1",
        Some(IdentityBlock {
            system: Some(SystemIdentity {
                principal_id: "sys".to_owned(),
                tenant_id: TENANT.to_owned(),
            }),
            user: Vec::new(),
        }),
    ));
    check(
        rows,
        "/providers/Microsoft.Compute/virtualMachines/vm1",
        json!({"identity": {"type": "None"}}),
        true,
        expect![[r#"
            created=false attach=[]
            DeletePrincipal sys
            PutResource Version(3) {"id":"~/providers/Microsoft.Compute/virtualMachines/vm1","name":"vm1","type":"Microsoft.Compute/virtualMachines","location":"westus","tags":{},"properties":{"hostId":"local","vmId":"vm-id","provisioningState":"Succeeded"},"identity":{"type":"None"}}"#]],
    );
}

#[test]
fn a_missing_user_identity_or_group_is_refused() {
    check(
        rows(),
        "/providers/Microsoft.Compute/virtualMachines/vm1",
        json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {uami("nope", 9).id.as_str(): {}}}}),
        false,
        expect![[
            r#"error: The user-assigned identity '/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope' was not found."#
        ]],
    );
    let mut no_group = rows();
    no_group.group = None;
    check(
        no_group,
        "/providers/Microsoft.Compute/virtualMachines/vm1",
        json!({}),
        false,
        expect![[r#"error: Resource group 'rg' could not be found."#]],
    );
    check(
        rows(),
        "/providers/Microsoft.Compute/virtualMachines/-vm",
        json!({}),
        false,
        expect![[
            r#"error: The resource name '-vm' is invalid. Names are 1 to 90 characters of letters, digits, '-', '_', '.', '(' and ')', do not start with '-' or '.', and do not end with '.'."#
        ]],
    );
}

#[test]
fn a_user_assigned_identity_keeps_its_principal() {
    check(
        rows(),
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        json!({"location": "westus"}),
        false,
        expect![[r#"
            created=true attach=[]
            PutPrincipal 00000000-0000-0000-0000-000000000001 app 00000000-0000-0000-0000-000000000002 "id1" UserAssigned of ~/providers/microsoft.managedidentity/userassignedidentities/id1
            PutResource Absent {"id":"~/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1","name":"id1","type":"Microsoft.ManagedIdentity/userAssignedIdentities","location":"westus","tags":{},"properties":{"tenantId":"00000000-0000-0000-0000-0000000000bb","principalId":"00000000-0000-0000-0000-000000000001","clientId":"00000000-0000-0000-0000-000000000002","isolationScope":"None","provisioningState":"Succeeded"}}"#]],
    );
    let mut rows = rows();
    rows.existing = Some(uami("id1", 1));
    check(
        rows,
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        json!({"location": "westus", "tags": {"a": "b"}}),
        false,
        expect![[r#"
            created=false attach=[]
            PutResource Version(3) {"id":"~/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1","name":"id1","type":"Microsoft.ManagedIdentity/userAssignedIdentities","location":"westus","tags":{"a":"b"},"properties":{"tenantId":"00000000-0000-0000-0000-0000000000bb","principalId":"00000000-0000-0000-0000-000000000101","clientId":"00000000-0000-0000-0000-000000000201","isolationScope":"None","provisioningState":"Succeeded"}}"#]],
    );
}

#[test]
fn federated_credentials_need_their_identity_and_an_issuer() {
    let path = "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/gh";
    let body = json!({"properties": {"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:refs/heads/main"}});
    check(
        rows(),
        path,
        body.clone(),
        false,
        expect![[r#"error: The user-assigned identity 'id1' was not found."#]],
    );
    let mut with_parent = rows();
    with_parent.parent = Some(uami("id1", 1));
    check(
        with_parent.clone(),
        path,
        body,
        false,
        expect![[r#"
            created=true attach=[]
            PutFederatedCredential ~/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/gh of ~/providers/microsoft.managedidentity/userassignedidentities/id1 issuer https://token.actions.githubusercontent.com subject repo:o/r:ref:refs/heads/main audiences ["api://AzureADTokenExchange"]
            PutResource Absent {"id":"~/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/gh","name":"gh","type":"Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials","properties":{"issuer":"https://token.actions.githubusercontent.com","subject":"repo:o/r:ref:refs/heads/main","audiences":["api://AzureADTokenExchange"],"provisioningState":"Succeeded"}}"#]],
    );
    check(
        with_parent,
        path,
        json!({"properties": {"issuer": "https://x"}}),
        false,
        expect![[r#"error: 'properties.subject' is required"#]],
    );
}

#[test]
fn vaults_are_rbac_only_with_global_names() {
    let path = "/providers/Microsoft.KeyVault/vaults/stockvault";
    check(
        rows(),
        path,
        json!({"location": "westus", "properties": {"tenantId": TENANT, "sku": {"family": "A", "name": "standard"}}}),
        false,
        expect![[r#"
            created=true attach=[]
            PutResource Absent {"id":"~/providers/Microsoft.KeyVault/vaults/stockvault","name":"stockvault","type":"Microsoft.KeyVault/vaults","location":"westus","tags":{},"properties":{"tenantId":"00000000-0000-0000-0000-0000000000bb","sku":{"family":"A","name":"standard"},"enableRbacAuthorization":true,"enableSoftDelete":true,"softDeleteRetentionInDays":90,"vaultUri":"https://stockvault.vault.test/","provisioningState":"Succeeded"}}"#]],
    );
    let mut taken = rows();
    taken.vault_name_taken = true;
    check(
        taken,
        path,
        json!({}),
        false,
        expect![[r#"error: The vault name 'stockvault' is already in use."#]],
    );
    check(
        rows(),
        path,
        json!({"properties": {"enableRbacAuthorization": false}}),
        false,
        expect![[
            r#"error: Ambient vaults use RBAC authorization only; 'enableRbacAuthorization' must be true."#
        ]],
    );
}

#[test]
fn generic_types_are_stored_as_sent() {
    check(
        rows(),
        "/providers/Microsoft.Network/publicIPAddresses/vm1PublicIP",
        json!({"location": "westus", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}),
        false,
        expect![[r#"
            created=true attach=[]
            PutResource Absent {"id":"~/providers/Microsoft.Network/publicIPAddresses/vm1PublicIP","name":"vm1PublicIP","type":"Microsoft.Network/publicIPAddresses","location":"westus","tags":{},"sku":{"name":"Standard"},"properties":{"publicIPAllocationMethod":"Static","ipAddress":"20.174.177.141","provisioningState":"Succeeded"}}"#]],
    );
}

#[test]
fn deleting_an_identity_detaches_it_and_deletes_its_principal() {
    let id1 = uami("id1", 1);
    let holder = vm("vm1", Some(IdentityBlock { system: None, user: vec![user_of(&id1)] }));
    let principal = PrincipalRecord {
        object_id: guid(101).to_string(),
        tenant_id: TENANT.to_owned(),
        kind: "ManagedIdentity".to_owned(),
        app_id: guid(201).to_string(),
        display_name: "id1".to_owned(),
        managed_by_key: Some(id1.key().to_owned()),
        identity_kind: Some("UserAssigned".to_owned()),
        enabled: true,
        created_at: 0,
    };
    let rows = DeleteRows { doomed: vec![id1], principals: vec![principal], holders: vec![holder] };
    let plan = with_context(|context| plan::delete(context, &rows));
    expect![[r#"
        DeletePrincipal 00000000-0000-0000-0000-000000000101
        DeleteFederatedCredentialsOf ~/providers/microsoft.managedidentity/userassignedidentities/id1
        DeleteRoleAssignmentsUnder ~/providers/microsoft.managedidentity/userassignedidentities/id1
        DeleteResource ~/providers/microsoft.managedidentity/userassignedidentities/id1
        PutResource Version(3) {"id":"~/providers/Microsoft.Compute/virtualMachines/vm1","name":"vm1","type":"Microsoft.Compute/virtualMachines","location":"westus","tags":{},"properties":{"hostId":"local","vmId":"vm-id","provisioningState":"Succeeded"},"identity":{"type":"None"}}"#]]
    .assert_eq(&describe_writes(&plan.writes));
}

#[track_caller]
fn check_assignment(rows: AssignmentRows, name: &str, body: Value, expect: Expect) {
    let scope = ResourceId::parse(&format!("/subscriptions/{SUB}/resourceGroups/rg")).unwrap();
    let actual = with_context(|context| {
        match plan::assignment(
            context,
            &rows,
            AssignmentRequest { scope: &scope, name, body: &body, caller: "admin" },
        ) {
            Ok(AssignmentPlan::Create { writes, .. }) => {
                format!("create\n{}", describe_writes(&writes))
            }
            Ok(AssignmentPlan::Unchanged(record)) => format!("unchanged {}", record.name),
            Err(error) => format!("error: {error}"),
        }
    });
    expect.assert_eq(&actual);
}

#[test]
fn role_assignments_check_role_principal_and_scope() {
    let reader = rbac::builtin_role_by_name("Reader").unwrap().clone();
    let principal = PrincipalRecord {
        object_id: "p1".to_owned(),
        tenant_id: TENANT.to_owned(),
        kind: "ServicePrincipal".to_owned(),
        app_id: "a1".to_owned(),
        display_name: "app".to_owned(),
        managed_by_key: None,
        identity_kind: None,
        enabled: true,
        created_at: 0,
    };
    let name = guid(7).to_string();
    let body = json!({"properties": {"roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{}", reader.id), "principalId": "p1"}});
    let rows = AssignmentRows {
        role: Some(reader),
        principal: Some(principal),
        scope_exists: true,
        existing: None,
    };
    check_assignment(
        rows.clone(),
        &name,
        body.clone(),
        expect![[r#"
            create
            InsertRoleAssignment 00000000-0000-0000-0000-000000000007 role acdd72a7-3385-48ef-bd42-f606fba81ae7 principal p1 (ServicePrincipal) at ~"#]],
    );
    check_assignment(
        AssignmentRows { role: None, ..rows.clone() },
        &name,
        body.clone(),
        expect![[
            r#"error: The specified role definition with ID 'acdd72a7-3385-48ef-bd42-f606fba81ae7' does not exist."#
        ]],
    );
    check_assignment(
        AssignmentRows { principal: None, ..rows.clone() },
        &name,
        body.clone(),
        expect![[
            r#"error: Principal p1 does not exist in the directory 00000000-0000-0000-0000-0000000000bb."#
        ]],
    );
    check_assignment(
        rows,
        "not-a-guid",
        body,
        expect![[
            r#"error: The role assignment ID 'not-a-guid' is not valid. The role assignment ID must be a GUID."#
        ]],
    );
}
