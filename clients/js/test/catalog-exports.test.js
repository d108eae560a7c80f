/**
 * The catalog's exports, checked by the tools their users run on them.
 *
 * `python -m eventwire catalog export` writes the demo catalog as TypeScript,
 * Zod, AsyncAPI and JSON Schema; then `tsc --strict` compiles the TypeScript
 * (and code that narrows on `event` and `version`), Zod 4 accepts every
 * example of the catalog and the demo's events exactly as the gateway
 * delivers them and refuses a wrong one, the AsyncAPI project's own parser
 * (`@asyncapi/parser` 3, which also checks the official AsyncAPI 3.0.0 JSON
 * Schema) reads the AsyncAPI document without an error or a warning, and
 * the JSON Schema 2020-12 export agrees with Zod.
 *
 * The tools come from the npm registry, installed once per tool list under
 * the repository's build/js-tools/ (support/npm-tools.js); a later run reuses
 * them. When they cannot be installed, the test is skipped with the reason,
 * unless EVENTWIRE_REQUIRE_NPM=1 (as `make test` sets it) makes that a failure.
 */

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { installTools } from './support/npm-tools.js';

const run = promisify(execFile);
const PYTHON = process.env.EVENTWIRE_PYTHON ?? fileURLToPath(new URL('../../../.venv/bin/python', import.meta.url));
const CATALOG = 'eventwire.demo:catalog';
const TOOLS = ['typescript@5', 'zod@4', 'ajv@8', 'ajv-formats@3', '@asyncapi/parser@3'];
const INSTALL_TIMEOUT = 90_000;

// The demo's events as the gateway delivers them: encoded once, stamped, with seq.
const DEMO_EVENTS = `
import itertools, orjson
from eventwire.demo import demo_events
from eventwire.envelope import decode_new_event, encode_event, splice_seq, utc_now
for seq, raw in enumerate(itertools.islice(demo_events(), 18), 1):
    event = decode_new_event(raw)
    body = encode_event(event, orjson.dumps(event.data.payload), utc_now())
    print(splice_seq(body, seq).decode())
`;

