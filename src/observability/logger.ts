import { pino, type Logger, type DestinationStream } from 'pino';

/** Paths pino blanks out wherever they appear, in addition to the Secret type printing as <secret>. */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'app_token',
  '*.app_token',
  'user_token',
  '*.user_token',
  'password',
  '*.password',
  'req.headers.authorization',
  'headers.authorization',
  'headers["app-token"]',
  'headers["session-token"]',
  'headers.Authorization',
  'headers["App-Token"]',
  'headers["Session-Token"]',
  'session_token',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'zabbix-glpi-bridge' },
      redact: { paths: REDACT_PATHS, censor: '<secret>' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

export type { Logger };
