// Reads a YAML config into typed values, collecting every mistake with its key path, so a
// program can report them all at once and exit without touching state (G12).
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { type ConfigProblem, InvalidConfigError } from './errors';

export type Mapping = Record<string, unknown>;

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+):(\d{1,5})$/;

/** Parses a YAML file; syntax errors and unreadable files become InvalidConfigError with line numbers. */
export function readYamlFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidConfigError(path, [{ path: '', reason: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new InvalidConfigError(
      path,
      doc.errors.map((e) => ({ path: '', reason: `YAML: ${e.message.split('\n')[0]}` })),
    );
  }
  return doc.toJS() ?? {};
}

export class ConfigReader {
  readonly problems: ConfigProblem[] = [];

  constructor(private readonly source: string) {}

  problem(path: string, reason: string): void {
    this.problems.push({ path, reason });
  }

  /** A mapping at `path`; unknown keys are reported (strict input, as Firecracker's deny_unknown_fields). */
  mapping(value: unknown, path: string, allowedKeys: readonly string[]): Mapping {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.problem(path, 'must be a mapping');
      return {};
    }
    for (const key of Object.keys(value)) {
      if (!allowedKeys.includes(key)) {
        this.problem(join(path, key), `unknown key (allowed: ${allowedKeys.join(', ')})`);
      }
    }
    return value as Mapping;
  }

  string(m: Mapping, key: string, path: string, opts: { default?: string; pattern?: RegExp; patternHint?: string; oneOf?: readonly string[] } = {}): string {
    const p = join(path, key);
    const v = m[key];
    if (v === undefined || v === null) {
      if (opts.default === undefined) {
        this.problem(p, 'is required');
        return '';
      }
      return opts.default;
    }
    if (typeof v !== 'string') {
      this.problem(p, `must be a string, got ${describe(v)}`);
      return opts.default ?? '';
    }
    if (opts.oneOf && !opts.oneOf.includes(v)) {
      this.problem(p, `must be one of ${opts.oneOf.join(', ')}, got '${v}'`);
    } else if (opts.pattern && !opts.pattern.test(v)) {
      this.problem(p, `${opts.patternHint ?? `must match ${opts.pattern}`}, got '${v}'`);
    }
    return v;
  }

  integer(m: Mapping, key: string, path: string, opts: { default?: number; min?: number; max?: number } = {}): number {
    return this.numeric(m, key, path, opts, Number.isInteger, 'an integer');
  }

  number(m: Mapping, key: string, path: string, opts: { default?: number; min?: number; max?: number } = {}): number {
    return this.numeric(m, key, path, opts, Number.isFinite, 'a number');
  }

  private numeric(
    m: Mapping,
    key: string,
    path: string,
    opts: { default?: number; min?: number; max?: number },
    accept: (v: number) => boolean,
    what: string,
  ): number {
    const p = join(path, key);
    const v = m[key];
    if (v === undefined || v === null) {
      if (opts.default === undefined) {
        this.problem(p, 'is required');
        return 0;
      }
      return opts.default;
    }
    if (typeof v !== 'number' || !accept(v)) {
      this.problem(p, `must be ${what}, got ${describe(v)}`);
      return opts.default ?? 0;
    }
    if (opts.min !== undefined && v < opts.min) this.problem(p, `must be at least ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max) this.problem(p, `must be at most ${opts.max}, got ${v}`);
    return v;
  }

  boolean(m: Mapping, key: string, path: string, opts: { default: boolean }): boolean {
    const v = m[key];
    if (v === undefined || v === null) return opts.default;
    if (typeof v !== 'boolean') {
      this.problem(join(path, key), `must be true or false, got ${describe(v)}`);
      return opts.default;
    }
    return v;
  }

  /** `host:port` or `[v6]:port`, port 0..65535 (0 = any free port, for tests). */
  hostPort(m: Mapping, key: string, path: string, opts: { default?: string } = {}): string {
    const v = this.string(m, key, path, opts);
    const match = HOST_PORT.exec(v);
    if (v && !match) this.problem(join(path, key), `must be host:port, got '${v}'`);
    else if (match && Number(match[2]) > 65535) this.problem(join(path, key), `port must be at most 65535, got ${match[2]}`);
    return v;
  }

  stringList(m: Mapping, key: string, path: string, opts: { default: string[] }): string[] {
    const v = m[key];
    if (v === undefined || v === null) return opts.default;
    if (!Array.isArray(v)) {
      this.problem(join(path, key), `must be a list, got ${describe(v)}`);
      return opts.default;
    }
    v.forEach((item, i) => {
      if (typeof item !== 'string') this.problem(`${join(path, key)}[${i}]`, `must be a string, got ${describe(item)}`);
    });
    return v.filter((x): x is string => typeof x === 'string');
  }

  /** Throws InvalidConfigError listing every problem, if there were any. */
  finish(): void {
    if (this.problems.length > 0) throw new InvalidConfigError(this.source, this.problems);
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}
