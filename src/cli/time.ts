// Times on the command line.

/** A time given as epoch milliseconds or anything Date understands (ISO 8601). */
export function parseTime(text: string): number | undefined {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text)
  return Number.isFinite(ms) ? ms : undefined
}
