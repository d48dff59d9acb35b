import { describe, expect, it } from 'vitest';
import { disputeStatusOf, refundStatusRank } from './payments.objects.js';

describe('Stripe objects', () => {
  it('maps dispute statuses onto open, won and lost', () => {
    expect(['warning_needs_response', 'needs_response', 'under_review'].map(disputeStatusOf)).toEqual([
      'open',
      'open',
      'open',
    ]);
    expect(['won', 'warning_closed', 'prevented', 'lost'].map(disputeStatusOf)).toEqual([
      'won',
      'won',
      'won',
      'lost',
    ]);
  });

  it('ranks refund statuses so a late pending never undoes a success', () => {
    expect(refundStatusRank('succeeded')).toBeGreaterThan(refundStatusRank('pending'));
    expect(refundStatusRank('failed')).toBeGreaterThan(refundStatusRank('succeeded'));
  });
});
