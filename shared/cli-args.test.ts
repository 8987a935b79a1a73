import { Command, InvalidArgumentError } from 'commander';
import { nonBlankText, portNumber, positiveInt, refuseOptionSlips, topicName } from './cli-args';

describe('positiveInt', () => {
  it.each([
    ['1', 1],
    ['200', 200],
    [' 42 ', 42],
    ['1,000', 1000],
    ['0,999', 999],
  ])('reads %j as %i', (value, n) => {
    expect(positiveInt(1000)(value)).toBe(n);
  });

  it.each([
    '0',
    '-3',
    '1.5',
    '1e3',
    '0x10',
    '12abc',
    '',
    'abc',
    '1001',
    '1,00',
    '1,0000',
    ',100',
    '100,',
    '1,,000',
    '1.000',
  ])('refuses %j, naming it', (value) => {
    expect(() => positiveInt(1000)(value)).toThrow(InvalidArgumentError);
    expect(() => positiveInt(1000)(value)).toThrow(
      `expected a whole number from 1 to 1,000, got ${JSON.stringify(value)}`,
    );
  });

  it('without a maximum, says ≥ 1', () => {
    expect(() => positiveInt()('0')).toThrow('expected a whole number ≥ 1, got "0"');
  });
});

describe('nonBlankText', () => {
  it('takes 1 to max characters of text', () => {
    expect(nonBlankText(5)(' a ')).toBe(' a ');
    expect(nonBlankText(5)('abcde')).toBe('abcde');
    // Characters as a reader counts them: five emoji are ten UTF-16 units.
    expect(nonBlankText(5)('🙂🙂🙂🙂🙂')).toBe('🙂🙂🙂🙂🙂');
  });

  it.each([
    ['', 'expected 1 to 5 characters, got an empty one'],
    ['   ', 'expected 1 to 5 characters, got a blank one (only white space: "   ")'],
    ['\t', 'got a blank one'],
    ['abcdef', 'expected 1 to 5 characters, got 6'],
    ['🙂🙂🙂🙂🙂🙂', 'expected 1 to 5 characters, got 6'],
  ])('refuses %j, saying why', (value, message) => {
    expect(() => nonBlankText(5)(value)).toThrow(InvalidArgumentError);
    expect(() => nonBlankText(5)(value)).toThrow(message);
  });
});

describe('topicName', () => {
  it.each([
    'slack-fanout-dispatch',
    'abc',
    'T.x~y+z%1_2',
    'projects/p-1/topics/slack-fanout-dispatch',
    'a'.repeat(255),
  ])('takes %j', (value) => {
    expect(topicName(value)).toBe(value);
  });

  it.each([
    ['', /expected a Pub\/Sub topic id .*, got an empty one/],
    ['  ', /got an empty one/],
    ['ab', /got "ab": it has 2 characters$/],
    ['1abc', /got "1abc": it does not start with a letter$/],
    ['has space', /got "has space": it has a character other than letters, digits and -_.~\+%$/],
    ['google-x', /must not start with "goog"/],
    ['a'.repeat(256), /got "a+"…: it has 256 characters$/],
    ['projects/p/topics/', /got "projects\/p\/topics\/": its id "" is empty$/],
    ['projects/other/topics/x', /got "projects\/other\/topics\/x": its id "x" has 1 character$/],
    ['projects/p/subscriptions/s', /not of the form projects\/\{project\}\/topics\/\{id\}/],
  ])('refuses %j, naming it', (value, message) => {
    expect(() => topicName(value)).toThrow(InvalidArgumentError);
    expect(() => topicName(value)).toThrow(message);
  });
});

