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

function tsc(project) {
  const bin = require.resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [bin, '-p', path.join(__dirname, 'types', project)], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (error) {
    assert.fail(`tsc -p test/types/${project} failed:\n${error.stdout}${error.stderr}`);
  }
}

test('the declarations type-check on their own (tsc --strict, skipLibCheck off)', () => tsc('.'));

// Each platform's own declarations as a developer has them (devDependencies, pinned in
// package-lock.json), its API object passed as `wx` under --strict.
test('types: the real wx of miniprogram-api-typings is a WxLike', () => tsc('wx'));
test("types: Taro's Taro (@tarojs/taro) is a WxLike", () => tsc('taro'));
test("types: uni-app's uni (@dcloudio/types) is a WxLike", () => tsc('uni'));

test("GatewayServerErrorCode in index.d.ts is schema.graphql's ErrorCode (no drift)", () => {
  const script = path.join(root, 'scripts', 'error-codes.js');
  try {
    execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    assert.fail(`${error.stdout}${error.stderr}`);
  }
});

test('the error-code generator reads the enum and notices a drift', () => {
  const { errorCodesOf, render } = require('../scripts/error-codes');
  const sdl = 'enum ErrorCode {\n  """doc"""\n  A_B\n  C @deprecated(reason: "x")\n}\n';
  assert.deepEqual(errorCodesOf(sdl), ['A_B', 'C']);
  const current = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8');
  assert.notEqual(render(current, ['A_B', 'C']), current);
  assert.throws(() => errorCodesOf('type Query { a: Int }'), /no `enum ErrorCode`/);
});
