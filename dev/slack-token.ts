import { SlackClient, scopeProblems } from '../notifier/slack';
import { errorMessage, FanoutError } from '../shared/errors';

/** How long `npm start` waits for Slack's answer about a real token. */
const CHECK_TIMEOUT_MS = 10_000;

export interface TokenVerdict {
  /** Slack refused the token for good (`invalid_auth`, `token_revoked`): every post would fail. */
  refused?: string;
  /** What the run goes on with, said: Slack out of reach, scopes that leave posts failing. */
  warnings: string[];
}

/**
 * Before a run with a real token starts anything, Slack is asked about it (`auth.test`, as the
 * notifier does at start, where the answer reaches only its log): a token Slack refuses would
 * fail every delivery, and a run that ends "0 sent, 3 failed" after a minute tells less.
 */
export async function checkRealToken(apiUrl: string, token: string): Promise<TokenVerdict> {
  const slack = new SlackClient({ apiUrl, timeoutMs: CHECK_TIMEOUT_MS, tokenFor: () => token });
  try {
    const { scopes } = await slack.checkToken();
    return { warnings: scopes ? scopeProblems(scopes) : [] };
  } catch (err) {
    // Refused for the workspace's sake alone (the token, its scopes, the workspace): a proxy's
    // HTTP 413 or another permanent answer says nothing of the token.
    if (err instanceof FanoutError && err.code === 'slack_permanent_workspace') {
      return {
        refused: `SLACK_BOT_TOKEN: Slack at ${apiUrl} refused it (${err.slackError ?? err.code}), so every post would fail; nothing was started`,
        warnings: [],
      };
    }
    return { warnings: [`Slack at ${apiUrl} did not confirm SLACK_BOT_TOKEN (${errorMessage(err)}); going on`] };
  }
}
