import { claimHeld, type DeliveryDoc, endsDelivery, postTargetsAfter, postTargetsOf } from './model';
import type { ClaimRequest, DeliveryClaim } from './ports';

type Claimed = Extract<DeliveryClaim, { kind: 'claimed' }>;

/**
 * The claim rules of the delivery ledger, for both stores (FirestoreStore, MemoryStore): what a
 * claim writes, and what it answers. Each store reads and writes its own way; the rules are here.
 */

/** A delivery with no record: the record a claim creates, and the claim it answers. */
export function freshClaim(req: ClaimRequest): { doc: DeliveryDoc; claim: Claimed } {
  const claimExpiresAt = new Date(req.now.getTime() + req.ttlMs);
  return {
    doc: {
      notificationId: req.notificationId,
      occurrence: req.occurrence,
      runId: req.runId,
      status: 'sending',
      attempts: 1,
      claimedBy: req.owner,
      claimExpiresAt,
      outcomeUnknown: false,
      publishedAt: req.publishedAt,
      firstAttemptAt: req.now,
      updatedAt: req.now,
      postTargets: postTargetsAfter([], req.target ?? null),
    },
    claim: {
      kind: 'claimed',
      attempts: 1,
      outcomeUnknown: false,
      firstAttemptAt: req.now,
      claimExpiresAt,
      earlierTargets: [],
      failedBefore: false,
    },
  };
}

/**
 * A claim of a delivery that has a record `d`: ended, held by a live attempt, already this
 * attempt's own (its create landed although its answer was lost, and was retried: the owner
 * token is this attempt's alone; nothing to write), or taken over with `update` (the store also
 * clears the record's redrive-pending mark: a redriven message arrived).
 */
export function deliveryClaimStep(
  d: Partial<DeliveryDoc>,
  req: ClaimRequest,
): Exclude<DeliveryClaim, Claimed> | { kind: 'claimed'; claim: Claimed; update: Partial<DeliveryDoc> | null } {
  if (endsDelivery(d)) return { kind: 'final', status: d.status ?? 'sent' };
  const earlierTargets = postTargetsOf(d);
  if (d.status === 'sending' && d.claimedBy === req.owner && d.claimExpiresAt) {
    return {
      kind: 'claimed',
      update: null,
      claim: {
        kind: 'claimed',
        attempts: d.attempts ?? 1,
        outcomeUnknown: Boolean(d.outcomeUnknown),
        firstAttemptAt: d.firstAttemptAt ?? req.now,
        claimExpiresAt: d.claimExpiresAt,
        earlierTargets,
        failedBefore: Boolean(d.failedBeforeRedriveAt),
      },
    };
  }
  const held = claimHeld(d, req.now);
  if (held) return { kind: 'busy', claimExpiresAt: held };
  const attempts = (d.attempts ?? 0) + 1;
  const claimExpiresAt = new Date(req.now.getTime() + req.ttlMs);
  const firstAttemptAt = d.firstAttemptAt ?? req.now;
  // A claim that expired mid-call may have posted: check before posting again. Written down, not
  // only answered: should this attempt's look fail (a rate limit) or its answer be lost and the
  // claim retried with its token, the attempt after it still knows to look.
  const outcomeUnknown = Boolean(d.outcomeUnknown) || d.status === 'sending';
  return {
    kind: 'claimed',
    update: {
      ...(outcomeUnknown ? { outcomeUnknown: true } : {}),
      status: 'sending',
      attempts,
      claimedBy: req.owner,
      claimExpiresAt,
      updatedAt: req.now,
      // A record created by a dead-letter or invalid-input path may lack these.
      notificationId: req.notificationId,
      occurrence: req.occurrence,
      runId: req.runId,
      firstAttemptAt,
      postTargets: postTargetsAfter(earlierTargets, req.target ?? null),
    },
    claim: {
      kind: 'claimed',
      attempts,
      outcomeUnknown,
      firstAttemptAt,
      claimExpiresAt,
      earlierTargets,
      failedBefore: Boolean(d.failedBeforeRedriveAt),
    },
  };
}

/** Whether the attempt `owner` still holds the delivery's claim, on a record being sent (renewClaim). */
export function holdsClaim(d: Partial<DeliveryDoc> | null | undefined, owner: string): boolean {
  return d?.status === 'sending' && d.claimedBy === owner;
}
