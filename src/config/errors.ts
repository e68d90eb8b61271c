// A configuration problem, named by its variable, found before anything starts.
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string
  ) {
    super(`${variable} ${problem}`)
    this.name = 'ConfigError'
  }
}
