// Parser for Kafka's `sasl.jaas.config` (and `listener.name.*.<mechanism>.sasl.jaas.config`)
// value, which is one entry of Java's JAAS configuration syntax:
//
//   <LoginModule class> <flag> [<key>=<value> ...];
//
// The broker reads the PLAIN users (`user_<name>="<password>"`) from it, as Kafka's
// PlainLoginModule does. Values are bare tokens or double-quoted strings with backslash escapes;
// the trailing `;` is required, as in Java; exactly one login module, as Kafka requires for this
// property. Errors name the 1-based character position so a bad config is easy to fix.

export class JaasConfigError extends Error {
  readonly code = 'INVALID_CONFIG'
  /** 1-based character position of the problem in the config text. */
  readonly position: number
  constructor(message: string, position: number) {
    super(`invalid sasl.jaas.config: ${message} at position ${position}`)
    this.name = 'JaasConfigError'
    this.position = position
  }
}

export interface JaasConfig {
  loginModule: string
  flag: string
  options: Record<string, string>
}

const FLAGS = ['required', 'requisite', 'sufficient', 'optional']
const CLASS_NAME = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/
const KEY_CHAR = /[\w.$-]/
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r' }

/** Reads the text left to right; every method either consumes what it expects or throws. */
class Scanner {
  readonly text: string
  pos = 0
  constructor(text: string) {
    this.text = text
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++
  }

  atEnd(): boolean {
    return this.pos >= this.text.length
  }

  peek(): string {
    return this.text[this.pos] ?? ''
  }

  fail(message: string, at = this.pos): never {
    throw new JaasConfigError(message, at + 1)
  }

  /** A run of characters up to whitespace, `;`, `=` or `"`. */
  word(): string {
    const start = this.pos
    while (!this.atEnd() && !/[\s;="]/.test(this.peek())) this.pos++
    return this.text.slice(start, this.pos)
  }

  quoted(): string {
    const start = this.pos
    this.pos++ // opening quote
    let out = ''
    for (;;) {
      if (this.atEnd()) this.fail('unterminated quoted value', start)
      const c = this.text[this.pos++]
      if (c === '"') return out
      if (c !== '\\') out += c
      else if (this.atEnd()) this.fail('unterminated quoted value', start)
      else out += unescape(this.text[this.pos++])
    }
  }
}

/** Java's tokenizer turns \n, \t, \r into control characters; any other escaped character stands for itself. */
function unescape(c: string): string {
  return ESCAPES[c] ?? c
}

export function parseJaasConfig(text: string): JaasConfig {
  const s = new Scanner(text)
  s.skipSpace()
  const loginModule = parseLoginModule(s)
  s.skipSpace()
  const flag = parseFlag(s)
  const options = parseOptions(s)
  s.pos++ // the `;` parseOptions stopped at
  s.skipSpace()
  if (!s.atEnd()) s.fail('only one login module is allowed, found more text after ";"')
  return { loginModule, flag, options }
}

function parseLoginModule(s: Scanner): string {
  const at = s.pos
  const name = s.word()
  if (name === '')
    s.fail(
      s.atEnd() ? 'expected a login module class name, found end of text' : 'expected a login module class name',
      at,
    )
  if (!CLASS_NAME.test(name)) s.fail(`"${name}" is not a login module class name`, at)
  return name
}

function parseFlag(s: Scanner): string {
  const at = s.pos
  const flag = s.word()
  if (flag === '') s.fail(`expected a control flag (${FLAGS.join(', ')})`, at)
  const lower = flag.toLowerCase()
  if (!FLAGS.includes(lower)) s.fail(`"${flag}" is not a control flag (${FLAGS.join(', ')})`, at)
  return lower
}

/** `key=value` pairs up to the `;`, which is left for the caller. */
function parseOptions(s: Scanner): Record<string, string> {
  const options: Record<string, string> = Object.create(null) as Record<string, string>
  for (;;) {
    s.skipSpace()
    if (s.atEnd()) s.fail('missing ";" at the end of the login module')
    if (s.peek() === ';') return { ...options }
    const at = s.pos
    const [key, value] = parseOption(s)
    if (Object.hasOwn(options, key)) s.fail(`duplicate option "${key}"`, at)
    options[key] = value
  }
}

function parseOption(s: Scanner): [string, string] {
  const at = s.pos
  const key = s.word()
  if (key === '') s.fail('expected an option name')
  if (![...key].every((c) => KEY_CHAR.test(c))) s.fail(`"${key}" is not an option name`, at)
  s.skipSpace()
  if (s.peek() !== '=') s.fail(`expected "=" after option "${key}"`)
  s.pos++
  s.skipSpace()
  return [key, parseValue(s, key)]
}

function parseValue(s: Scanner, key: string): string {
  if (s.peek() === '"') return s.quoted()
  const at = s.pos
  const value = s.word()
  if (value === '') s.fail(`expected a value for option "${key}"`, at)
  return value
}

/** The PLAIN users of a PlainLoginModule config: each `user_<name>` option is name → password. */
export function plainUsers(options: Record<string, string>): Map<string, string> {
  const users = new Map<string, string>()
  for (const [key, password] of Object.entries(options)) {
    // `user_` alone would name the empty user, whom PLAIN never authenticates.
    if (key.startsWith('user_') && key.length > 'user_'.length) users.set(key.slice('user_'.length), password)
  }
  return users
}
