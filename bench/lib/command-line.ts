// One way for every benchmark to read its command line (node's util.parseArgs):
// `--help` prints the usage and exits 0, and an argument the benchmark cannot use
// (an unknown flag, a missing value, a stray word, a value out of range) is named
// on stderr above the usage and exits 2. Both happen before the benchmark starts
// a cluster, so a typo costs nothing and a script can tell "wrong call" (2) from
// "the run failed" (1).
import { parseArgs, type ParseArgsConfig } from 'node:util'

type OptionsConfig = NonNullable<ParseArgsConfig['options']>

/** An argument the benchmark cannot use; the message names the flag. */
export class BadArgument extends Error {
  override name = 'BadArgument'
}

const helpOption = { help: { type: 'boolean', default: false } } as const

type Values<C extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ options: C & typeof helpOption; strict: true; allowPositionals: false }>
>['values']

export interface CommandLine<C extends OptionsConfig, R> {
  /** The script as a user runs it (`bench/soak.ts`); error messages start with it. */
  script: string
  /** What `--help` prints. It must name every option, `--help` included (checked). */
  usage: string
  /** The benchmark's own options; `--help` is added here. */
  options: C
  /** Turns the parsed strings into the benchmark's settings; throws BadArgument for a value it cannot use. */
  read(values: Values<C>): R
}

export function readCommandLine<C extends OptionsConfig, R>(line: CommandLine<C, R>, args: string[] = process.argv.slice(2)): R {
  // A usage text that forgets an option is a bug of the benchmark, not of the call.
  for (const name of [...Object.keys(line.options), 'help']) {
    if (!new RegExp(`--${name}(?![\\w-])`).test(line.usage)) throw new Error(`${line.script}: its usage text does not mention --${name}`)
  }
  let values: { help?: boolean }
  try {
    values = parseArgs({ args, options: { ...line.options, ...helpOption }, strict: true, allowPositionals: false }).values
  } catch (error) {
    // parseArgs' own errors (ERR_PARSE_ARGS_*) already name the argument.
    if (!isParseArgsError(error)) throw error
    return refuse(line, error.message)
  }
  if (values.help) {
    process.stdout.write(`${line.usage}\n`)
    process.exit(0)
  }
  try {
    return line.read(values as Values<C>)
  } catch (error) {
    if (!(error instanceof BadArgument)) throw error
    return refuse(line, error.message)
  }
}

function isParseArgsError(error: unknown): error is Error {
  return error instanceof Error && String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')
}

function refuse(line: { script: string; usage: string }, message: string): never {
  process.stderr.write(`${line.script}: ${message}\n\n${line.usage}\n`)
  process.exit(2)
}

// Values. Underscores are allowed as digit separators (`--queued 1_000_000`).

export function wholeNumber(name: string, text: string, min = 1): number {
  const value = Number(text.replace(/_/g, ''))
  if (text.trim() === '' || !Number.isInteger(value) || value < min)
    throw new BadArgument(`--${name} must be a whole number >= ${min}, got ${JSON.stringify(text)}`)
  return value
}

export function wholeNumbers(name: string, text: string, min = 1): number[] {
  return text.split(',').map((part) => wholeNumber(name, part.trim(), min))
}

export function positiveNumber(name: string, text: string): number {
  const value = Number(text.replace(/_/g, ''))
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0)
    throw new BadArgument(`--${name} must be a number > 0, got ${JSON.stringify(text)}`)
  return value
}

export function oneOf<const T extends string>(name: string, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text))
    throw new BadArgument(`--${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(text)}`)
  return text as T
}

/** A comma-separated list, each item one of `choices`. */
export function someOf<const T extends string>(name: string, text: string, choices: readonly T[]): T[] {
  return text.split(',').map((part) => oneOf(name, part.trim(), choices))
}

// --callbacks: how rhpool treats RunningHub's callbacks in a benchmark that runs
// it (RHPOOL_CONFIRM_CALLBACKS). 'confirmed' is rhpool's default: a callback is
// held and checked with RunningHub's query before it finishes a job. 'trusted'
// applies it as sent, the only mode there was when the first figures of
// bench/README.md were measured (before RHPOOL_CONFIRM_CALLBACKS defaulted to true).
export const callbackModes = ['confirmed', 'trusted'] as const
export type CallbackMode = (typeof callbackModes)[number]

export function callbackMode(text: string): CallbackMode {
  return oneOf('callbacks', text, callbackModes)
}

/** The rhpool environment of a callback mode. */
export function callbackEnv(mode: CallbackMode): Record<string, string> {
  return { RHPOOL_CONFIRM_CALLBACKS: mode === 'confirmed' ? 'true' : 'false' }
}
