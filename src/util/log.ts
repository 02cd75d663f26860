// Structured logs: one JSON object per line on stderr, so they can be grepped by eye and parsed
// by machines. Level from CORTADO_LOG_LEVEL (debug, info, warn, error; default info).

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const
export type LogLevel = keyof typeof LEVELS

function configuredLevel(): number {
  const name = process.env.CORTADO_LOG_LEVEL as LogLevel | undefined
  return name !== undefined && name in LEVELS ? LEVELS[name] : LEVELS.info
}

export class Logger {
  private readonly fields: Readonly<Record<string, unknown>>
  private readonly min: number

  constructor(fields: Readonly<Record<string, unknown>> = {}, min = configuredLevel()) {
    this.fields = fields
    this.min = min
  }

  child(fields: Readonly<Record<string, unknown>>): Logger {
    return new Logger({ ...this.fields, ...fields }, this.min)
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write('debug', msg, fields)
  }

  info(msg: string, fields?: Record<string, unknown>): void {
    this.write('info', msg, fields)
  }

  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write('warn', msg, fields)
  }

  error(msg: string, fields?: Record<string, unknown>): void {
    this.write('error', msg, fields)
  }

  private write(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (LEVELS[level] < this.min) return
    const line = JSON.stringify(
      { time: new Date().toISOString(), level, msg, ...this.fields, ...fields },
      errorReplacer,
    )
    process.stderr.write(line + '\n')
  }
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error)
    return { name: value.name, message: value.message, code: (value as { code?: unknown }).code }
  if (typeof value === 'bigint') return value.toString()
  return value
}
