// Minimal, real OpenID Provider for tollgate integration tests.
//
//   node provider.mjs <port>      (port 0 = any free port)
//
// Prints exactly one line on stdout, `READY http://127.0.0.1:<port>`, once
// listening. Everything else (oidc-provider notices, request logs) goes to
// stderr so the line is easy to find. Exits cleanly on SIGTERM / SIGINT.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

// oidc-provider prints its NOTICEs with console.info (stdout). Keep stdout
// reserved for the READY line.
console.info = console.error;
console.log = console.error;

const { default: Provider, errors } = await import('oidc-provider');

const HOST = '127.0.0.1';
const CLIENT_ID = 'orders-service';
const CLIENT_SECRET = 'orders-secret-that-is-long-enough-0123456789';
const SCOPES = ['orders:read', 'orders:write'];
// Resource servers (RFC 8707) that get JWT access tokens.
const RESOURCE_SERVERS = new Map([
  ['https://api.example.test', { scope: SCOPES.join(' ') }],
]);

const requestedPort = Number.parseInt(process.argv[2] ?? '0', 10);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`usage: node provider.mjs <port>   (got ${process.argv[2]})`);
  process.exit(2);
}

// Bind first so the issuer can carry the real port when 0 was requested.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(requestedPort, HOST, resolve);
});
const { port } = server.address();
const issuer = `http://${HOST}:${port}`;

// Fresh RS256 signing key on every start; nothing is checked in.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `test-${randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES.join(' '),
    },
  ],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  scopes: ['openid', ...SCOPES],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Any authenticated client may introspect (only one client exists).
      allowedPolicy: async () => true,
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No resource parameter => no resource server => opaque token.
      defaultResource: async () => undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        const rs = RESOURCE_SERVERS.get(resourceIndicator);
        if (!rs) throw new errors.InvalidTarget(`unknown resource indicator ${resourceIndicator}`);
        return {
          scope: rs.scope,
          audience: resourceIndicator,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: {
    AccessToken: 300,
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
  },
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));
provider.on('grant.error', (_ctx, err) => console.error('grant.error', err.message, err.error_description ?? ''));

server.on('request', provider.callback());

process.stdout.write(`READY ${issuer}\n`);

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`received ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
