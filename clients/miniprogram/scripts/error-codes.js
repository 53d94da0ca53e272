#!/usr/bin/env node
'use strict';

/**
 * Writes the gateway's `ErrorCode` enum (schema.graphql) into index.d.ts as the
 * `GatewayServerErrorCode` union, between the BEGIN/END markers.
 *
 *   node scripts/error-codes.js            rewrite index.d.ts
 *   node scripts/error-codes.js --check    exit 1 when index.d.ts does not match (CI)
 *   --schema PATH                          another schema.graphql (default ../../schema.graphql)
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const DECLARATIONS = path.join(ROOT, 'index.d.ts');
const BEGIN = '// BEGIN GENERATED: the gateway\'s ErrorCode enum (npm run error-codes); do not edit';
const END = '// END GENERATED';

/** The members of `enum ErrorCode { ... }` in a GraphQL SDL text, in schema order. */
function errorCodesOf(sdl) {
  const match = /^enum ErrorCode\s*\{([^}]*)\}/m.exec(sdl);
  if (!match) throw new Error('schema.graphql has no `enum ErrorCode`');
  const body = match[1]
    .replace(/"""[\s\S]*?"""/g, '') // descriptions
    .replace(/"[^"\n]*"/g, '')
    .replace(/#.*$/gm, '') // comments
    .replace(/@\w+(\([^)]*\))?/g, ''); // directives
  const codes = body.split(/\s+/).filter(Boolean);
  for (const code of codes) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(code)) throw new Error(`unexpected ErrorCode member: ${code}`);
  }
  return codes;
}

function block(codes) {
  const lines = codes.map((code) => `  | '${code}'`);
  return `${BEGIN}\nexport type GatewayServerErrorCode =\n${lines.join('\n')};\n${END}`;
}

/** index.d.ts with the generated block replaced. */
function render(declarations, codes) {
  const start = declarations.indexOf(BEGIN);
  const end = declarations.indexOf(END);
  if (start < 0 || end < start) throw new Error('index.d.ts lacks the BEGIN/END GENERATED markers');
  return declarations.slice(0, start) + block(codes) + declarations.slice(end + END.length);
}

function main(argv) {
  const check = argv.includes('--check');
  const at = argv.indexOf('--schema');
  const schema = at >= 0 ? path.resolve(argv[at + 1]) : path.resolve(ROOT, '..', '..', 'schema.graphql');
  const codes = errorCodesOf(fs.readFileSync(schema, 'utf8'));
  const current = fs.readFileSync(DECLARATIONS, 'utf8');
  const wanted = render(current, codes);
  if (check) {
    if (current !== wanted) {
      process.stderr.write(
        `index.d.ts's GatewayServerErrorCode drifted from ${schema}'s ErrorCode ` +
          `(${codes.length} codes): run 'npm run error-codes' in clients/miniprogram\n`
      );
      return 1;
    }
    process.stdout.write(`GatewayServerErrorCode matches ErrorCode (${codes.length} codes)\n`);
    return 0;
  }
  if (current !== wanted) fs.writeFileSync(DECLARATIONS, wanted);
  process.stdout.write(`GatewayServerErrorCode: ${codes.length} codes from ${schema}\n`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));

module.exports = { errorCodesOf, render };
