import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { BridgeError } from '../core/errors.js';
import { configSchema, rulesSchema, type Config } from './schema.js';

export interface ConfigProblem {
  /** File the problem is in. */
  readonly file: string;
  /** YAML path, e.g. glpi.max_concurrency or rules.categories[2].match. */
  readonly path: string;
  readonly line?: number;
  readonly message: string;
}

export class ConfigError extends BridgeError {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super('CONFIG_INVALID', `invalid configuration:\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.path || '(top level)'}: ${p.message}`;
}

type Env = Readonly<Record<string, string | undefined>>;
type PathKey = string | number;

export function pathText(path: readonly PathKey[]): string {
  return path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), '');
}

/**
 * A secret or setting from the environment: VAR itself, else the file named
 * by VAR_FILE, else $CREDENTIALS_DIRECTORY/VAR (systemd LoadCredential=).
 */
export function lookupEnv(name: string, env: Env): string | undefined {
  const direct = env[name];
  if (direct !== undefined) return direct;
  const named = env[`${name}_FILE`];
  const file = named ?? (env.CREDENTIALS_DIRECTORY ? resolve(env.CREDENTIALS_DIRECTORY, name) : undefined);
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (named !== undefined) throw new Error(`${name}_FILE=${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    return undefined;
  }
  const value = text.replace(/\r?\n$/, '');
  // An empty secret file is a mistake (a truncated copy, a wrong path), never a deliberate "no token".
  if (value.trim() === '') throw new Error(`${named !== undefined ? `${name}_FILE=` : 'credential '}${file} is empty`);
  return value;
}

const REFERENCE = /\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g;

/** Replace ${VAR} and ${VAR:-default} in every string value; collects problems instead of throwing. */
function interpolate(value: unknown, env: Env, path: PathKey[], problems: { path: PathKey[]; message: string }[]): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (_all, name: string, fallback: string | undefined) => {
      let v: string | undefined;
      try {
        v = lookupEnv(name, env);
      } catch (e) {
        problems.push({ path, message: (e as Error).message });
        return '';
      }
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push({ path, message: `environment variable ${name} is not set (nor ${name}_FILE)` });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i], problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...path, k], problems)]));
  }
  return value;
}

function lineOf(doc: Document, counter: LineCounter, path: readonly PathKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

interface ParsedFile {
  readonly file: string;
  readonly doc: Document;
  readonly counter: LineCounter;
  readonly data: unknown;
}

function parseFile(file: string): ParsedFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, path: '', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((err) => ({ file, path: '', line: err.linePos?.[0]?.line, message: `YAML syntax: ${(err.message.split('\n')[0] ?? err.code).replace(/ at line \d+, column \d+:?$/, '')}` })),
    );
  }
  return { file, doc, counter, data: doc.toJS() ?? {} };
}

function validate<S extends z.ZodType>(schema: S, parsed: ParsedFile, root: readonly PathKey[], value: unknown, env: Env, problems: ConfigProblem[]): z.output<S> | undefined {
  const envProblems: { path: PathKey[]; message: string }[] = [];
  const interpolated = interpolate(value, env, [...root], envProblems);
  for (const p of envProblems) problems.push({ file: parsed.file, path: pathText(p.path), line: lineOf(parsed.doc, parsed.counter, p.path), message: p.message });
  const result = schema.safeParse(interpolated);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = [...root, ...issue.path.filter((k): k is PathKey => typeof k !== 'symbol')];
      if (issue.code === 'unrecognized_keys') {
        // One problem per unknown key, pointing at the key itself.
        for (const key of issue.keys) {
          const at = [...path, key];
          problems.push({ file: parsed.file, path: pathText(at), line: lineOf(parsed.doc, parsed.counter, at), message: 'unknown key (misspelt, or not valid here)' });
        }
        continue;
      }
      problems.push({ file: parsed.file, path: pathText(path), line: lineOf(parsed.doc, parsed.counter, path), message: issue.message });
    }
    return undefined;
  }
  return envProblems.length > 0 ? undefined : result.data;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof RegExp)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Read, interpolate, validate and freeze the configuration. Throws ConfigError with every problem found. */
export function loadConfig(file: string, env: Env = process.env): Config {
  const main = parseFile(file);
  const problems: ConfigProblem[] = [];
  const daemon = validate(configSchema, main, [], main.data, env, problems);
  const raw = (main.data ?? {}) as Record<string, unknown>;
  let rules;
  let rulesSource = file;
  if (raw.rules !== undefined && raw.rules_file !== undefined) {
    problems.push({ file, path: 'rules_file', line: lineOf(main.doc, main.counter, ['rules_file']), message: 'give either rules (inline) or rules_file, not both' });
  } else if (typeof raw.rules_file === 'string') {
    rulesSource = isAbsolute(raw.rules_file) ? raw.rules_file : resolve(dirname(file), raw.rules_file);
    try {
      const parsed = parseFile(rulesSource);
      const data = parsed.data as Record<string, unknown> | null;
      const inner = data && typeof data === 'object' && 'rules' in data ? data.rules : data;
      const root = data && typeof data === 'object' && 'rules' in data ? ['rules'] : [];
      rules = validate(rulesSchema, parsed, root, inner ?? {}, env, problems);
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
      else throw e;
    }
  } else {
    rules = validate(rulesSchema, main, ['rules'], raw.rules ?? {}, env, problems);
  }
  if (problems.length > 0 || !daemon || !rules) throw new ConfigError(problems);
  const { rules: _r, rules_file: _f, ...rest } = daemon;
  const dataDir = isAbsolute(rest.data_dir) ? rest.data_dir : resolve(dirname(file), rest.data_dir);
  const caProblems: ConfigProblem[] = [];
  const caFile = (section: 'glpi' | 'zabbix', value: string): string => {
    if (value === '') return '';
    const path = isAbsolute(value) ? value : resolve(dirname(file), value);
    try {
      if (!readFileSync(path, 'utf8').includes('-----BEGIN CERTIFICATE-----')) caProblems.push({ file, path: `${section}.ca_file`, line: lineOf(main.doc, main.counter, [section, 'ca_file']), message: `${path} holds no PEM certificate` });
    } catch (e) {
      caProblems.push({ file, path: `${section}.ca_file`, line: lineOf(main.doc, main.counter, [section, 'ca_file']), message: `${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
    }
    return path;
  };
  const glpi = { ...rest.glpi, ca_file: caFile('glpi', rest.glpi.ca_file) };
  const zabbix = { ...rest.zabbix, ca_file: caFile('zabbix', rest.zabbix.ca_file) };
  if (caProblems.length > 0) throw new ConfigError(caProblems);
  return deepFreeze({ ...rest, glpi, zabbix, data_dir: dataDir, rules, sources: { config: file, rules: rulesSource } });
}