// Narrowing on the discriminants, as docs/catalog.md shows it.
const USAGE = `
import type { CatalogEvent } from './events.js';

export function describe(e: CatalogEvent): string {
  switch (e.event) {
    case 'STATUS_CHANGED': {
      const status: 'available' | 'purchased' = e.data.payload.new_status;
      return status;
    }
    case 'MESSAGE_POSTED':
      return e.version === 2 ? (e.data.payload.mentions ?? []).join(',') : e.data.payload.text;
    default:
      return e.event;
  }
}
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    outDir: 'out',
    skipLibCheck: true,
  },
  files: ['events.ts', 'events.zod.ts', 'usage.ts'],
};

let dir; // this run's files; node_modules links to the installed tools
let unavailable;

async function exported(format, ...extra) {
  const { stdout } = await run(
    PYTHON,
    ['-m', 'eventwire', 'catalog', 'export', '--catalog', CATALOG, '--format', format, ...extra],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return stdout;
}

before(async () => {
  let tools;
  try {
    tools = await installTools(TOOLS, { timeout: INSTALL_TIMEOUT });
  } catch (error) {
    unavailable = `npm install ${TOOLS.join(' ')} failed: ${String(error.stderr || error.message)
      .trim()
      .slice(0, 500)}`;
    if (process.env.EVENTWIRE_REQUIRE_NPM === '1') throw new Error(unavailable);
    return;
  }
  dir = await mkdtemp(join(tmpdir(), 'eventwire-catalog-exports-'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  await symlink(join(tools.dir, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const [typescript, zod, asyncapi, served, jsonschema, demo] = await Promise.all([
    exported('typescript'),
    exported('zod'),
    exported('asyncapi'),
    exported('asyncapi', '--server-url', 'ws://127.0.0.1:8000/ws'),
    exported('jsonschema'),
    run(PYTHON, ['-c', DEMO_EVENTS]).then(({ stdout }) => stdout),
  ]);
  await Promise.all([
    writeFile(join(dir, 'events.ts'), typescript),
    writeFile(join(dir, 'events.zod.ts'), zod),
    writeFile(join(dir, 'asyncapi.json'), asyncapi),
    writeFile(join(dir, 'asyncapi-served.json'), served),
    writeFile(join(dir, 'schema.json'), jsonschema),
    writeFile(join(dir, 'demo.jsonl'), demo),
    writeFile(join(dir, 'usage.ts'), USAGE),
    writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG)),
  ]);
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const tool = (path) => import(pathToFileURL(join(dir, 'node_modules', path)).href);
const json = async (name) => JSON.parse(await readFile(join(dir, name), 'utf8'));

async function demoEvents() {
  const text = await readFile(join(dir, 'demo.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

async function examples() {
  const document = await json('asyncapi.json');
  return Object.values(document.components.messages).flatMap((message) =>
    (message.examples ?? []).map((e) => e.payload),
  );
}

test('the exports pass the tools their users run', { timeout: 60_000 }, async (t) => {
  if (unavailable) {
    t.skip(unavailable);
    return;
  }

  await t.test('tsc --strict compiles the TypeScript and the Zod module', async () => {
    const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: dir });
    } catch (error) {
      assert.fail(`tsc --strict failed:\n${error.stdout}${error.stderr}`);
    }
  });

  await t.test('Zod accepts the examples and the demo events, and refuses a wrong one', async () => {
    const { CatalogEvent, GiftListEvent, RoomEvent } = await import(
      pathToFileURL(join(dir, 'out', 'events.zod.js')).href
    );
    const known = await examples();
    assert.ok(known.length >= 10);
    for (const example of known) {
      const result = CatalogEvent.safeParse(example);
      assert.ok(result.success, `${example.topic} ${example.event}: ${result.error}`);
    }
    const demo = await demoEvents();
    assert.equal(demo.length, 18);
    for (const event of demo) {
      const result = CatalogEvent.safeParse(event);
      assert.ok(result.success, `${event.topic} ${event.event} seq ${event.seq}: ${result.error}`);
    }
    const added = demo.find((e) => e.event === 'ADDED');
    const lost = structuredClone(added);
    lost.data.payload.status = 'lost';
    assert.equal(GiftListEvent.safeParse(lost).success, false);
    const message = demo.find((e) => e.event === 'MESSAGE_POSTED');
    assert.equal(message.version, 2);
    assert.equal(RoomEvent.safeParse({ ...message, version: 3 }).success, false);
  });

  await t.test('the AsyncAPI parser reads the document without an error or a warning', async () => {
    const { Parser, DiagnosticSeverity } = createRequire(join(dir, 'package.json'))('@asyncapi/parser');
    const text = await readFile(join(dir, 'asyncapi.json'), 'utf8');
    const { document, diagnostics } = await new Parser().parse(text);
    // Errors and warnings only: information (such as "AsyncAPI 3.1.0 exists") is advice.
    const serious = diagnostics.filter(
      (d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning,
    );
    assert.deepEqual(
      serious.map((d) => `${d.code} at ${d.path.join('.')}: ${d.message}`),
      [],
    );
    assert.ok(document, 'parse() returned no document');
    assert.equal(document.version(), '3.0.0');

    // The parsed model is the catalog: channels, send operations, messages with resolved payloads.
    const channels = Object.fromEntries(
      document
        .channels()
        .all()
        .map((c) => [c.id(), c]),
    );
    assert.deepEqual(Object.keys(channels).sort(), ['gift-list', 'import', 'room']);
    assert.equal(channels.room.address(), 'room:{id}');
    assert.deepEqual(
      channels.room
        .messages()
        .all()
        .map((m) => m.id())
        .sort(),
      ['room.MESSAGE_POSTED.v1', 'room.MESSAGE_POSTED.v2', 'room.USER_JOINED.v1', 'room.USER_LEFT.v1'],
    );
    for (const operation of document.operations().all()) {
      assert.equal(operation.action(), 'send');
      const [channel] = operation.channels().all();
      assert.equal(operation.messages().all().length, channel.messages().all().length, operation.id());
    }
    const v2 = document
      .messages()
      .all()
      .find((m) => m.id() === 'room.MESSAGE_POSTED.v2');
    const payload = v2.payload().properties().data.properties().payload;
    assert.ok(Object.hasOwn(payload.properties(), 'mentions'), 'the v2 payload schema has mentions');
    assert.equal(v2.payload().properties().version.const(), 2);
    assert.equal(v2.examples().all()[0].payload().version, 2);

    // What /asyncapi.json serves: the same, with the gateway as its server.
    const served = await new Parser().parse(await readFile(join(dir, 'asyncapi-served.json'), 'utf8'));
    assert.deepEqual(
      served.diagnostics.filter((d) => d.severity <= DiagnosticSeverity.Warning),
      [],
    );
    const [server] = served.document.servers().all();
    assert.deepEqual([server.url(), server.protocol()], ['ws://127.0.0.1:8000/ws', 'ws']);
  });

  await t.test('the JSON Schema 2020-12 export agrees with Zod', async () => {
    const { default: Ajv2020 } = await tool('ajv/dist/2020.js');
    const { default: addFormats } = await tool('ajv-formats/dist/index.js');
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    const validate = ajv.compile(await json('schema.json'));
    for (const event of [...(await examples()), ...(await demoEvents())]) {
      assert.ok(validate(event), `${event.topic} ${event.event}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
    }
    const lost = structuredClone((await demoEvents())[0]);
    lost.data.payload.status = 'lost';
    assert.equal(validate(lost), false);
  });
});
