import { type Command, InvalidArgumentError, type Option } from 'commander';
import { characterCount, quoted } from './model';
import { TOPOLOGY } from './topology';

/**
 * A command-line option that takes a whole number from `min` to `max`, written in decimal, with
 * or without commas between groups of three digits as the help writes ranges (`1,000`):
 * `1e3`, `0x10`, `12abc` and `1,00` are errors that name the value, not 1000, 16, 12 or 100.
 */
export function wholeNumber(
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  /** Whether the error writes its range with commas, as the help does (not for a port). */
  grouped = true,
): (value: string) => number {
  return (value: string): number => {
    const digits = value.trim();
    const n = /^(\d+|\d{1,3}(,\d{3})+)$/.test(digits) ? Number(digits.replaceAll(',', '')) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      // Written as the help writes ranges: 1,000,000, not 1000000.
      const written = (v: number) => (grouped ? v.toLocaleString('en-US') : String(v));
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${written(min)}` : `from ${written(min)} to ${written(max)}`;
      throw new InvalidArgumentError(`expected a whole number ${range}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/** A TCP port, 1 to 65535 (written so, without a comma, as ports are). */
export function portNumber(): (value: string) => number {
  return wholeNumber(1, 65_535, false);
}

/** A whole number from 1 to `max` (see wholeNumber). */
export function positiveInt(max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return wholeNumber(1, max);
}

/**
 * A command-line option that takes text of 1 to `max` characters that is not only white space
 * (a pause reason): an empty, blank or too long value is an error that says which.
 */
export function nonBlankText(max: number): (value: string) => string {
  return (value: string): string => {
    const expected = `expected 1 to ${max} characters`;
    if (value === '') throw new InvalidArgumentError(`${expected}, got an empty one`);
    if (value.trim() === '') {
      throw new InvalidArgumentError(
        `${expected}, got a blank one (only white space: ${JSON.stringify(value.slice(0, 40))})`,
      );
    }
    const chars = characterCount(value);
    if (chars > max) throw new InvalidArgumentError(`${expected}, got ${chars}`);
    return value;
  };
}

/**
 * A Pub/Sub topic as an option names it: a topic id (3 to 255 characters of letters, digits and
 * `-_.~+%`, starting with a letter, not starting with `goog`), or a full name
 * `projects/{project}/topics/{id}`. Anything else is an error that says what a name looks like,
 * instead of the client library's own message once the command is under way.
 */
export function topicName(value: string): string {
  const problem = topicNameProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

/** What is wrong with a topic id's letters or length, or null. */
function idProblem(id: string): string | null {
  if (!/^[A-Za-z]/.test(id)) return id === '' ? 'is empty' : 'does not start with a letter';
  if (!/^[A-Za-z0-9\-_.~+%]*$/.test(id)) return 'has a character other than letters, digits and -_.~+%';
  if (id.length < 3 || id.length > 255) return `has ${id.length} character${id.length === 1 ? '' : 's'}`;
  return null;
}

/** What is wrong with a Pub/Sub topic name (see topicName), or null. */
export function topicNameProblem(value: string): string | null {
  const id = value.startsWith('projects/') ? /^projects\/[^/\s]+\/topics\/([^/]*)$/.exec(value)?.[1] : value;
  const idWrong = id === undefined ? null : idProblem(id);
  const why =
    value.trim() === ''
      ? 'got an empty one'
      : id === undefined
        ? `got ${quoted(value)}, not of the form projects/{project}/topics/{id}`
        : /^goog/i.test(id)
          ? `got ${quoted(value)}: an id must not start with "goog"`
          : idWrong
            ? `got ${quoted(value)}: ${id === value ? 'it' : `its id ${quoted(id)}`} ${idWrong}`
            : null;
  return why
    ? `expected a Pub/Sub topic id (3 to 255 letters, digits or -_.~+%, starting with a letter) or projects/{project}/topics/{id}, ${why}`
    : null;
}

/**
 * Why `name` (a topic id or full name) cannot be the topic deliveries are published to: it is
 * the dead-letter topic, where what is published is recorded dead at once with nothing posted.
 */
export function deadLetterTopicProblem(name: string): string | null {
  return name.split('/').at(-1) === TOPOLOGY.deadLetterTopic
    ? `${name} is the dead-letter topic: what is published there is recorded dead again at once, with nothing posted`
    : null;
}

/** An option (`value`) taken as the value of the one before (`option`), said so. */
export function optionTakenAsValue(value: string, option: string): string {
  const what = value === '--' ? '-- (the end of the options)' : value;
  return `${what} is an option, not a value: give ${option} its value`;
}

/**
 * Lets each command of `program` parse words past its arguments, for refuseExcessArguments to
 * name them (commander would say only how many it expected).
 */
export function takeExcessArguments(program: Command): void {
  for (const command of program.commands) command.allowExcessArguments(true);
}

/**
 * A word past a command's arguments (`add … extra`, `import a.json b.json`) is named, with what
 * the command takes; `more` adds a hint for a command (import: one file at a time). Called first
 * in the program's preAction hook, before anything is looked for.
 */
export function refuseExcessArguments(command: Command, more: Readonly<Record<string, string>> = {}): void {
  const registered = command.registeredArguments;
  if (registered.some((a) => a.variadic)) return;
  const extra = command.args.slice(registered.length);
  if (extra.length === 0) return;
  const takes =
    registered.length === 0
      ? 'takes no argument, only options'
      : `takes ${registered.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`)).join(' ')} alone`;
  const words = extra.map((w) => JSON.stringify(w)).join(', ');
  const hint = more[command.name()];
  command.error(`error: ${command.name()} ${takes}, not also ${words}${hint ? `: ${hint}` : ''}`, {
    exitCode: 1,
    code: 'commander.excessArguments',
  });
}

/**
 * A flag (an option of no value) given one with `=` (`--failed=yes`): said so, where commander
 * would call it an unknown option, and suggest nothing, as the flag's name is right.
 */
function refuseFlagValue(command: Command, program: Command): void {
  const internal = command as unknown as { unknownOption(flag: string): void };
  const unknown = internal.unknownOption.bind(command);
  internal.unknownOption = (flag: string) => {
    const eq = flag.indexOf('=');
    const name = flag.slice(0, eq);
    const option =
      flag.startsWith('--') && eq > 2
        ? [...command.options, ...program.options].find((o) => o.long === name && !(o.required || o.optional))
        : undefined;
    if (option) {
      command.error(
        `error: ${name} takes no value, not ${quoted(flag.slice(eq + 1), 40)}: give ${name} alone, or leave it out`,
        { exitCode: 1, code: 'commander.unknownOption' },
      );
    }
    unknown(flag);
  };
}

/**
 * Two slips commander would take without a word, refused for `program` and its commands, each
 * naming the option, before the option's own parser reads the value:
 * - an option whose value was left out takes the next option as its value (`add --cron
 *   --timezone UTC` has the cron `--timezone`, and then says --timezone is missing; `pause
 *   --reason --help` would pause for the reason "--help"; `--id --`, the end of the options,
 *   would be an id); a value written into its option's own argument (`--reason=--help`) is
 *   taken as written;
 * - an option given twice (`add --id a … --id b`, `npm start -- -n 5 -n 6`) would keep the last
 *   value; a flag given twice (`--dry-run --dry-run`) is refused the same way. An option listed in `repeatable` (one whose parser adds each value to the ones
 *   before) is left to take more than one.
 */
export function refuseOptionSlips(program: Command, repeatable: readonly string[] = []): void {
  // Each option's value as typed, the first time it is given in a parse, to name it so.
  const typed = new Map<Option, string>();
  // Arguments that carry an option's value themselves (`--title=--help`, `-t--help`): a value
  // written so is the one meant, even when it reads as an option.
  const glued = new Set<string>();
  const isGlued = (option: Option, value: string): boolean =>
    (option.long !== undefined && glued.has(`${option.long}=${value}`)) ||
    (option.short !== undefined && glued.has(`${option.short}${value}`));
  // The flags (options of no value) given so far in a parse, by command.
  const flagsGiven = new Map<Command, Set<Option>>();
  for (const command of [program, ...program.commands]) {
    const parseOptions = command.parseOptions.bind(command);
    command.parseOptions = (args: string[]) => {
      // The program's own options are read first in each parse: a new parse starts afresh.
      if (command === program) glued.clear();
      // Each command's options are read once in a parse: its flags given start afresh.
      flagsGiven.delete(command);
      for (const arg of args) if (/^(--[^=]+=|-[^-])./.test(arg)) glued.add(arg);
      return parseOptions(args);
    };
    const flags = new Set(
      [...command.options, ...program.options].flatMap((o) => [o.long, o.short]).filter((f) => f !== undefined),
    );
    flags.add('--help').add('-h').add('--');
    refuseFlagValue(command, program);
    for (const option of command.options) {
      if (!(option.required || option.optional)) {
        // A flag has no value to parse: it is counted as commander reads it. Given twice, it is a
        // slip as an option of a value given twice is (`--dry-run --dry-run`), though harmless.
        if (repeatable.includes(option.long ?? option.flags)) continue;
        command.on(`option:${option.name()}`, () => {
          const given = flagsGiven.get(command) ?? new Set<Option>();
          flagsGiven.set(command, given);
          if (given.has(option)) {
            command.error(`error: ${option.long ?? option.flags} is given twice: give it once`, {
              exitCode: 1,
              code: 'commander.optionGivenTwice',
            });
          }
          given.add(option);
        });
        continue;
      }
      const parse = option.parseArg;
      const once = !repeatable.includes(option.long ?? option.flags);
      option.argParser((value: string, previous: unknown) => {
        const name = option.long ?? option.flags;
        // `-n=5` gives -n the value "=5": said so, instead of a value error about "=5".
        if (value.startsWith('=') && option.short !== undefined && glued.has(`${option.short}${value}`)) {
          const meant = value.slice(1);
          throw new InvalidArgumentError(
            `write ${option.short} ${meant}${option.long ? ` or ${option.long}=${meant}` : ''}: ${option.short}=… takes the "=" as part of its value`,
          );
        }
        if (flags.has(value) && !isGlued(option, value)) {
          throw new InvalidArgumentError(optionTakenAsValue(value, name));
        }
        // Set from the command line already in this parse (commander resets it on the next).
        if (once && command.getOptionValueSource(option.attributeName()) === 'cli') {
          const first = typed.get(option) ?? String(command.getOptionValue(option.attributeName()));
          // Said as commander says its own usage errors, without the "argument '…' is invalid."
          // it puts before an InvalidArgumentError's words: the second value may be a good one.
          command.error(`error: ${name} is given twice (${quoted(first, 40)} and ${quoted(value, 40)}): give it once`, {
            exitCode: 1,
            code: 'commander.optionGivenTwice',
          });
        }
        typed.set(option, value);
        return parse === undefined ? value : parse(value, previous);
      });
    }
  }
}
