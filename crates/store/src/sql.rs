//! Query text and row mapping shared by both backends.
//!
//! SQLite and PostgreSQL accept the same SQL for everything the store does (`$n` parameters,
//! `ON CONFLICT ... DO UPDATE`, `LIKE ... ESCAPE`), so the implementation is written once in
//! [`store_impl!`] and expanded for each backend's concrete types. Dialect differences (connection
//! options, locking, the migration files) stay in `sqlite.rs` and `postgres.rs`.

use crate::records::ResourceRecord;

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub(crate) fn join_keys(keys: &[String]) -> String {
    keys.join(" ")
}

pub(crate) fn split_keys(joined: &str) -> Vec<String> {
    joined.split(' ').filter(|key| !key.is_empty()).map(str::to_owned).collect()
}

/// The one row mapped by hand: `user_identity_keys` is a single space-separated column.
/// The other rows derive `sqlx::FromRow` (`records.rs`); this impl has the same shape and bounds.
impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for ResourceRecord
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(ResourceRecord {
            key: row.try_get("key")?,
            id: row.try_get("id")?,
            subscription_id: row.try_get("subscription_id")?,
            resource_group_key: row.try_get("resource_group_key")?,
            type_key: row.try_get("type_key")?,
            name: row.try_get("name")?,
            location: row.try_get("location")?,
            tags: row.try_get("tags")?,
            properties: row.try_get("properties")?,
            identity: row.try_get("identity")?,
            host_id: row.try_get("host_id")?,
            user_identity_keys: split_keys(&row.try_get::<String, _>("user_identity_keys")?),
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Expands the `Store` implementation for one backend.
///
/// `$store` must have a `pool: sqlx::Pool<$db>` field and an
/// `async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>>` method.
/// Reads decode rows with `sqlx::FromRow`.
macro_rules! store_impl {
    ($store:ty, $db:ty, $backend:literal) => {
        use crate::records::*;
        use crate::sql::{join_keys, like_prefix};
        use crate::{Error, Result};

        async fn put_resource_links(
            conn: &mut <$db as sqlx::Database>::Connection,
            record: &ResourceRecord,
        ) -> Result<()> {
            sqlx::query("DELETE FROM resource_identity_links WHERE resource_key = $1")
                .bind(&record.key)
                .execute(&mut *conn)
                .await?;
            for identity_key in &record.user_identity_keys {
                sqlx::query(
                    "INSERT INTO resource_identity_links (resource_key, identity_key) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&record.key)
                .bind(identity_key)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Appends an activity event, or (with an aggregate key that exists) counts into it.
        async fn insert_activity_event(
            conn: &mut <$db as sqlx::Database>::Connection,
            event: NewEventRecord,
            aggregate_key: Option<String>,
            count: i64,
            last_timestamp: i64,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO activity_events (event_data_id, subscription_id, \
                 resource_group_key, resource_key, correlation_id, status, timestamp, body, \
                 aggregate_key, event_count, last_timestamp) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (aggregate_key) DO UPDATE SET \
                 event_count = activity_events.event_count + excluded.event_count, \
                 last_timestamp = CASE WHEN excluded.last_timestamp > activity_events.last_timestamp \
                 THEN excluded.last_timestamp ELSE activity_events.last_timestamp END",
            )
            .bind(event.event_id)
            .bind(event.subscription_id.unwrap_or_default())
            .bind(event.resource_group_key)
            .bind(event.resource_key.unwrap_or_default())
            .bind(event.correlation_id.unwrap_or_default())
            .bind(event.status)
            .bind(event.timestamp)
            .bind(event.body)
            .bind(aggregate_key)
            .bind(count)
            .bind(last_timestamp.max(event.timestamp))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Appends a sign-in event, or (with an aggregate key that exists) counts into it.
        async fn insert_sign_in_event(
            conn: &mut <$db as sqlx::Database>::Connection,
            event: NewEventRecord,
            aggregate_key: Option<String>,
            count: i64,
            last_timestamp: i64,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO sign_in_events (event_id, tenant_id, principal_id, app_id, \
                 result, timestamp, body, aggregate_key, event_count, last_timestamp) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (aggregate_key) DO UPDATE SET \
                 event_count = sign_in_events.event_count + excluded.event_count, \
                 last_timestamp = CASE WHEN excluded.last_timestamp > sign_in_events.last_timestamp \
                 THEN excluded.last_timestamp ELSE sign_in_events.last_timestamp END",
            )
            .bind(event.event_id)
            .bind(event.tenant_id)
            .bind(event.principal_id)
            .bind(event.app_id)
            .bind(event.status)
            .bind(event.timestamp)
            .bind(event.body)
            .bind(aggregate_key)
            .bind(count)
            .bind(last_timestamp.max(event.timestamp))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn apply_one(
            conn: &mut <$db as sqlx::Database>::Connection,
            write: Write,
        ) -> Result<()> {
            match write {
                Write::PutSetting { name, value } => {
                    sqlx::query(
                        "INSERT INTO settings (name, value) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )
                    .bind(name)
                    .bind(value)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::InsertSetting { name, value } => {
                    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2)")
                        .bind(name)
                        .bind(value)
                        .execute(&mut *conn)
                        .await?;
                }
                Write::PutTenant(tenant) => {
                    sqlx::query(
                        "INSERT INTO tenants (id, display_name, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name",
                    )
                    .bind(tenant.id)
                    .bind(tenant.display_name)
                    .bind(tenant.created_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::PutSubscription(sub) => {
                    sqlx::query(
                        "INSERT INTO subscriptions (id, tenant_id, display_name, state, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
                         display_name = excluded.display_name, state = excluded.state",
                    )
                    .bind(sub.id)
                    .bind(sub.tenant_id)
                    .bind(sub.display_name)
                    .bind(sub.state)
                    .bind(sub.created_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::PutResource { record, expect } => {
                    let identity_keys = join_keys(&record.user_identity_keys);
                    match expect {
                        Expect::Version(version) => {
                            let result = sqlx::query(
                                "UPDATE resources SET id = $2, location = $3, tags = $4, \
                                 properties = $5, identity = $6, host_id = $7, \
                                 user_identity_keys = $8, updated_at = $9, version = version + 1 \
                                 WHERE key = $1 AND version = $10",
                            )
                            .bind(&record.key)
                            .bind(&record.id)
                            .bind(&record.location)
                            .bind(&record.tags)
                            .bind(&record.properties)
                            .bind(&record.identity)
                            .bind(&record.host_id)
                            .bind(&identity_keys)
                            .bind(record.updated_at)
                            .bind(version)
                            .execute(&mut *conn)
                            .await?;
                            if result.rows_affected() != 1 {
                                return Err(Error::Conflict(format!(
                                    "resource {} changed or is gone",
                                    record.id
                                )));
                            }
                        }
                        Expect::Absent | Expect::Any => {
                            let on_conflict = if expect == Expect::Absent {
                                ""
                            } else {
                                " ON CONFLICT (key) DO UPDATE SET id = excluded.id, \
                                 location = excluded.location, tags = excluded.tags, \
                                 properties = excluded.properties, identity = excluded.identity, \
                                 host_id = excluded.host_id, \
                                 user_identity_keys = excluded.user_identity_keys, \
                                 updated_at = excluded.updated_at, version = resources.version + 1"
                            };
                            let sql = format!(
                                "INSERT INTO resources (key, id, subscription_id, resource_group_key, \
                                 type_key, name, location, tags, properties, identity, host_id, \
                                 user_identity_keys, version, created_at, updated_at) VALUES \
                                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14){on_conflict}"
                            );
                            sqlx::query(sqlx::AssertSqlSafe(sql))
                                .bind(&record.key)
                                .bind(&record.id)
                                .bind(&record.subscription_id)
                                .bind(&record.resource_group_key)
                                .bind(&record.type_key)
                                .bind(&record.name)
                                .bind(&record.location)
                                .bind(&record.tags)
                                .bind(&record.properties)
                                .bind(&record.identity)
                                .bind(&record.host_id)
                                .bind(&identity_keys)
                                .bind(record.created_at)
                                .bind(record.updated_at)
                                .execute(&mut *conn)
                                .await?;
                        }
                    }
                    put_resource_links(conn, &record).await?;
                }
                Write::DeleteResource { key } => {
                    sqlx::query("DELETE FROM resource_identity_links WHERE resource_key = $1")
                        .bind(&key)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("DELETE FROM resources WHERE key = $1")
                        .bind(&key)
                        .execute(&mut *conn)
                        .await?;
                }
                Write::PutPrincipal(principal) => {
                    sqlx::query(
                        "INSERT INTO principals (object_id, tenant_id, kind, app_id, display_name, \
                         managed_by_key, identity_kind, enabled, created_at) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (object_id) DO UPDATE SET \
                         display_name = excluded.display_name, enabled = excluded.enabled",
                    )
                    .bind(principal.object_id)
                    .bind(principal.tenant_id)
                    .bind(principal.kind)
                    .bind(principal.app_id)
                    .bind(principal.display_name)
                    .bind(principal.managed_by_key)
                    .bind(principal.identity_kind)
                    .bind(principal.enabled)
                    .bind(principal.created_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::DeletePrincipal { object_id } => {
                    for sql in [
                        "DELETE FROM principal_credentials WHERE principal_id = $1",
                        "DELETE FROM role_assignments WHERE principal_id = $1",
                        "DELETE FROM principals WHERE object_id = $1",
                    ] {
                        sqlx::query(sql).bind(&object_id).execute(&mut *conn).await?;
                    }
                }
                Write::PutCredential(credential) => {
                    sqlx::query(
                        "INSERT INTO principal_credentials (id, principal_id, kind, display_name, \
                         secret_hash, hint, thumbprint_sha1, thumbprint_sha256, certificate_der, \
                         expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(credential.id)
                    .bind(credential.principal_id)
                    .bind(credential.kind)
                    .bind(credential.display_name)
                    .bind(credential.secret_hash)
                    .bind(credential.hint)
                    .bind(credential.thumbprint_sha1)
                    .bind(credential.thumbprint_sha256)
                    .bind(credential.certificate_der)
                    .bind(credential.expires_at)
                    .bind(credential.created_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::DeleteCredential { id } => {
                    sqlx::query("DELETE FROM principal_credentials WHERE id = $1")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                }
                Write::PutFederatedCredential(fic) => {
                    sqlx::query(
                        "INSERT INTO federated_credentials (key, id, identity_key, name, issuer, \
                         subject, audiences, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (key) DO UPDATE SET issuer = excluded.issuer, \
                         subject = excluded.subject, audiences = excluded.audiences",
                    )
                    .bind(fic.key)
                    .bind(fic.id)
                    .bind(fic.identity_key)
                    .bind(fic.name)
                    .bind(fic.issuer)
                    .bind(fic.subject)
                    .bind(fic.audiences)
                    .bind(fic.created_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::DeleteFederatedCredential { key } => {
                    sqlx::query("DELETE FROM federated_credentials WHERE key = $1")
                        .bind(key)
                        .execute(&mut *conn)
                        .await?;
                }
                Write::DeleteFederatedCredentialsOf { identity_key } => {
                    sqlx::query("DELETE FROM federated_credentials WHERE identity_key = $1")
                        .bind(identity_key)
                        .execute(&mut *conn)
                        .await?;
                }
                Write::PutRoleDefinition(def) => {
                    sqlx::query(
                        "INSERT INTO role_definitions (id, role_name, role_type, description, \
                         assignable_scopes, permissions, created_at, updated_at) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET \
                         role_name = excluded.role_name, description = excluded.description, \
                         assignable_scopes = excluded.assignable_scopes, \
                         permissions = excluded.permissions, updated_at = excluded.updated_at",
                    )
                    .bind(def.id)
                    .bind(def.role_name)
                    .bind(def.role_type)
                    .bind(def.description)
                    .bind(def.assignable_scopes)
                    .bind(def.permissions)
                    .bind(def.created_at)
                    .bind(def.updated_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::DeleteRoleDefinition { id } => {
                    sqlx::query("DELETE FROM role_definitions WHERE id = $1")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                }
                Write::InsertRoleAssignment(assignment) => {
                    sqlx::query(
                        "INSERT INTO role_assignments (key, id, name, scope, scope_key, \
                         role_definition_id, principal_id, principal_type, description, created_by, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(assignment.key)
                    .bind(assignment.id)
                    .bind(assignment.name)
                    .bind(assignment.scope)
                    .bind(assignment.scope_key)
                    .bind(assignment.role_definition_id)
                    .bind(assignment.principal_id)
                    .bind(assignment.principal_type)
                    .bind(assignment.description)
                    .bind(assignment.created_by)
                    .bind(assignment.created_at)
                    .bind(assignment.updated_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::DeleteRoleAssignment { key } => {
                    sqlx::query("DELETE FROM role_assignments WHERE key = $1")
                        .bind(key)
                        .execute(&mut *conn)
                        .await?;
                }
                Write::DeleteRoleAssignmentsUnder { scope_key } => {
                    sqlx::query(
                        "DELETE FROM role_assignments WHERE scope_key = $1 \
                         OR scope_key LIKE $2 ESCAPE '\\'",
                    )
                    .bind(&scope_key)
                    .bind(like_prefix(&format!("{scope_key}/")))
                    .execute(&mut *conn)
                    .await?;
                }
                Write::PutSigningKey(key) => {
                    sqlx::query(
                        "INSERT INTO signing_keys (kid, tenant_id, algorithm, private_key, \
                         certificate_der, created_at, signs_from, signs_until, published_until) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (kid) DO UPDATE SET \
                         signs_from = excluded.signs_from, signs_until = excluded.signs_until, \
                         published_until = excluded.published_until",
                    )
                    .bind(key.kid)
                    .bind(key.tenant_id)
                    .bind(key.algorithm)
                    .bind(key.private_key)
                    .bind(key.certificate_der)
                    .bind(key.created_at)
                    .bind(key.signs_from)
                    .bind(key.signs_until)
                    .bind(key.published_until)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::PutHost(host) => {
                    sqlx::query(
                        "INSERT INTO hosts (id, state, join_token_hash, join_token_expires_at, \
                         certificate_sha256, certificate_not_after, created_at, updated_at) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET \
                         state = excluded.state, join_token_hash = excluded.join_token_hash, \
                         join_token_expires_at = excluded.join_token_expires_at, \
                         certificate_sha256 = excluded.certificate_sha256, \
                         certificate_not_after = excluded.certificate_not_after, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(host.id)
                    .bind(host.state)
                    .bind(host.join_token_hash)
                    .bind(host.join_token_expires_at)
                    .bind(host.certificate_sha256)
                    .bind(host.certificate_not_after)
                    .bind(host.created_at)
                    .bind(host.updated_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::AppendActivityEvent(event) => {
                    let last_timestamp = event.timestamp;
                    insert_activity_event(conn, event, None, 1, last_timestamp).await?;
                }
                Write::AddToActivityAggregate(aggregate) => {
                    assert!(aggregate.count >= 1, "an aggregate write adds at least one event");
                    insert_activity_event(
                        conn,
                        aggregate.record,
                        Some(aggregate.aggregate_key),
                        aggregate.count,
                        aggregate.last_timestamp,
                    )
                    .await?;
                }
                Write::PutVaultSecret(secret) => {
                    sqlx::query(
                        "INSERT INTO vault_secrets (vault_key, name_key, name, current_version, deleted_at, \
                         scheduled_purge_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (vault_key, name_key) DO UPDATE SET current_version = excluded.current_version, \
                         deleted_at = excluded.deleted_at, scheduled_purge_at = excluded.scheduled_purge_at, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(secret.vault_key)
                    .bind(secret.name_key)
                    .bind(secret.name)
                    .bind(secret.current_version)
                    .bind(secret.deleted_at)
                    .bind(secret.scheduled_purge_at)
                    .bind(secret.created_at)
                    .bind(secret.updated_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::PutVaultSecretVersion(version) => {
                    sqlx::query(
                        "INSERT INTO vault_secret_versions (vault_key, name_key, version, value, content_type, \
                         tags, enabled, not_before, expires, created_at, updated_at) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (vault_key, name_key, version) \
                         DO UPDATE SET content_type = excluded.content_type, tags = excluded.tags, \
                         enabled = excluded.enabled, not_before = excluded.not_before, expires = excluded.expires, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(version.vault_key)
                    .bind(version.name_key)
                    .bind(version.version)
                    .bind(version.value)
                    .bind(version.content_type)
                    .bind(version.tags)
                    .bind(version.enabled)
                    .bind(version.not_before)
                    .bind(version.expires)
                    .bind(version.created_at)
                    .bind(version.updated_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Write::PurgeVaultSecret { vault_key, name_key } => {
                    for sql in [
                        "DELETE FROM vault_secret_versions WHERE vault_key = $1 AND name_key = $2",
                        "DELETE FROM vault_secrets WHERE vault_key = $1 AND name_key = $2",
                    ] {
                        sqlx::query(sql).bind(&vault_key).bind(&name_key).execute(&mut *conn).await?;
                    }
                }
                Write::PurgeVault { vault_key } => {
                    for sql in [
                        "DELETE FROM vault_secret_versions WHERE vault_key = $1",
                        "DELETE FROM vault_secrets WHERE vault_key = $1",
                    ] {
                        sqlx::query(sql).bind(&vault_key).execute(&mut *conn).await?;
                    }
                }
                Write::AppendSignInEvent(event) => {
                    let last_timestamp = event.timestamp;
                    insert_sign_in_event(conn, event, None, 1, last_timestamp).await?;
                }
                Write::AddToSignInAggregate(aggregate) => {
                    assert!(aggregate.count >= 1, "an aggregate write adds at least one event");
                    insert_sign_in_event(
                        conn,
                        aggregate.record,
                        Some(aggregate.aggregate_key),
                        aggregate.count,
                        aggregate.last_timestamp,
                    )
                    .await?;
                }
            }
            Ok(())
        }

        /// Brings the schema up to date with `migrator`, adopting first what the old runner
        /// recorded (see `migrate.rs`). The caller holds the backend's migration lock.
        /// `table_exists_sql` counts the tables named `$1` in the dialect's catalogue.
        async fn run_migrations(
            pool: &sqlx::Pool<$db>,
            migrator: &sqlx::migrate::Migrator,
            table_exists_sql: &'static str,
        ) -> Result<()> {
            use sqlx::migrate::Migrate as _;

            use crate::migrate::{OLD_TABLE, TABLE};

            let mut tx = pool.begin().await?;
            let old_exists: i64 =
                sqlx::query_scalar(table_exists_sql).bind(OLD_TABLE).fetch_one(&mut *tx).await?;
            let exists: i64 =
                sqlx::query_scalar(table_exists_sql).bind(TABLE).fetch_one(&mut *tx).await?;
            let mut applied: Vec<i64> = Vec::new();
            if exists > 0 {
                applied = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                    .fetch_all(&mut *tx)
                    .await?;
            } else if old_exists > 0 {
                applied = sqlx::query_scalar("SELECT version FROM ambient_migrations ORDER BY version")
                    .fetch_all(&mut *tx)
                    .await?;
                let adopted = crate::migrate::adopted(migrator, &applied)?;
                let migrate_error = |error| crate::migrate::error(error, migrator);
                tx.ensure_migrations_table(TABLE).await.map_err(migrate_error)?;
                for migration in adopted {
                    tx.skip(TABLE, migration).await.map_err(migrate_error)?;
                }
                tracing::info!(
                    versions = ?applied,
                    backend = $backend,
                    "adopted the migrations recorded by the previous runner"
                );
            }
            tx.commit().await?;
            migrator.run(pool).await.map_err(|error| crate::migrate::error(error, migrator))?;
            for migration in migrator.iter().filter(|m| !applied.contains(&m.version)) {
                tracing::info!(version = migration.version, backend = $backend, "applied migration");
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn apply(&self, writes: Vec<Write>) -> Result<()> {
                let _guard = self.write_guard().await;
                let changes_state = writes.iter().any(Write::changes_state);
                let mut tx = self.pool.begin().await?;
                for write in writes {
                    apply_one(&mut tx, write).await?;
                }
                if changes_state {
                    sqlx::query(
                        "INSERT INTO settings (name, value) VALUES ($1, '1') \
                         ON CONFLICT (name) DO UPDATE \
                         SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT)",
                    )
                    .bind(crate::records::CHANGE_COUNTER_SETTING)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_setting(&self, name: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>> {
                Ok(sqlx::query_as("SELECT * FROM tenants WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_tenants(&self) -> Result<Vec<TenantRecord>> {
                Ok(sqlx::query_as("SELECT * FROM tenants ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn get_subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>> {
                Ok(sqlx::query_as("SELECT * FROM subscriptions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_subscriptions(&self) -> Result<Vec<SubscriptionRecord>> {
                Ok(sqlx::query_as("SELECT * FROM subscriptions ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn get_resource(&self, key: &str) -> Result<Option<ResourceRecord>> {
                Ok(sqlx::query_as("SELECT * FROM resources WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_resources(
                &self,
                filter: &ResourceFilter,
                page: &Page,
            ) -> Result<Vec<ResourceRecord>> {
                let mut query = sqlx::QueryBuilder::<$db>::new("SELECT * FROM resources WHERE 1 = 1");
                if let Some(subscription_id) = &filter.subscription_id {
                    query.push(" AND subscription_id = ").push_bind(subscription_id.clone());
                }
                if let Some(group) = &filter.resource_group_key {
                    query.push(" AND resource_group_key = ").push_bind(group.clone());
                }
                if let Some(type_key) = &filter.type_key {
                    query.push(" AND type_key = ").push_bind(type_key.clone());
                }
                if let Some(host_id) = &filter.host_id {
                    query.push(" AND host_id = ").push_bind(host_id.clone());
                }
                if let Some(prefix) = &filter.key_prefix {
                    query.push(" AND key LIKE ").push_bind(like_prefix(prefix)).push(" ESCAPE '\\'");
                }
                if let Some(after) = &page.after_key {
                    query.push(" AND key > ").push_bind(after.clone());
                }
                query.push(" ORDER BY key LIMIT ").push_bind(page.limit);
                Ok(query.build_query_as::<ResourceRecord>().fetch_all(&self.pool).await?)
            }

            async fn list_resources_holding_identity(&self, identity_key: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT resource_key FROM resource_identity_links WHERE identity_key = $1 \
                     ORDER BY resource_key",
                )
                .bind(identity_key)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn get_principal(&self, object_id: &str) -> Result<Option<PrincipalRecord>> {
                Ok(sqlx::query_as("SELECT * FROM principals WHERE object_id = $1")
                    .bind(object_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn get_principal_by_app_id(&self, app_id: &str) -> Result<Option<PrincipalRecord>> {
                Ok(sqlx::query_as("SELECT * FROM principals WHERE app_id = $1")
                    .bind(app_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_principals(&self, kind: Option<&str>) -> Result<Vec<PrincipalRecord>> {
                let rows = match kind {
                    Some(kind) => {
                        sqlx::query_as("SELECT * FROM principals WHERE kind = $1 ORDER BY created_at, object_id")
                            .bind(kind)
                            .fetch_all(&self.pool)
                            .await?
                    }
                    None => {
                        sqlx::query_as("SELECT * FROM principals ORDER BY created_at, object_id")
                            .fetch_all(&self.pool)
                            .await?
                    }
                };
                Ok(rows)
            }

            async fn list_principals_managed_by(
                &self,
                resource_key: &str,
            ) -> Result<Vec<PrincipalRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM principals WHERE managed_by_key = $1 ORDER BY created_at, object_id",
                )
                .bind(resource_key)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_credentials(&self, principal_id: &str) -> Result<Vec<CredentialRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM principal_credentials WHERE principal_id = $1 ORDER BY created_at, id",
                )
                .bind(principal_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn get_federated_credential(
                &self,
                key: &str,
            ) -> Result<Option<FederatedCredentialRecord>> {
                Ok(sqlx::query_as("SELECT * FROM federated_credentials WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_federated_credentials(
                &self,
                identity_key: &str,
            ) -> Result<Vec<FederatedCredentialRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM federated_credentials WHERE identity_key = $1 ORDER BY key",
                )
                .bind(identity_key)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn get_role_definition(&self, id: &str) -> Result<Option<RoleDefinitionRecord>> {
                Ok(sqlx::query_as("SELECT * FROM role_definitions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_role_definitions(&self) -> Result<Vec<RoleDefinitionRecord>> {
                Ok(sqlx::query_as("SELECT * FROM role_definitions ORDER BY role_name, id")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn get_role_assignment(&self, key: &str) -> Result<Option<RoleAssignmentRecord>> {
                Ok(sqlx::query_as("SELECT * FROM role_assignments WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_role_assignments_for_principal(
                &self,
                principal_id: &str,
            ) -> Result<Vec<RoleAssignmentRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM role_assignments WHERE principal_id = $1 ORDER BY created_at, key",
                )
                .bind(principal_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_role_assignments(
                &self,
                scope_keys: Option<&[String]>,
            ) -> Result<Vec<RoleAssignmentRecord>> {
                let mut query = sqlx::QueryBuilder::<$db>::new("SELECT * FROM role_assignments");
                if let Some(scope_keys) = scope_keys {
                    if scope_keys.is_empty() {
                        return Ok(Vec::new());
                    }
                    query.push(" WHERE scope_key IN (");
                    let mut separated = query.separated(", ");
                    for scope_key in scope_keys {
                        separated.push_bind(scope_key.clone());
                    }
                    query.push(")");
                }
                query.push(" ORDER BY created_at, key");
                Ok(query.build_query_as::<RoleAssignmentRecord>().fetch_all(&self.pool).await?)
            }

            async fn list_signing_keys(&self, tenant_id: &str) -> Result<Vec<SigningKeyRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM signing_keys WHERE tenant_id = $1 ORDER BY signs_from, kid",
                )
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn get_host(&self, id: &str) -> Result<Option<HostRecord>> {
                Ok(sqlx::query_as("SELECT * FROM hosts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_hosts(&self) -> Result<Vec<HostRecord>> {
                Ok(sqlx::query_as("SELECT * FROM hosts ORDER BY id").fetch_all(&self.pool).await?)
            }

            async fn get_vault_secret(&self, vault_key: &str, name_key: &str) -> Result<Option<VaultSecretRecord>> {
                Ok(sqlx::query_as("SELECT * FROM vault_secrets WHERE vault_key = $1 AND name_key = $2")
                    .bind(vault_key)
                    .bind(name_key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_vault_secrets(
                &self,
                vault_key: &str,
                deleted: bool,
                after_name_key: Option<&str>,
                limit: i64,
            ) -> Result<Vec<VaultSecretRecord>> {
                let mut query = sqlx::QueryBuilder::<$db>::new("SELECT * FROM vault_secrets WHERE vault_key = ");
                query.push_bind(vault_key.to_owned());
                query.push(if deleted { " AND deleted_at IS NOT NULL" } else { " AND deleted_at IS NULL" });
                if let Some(after) = after_name_key {
                    query.push(" AND name_key > ").push_bind(after.to_owned());
                }
                query.push(" ORDER BY name_key LIMIT ").push_bind(limit);
                Ok(query.build_query_as::<VaultSecretRecord>().fetch_all(&self.pool).await?)
            }

            async fn get_vault_secret_version(
                &self,
                vault_key: &str,
                name_key: &str,
                version: &str,
            ) -> Result<Option<VaultSecretVersionRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM vault_secret_versions WHERE vault_key = $1 AND name_key = $2 AND version = $3",
                )
                .bind(vault_key)
                .bind(name_key)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn list_vault_secret_versions(&self, vault_key: &str, name_key: &str) -> Result<Vec<VaultSecretVersionRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM vault_secret_versions WHERE vault_key = $1 AND name_key = $2 \
                     ORDER BY created_at, version",
                )
                .bind(vault_key)
                .bind(name_key)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_vault_secrets_due(&self, now: i64, limit: i64) -> Result<Vec<VaultSecretRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM vault_secrets WHERE scheduled_purge_at IS NOT NULL AND scheduled_purge_at <= $1 \
                     ORDER BY scheduled_purge_at LIMIT $2",
                )
                .bind(now)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_activity_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT seq, event_data_id AS event_id, timestamp, body, event_count, last_timestamp \
                     FROM activity_events WHERE subscription_id = ",
                );
                query.push_bind(filter.partition.clone());
                if let Some(group) = &filter.resource_group_key {
                    query.push(" AND resource_group_key = ").push_bind(group.clone());
                }
                if let Some(correlation_id) = &filter.correlation_id {
                    query.push(" AND correlation_id = ").push_bind(correlation_id.clone());
                }
                push_time_window(&mut query, filter);
                Ok(query.build_query_as::<EventRecord>().fetch_all(&self.pool).await?)
            }

            async fn list_sign_in_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT seq, event_id, timestamp, body, event_count, last_timestamp \
                     FROM sign_in_events WHERE tenant_id = ",
                );
                query.push_bind(filter.partition.clone());
                if let Some(principal_id) = &filter.principal_id {
                    query
                        .push(" AND (principal_id = ")
                        .push_bind(principal_id.clone())
                        .push(" OR app_id = ")
                        .push_bind(principal_id.clone())
                        .push(")");
                }
                push_time_window(&mut query, filter);
                Ok(query.build_query_as::<EventRecord>().fetch_all(&self.pool).await?)
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn prune_events(&self, log: EventLog, before: i64, keep_max: i64) -> Result<u64> {
                let table = match log {
                    EventLog::Activity => "activity_events",
                    EventLog::SignIn => "sign_in_events",
                };
                // Each statement deletes at most one chunk, and runs until nothing is left.
                let expired = format!(
                    "DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} \
                     WHERE last_timestamp < $1 ORDER BY seq LIMIT $2)"
                );
                let excess = format!(
                    "DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} WHERE seq <= \
                     (SELECT seq FROM {table} ORDER BY seq DESC LIMIT 1 OFFSET $1) \
                     ORDER BY seq LIMIT $2)"
                );
                let mut deleted = 0;
                for (sql, bound) in [(expired, before), (excess, keep_max.max(0))] {
                    loop {
                        let _guard = self.write_guard().await;
                        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                            .bind(bound)
                            .bind(crate::PRUNE_CHUNK_ROWS)
                            .execute(&self.pool)
                            .await?
                            .rows_affected();
                        deleted += rows;
                        if rows < crate::PRUNE_CHUNK_ROWS as u64 {
                            break;
                        }
                    }
                }
                Ok(deleted)
            }

            async fn record_assertion_use(&self, jti_key: &str, expires_at: i64, now: i64) -> Result<bool> {
                let _guard = self.write_guard().await;
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM used_assertions WHERE expires_at < $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO used_assertions (jti_key, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (jti_key) DO NOTHING",
                )
                .bind(jti_key)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(inserted == 1)
            }

            async fn try_acquire_lease(
                &self,
                name: &str,
                holder: &str,
                now: i64,
                expires_at: i64,
            ) -> Result<bool> {
                let _guard = self.write_guard().await;
                let taken = sqlx::query(
                    "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE job_leases.expires_at < $4 OR job_leases.holder = excluded.holder",
                )
                .bind(name)
                .bind(holder)
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(taken == 1)
            }
        }

        fn push_time_window(query: &mut sqlx::QueryBuilder<$db>, filter: &EventFilter) {
            if let Some(since) = filter.since {
                query.push(" AND timestamp >= ").push_bind(since);
            }
            if let Some(until) = filter.until {
                query.push(" AND timestamp <= ").push_bind(until);
            }
            query.push(" AND seq > ").push_bind(filter.after_seq);
            if let Some(before) = filter.before_seq {
                query.push(" AND seq < ").push_bind(before);
            }
            let order = if filter.newest_first { " ORDER BY seq DESC LIMIT " } else { " ORDER BY seq LIMIT " };
            query.push(order).push_bind(filter.limit);
        }
    };
}

pub(crate) use store_impl;
