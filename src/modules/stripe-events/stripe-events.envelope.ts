import { z } from 'zod';

/** The envelope every Stripe event has; a signed body without it gets 400 `invalid_payload`. */
export const StripeEventSchema = z.looseObject({
  id: z.string().regex(/^evt_[A-Za-z0-9_]{1,250}$/, 'an event id is evt_ followed by letters, digits or _'),
  object: z.literal('event'),
  type: z.string().min(1).max(200),
  created: z.number().int().nonnegative(),
  livemode: z.boolean(),
  data: z.looseObject({ object: z.looseObject({ object: z.string() }) }),
});
export type StripeEvent = z.infer<typeof StripeEventSchema>;
