import { pino } from 'pino';

/** JSON logs; credentials in headers are redacted so that no secret ever reaches a log line. */
export function createLogger(level: string) {
  return pino({
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["stripe-signature"]',
        'req.headers.cookie',
        '*.secret',
        '*.key',
      ],
      censor: '[redacted]',
    },
  });
}
