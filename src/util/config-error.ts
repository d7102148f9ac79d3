/** A configuration error: `option` is the user-facing option name (without `--`). */
export class ConfigError extends Error {
  readonly option: string;
  constructor(option: string, reason: string) {
    super(`--${option}: ${reason}`);
    this.name = 'ConfigError';
    this.option = option;
  }
}
