import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every Firestore query that filters or orders by a field is built by buildQuery from its spec
 * in QUERIES (shared/queries.ts), from which infra/ declares its composite indexes and its
 * single-field exemptions: a query written anywhere else could need an index nobody declared,
 * or read a field whose index is exempted, and would fail only in production. Ordering by the
 * document id needs no index, and is taken anywhere.
 */

const ROOT = join(__dirname, '..');
// The code that runs against Firestore itself; dev/ and bench/ run on the emulator alone, which
// neither needs an index nor keeps an exemption.
const DIRS = ['shared', 'dispatcher', 'notifier', 'bin', 'infra'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'results' || e.name === 'node_modules' ? [] : sources(path);
    return e.name.endsWith('.ts') && !/\.(test|browser)\.ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The `.where(` and `.orderBy(` calls in `text` outside buildQuery's own body, by line; an order by document id passes. */
function queriesOutsideSpecs(text: string): string[] {
  const start = text.indexOf('export function buildQuery(');
  const end = start === -1 ? -1 : text.indexOf('\n}\n', start);
  const found: string[] = [];
  for (const m of text.matchAll(/\.(where|orderBy)\(\s*([^,)]*)/g)) {
    const at = m.index ?? 0;
    if (start !== -1 && at > start && at < end) continue;
    if (m[1] === 'orderBy' && /^FieldPath\.documentId\($/.test((m[2] ?? '').trim())) continue;
    found.push(`${text.slice(0, at).split('\n').length}: ${m[0]}`);
  }
  return found;
}

it('finds a query built outside buildQuery, and passes one ordered by document id', () => {
  const text = [
    "const a = db.collection('deliveries').where('status', '==', 'dead');",
    "const b = db.collection('runs').orderBy('startedAt', 'desc');",
    'const c = members.orderBy(FieldPath.documentId()).limit(10);',
    'export function buildQuery(db, spec) {',
    "  q = q.where(path, f.op, v).orderBy(path, 'asc');",
    '}',
    "const d = q.where('x', '>', 1);",
  ].join('\n');
  expect(queriesOutsideSpecs(text)).toEqual(["1: .where('status'", "2: .orderBy('startedAt'", "7: .where('x'"]);
});

it('builds every query that filters or orders by a field from its spec in QUERIES', () => {
  const files = DIRS.flatMap((d) => sources(join(ROOT, d)));
  expect(files.length).toBeGreaterThan(30);
  const outside = files.flatMap((file) =>
    queriesOutsideSpecs(readFileSync(file, 'utf8')).map((where) => `${relative(ROOT, file)}:${where}`),
  );
  expect(outside).toEqual([]);
});
