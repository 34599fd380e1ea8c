//! Networking resources are stored as sent, with the read-only fields Azure fills in and that
//! clients read back (`az vm create` prints a VM's private and public addresses and MAC):
//! each NIC IP configuration's `privateIPAddress` and the NIC's `macAddress`, a public IP's
//! `ipAddress`, each subnet's `id`. Values are derived from the resource's id, so they are
//! stable across updates; nothing routes traffic.

use serde_json::{Value, json};

use crate::model::Resource;

pub(super) fn plan(resource: &mut Resource) {
    let seed = fingerprint(resource.key());
    match resource.resource_type.name {
        "Microsoft.Network/networkInterfaces" => {
            resource.properties.entry("macAddress").or_insert_with(|| {
                json!(format!("00-0D-3A-{:02X}-{:02X}-{:02X}", seed[0], seed[1], seed[2]))
            });
            if let Some(configurations) =
                resource.properties.get_mut("ipConfigurations").and_then(Value::as_array_mut)
            {
                for (index, configuration) in configurations.iter_mut().enumerate() {
                    if let Some(properties) =
                        configuration.get_mut("properties").and_then(Value::as_object_mut)
                    {
                        properties
                            .entry("privateIPAddress")
                            .or_insert_with(|| json!(format!("10.0.0.{}", 4 + index.min(250))));
                        properties
                            .entry("privateIPAddressVersion")
                            .or_insert_with(|| json!("IPv4"));
                        properties.entry("provisioningState").or_insert_with(|| json!("Succeeded"));
                    }
                }
            }
        }
        "Microsoft.Network/publicIPAddresses" => {
            resource.properties.entry("ipAddress").or_insert_with(|| {
                json!(format!("20.{}.{}.{}", seed[0] % 200 + 1, seed[1], seed[2] % 250 + 1))
            });
        }
        "Microsoft.Network/virtualNetworks" => {
            let vnet = resource.id.as_str().to_owned();
            if let Some(subnets) =
                resource.properties.get_mut("subnets").and_then(Value::as_array_mut)
            {
                for subnet in subnets {
                    let name = subnet["name"].as_str().map(str::to_owned);
                    if let (Some(name), Some(map)) = (name, subnet.as_object_mut()) {
                        map.entry("id").or_insert_with(|| json!(format!("{vnet}/subnets/{name}")));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Three stable bytes from `key` (FNV-1a; not a security measure).
fn fingerprint(key: &str) -> [u8; 3] {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let bytes = hash.to_be_bytes();
    [bytes[1], bytes[2], bytes[3]]
}
