// A progress display for long-running commands (`cortado import`, `cortado export`), on stderr.
// On a terminal, one line redrawn in place (`\r`) a few times a second; otherwise (a pipe, a log
// file) a plain line every 2 s. The rate is of one count (the first, unless `rateOf` names
// another); with a `total` (bytes of a file, say) and a position toward it, a percentage and an ETA.
//   const progress = new Progress('import', { total: size })
//   progress.update({ lines: 10, written: 8, skipped: 2 }, bytesRead)
//   progress.log('line 7: not JSON')   // a message, without garbling the progress line
//   progress.done()

/** Where the display goes: stderr, or anything with `write` (and `isTTY` for a terminal). */
export interface ProgressStream {
  write(text: string): unknown
  isTTY?: boolean
}

export interface ProgressOptions {
  /** What the position of `update` counts toward (for a percentage and an ETA). */
  total?: number
  /** Which count's rate is shown (default the first). */
  rateOf?: string
  /** Default process.stderr. */
  stream?: ProgressStream
  /** Between two displays; default 200 ms on a terminal, 2,000 ms otherwise. */
  intervalMs?: number
}

export class Progress {
  readonly #label: string
  readonly #total: number | undefined
  readonly #rateOf: string | undefined
  readonly #stream: ProgressStream
  readonly #tty: boolean
  readonly #started = Date.now()
  readonly #timer: NodeJS.Timeout
  #counts: Record<string, number> = {}
  #position = 0
  /** The first position given: the ETA is from the rate since then (a resumed run starts far in). */
  #from: number | undefined
  /** Whether a redrawn line is on the terminal now (to be cleared before other output). */
  #drawn = false

  constructor(label: string, options: ProgressOptions = {}) {
    this.#label = label
    this.#total = options.total
    this.#rateOf = options.rateOf
    this.#stream = options.stream ?? process.stderr
    this.#tty = this.#stream.isTTY === true
    this.#timer = setInterval(() => this.#show(), options.intervalMs ?? (this.#tty ? 200 : 2000))
    this.#timer.unref()
  }

  /** The counts so far (the first one's rate is shown), and the position toward `total`. */
  update(counts: Record<string, number>, position?: number): void {
    this.#counts = { ...counts }
    if (position === undefined) return
    this.#from ??= position
    this.#position = position
  }

  /** A line of its own (a warning, say); the progress line comes back at the next display. */
  log(line: string): void {
    this.#clear()
    this.#stream.write(line + '\n')
  }

  /** Stops the display (a redrawn line is cleared: the command prints its own summary). */
  done(): void {
    clearInterval(this.#timer)
    this.#clear()
  }

  /** The progress text: `label: 1200 lines, 1100 written, 850/s, 45%, ETA 12 s`. */
  text(now = Date.now()): string {
    const seconds = Math.max((now - this.#started) / 1000, 0.001)
    const entries = Object.entries(this.#counts)
    const parts = entries.map(([name, n]) => `${n} ${name}`)
    const rated = entries.find(([name]) => name === this.#rateOf) ?? entries[0]
    if (rated !== undefined) parts.push(`${Math.round(rated[1] / seconds)} ${rated[0]}/s`)
    if (this.#total !== undefined && this.#total > 0) {
      parts.push(`${Math.floor(Math.min(this.#position / this.#total, 1) * 100)}%`)
      const perSecond = (this.#position - (this.#from ?? 0)) / seconds
      const left = this.#total - this.#position
      if (perSecond > 0 && left > 0) parts.push(`ETA ${formatSeconds(left / perSecond)}`)
    }
    return `${this.#label}: ${parts.join(', ')}`
  }

  #show(): void {
    if (this.#tty) {
      this.#stream.write(`\r${this.text()}\x1b[K`)
      this.#drawn = true
    } else this.#stream.write(this.text() + '\n')
  }

  #clear(): void {
    if (!this.#drawn) return
    this.#stream.write('\r\x1b[K')
    this.#drawn = false
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`
  return `${Math.floor(s / 3600)} h ${Math.ceil((s % 3600) / 60)} min`
}
