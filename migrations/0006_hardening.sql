-- What Stripe signed is kept whole. `payload` (jsonb) cannot hold NUL or an unpaired surrogate, so an event
-- spelling one is stored there with U+FFFD in its place, and its exact text is kept here beside it. Null
-- when `payload` is the event as sent (nearly always): the inbox does not hold every event twice.
alter table stripe_events add column raw_payload text;
