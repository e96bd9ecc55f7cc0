import { inspect } from 'node:util';

/** A secret value that prints, logs and serialises as <secret>. Read it with reveal(). */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  get empty(): boolean {
    return this.#value === '';
  }
  toString(): string {
    return '<secret>';
  }
  toJSON(): string {
    return '<secret>';
  }
  [inspect.custom](): string {
    return '<secret>';
  }
}
