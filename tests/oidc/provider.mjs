// A real OpenID Connect provider (panva/node-oidc-provider, certified) for the test suite, on loopback.
//
//   node provider.mjs PORT
//
// Accounts: any login signs in (the provider's own development login form); the account's `sub`, `email` and
// `name` are the login, `email_verified` is false for a login starting with "unverified.", and `groups` are
// "staff" and "domain:<the e-mail's domain>". Clients register themselves (RFC 7591, POST /reg), so each test
// tenant gets a client of its own with its own redirect URI.
//
// Its pages are served without the Google web font the development sign-in pages import (the console's
// browser tests sign in through them, and allow no request off the machine).
//
// Test controls, on this loopback server only (the provider itself is not changed):
//   POST /__test/rotate   a new signing key: it signs from now on, the previous one stays published (rotation)
//   POST /__test/conform  JSON {"conform": bool}: true puts only `sub` in ID tokens (the scopes' claims are at
//                         the userinfo endpoint), as the specification's default; false (the start) puts them in too
//   GET /__test/last-token-auth   how the last token request authenticated its client (basic, post, none)
//   POST /__test/tamper   JSON {"aud": str, "shift_s": int, "foreign_key": bool}: the token endpoint's next
//                         ID tokens are re-signed with the provider's current key (or, foreign_key, with an
//                         unpublished key under the current kid) after changing `aud` or moving `iat`/`exp`
//                         by shift_s seconds: a misconfigured or skewed provider; {} ends it
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let keys = [newKey()];
let tamper = {};
let lastTokenAuth = null; // how the last token request authenticated its client
let conform = false; // true: ID tokens carry only `sub` and protocol claims, the rest is at userinfo

// One store for every provider instance (the package's memory adapter keeps one per instance), so
// clients, sessions and grants outlive a key rotation, which builds a new instance.
const store = new Map();
class Adapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }
  async find(id) {
    const entry = store.get(this.key(id));
    return entry && entry.expiresAt > Date.now() ? entry.payload : undefined;
  }
  async findByUid(uid) {
    for (const [key, entry] of store) {
      if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid && entry.expiresAt > Date.now()) {
        return entry.payload;
      }
    }
    return undefined;
  }
  async findByUserCode() { return undefined; }
  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const [key, entry] of store) if (entry.payload.grantId === grantId) store.delete(key);
  }
}

async function resign(idToken) {
  const claims = jose.decodeJwt(idToken);
  if (tamper.aud !== undefined) claims.aud = tamper.aud;
  if (tamper.shift_s) {
    claims.iat += tamper.shift_s;
    claims.exp += tamper.shift_s;
    if (claims.auth_time) claims.auth_time += tamper.shift_s;
  }
  const jwk = tamper.foreign_key ? { ...newKey(), kid: keys[0].kid } : keys[0];
  const key = await jose.importJWK(jwk, 'RS256');
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid }).sign(key);
}

function makeProvider() {
  const provider = new Provider(issuer, {
    adapter: Adapter,
    jwks: { keys },
    cookies: { keys: ['test-cookie-key-not-secret'] },
    features: { devInteractions: { enabled: true }, registration: { enabled: true } },
    conformIdTokenClaims: conform, // false: the scopes' claims in the ID token too, as Keycloak puts them
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    async findAccount(ctx, sub) {
      const domain = sub.includes('@') ? sub.split('@').pop() : 'none';
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: sub,
            email_verified: !sub.startsWith('unverified.'),
            name: sub,
            groups: ['staff', `domain:${domain}`],
          };
        },
      };
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    // The development sign-in pages import a web font from Google: the browser tests allow no request off
    // the machine, so the pages come without it (nothing else about them changes).
    if (typeof ctx.body === 'string' && ctx.response.is('html')) {
      ctx.body = ctx.body.replace(/@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);/g, '');
    }
    if (ctx.path === '/token') {
      const basic = ctx.headers.authorization?.toLowerCase().startsWith('basic ');
      lastTokenAuth = basic ? 'client_secret_basic' : (ctx.oidc?.body?.client_secret ? 'client_secret_post' : 'none');
    }
    if (ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token && Object.keys(tamper).length) {
      ctx.body = { ...ctx.body, id_token: await resign(ctx.body.id_token) };
    }
  });
  return provider;
}

let provider = makeProvider();

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {};
}

createServer(async (req, res) => {
  if (req.method === 'POST' && req.url === '/__test/rotate') {
    keys = [newKey(), keys[0]];
    provider = makeProvider();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kid: keys[0].kid }));
    return;
  }
  if (req.method === 'POST' && req.url === '/__test/conform') {
    conform = (await readJson(req)).conform === true;
    provider = makeProvider();
    res.writeHead(204).end();
    return;
  }
  if (req.method === 'GET' && req.url === '/__test/last-token-auth') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: lastTokenAuth }));
    return;
  }
  if (req.method === 'POST' && req.url === '/__test/tamper') {
    tamper = await readJson(req);
    res.writeHead(204).end();
    return;
  }
  provider.callback()(req, res);
}).listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
