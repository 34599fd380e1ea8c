// A workload under `ambient run --flavour X`, in JavaScript: ManagedIdentityCredential and
// DefaultAzureCredential from @azure/identity, constructed with no options, each get a Key Vault
// token and read one secret with @azure/keyvault-secrets.
//
// Usage: node flavour_read.mjs VAULT_URL. Prints {"mi": {...}, "dac": {...}} with each token's
// oid and appid and the secret's value (or the error). Names under .localhost resolve to
// 127.0.0.1 here (as systemd-resolved does), since the test machine's resolver may not know the
// vault's name; nothing else is changed.
import dns from "node:dns";

const lookup = dns.lookup;
dns.lookup = (host, ...rest) => lookup(host.endsWith(".localhost") ? "127.0.0.1" : host, ...rest);

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

const result = {
  mi: await read("ManagedIdentityCredential", new ManagedIdentityCredential()),
  dac: await read("DefaultAzureCredential", new DefaultAzureCredential()),
};
console.log(JSON.stringify(result));
