import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Emulators } from '../dev/emulators';

/**
 * What the kernel says about another process: CPU time from /proc/<pid>/stat (utime + stime,
 * the same counters `top` uses) and peak resident memory (VmHWM) from /proc/<pid>/status.
 * Reading them from outside measures every process the same way, whatever runs inside it.
 */

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** The fields of /proc/<pid>/stat after the command name, from field 3 (state) on. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User plus system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  // After the name: state is field 3, so utime (14) and stime (15) sit at offsets 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / ticksPerSecond();
}

/**
 * CPU seconds used so far by a process and every descendant still running: an emulator is a
 * launcher script whose Java child does the work, and a child's time reaches its parent's
 * counters only once it has exited. A process that exits while the tree is read is left out.
 */
export function treeCpuSeconds(rootPid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // ppid is field 4: offset 1 after the name.
      const ppid = Number(statFields(Number(entry))[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // Gone since the listing.
    }
  }
  let total = 0;
  const stack = [rootPid];
  for (let pid = stack.pop(); pid !== undefined; pid = stack.pop()) {
    try {
      total += cpuSeconds(pid);
    } catch {
      continue;
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

function statusField(pid: number, name: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`/proc/${pid}/status has no ${name}`);
  return Number(m[1]) / 1024;
}

/** Peak resident set size in MiB since the process started. */
export function peakRssMiB(pid: number): number {
  return statusField(pid, 'VmHWM');
}

/**
 * Starts the peak over: the kernel sets VmHWM back to the current RSS (`clear_refs` value 5,
 * Linux 4.0 and later), so a later peakRssMiB() is the peak of what ran since. Returns false
 * where the file cannot be written (another kernel, a sandbox): the peak then counts from the
 * process's start.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export function rssMiB(pid: number): number {
  return statusField(pid, 'VmRSS');
}

/** Jiffies the whole machine has spent, busy and in all, from /proc/stat, and its cores. */
export interface MachineCpu {
  busy: number;
  total: number;
  cores: number;
}

/** The machine's CPU counters now: every core, every process, the kernel's own work included. */
export function machineCpu(): MachineCpu {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = (lines[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  const cores = Math.max(1, lines.filter((l) => /^cpu\d+\s/.test(l)).length);
  return { busy, total: busy + idle + iowait, cores };
}

/**
 * How many cores the machine kept busy between `since` and now (all processes: the service
 * measured, the emulators, the benchmark itself), and how many it has: a ratio near 1 says the
 * machine, not the code path measured, was the limit.
 */
export function busyCoresSince(since: MachineCpu): { busyCores: number; cores: number } {
  const now = machineCpu();
  const total = now.total - since.total;
  return { busyCores: total > 0 ? ((now.busy - since.busy) / total) * now.cores : 0, cores: now.cores };
}

/** CPU seconds the emulators' process trees have used so far (NaN for one without a pid). */
export function emulatorsCpu(emulators: Emulators): { pubsub: number; firestore: number } {
  const of = (pid: number | undefined) => (pid === undefined ? Number.NaN : treeCpuSeconds(pid));
  return { pubsub: of(emulators.pubsub.child.pid), firestore: of(emulators.firestore.child.pid) };
}
