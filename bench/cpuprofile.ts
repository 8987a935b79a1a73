import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { wholeNumber } from '../shared/cli-args';

/**
 * Summarises a V8 .cpuprofile (what `node --cpu-prof` and the inspector's Profiler.stop
 * write): self time per function and per package, from the samples and their time deltas.
 * Run directly: `node dist/bench/cpuprofile.js <file.cpuprofile> [top]`.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  pct: number;
}

export interface ProfileSummary {
  file: string;
  /** Wall time the profile covers, ms. */
  totalMs: number;
  /** Time the main thread was busy (not idle), ms. */
  busyMs: number;
  topFunctions: SelfTime[];
  topPackages: SelfTime[];
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Which package a script belongs to: a dependency, node's own code, or ours. */
export function packageOf(url: string, functionName: string): string {
  if (url === '') return SPECIAL.has(functionName) ? functionName : '(native / V8)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return 'node (built-in modules)';
  const m = /\/dist\/([^/]+)\//.exec(url);
  if (m) return `slack-fanout ${m[1]}/`;
  return url;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

export function summariseProfile(profile: CpuProfile, file = '', top = 15): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  // A sample lasts until the next one: attribute each delta to the sample before it.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const pkgs = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    totalUs += us;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const name = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const f = fns.get(key) ?? { name, where, us: 0 };
    f.us += us;
    fns.set(key, f);
    const pkg = packageOf(url, functionName);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => (busyUs > 0 ? (us / busyUs) * 100 : 0);
  return {
    file,
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    topFunctions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, ms: f.us / 1000, pct: pct(f.us) })),
    topPackages: [...pkgs.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, where: '', ms: us / 1000, pct: pct(us) })),
  };
}

/** Why `data` is not a V8 CPU profile, or null when it is one. */
export function profileProblem(data: unknown): string | null {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'it is not a JSON object';
  const p = data as Partial<Record<keyof CpuProfile, unknown>>;
  for (const key of ['nodes', 'samples', 'timeDeltas'] as const) {
    if (!Array.isArray(p[key])) return `it has no ${key} array, as a V8 .cpuprofile has`;
  }
  for (const key of ['startTime', 'endTime'] as const) {
    if (typeof p[key] !== 'number') return `it has no ${key} number, as a V8 .cpuprofile has`;
  }
  return null;
}

/** Reads and summarises a .cpuprofile; an error names the file and what is wrong with it. */
export function summariseFile(file: string, top = 15): ProfileSummary {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not a V8 CPU profile: it is not JSON`);
  }
  const problem = profileProblem(data);
  if (problem) throw new Error(`${file} is not a V8 CPU profile: ${problem}`);
  return summariseProfile(data as CpuProfile, file, top);
}

export function profileMarkdown(title: string, s: ProfileSummary): string {
  const lines = [
    `#### ${title}`,
    '',
    `${(s.totalMs / 1000).toFixed(1)} s profiled, main thread busy ${(s.busyMs / 1000).toFixed(1)} s (${s.totalMs > 0 ? ((s.busyMs / s.totalMs) * 100).toFixed(0) : 0}%). Self time, share of busy time:`,
    '',
    '| package | self ms | % |',
    '| --- | ---: | ---: |',
    ...s.topPackages.slice(0, 10).map((p) => `| ${p.name} | ${p.ms.toFixed(0)} | ${p.pct.toFixed(1)} |`),
    '',
    '| function | where | self ms | % |',
    '| --- | --- | ---: | ---: |',
    ...s.topFunctions.map(
      (f) =>
        `| \`${f.name.replace(/\|/g, '\\|')}\` | ${f.where.replace(/\|/g, '\\|')} | ${f.ms.toFixed(0)} | ${f.pct.toFixed(1)} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

if (require.main === module) {
  new Command()
    .name('node dist/bench/cpuprofile.js')
    .description(
      'Summarises a V8 .cpuprofile (node --cpu-prof, or the benchmark’s under bench/results/tmp/): self time ' +
        'per package and per function, as a share of the main thread’s busy time, in markdown.',
    )
    .argument('<file>', 'the .cpuprofile to read')
    .argument('[top]', 'how many functions to list (1 to 1,000)', wholeNumber(1, 1000), 15)
    .showHelpAfterError()
    .action((file: string, top: number) => {
      try {
        process.stdout.write(profileMarkdown(file, summariseFile(file, top)));
      } catch (err) {
        process.stderr.write(`cpuprofile: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    })
    .parse();
}
