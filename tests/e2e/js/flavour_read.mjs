// A workload under `ambient run --flavour X`, in JavaScript: ManagedIdentityCredential and
// DefaultAzureCredential from @azure/identity, constructed with no options, each get a Key Vault
// token and read one secret with @azure/keyvault-secrets.
//
// Usage: node flavour_read.mjs VAULT_URL. Prints {"mi": {...}, "dac": {...}, "lookups": [...]}
// with each token's oid and appid and the secret's value (or the error), and every host name
// the process tried to resolve that is not local.
//
// Names under .localhost resolve to 127.0.0.1 here (as systemd-resolved does), since the test
// machine's resolver may not know the vault's name. Any other name that is not local is refused
// without asking a resolver and reported in "lookups", so nothing leaves loopback: MSAL Node
// asks login.microsoftonline.com for instance discovery when a confidential client's authority
// is not a Microsoft host and instance discovery is not disabled.
//
// The one option: under workload identity (AZURE_FEDERATED_TOKEN_FILE set), DefaultAzureCredential
// gets `disableInstanceDiscovery: true`, as a workload identity user with a non-Microsoft
// AZURE_AUTHORITY_HOST must set it (@azure/identity 4.13 reads it from no variable).
// ManagedIdentityCredential needs nothing: its token exchange disables instance discovery itself.
import dns from "node:dns";

const LOCAL = new Set(["localhost", "127.0.0.1", "::1"]);
const lookups = [];
const lookup = dns.lookup;
dns.lookup = (host, ...rest) => {
  if (host.endsWith(".localhost")) {
    return lookup("127.0.0.1", ...rest);
  }
  if (LOCAL.has(host)) {
    return lookup(host, ...rest);
  }
  lookups.push(host);
  const callback = rest[rest.length - 1];
  const error = Object.assign(new Error(`refused to resolve ${host}: not loopback`), {
    code: "ENOTFOUND",
    hostname: host,
  });
  process.nextTick(() => callback(error));
  return {};
};

const { DefaultAzureCredential, ManagedIdentityCredential } = await import("@azure/identity");
const { SecretClient } = await import("@azure/keyvault-secrets");

async function read(name, credential) {
  try {
    const token = await credential.getToken("https://vault.azure.net/.default");
    const claims = JSON.parse(Buffer.from(token.token.split(".")[1], "base64url").toString());
    const secret = await new SecretClient(process.argv[2], credential).getSecret("db-password");
    return { oid: claims.oid, appid: claims.appid, value: secret.value };
  } catch (error) {
    return { error: `${name}: ${error.name}: ${error.message}` };
  }
}

const workload = Boolean(process.env.AZURE_FEDERATED_TOKEN_FILE);
const result = {
  mi: await read("ManagedIdentityCredential", new ManagedIdentityCredential()),
  dac: await read(
    "DefaultAzureCredential",
    new DefaultAzureCredential(workload ? { disableInstanceDiscovery: true } : undefined),
  ),
};
result.lookups = lookups;
console.log(JSON.stringify(result));