describe('refuseOptionSlips', () => {
  /** A program like this project's, its errors kept, and what it parsed. */
  const program = (repeatable: string[] = []) => {
    const made = new Command()
      .exitOverride()
      .configureOutput({ writeErr: () => {}, writeOut: () => {} })
      .option('-n, --count <n>', 'a number', positiveInt(10))
      .option('--name <name>', 'a name, kept in capitals', (v: string) => v.toUpperCase())
      .option('--list <items>', 'a list', (v: string, previous: string[] | undefined) => [...(previous ?? []), v])
      .option('--flag', 'a flag')
      .action(() => {});
    made
      .command('run')
      .option('--id <id>', 'an id')
      .option('--yes', 'a flag of the command')
      .action(() => {});
    refuseOptionSlips(made, repeatable);
    return made;
  };
  const parsedBy = (made: Command, args: string[]) => {
    try {
      made.parse(args, { from: 'user' });
      return { opts: made.opts(), run: made.commands[0]?.opts() };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
  const parsed = (args: string[], repeatable: string[] = []) => parsedBy(program(repeatable), args);

  it.each([
    [['-n', '5', '-n', '6'], '--count is given twice ("5" and "6"): give it once'],
    [['--count=5', '-n', '6'], '--count is given twice ("5" and "6"): give it once'],
    [['run', '--id', 'a', '--id', 'b'], '--id is given twice ("a" and "b"): give it once'],
    [['-n', '--flag'], '--flag is an option, not a value: give --count its value'],
    [['run', '--id', '--help'], '--help is an option, not a value: give --id its value'],
    [['run', '--id', '--'], '-- (the end of the options) is an option, not a value: give --id its value'],
    // The option's own parser still runs after these checks.
    [['-n', '11'], 'expected a whole number from 1 to 10, got "11"'],
    // Both values as typed, not the first as its parser made it.
    [['--name', 'a', '--name', 'b'], '--name is given twice ("a" and "b"): give it once'],
    // A flag too, though it changes nothing.
    [['--flag', '--flag'], '--flag is given twice: give it once'],
    [['--flag', '-n', '5', '--flag'], '--flag is given twice: give it once'],
    [['run', '--yes', '--yes'], '--yes is given twice: give it once'],
    // A flag given a value: named, not called unknown.
    [['run', '--yes=no'], 'error: --yes takes no value, not "no": give --yes alone, or leave it out'],
    [['--flag=', 'run'], 'error: --flag takes no value, not "": give --flag alone, or leave it out'],
    [['run', '--flag=1'], 'error: --flag takes no value, not "1": give --flag alone, or leave it out'],
    // An option that is not there is still unknown.
    [['run', '--nope=1'], "error: unknown option '--nope=1'"],
  ])('%j is refused: %s', (args, message) => {
    expect(parsed(args).error).toContain(message);
  });

  it('says an option given twice in a line of its own, not as an invalid argument', () => {
    expect(parsed(['-n', '5', '-n', '6']).error).toBe('error: --count is given twice ("5" and "6"): give it once');
  });

  it('takes an option once, a repeatable list more than once, and the same program again on a new parse', () => {
    expect(parsed(['-n', '5', '--list', 'a', '--list', 'b'], ['--list'])).toEqual({
      opts: { count: 5, list: ['a', 'b'] },
      run: {},
    });
    expect(parsed(['--list', 'a', '--list', 'b']).error).toContain('--list is given twice ("a" and "b")');
    // One program parsed twice: the second parse's options are its own, not given twice.
    const again = program();
    expect(parsedBy(again, ['-n', '5'])).toEqual({ opts: { count: 5 }, run: {} });
    expect(parsedBy(again, ['-n', '6'])).toEqual({ opts: { count: 6 }, run: {} });
    expect(parsedBy(again, ['-n', '6', '-n', '7']).error).toContain('--count is given twice ("6" and "7")');
    expect(parsed(['run', '--id', 'x'])).toEqual({ opts: {}, run: { id: 'x' } });
    // A flag in one parse, and again in the next.
    const flagged = program();
    expect(parsedBy(flagged, ['--flag', 'run', '--yes'])).toEqual({ opts: { flag: true }, run: { yes: true } });
    expect(parsedBy(flagged, ['--flag', 'run', '--yes'])).toEqual({ opts: { flag: true }, run: { yes: true } });
  });

  it("takes a value written into its option's own argument as written, even one that reads as an option", () => {
    expect(parsed(['--name=--flag'])).toEqual({ opts: { name: '--FLAG' }, run: {} });
    expect(parsed(['run', '--id=--help'])).toEqual({ opts: {}, run: { id: '--help' } });
    expect(parsed(['run', '--id=--'])).toEqual({ opts: {}, run: { id: '--' } });
    expect(parsed(['-n=5']).error).toContain('write -n 5 or --count=5: -n=… takes the "=" as part of its value');
    expect(parsed(['-n--flag']).error).toContain('expected a whole number from 1 to 10, got "--flag"');
    // The next parse of the same program does not take it apart from its option.
    const again = program();
    expect(parsedBy(again, ['--name=--flag'])).toEqual({ opts: { name: '--FLAG' }, run: {} });
    expect(parsedBy(again, ['--name', '--flag']).error).toContain('--flag is an option, not a value');
  });
});

describe('portNumber', () => {
  it('writes its range as ports are written, without a comma', () => {
    expect(portNumber()('8080')).toBe(8080);
    expect(() => portNumber()('65536')).toThrow('expected a whole number from 1 to 65535, got "65536"');
  });
});
