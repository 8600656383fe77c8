import { type Logger, pino } from 'pino';

export type LogFormat = 'json' | 'pretty';

/** The service's log on standard output: one JSON object a line, or coloured lines for a terminal. */
export async function createLogger(level: string, format: LogFormat): Promise<Logger> {
  if (format === 'json') return pino({ level });
  // Loaded only when asked for: most runs log JSON.
  const { default: pretty } = await import('pino-pretty');
  return pino(
    { level },
    pretty({
      colorize: process.stdout.isTTY,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      singleLine: true,
    }),
  );
}
