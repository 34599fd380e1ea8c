//! The typed resource model: a stored row parsed once into a [`Resource`], with its identity
//! block typed ([`IdentityBlock`]) and its kind's own facts (a compute resource's host, a
//! user-assigned identity's principal). Nothing outside this module reads an identity block or
//! a property out of JSON text.
//!
//! The storage shape stays what it was (`store::ResourceRecord`: JSON text columns for tags,
//! properties and identity), so existing databases need no migration: [`Resource::from_record`]
//! and [`Resource::to_record`] convert between the two by hand.

use domain::ResourceId;
use serde_json::{Map, Value, json};
use store::ResourceRecord;

use crate::types::{self, Kind, ResourceType};
use crate::{Error, Result};

/// A resource group or resource, as the control plane reasons about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The id as created (ARM prints ids as created; compares them case-insensitively).
    pub id: ResourceId,
    pub subscription_id: String,
    pub resource_type: ResourceType,
    pub name: String,
    pub location: String,
    /// Tags in the order the client sent them.
    pub tags: Map<String, Value>,
    /// The top-level `kind`, `sku`, `zones`, `plan` and `extendedLocation` fields, kept as sent.
    pub extras: Map<String, Value>,
    /// `properties`, as sent and normalized by the kind's rules (without `provisioningState`,
    /// which rendering adds, and without derived fields such as a vault's `vaultUri`).
    pub properties: Map<String, Value>,
    /// The identities a compute resource holds (`None`: it never had an identity block).
    pub identity: Option<IdentityBlock>,
    /// Where a compute resource runs.
    pub host: Option<String>,
    /// Starts at 1; each replace adds one (optimistic concurrency).
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The `identity` block of a compute resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityBlock {
    pub system: Option<SystemIdentity>,
    /// Each attached user-assigned identity once, in the order first attached.
    pub user: Vec<UserIdentity>,
}

/// A system-assigned identity: its service principal lives and dies with the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    pub principal_id: String,
    pub tenant_id: String,
}

/// A user-assigned identity as attached to a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// The identity resource's id, as created.
    pub id: ResourceId,
    pub principal_id: String,
    pub client_id: String,
}

/// The principal of a user-assigned identity resource (its `properties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPrincipal {
    pub tenant_id: String,
    pub principal_id: String,
    pub client_id: String,
}

/// Top-level body fields kept as sent, beside `properties`.
pub const EXTRA_FIELDS: &[&str] =
    &["kind", "sku", "zones", "plan", "extendedLocation", "managedBy"];

