//! An authorization decision with 100,000 role assignments in the store against the same
//! decision with 10, measured in the same run; prints the ratio (the cost must not grow with
//! assignments unrelated to the caller).
//!
//! Method: the decision path the server runs per request: load the caller's assignments from
//! SQLite by principal, resolve their role definitions, and call `rbac::authorize` for a VM
//! write. Each store gets the same three assignments for the caller; the large one adds 99,997
//! assignments of other principals at many scopes. Run with
//! `cargo bench -p server --bench authorization`.

use std::time::{Duration, Instant};

use domain::ResourceId;
use store::{RoleAssignmentRecord, Store, Write};

const MEASURE: Duration = Duration::from_secs(3);
const CALLER: &str = "11111111-1111-4111-8111-111111111111";
const SUB: &str = "22222222-2222-4222-8222-222222222222";

fn assignment(index: usize, principal: &str, scope: &str, role: &str) -> RoleAssignmentRecord {
    let name = format!("00000000-0000-4000-8000-{index:012}");
    let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    RoleAssignmentRecord {
        key: id.to_ascii_lowercase(),
        id,
        name,
        scope: scope.to_owned(),
        scope_key: scope.to_ascii_lowercase(),
        role_definition_id: role.to_owned(),
        principal_id: principal.to_owned(),
        principal_type: "ServicePrincipal".to_owned(),
        description: None,
        created_by: None,
        created_at: 0,
        updated_at: 0,
    }
}

async fn store_with(total: usize, dir: &std::path::Path) -> Box<dyn Store> {
    let store =
        store::open(&format!("sqlite://{}", dir.join(format!("bench-{total}.db")).display()))
            .await
            .expect("open");
    let reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    let vm_contributor = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c";
    let mut writes = vec![
        Write::InsertRoleAssignment(assignment(
            0,
            CALLER,
            &format!("/subscriptions/{SUB}"),
            reader,
        )),
        Write::InsertRoleAssignment(assignment(
            1,
            CALLER,
            &format!("/subscriptions/{SUB}/resourceGroups/rg7"),
            vm_contributor,
        )),
        Write::InsertRoleAssignment(assignment(
            2,
            CALLER,
            &format!("/subscriptions/{SUB}/resourceGroups/rg9"),
            reader,
        )),
    ];
    for index in 3..total {
        let principal = format!("33333333-3333-4333-8333-{index:012}");
        let scope = format!("/subscriptions/{SUB}/resourceGroups/rg{}", index % 500);
        writes.push(Write::InsertRoleAssignment(assignment(
            index,
            &principal,
            &scope,
            vm_contributor,
        )));
        if writes.len() == 5000 {
            store.apply(std::mem::take(&mut writes)).await.expect("insert");
        }
    }
    store.apply(writes).await.expect("insert");
    store
}

async fn decision(store: &dyn Store, target: &ResourceId) -> bool {
    let assignments = store.list_role_assignments_for_principal(CALLER).await.expect("load");
    let mut loaded = Vec::with_capacity(assignments.len());
    for row in &assignments {
        let scope = ResourceId::parse(&row.scope).expect("scope");
        let role =
            rbac::builtin_role_by_id(&row.role_definition_id.parse().expect("guid")).expect("role");
        loaded.push((scope, role));
    }
    let grants: Vec<rbac::Grant<'_>> =
        loaded.iter().map(|(scope, role)| rbac::Grant { scope, role }).collect();
    rbac::authorize(
        &grants,
        "Microsoft.Compute/virtualMachines/write",
        rbac::ActionKind::Control,
        target,
    )
    .is_allowed()
}

async fn rate(store: &dyn Store, target: &ResourceId) -> f64 {
    for _ in 0..200 {
        assert!(decision(store, target).await);
    }
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < MEASURE {
        assert!(decision(store, target).await);
        count += 1;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("ambient-authz-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    runtime.block_on(async {
        let target = ResourceId::parse(&format!("/subscriptions/{SUB}/resourceGroups/rg7/providers/Microsoft.Compute/virtualMachines/vm1")).expect("id");
        let small = store_with(10, &dir).await;
        let large = store_with(100_000, &dir).await;
        let small_rate = rate(small.as_ref(), &target).await;
        let large_rate = rate(large.as_ref(), &target).await;
        println!("decision with 10 assignments:      {small_rate:9.0} per second");
        println!("decision with 100,000 assignments: {large_rate:9.0} per second");
        println!("ratio (100,000 / 10):              {:9.2} (1.0 = no growth)", large_rate / small_rate);
        figure("authorization.small", small_rate, "per_s");
        figure("authorization.large", large_rate, "per_s");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// One machine-readable line per figure, which `cargo xtask bench` reads.
fn figure(name: &str, value: f64, unit: &str) {
    println!("BENCH {name}={value} unit={unit}");
}
