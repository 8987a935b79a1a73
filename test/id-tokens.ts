import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { OAuth2Client } from 'google-auth-library';
import { GOOGLE_ISSUERS, googleTokenVerifier, type TokenVerifier } from '../shared/auth';

/**
 * Google ID tokens for tests, signed by a key of the test's own. The verifier it hands out is
 * the production one (`OAuth2Client.verifyIdToken`) with only the certificate source swapped.
 */

type CertsResponse = Awaited<ReturnType<OAuth2Client['getFederatedSignonCertsAsync']>>;

/** An OAuth2Client whose "Google certificates" are the ones given, with no network call. */
export class StaticCertsClient extends OAuth2Client {
  constructor(private readonly certs: Record<string, string>) {
    super({ issuers: [...GOOGLE_ISSUERS] });
  }
  override async getFederatedSignonCertsAsync(): Promise<CertsResponse> {
    return { certs: this.certs, format: 'PEM' as CertsResponse['format'] };
  }
}

export interface IdTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  email: string;
  email_verified: boolean;
  iat: number;
  exp: number;
  [claim: string]: unknown;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export class TestIssuer {
  readonly privateKey: KeyObject;
  readonly publicPem: string;

  constructor(readonly kid = 'test-key-1') {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  /** A well-formed RS256 token; `claims` override the defaults, `header` the JOSE header. */
  sign(claims: Partial<IdTokenClaims> & { aud: string; email: string }, header: Record<string, unknown> = {}): string {
    const now = Math.floor(Date.now() / 1000);
    const payload: IdTokenClaims = {
      iss: 'https://accounts.google.com',
      sub: '1234567890',
      email_verified: true,
      iat: now,
      exp: now + 3600,
      ...claims,
    };
    const signed = `${b64({ alg: 'RS256', typ: 'JWT', kid: this.kid, ...header })}.${b64(payload)}`;
    const signature = sign('sha256', Buffer.from(signed), this.privateKey).toString('base64url');
    return `${signed}.${signature}`;
  }

  /** The same claims with `alg: none` and no signature. */
  unsigned(claims: Partial<IdTokenClaims> & { aud: string; email: string }): string {
    const token = this.sign(claims, { alg: 'none' });
    return `${token.slice(0, token.lastIndexOf('.'))}.`;
  }

  /** The production verifier, trusting this issuer's key (and `others`, for key rotation). */
  verifier(...others: TestIssuer[]): TokenVerifier {
    const certs = Object.fromEntries([this, ...others].map((i) => [i.kid, i.publicPem]));
    return googleTokenVerifier(new StaticCertsClient(certs));
  }
}
