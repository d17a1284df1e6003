// The reference OP for the benchmarks: node-oidc-provider 9 with a Redis store,
// one confidential client and a username/password interaction.
//
// Settings come from environment variables (all required, set by benchmarks/run.py):
// REF_PORT, REF_ISSUER, REF_REDIS_URL, REF_CLIENT_ID, REF_CLIENT_SECRET and
// REF_REDIRECT_URI. Users are read from Redis: `refuser:<username>` is JSON
// {"hash": argon2 PHC string, "claims": {...}}, and the username is the sub.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import argon2 from 'argon2';
import Provider from 'oidc-provider';

import { adapterFor, connectRedis } from './redis_adapter.mjs';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('REF_PORT'));
const issuer = required('REF_ISSUER');
const redis = connectRedis(required('REF_REDIS_URL'));

// RS256 for ID tokens, as porchlight_op signs them.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'bench-rs256' };

async function loadUser(username) {
  const raw = await redis.get(`refuser:${username}`);
  return raw ? JSON.parse(raw) : undefined;
}

const provider = new Provider(issuer, {
  adapter: adapterFor(redis),
  clients: [{
    client_id: required('REF_CLIENT_ID'),
    client_secret: required('REF_CLIENT_SECRET'),
    redirect_uris: [required('REF_REDIRECT_URI')],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile email offline_access',
  }],
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name'],
    email: ['email', 'email_verified'],
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  jwks: { keys: [signingKey] },
  // Every refresh returns a new refresh token, as porchlight_op does.
  rotateRefreshToken: true,
  // The lifetimes porchlight_op uses by default, in seconds.
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 600,
    Grant: 2592000,
    IdToken: 3600,
    Interaction: 900,
    RefreshToken: 2592000,
    Session: 86400,
  },
  async findAccount(ctx, sub) {
    const user = await loadUser(sub);
    if (!user) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...user.claims }) };
  },
});

provider.on('server_error', (ctx, error) => console.error('server_error', error));

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendForm(res, uid, needsLogin, error) {
  const fields = needsLogin
    ? '<input name="username"><input name="password" type="password">'
    : '';
  const message = error ? `<p>${escapeHtml(error)}</p>` : '';
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><form method="post" action="/interaction/${escapeHtml(uid)}">`
    + `${message}${fields}<button>Continue</button></form>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function grantFor(details, accountId) {
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  return grant.save();
}

async function handleInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const needsLogin = details.prompt.name === 'login';
  if (req.method === 'GET') {
    sendForm(res, details.uid, needsLogin);
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const form = await readForm(req);
  let accountId = details.session?.accountId;
  const result = {};
  if (needsLogin) {
    const username = form.get('username') ?? '';
    const user = await loadUser(username);
    const valid = user ? await argon2.verify(user.hash, form.get('password') ?? '') : false;
    if (!valid) {
      sendForm(res, details.uid, true, 'The username or password is incorrect.');
      return;
    }
    accountId = username;
    result.login = { accountId };
  }
  // The scopes are granted in the same step, so one form post finishes the interaction.
  result.consent = { grantId: await grantFor(details, accountId) };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const providerCallback = provider.callback();

const server = http.createServer((req, res) => {
  if (!req.url.startsWith('/interaction/')) {
    providerCallback(req, res);
    return;
  }
  handleInteraction(req, res).catch((error) => {
    console.error('interaction failed', error);
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end('interaction failed');
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`reference OP listening on http://127.0.0.1:${port}`);
});

process.on('SIGTERM', () => {
  server.close();
  redis.quit().finally(() => process.exit(0));
});
