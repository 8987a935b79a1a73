import { expectedDeliveries, PostLines, runsToWatch, timeLeft, VERBOSE_MAX } from './progress';

describe('timeLeft', () => {
  it('guesses nothing before the first delivery is final', () => {
    expect(timeLeft(0, 500, 0)).toBe('waiting for the first');
    expect(timeLeft(0, 500, 12_000)).toBe('waiting for the first');
  });

  it('says the rest at the rate so far, in seconds, then minutes', () => {
    // 100 of 500 in 5 s: 400 more at 20/s.
    expect(timeLeft(100, 500, 5_000)).toBe('about 20s left');
    expect(timeLeft(499, 500, 10_000)).toBe('about 1s left');
    expect(timeLeft(10, 500, 5_000)).toBe('about 4m 05s left');
  });

  it('says done once every delivery is final', () => {
    expect(timeLeft(500, 500, 9_000)).toBe('done');
  });
});

describe('PostLines', () => {
  const lines = () => {
    const said: string[] = [];
    return { said, posts: new PostLines((l) => said.push(l)) };
  };

  it('holds a tick’s lines until its size is known, then prints them and the later ones', () => {
    const { said, posts } = lines();
    posts.hold();
    posts.add('a');
    posts.add('b');
    expect(said).toEqual([]);
    posts.decide(true);
    posts.add('c');
    expect(said).toEqual(['a', 'b', 'c']);
  });

  it('drops them for a progress bar, until the next tick is sent', () => {
    const { said, posts } = lines();
    posts.hold();
    posts.add('a');
    posts.decide(false);
    posts.add('b');
    expect(said).toEqual([]);
    posts.hold();
    posts.add('c');
    posts.decide(true);
    expect(said).toEqual(['c']);
  });

  it('lets a tick with nothing of its own print late posts as the tick before did', () => {
    const { said, posts } = lines();
    posts.hold();
    posts.decide(true);
    posts.hold();
    posts.add('late retry');
    posts.asBefore();
    expect(said).toEqual(['late retry']);
  });

  it(`drops a tick's lines once more than ${VERBOSE_MAX} are held: such a tick gets a bar`, () => {
    const { said, posts } = lines();
    posts.hold();
    for (let i = 0; i <= VERBOSE_MAX; i++) posts.add(`p${i}`);
    posts.add('late');
    posts.decide(true);
    expect(said).toEqual([]);
  });
});

describe('runsToWatch', () => {
  it('watches every run a first tick names, once each', () => {
    const occurrences = [
      { runId: 'r1', status: 'dispatched' },
      { runId: 'r2', status: 'leased-elsewhere' },
      { runId: null, status: 'invalid-schedule' },
      { runId: 'r1', status: 'dispatched' },
    ];
    expect(runsToWatch(occurrences, new Set())).toEqual(['r1', 'r2']);
  });

  it('leaves out a run an earlier tick summed up, unless this tick sent its messages', () => {
    const occurrences = [
      { runId: 'held', status: 'leased-elsewhere' },
      { runId: 'done', status: 'already-done' },
      { runId: 'taken-over', status: 'resumed' },
      { runId: 'new', status: 'dispatched' },
    ];
    expect(runsToWatch(occurrences, new Set(['held', 'done', 'taken-over']))).toEqual(['taken-over', 'new']);
  });
});

describe('expectedDeliveries', () => {
  it('counts what each run published, or what it has on record where that is more: never fewer than recorded', () => {
    // A run whose dispatcher died before its first checkpoint: 0 published on record, 17 deliveries.
    expect(
      expectedDeliveries([
        { published: 0, recorded: 17 },
        { published: 4, recorded: 3 },
      ]),
    ).toBe(21);
    expect(expectedDeliveries([])).toBe(0);
  });
});