impl IdentityBlock {
    /// `None`, `SystemAssigned`, `UserAssigned` or `SystemAssigned, UserAssigned`.
    pub fn type_string(&self) -> &'static str {
        match (self.system.is_some(), !self.user.is_empty()) {
            (false, false) => "None",
            (true, false) => "SystemAssigned",
            (false, true) => "UserAssigned",
            (true, true) => "SystemAssigned, UserAssigned",
        }
    }

    /// Whether the user-assigned identity `key` (lower-cased id) is attached.
    pub fn holds_user(&self, key: &str) -> bool {
        self.user.iter().any(|user| user.id.key() == key)
    }

    /// The block as ARM returns it.
    pub fn to_json(&self) -> Value {
        let mut block = Map::new();
        block.insert("type".to_owned(), json!(self.type_string()));
        if let Some(system) = &self.system {
            block.insert("principalId".to_owned(), json!(system.principal_id));
            block.insert("tenantId".to_owned(), json!(system.tenant_id));
        }
        if !self.user.is_empty() {
            let users: Map<String, Value> = self
                .user
                .iter()
                .map(|user| {
                    (
                        user.id.as_str().to_owned(),
                        json!({"principalId": user.principal_id, "clientId": user.client_id}),
                    )
                })
                .collect();
            block.insert("userAssignedIdentities".to_owned(), Value::Object(users));
        }
        Value::Object(block)
    }

    /// The block from its stored JSON; malformed parts are an error (the row is corrupt).
    pub fn from_json(value: &Value) -> Result<IdentityBlock> {
        let corrupt = |what: &str| Error::Corrupt(format!("identity block: {what}"));
        let map = value.as_object().ok_or_else(|| corrupt("not an object"))?;
        let system =
            map.get("principalId").and_then(Value::as_str).map(|principal_id| SystemIdentity {
                principal_id: principal_id.to_owned(),
                tenant_id: map
                    .get("tenantId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        let mut user = Vec::new();
        if let Some(users) = map.get("userAssignedIdentities").and_then(Value::as_object) {
            for (id, value) in users {
                let id = ResourceId::parse(id).map_err(|_| corrupt("a user identity id"))?;
                user.push(UserIdentity {
                    id,
                    principal_id: value["principalId"].as_str().unwrap_or_default().to_owned(),
                    client_id: value["clientId"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        Ok(IdentityBlock { system, user })
    }
}

impl Resource {
    /// Parses a stored row. A row this version cannot read is `Error::Corrupt`.
    pub fn from_record(record: &ResourceRecord) -> Result<Resource> {
        let corrupt = |what: &str| Error::Corrupt(format!("resource {}: {what}", record.id));
        let id = ResourceId::parse(&record.id).map_err(|_| corrupt("unparsable id"))?;
        let resource_type = if record.type_key == types::RESOURCE_GROUP_TYPE_KEY {
            types::resource_group()
        } else {
            types::lookup(&record.type_key).ok_or_else(|| corrupt("unknown type"))?
        };
        let tags = match serde_json::from_str::<Value>(&record.tags) {
            Ok(Value::Object(tags)) => tags,
            _ => return Err(corrupt("tags are not an object")),
        };
        let mut stored = match serde_json::from_str::<Value>(&record.properties) {
            Ok(Value::Object(stored)) => stored,
            _ => return Err(corrupt("properties are not an object")),
        };
        let mut properties = match stored.remove("properties") {
            Some(Value::Object(properties)) => properties,
            _ => Map::new(),
        };
        // Derived on every read; rows written before kept copies.
        properties.shift_remove("provisioningState");
        properties.shift_remove("vaultUri");
        let extras: Map<String, Value> = EXTRA_FIELDS
            .iter()
            .filter_map(|field| stored.remove(*field).map(|value| ((*field).to_owned(), value)))
            .collect();
        let identity = match record.identity.as_deref() {
            Some(text) => {
                let value: Value = serde_json::from_str(text).map_err(|_| corrupt("identity"))?;
                Some(IdentityBlock::from_json(&value)?)
            }
            None => None,
        };
        Ok(Resource {
            id,
            subscription_id: record.subscription_id.clone(),
            resource_type,
            name: record.name.clone(),
            location: record.location.clone(),
            tags,
            extras,
            properties,
            identity,
            host: record.host_id.clone(),
            version: record.version,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }

    /// The row to store.
    pub fn to_record(&self) -> ResourceRecord {
        let mut stored = Map::new();
        stored.insert("properties".to_owned(), Value::Object(self.properties.clone()));
        stored.insert("type".to_owned(), json!(self.resource_type.name));
        for (field, value) in &self.extras {
            stored.insert(field.clone(), value.clone());
        }
        let group = self.resource_type.kind == Kind::ResourceGroup;
        ResourceRecord {
            key: self.id.key().to_owned(),
            id: self.id.as_str().to_owned(),
            subscription_id: self.subscription_id.clone(),
            resource_group_key: self.id.resource_group().map(str::to_ascii_lowercase),
            type_key: if group {
                types::RESOURCE_GROUP_TYPE_KEY.to_owned()
            } else {
                self.resource_type.name.to_ascii_lowercase()
            },
            name: self.name.clone(),
            location: self.location.clone(),
            tags: Value::Object(self.tags.clone()).to_string(),
            properties: Value::Object(stored).to_string(),
            identity: self.identity.as_ref().map(|block| block.to_json().to_string()),
            host_id: self.host.clone(),
            user_identity_keys: self
                .identity
                .as_ref()
                .map(|block| block.user.iter().map(|user| user.id.key().to_owned()).collect())
                .unwrap_or_default(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    pub fn key(&self) -> &str {
        self.id.key()
    }

    pub fn kind(&self) -> Kind {
        self.resource_type.kind
    }

    /// For a user-assigned identity: its principal, from its properties.
    pub fn identity_principal(&self) -> Option<IdentityPrincipal> {
        if self.kind() != Kind::UserAssignedIdentity {
            return None;
        }
        let text =
            |field: &str| self.properties.get(field).and_then(Value::as_str).map(str::to_owned);
        Some(IdentityPrincipal {
            tenant_id: text("tenantId").unwrap_or_default(),
            principal_id: text("principalId")?,
            client_id: text("clientId")?,
        })
    }

    /// The resource as ARM returns it. `vault_host` is where vaults are served now
    /// (`vault.{suffix}[:port]`), from which a vault's `vaultUri` is derived.
    pub fn render(&self, vault_host: &str) -> Value {
        let mut out = Map::new();
        out.insert("id".to_owned(), json!(self.id.as_str()));
        out.insert("name".to_owned(), json!(self.name));
        out.insert("type".to_owned(), json!(self.resource_type.name));
        if self.kind() != Kind::FederatedCredential {
            out.insert("location".to_owned(), json!(self.location));
            out.insert("tags".to_owned(), Value::Object(self.tags.clone()));
        }
        for (field, value) in &self.extras {
            out.insert(field.clone(), value.clone());
        }
        if self.kind() == Kind::ResourceGroup {
            out.entry("managedBy").or_insert(Value::Null);
        }
        let mut properties = self.properties.clone();
        if self.kind() == Kind::Vault {
            properties.insert(
                "vaultUri".to_owned(),
                json!(format!("https://{}.{vault_host}/", self.name.to_ascii_lowercase())),
            );
        }
        properties.insert("provisioningState".to_owned(), json!("Succeeded"));
        out.insert("properties".to_owned(), Value::Object(properties));
        if let Some(identity) = &self.identity {
            out.insert("identity".to_owned(), identity.to_json());
        }
        Value::Object(out)
    }
}
