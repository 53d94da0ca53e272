'use strict';

/**
 * Starts a real `gateway serve` in sandbox mode for the tests: the Python executable from
 * GATEWAY_BIN, else ../../.venv/bin/gateway (relative to clients/miniprogram), in a fresh temp
 * directory (its SQLite file and keys go there), on a free port, with an environment built
 * from scratch so no GATEWAY_* variable of ours turns sandbox mode off. Ready means
 * GET /readyz = 200, polled against a deadline.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const PACKAGE_DIR = path.resolve(__dirname, '..', '..');
const READY_DEADLINE_MS = 30000;

function gatewayBin() {
  if (process.env.GATEWAY_BIN) return path.resolve(process.env.GATEWAY_BIN); // cwd will be a temp dir
  return path.resolve(PACKAGE_DIR, '..', '..', '.venv', 'bin', 'gateway');
}

/** Why the gateway tests cannot run here, or null when they can. */
function missingGatewayReason() {
  const bin = gatewayBin();
  if (fs.existsSync(bin)) return null;
  return (
    `no gateway executable at ${bin}: create the Python venv at the repository root ` +
    `(python3 -m venv .venv && .venv/bin/pip install -e .) or set GATEWAY_BIN`
  );
}

/** `skip` for node:test: the reason, or false; fails instead with GATEWAY_SDK_REQUIRE_GATEWAY=1. */
function skipUnlessGateway() {
  const reason = missingGatewayReason();
  if (reason && process.env.GATEWAY_SDK_REQUIRE_GATEWAY === '1') {
    throw new Error(`GATEWAY_SDK_REQUIRE_GATEWAY=1 but ${reason}`);
  }
  return reason || false;
}

/**
 * The gateway tests' `it`: each test is skipped on its own (and so counted as skipped in the
 * summary) when no gateway can run here; with GATEWAY_SDK_REQUIRE_GATEWAY=1 that fails instead.
 * Returns `{ it, skip }`: `skip` is the reason, or false.
 */
function gatewayTests(nodeIt) {
  const skip = skipUnlessGateway();
  const it = (name, fn) => nodeIt(name, { skip }, fn);
  return { it, skip };
}

/**
 * Whether the running gateway's schema has this Mutation field (the server half of a feature
 * may not have landed yet): asks for it and reads a validation error.
 */
async function hasMutation(gateway, field) {
  if (!gateway.mutations) gateway.mutations = {};
  if (!(field in gateway.mutations)) {
    const res = await fetch(gateway.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `mutation { ${field} { __typename } }` }),
    });
    const body = await res.json().catch(() => ({}));
    const messages = (body.errors || []).map((e) => e.message).join('\n');
    gateway.mutations[field] = !new RegExp(`Cannot query field .${field}. on type .Mutation.`).test(messages);
  }
  return gateway.mutations[field];
}

/** Skips test `t` (counted as skipped) when the gateway lacks the mutation; true if skipped. */
async function skipWithoutMutation(t, gateway, field) {
  if (await hasMutation(gateway, field)) return false;
  t.skip(`this gateway's schema has no Mutation.${field} yet (the server half has not landed)`);
  return true;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Only what a Python process needs; sandbox mode = no GATEWAY_CONFIG, no GATEWAY_DATABASE_URL. */
function childEnv(home) {
  const env = { HOME: home, PATH: process.env.PATH || '/usr/bin:/bin', LANG: 'C.UTF-8' };
  env.GATEWAY_LOG_FORMAT = 'text';
  env.GATEWAY_LOG_LEVEL = 'WARNING';
  return env;
}

async function startGateway() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-sdk-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(gatewayBin(), ['serve', '--host', '127.0.0.1', '--port', String(port)], {
    cwd: dir,
    env: childEnv(dir),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = [];
  child.stdout.on('data', (chunk) => output.push(chunk));
  child.stderr.on('data', (chunk) => output.push(chunk));
  const gateway = { base, endpoint: `${base}/graphql`, child, dir, log: () => Buffer.concat(output).toString() };
  try {
    await waitReady(gateway);
  } catch (error) {
    await stopGateway(gateway);
    throw error;
  }
  return gateway;
}

async function waitReady(gateway) {
  const deadline = Date.now() + READY_DEADLINE_MS;
  let exited = null;
  gateway.child.once('exit', (code, signal) => (exited = { code, signal }));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`gateway exited (${JSON.stringify(exited)}):\n${gateway.log()}`);
    try {
      const res = await fetch(`${gateway.base}/readyz`);
      if (res.status === 200) return;
    } catch (_) {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gateway not ready within ${READY_DEADLINE_MS} ms:\n${gateway.log()}`);
}

async function stopGateway(gateway) {
  const { child } = gateway;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  fs.rmSync(gateway.dir, { recursive: true, force: true });
}

module.exports = {
  startGateway,
  stopGateway,
  skipUnlessGateway,
  gatewayTests,
  hasMutation,
  skipWithoutMutation,
};
