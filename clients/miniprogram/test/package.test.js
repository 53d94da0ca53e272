'use strict';

// The package as a consumer gets it: `require`, the declarations, the "build npm" layout.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

test('the package loads with require and exports the API', () => {
  const sdk = require(root);
  assert.equal(typeof sdk.createGatewayClient, 'function');
  assert.equal(typeof sdk.GatewayError, 'function');
  const error = new sdk.GatewayError('SESSION_EXPIRED', 'ask again');
  assert.ok(error instanceof Error);
  assert.equal(error.code, 'SESSION_EXPIRED');
  assert.ok(sdk.isGatewayError(error));
});

test('"build npm" takes it as is: a miniprogram directory with index.js, no dependencies', () => {
  assert.equal(pkg.name, 'wechat-identity-gateway-miniprogram');
  assert.equal(pkg.license, 'MIT');
  const dir = path.join(root, pkg.miniprogram);
  assert.ok(fs.existsSync(path.join(dir, 'index.js')), 'the miniprogram dir has index.js');
  assert.equal(path.resolve(root, pkg.main), path.join(dir, 'index.js'));
  assert.deepEqual(Object.keys(pkg.dependencies || {}), []);
  for (const file of ['README.md', 'LICENSE', 'index.d.ts']) {
    assert.ok(fs.existsSync(path.join(root, file)), file);
  }
});

test('the runtime code stays within ES2017 and requires nothing outside lib/', () => {
  const dir = path.join(root, pkg.miniprogram);
  for (const file of fs.readdirSync(dir)) {
    const source = fs.readFileSync(path.join(dir, file), 'utf8');
    assert.doesNotMatch(source, /\?\.|\?\?/, `${file}: optional chaining or ?? (ES2020)`);
    assert.doesNotMatch(source, /\.\.\.(?!\s*on\b)[\w([{]/, `${file}: spread or rest (ES2018 for objects)`);
    for (const [, target] of source.matchAll(/require\('([^']+)'\)/g)) {
      assert.match(target, /^\.\//, `${file} requires ${target}: only relative requires`);
    }
  }
});

test('the declarations type-check against a usage file (tsc --noEmit)', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const project = path.join(__dirname, 'types', 'tsconfig.json');
  try {
    execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`);
  }
});
