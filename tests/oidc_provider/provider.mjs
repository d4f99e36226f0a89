// A real OpenID Provider (panva/oidc-provider) on loopback, for Varde's sign-in tests and the offline demo.
// It stands in for ID-porten/Helsenorge (patients: the `pid` claim) and HelseID (staff: the `hpr_number` claim).
// Usage: node provider.mjs CONFIG.json — the config names the port, the clients and the accounts:
//   {"port": 0, "clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
//    "accounts": {"<login>": {"pid": "...", "name": "...", "hpr_number": "..."}}}
// The provider's own development sign-in page asks for the login (any password); a first-party client needs no
// consent. When listening it prints one JSON line {"issuer": "http://127.0.0.1:PORT"} on stdout.
import { generateKeyPairSync, randomBytes, createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";

import { Provider } from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const accounts = config.accounts || {};

// A fresh signing key each run: the relying party must fetch it from the JWKS, it cannot know it in advance.
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: randomBytes(8).toString("hex"), use: "sig", alg: "RS256" };

function subjectOf(login) {
  return createHash("sha256").update(`varde-test-provider:${login}`).digest("hex").slice(0, 32);
}

const server = createServer();
server.listen(config.port || 0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: (config.clients || []).map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "RS256",
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    pkce: { required: () => true },
    claims: { openid: ["sub"], profile: ["name"], pid: ["pid"], hpr: ["hpr_number"] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    ttl: { Session: 600, Interaction: 600, AuthorizationCode: 60, AccessToken: 300, IdToken: 300, Grant: 600 },
    async findAccount(ctx, login) {
      const known = accounts[login];
      if (!known) return undefined;
      const sub = subjectOf(login);
      return { accountId: login, async claims() { return { sub, ...known }; } };
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope("openid profile pid hpr");
      await grant.save();
      return grant;
    },
  });
  server.on("request", provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
