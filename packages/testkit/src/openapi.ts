import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

/** The api's OpenAPI 3.1 document: what app developers generate clients from. */
export const OPENAPI_PATH = fileURLToPath(new URL('../../../docs/openapi.yaml', import.meta.url));

type Json = Record<string, any>;
/** ajv-formats is CommonJS; under ESM its default export arrives wrapped once more. */
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => void;

interface Loaded {
  doc: Json;
  ajv: Ajv2020;
  compiled: Map<string, ValidateFunction>;
}

function loadDocument(doc: Json): Loaded {
  // OpenAPI 3.1 schemas are JSON Schema 2020-12. The whole document is registered under one id
  // so the schemas' own `#/components/schemas/...` references resolve against it.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ ...doc, $id: 'openapi.json' });
  return { doc, ajv, compiled: new Map() };
}

let cached: Loaded | null = null;
/** docs/openapi.yaml, read once per test process. */
function load(): Loaded {
  cached ??= loadDocument(parse(readFileSync(OPENAPI_PATH, 'utf8')) as Json);
  return cached;
}

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** An OpenAPI Reference Object (`$ref` to `#/components/...`) followed, or the object itself. */
function deref(doc: Json, obj: Json): Json {
  if (typeof obj?.$ref !== 'string') return obj;
  const parts = (obj.$ref as string).replace(/^#\//, '').split('/').map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  let at: any = doc;
  for (const p of parts) at = at?.[p];
  if (at === undefined) throw new Error(`docs/openapi.yaml: unresolved $ref ${obj.$ref}`);
  return deref(doc, at);
}

/** The document's path template that matches a concrete path (`/calls/{call_id}` matches `/calls/abc`). */
function matchPath(doc: Json, path: string): string | null {
  for (const template of Object.keys(doc.paths ?? {})) {
    const re = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (re.test(path)) return template;
  }
  return null;
}

function validator(schemaPointer: string, { ajv, compiled }: Loaded = load()): ValidateFunction {
  let v = compiled.get(schemaPointer);
  if (!v) {
    v = ajv.compile({ $ref: `openapi.json#/${schemaPointer}` });
    compiled.set(schemaPointer, v);
  }
  return v;
}

function check(schemaPointer: string, body: unknown, what: string): void {
  const v = validator(schemaPointer);
  if (!v(body)) {
    const errors = (v.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message} ${JSON.stringify(e.params)}`).join('; ');
    throw new Error(`${what} does not match docs/openapi.yaml: ${errors}\nbody: ${JSON.stringify(body)}`);
  }
}

/**
 * Throws unless `status` is documented for `method path` and `body` (parsed JSON, a string for
 * text, null for none) matches its schema. A path or method the document does not have must be
 * the api's 404 in the error shape, as the document's description promises.
 */
export function assertMatchesOpenApi(method: string, path: string, status: number, body: unknown): void {
  const { doc } = load();
  const m = method.toLowerCase();
  const bare = new URL(path, 'http://x').pathname;
  const what = `${method.toUpperCase()} ${bare} -> ${status}`;
  const template = matchPath(doc, bare);
  const operation = template ? doc.paths[template][m] : undefined;
  if (!operation) {
    if (status !== 404) throw new Error(`${what}: docs/openapi.yaml has no such operation (only a 404 is expected)`);
    check(pointer('components', 'schemas', 'Error'), body, what);
    return;
  }
  const raw = operation.responses?.[String(status)];
  if (!raw) throw new Error(`${what}: status not documented in docs/openapi.yaml (documented: ${Object.keys(operation.responses ?? {}).join(', ')})`);
  const responsePointer = typeof raw.$ref === 'string' ? (raw.$ref as string).replace(/^#\//, '') : pointer('paths', template!, m, 'responses', String(status));
  const response = deref(doc, raw);
  const content = response.content as Json | undefined;
  if (!content) {
    if (body !== null && body !== undefined && body !== '') throw new Error(`${what}: documented without a body, got ${JSON.stringify(body)}`);
    return;
  }
  const mediaType = typeof body === 'string' && content['text/plain'] ? 'text/plain' : 'application/json';
  if (!content[mediaType]?.schema) throw new Error(`${what}: no ${mediaType} schema documented`);
  check(`${responsePointer}/content/${pointer(mediaType)}/schema`, body, what);
}

/**
 * The document itself: valid OpenAPI 3.1 (against the official schema, by
 * @seriousme/openapi-schema-validator), and every response schema compiles (so every `$ref`
 * in it resolves). Returns the problems; empty when there are none. `document` (tests of this
 * checker) replaces docs/openapi.yaml.
 */
export async function openApiDocumentProblems(document?: Json): Promise<string[]> {
  const loaded = document ? loadDocument(document) : load();
  const { doc } = loaded;
  const result = await new Validator().validate(structuredClone(doc));
  const problems: string[] = [];
  if (!result.valid) problems.push(typeof result.errors === 'string' ? result.errors : JSON.stringify(result.errors));
  for (const [template, item] of Object.entries(doc.paths as Json)) {
    for (const [method, op] of Object.entries(item as Json)) {
      for (const [status, raw] of Object.entries((op as Json).responses ?? {})) {
        try {
          const response = deref(doc, raw as Json);
          const at = typeof (raw as Json).$ref === 'string' ? ((raw as Json).$ref as string).replace(/^#\//, '') : pointer('paths', template, method, 'responses', status);
          for (const mediaType of Object.keys(response.content ?? {})) validator(`${at}/content/${pointer(mediaType)}/schema`, loaded);
        } catch (err) {
          problems.push(`${method.toUpperCase()} ${template} ${status}: ${(err as Error).message}`);
        }
      }
    }
  }
  return problems;
}
