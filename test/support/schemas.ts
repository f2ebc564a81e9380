// Validators for audit.format ecs / ocsf against the published schema files vendored under
// test/fixtures (see the README there for their sources). Neither project publishes a JSON Schema
// for its events: ECS publishes Elasticsearch field mappings and allowed values, OCSF publishes its
// schema as JSON definitions (classes, objects, dictionary) that its server compiles. These
// validators read those definitions as published.
import { readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';

type Json = Record<string, unknown>;
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Json;

/** ECS: every field is an ECS field of a compatible type (or under `aigate.`), enumerated ones allowed. */
export class EcsSchema {
  private readonly types = new Map<string, string>();
  private readonly allowed = new Map<string, Set<string>>();

  constructor(root: string) {
    const dir = join(root, 'component');
    for (const f of readdirSync(dir)) {
      const walk = (props: Json, prefix: string) => {
        for (const [name, def] of Object.entries(props) as Array<[string, Json]>) {
          const path = prefix + name;
          if (def.properties) walk(def.properties as Json, `${path}.`);
          else this.types.set(path, String(def.type));
        }
      };
      walk(((readJson(join(dir, f)).template as Json).mappings as Json).properties as Json, '');
    }
    const event = (parseYaml(readFileSync(join(root, 'schemas/event.yml'), 'utf8')) as Json[])[0]!;
    for (const field of event.fields as Json[]) {
      if (field.allowed_values) this.allowed.set(`event.${String(field.name)}`, new Set((field.allowed_values as Json[]).map((v) => String(v.name))));
    }
  }

  validate(doc: Json, customNamespace = 'aigate'): string[] {
    const errors: string[] = [];
    const check = (path: string, value: unknown) => {
      if (path === customNamespace || path.startsWith(`${customNamespace}.`)) return;
      if (Array.isArray(value)) return value.forEach((v) => check(path, v));
      const type = this.types.get(path);
      if (type === undefined) {
        if (typeof value === 'object' && value !== null) return Object.entries(value).forEach(([k, v]) => check(`${path}.${k}`, v));
        return errors.push(`${path}: not an ECS field`);
      }
      const ok =
        ['keyword', 'wildcard', 'match_only_text', 'constant_keyword', 'text'].includes(type) ? typeof value === 'string'
        : ['long', 'integer', 'short', 'byte', 'unsigned_long'].includes(type) ? Number.isSafeInteger(value)
        : ['float', 'double', 'scaled_float', 'half_float'].includes(type) ? typeof value === 'number'
        : type === 'date' ? typeof value === 'string' && !Number.isNaN(Date.parse(value))
        : type === 'ip' ? typeof value === 'string' && isIP(value) !== 0
        : type === 'boolean' ? typeof value === 'boolean'
        : true;
      if (!ok) errors.push(`${path}: ${JSON.stringify(value)} is not of ECS type ${type}`);
      const allowed = this.allowed.get(path);
      if (allowed && !allowed.has(String(value))) errors.push(`${path}: ${JSON.stringify(value)} is not an allowed value (${[...allowed].join(', ')})`);
    };
    for (const [k, v] of Object.entries(doc)) check(k, v);
    return errors;
  }
}

interface AttrDef {
  requirement?: string;
  enum?: Json;
  type?: string;
  is_array?: boolean;
}

/** OCSF: attributes of the class (with its parents and profiles), types, requirements, enums, constraints. */
export class OcsfSchema {
  private readonly dictionary: Record<string, AttrDef>;
  private readonly types: Record<string, Json>;
  private readonly byName = new Map<string, string>();
  /** Files read, relative to the root (to vendor exactly what validation uses). */
  readonly touched = new Set<string>();

  constructor(private readonly root: string) {
    const dict = this.read('dictionary.json');
    this.dictionary = dict.attributes as Record<string, AttrDef>;
    this.types = (dict.types as Json).attributes as Record<string, Json>;
    for (const dir of ['events', 'objects']) {
      const walk = (d: string) => {
        for (const e of readdirSync(join(root, d), { withFileTypes: true })) {
          const p = join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.name.endsWith('.json')) this.byName.set(`${dir}:${String((JSON.parse(readFileSync(join(root, p), 'utf8')) as Json).name)}`, p);
        }
      };
      walk(dir);
    }
  }

  private read(path: string): Json {
    this.touched.add(relative(this.root, join(this.root, path)));
    return readJson(join(this.root, path));
  }

  /** Attribute definitions of a class or object, parents first, then includes, then its own. */
  private definition(kind: 'events' | 'objects', name: string): { attrs: Record<string, AttrDef>; atLeastOne: string[][] } {
    const file = this.byName.get(`${kind}:${name}`);
    if (!file) throw new Error(`OCSF ${kind} ${name}: not in the vendored schema`);
    const def = this.read(file);
    const parent = typeof def.extends === 'string' && def.extends !== 'object' ? this.definition(kind, def.extends) : { attrs: {}, atLeastOne: [] };
    const attrs: Record<string, AttrDef> = { ...parent.attrs };
    const own = (def.attributes ?? {}) as Record<string, AttrDef | string[]>;
    // A child's enum adds to its parent's (0 Unknown and 99 Other stay valid).
    const merge = (a: AttrDef | undefined, b: AttrDef): AttrDef => ({ ...a, ...b, ...(a?.enum && b.enum ? { enum: { ...a.enum, ...b.enum } } : {}) });
    for (const inc of (own.$include as string[] | undefined) ?? []) {
      for (const [k, v] of Object.entries(this.read(inc).attributes as Record<string, AttrDef>)) {
        // A profile's attributes are required only in events that apply the profile; aigate's
        // events apply none that has required attributes.
        const { requirement, ...rest } = v;
        attrs[k] = merge(attrs[k], inc.startsWith('profiles/') ? rest : { ...rest, ...(requirement ? { requirement } : {}) });
      }
    }
    for (const [k, v] of Object.entries(own)) if (k !== '$include') attrs[k] = merge(attrs[k], v as AttrDef);
    // A constraint declared by the child replaces its parent's.
    const constraints = (def.constraints ?? {}) as { at_least_one?: string[] };
    return { attrs, atLeastOne: constraints.at_least_one ? [constraints.at_least_one] : parent.atLeastOne };
  }

  validateEvent(doc: Json, className: string): string[] {
    const errors: string[] = [];
    this.check(doc, this.definition('events', className), className, errors, new Set(['class_uid', 'category_uid', 'type_uid']));
    if (doc.type_uid !== (doc.class_uid as number) * 100 + (doc.activity_id as number)) errors.push('type_uid is not class_uid × 100 + activity_id');
    return errors;
  }

  private check(value: Json, def: { attrs: Record<string, AttrDef>; atLeastOne: string[][] }, where: string, errors: string[], noEnum = new Set<string>()) {
    for (const [k, d] of Object.entries(def.attrs)) if (d.requirement === 'required' && !(k in value)) errors.push(`${where}.${k}: required`);
    for (const group of def.atLeastOne) if (!group.some((k) => k in value)) errors.push(`${where}: needs at least one of ${group.join(', ')}`);
    for (const [k, v] of Object.entries(value)) {
      const d = def.attrs[k];
      if (!d) {
        errors.push(`${where}.${k}: not an attribute`);
        continue;
      }
      const dict = this.dictionary[k] ?? {};
      const type = d.type ?? dict.type;
      const isArray = d.is_array ?? dict.is_array ?? false;
      if (isArray !== Array.isArray(v)) {
        errors.push(`${where}.${k}: ${isArray ? 'must' : 'must not'} be an array`);
        continue;
      }
      for (const item of isArray ? (v as unknown[]) : [v]) this.checkValue(`${where}.${k}`, type, item, errors);
      const allowed = d.enum ?? dict.enum;
      if (allowed && !noEnum.has(k) && !(String(v) in allowed)) errors.push(`${where}.${k}: ${JSON.stringify(v)} is not one of ${Object.keys(allowed).join(', ')}`);
    }
  }

  private checkValue(where: string, type: string | undefined, v: unknown, errors: string[]) {
    if (type === undefined) return errors.push(`${where}: no type in the dictionary`);
    if (type === 'object' || type === 'json_t') return;
    if (type.endsWith('_t')) {
      const base = String(this.types[type]?.type ?? type);
      const ok =
        base === 'string_t' ? typeof v === 'string' && (type !== 'ip_t' || isIP(v) !== 0)
        : base === 'integer_t' || base === 'long_t' || type === 'timestamp_t' ? Number.isSafeInteger(v)
        : base === 'float_t' ? typeof v === 'number'
        : base === 'boolean_t' ? typeof v === 'boolean'
        : true;
      if (!ok) errors.push(`${where}: ${JSON.stringify(v)} is not a ${type}`);
      return;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return errors.push(`${where}: must be a ${type} object`);
    this.check(v as Json, this.definition('objects', type), where, errors);
  }
}
