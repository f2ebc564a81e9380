// Word lists for the generic assignment rules (generic.ts): identifiers whose first or last word
// says the value is not a secret (`max_tokens`, `password_hash`, `token_url`), and values that are
// types, literals, defaults or stock development passwords rather than secrets.

/** First word of the local name: `max_tokens`, `is_password_set`, `get_token`, `csrf_token`. */
export const STOP_FIRST_WORDS = new Set([
  'max', 'min', 'num', 'n', 'is', 'has', 'show', 'hide', 'use', 'enable', 'disable', 'get', 'validate', 'verify',
  'check', 'forgot', 'reset', 'allow', 'require', 'should', 'can', 'count', 'total', 'len', 'no', 'toggle', 'on',
  'handle', 'render', 'parse', 'format', 'compute', 'generate', 'create', 'fetch', 'load', 'read',
  'hash', 'mask', 'tokenize', 'expected', 'invalid', 'missing', 'prev', 'last', 'next', 'page', 'csrf',
  'xsrf', 'idempotency', 'continuation', 'sync', 'cursor', 'cancellation', 'notification', 'push', 'device',
]);

/** Last word of the identifier: `password_hash`, `token_url`, `secret_name`, `api_key_header`. */
export const STOP_LAST_WORDS = new Set([
  'name', 'names', 'file', 'filename', 'files', 'path', 'paths', 'dir', 'url', 'uri', 'urls', 'endpoint', 'host',
  'type', 'types', 'length', 'len', 'size', 'count', 'field', 'fields', 'header', 'headers', 'prefix', 'suffix',
  'format', 'pattern', 'regex', 'regexp', 'policy', 'label', 'hint', 'placeholder', 'message', 'msg', 'error',
  'errors', 'expiry', 'expiration', 'expires', 'exp', 'ttl', 'timeout', 'lifetime', 'version', 'hash', 'hashed',
  'digest', 'salt', 'algorithm', 'alg', 'algo', 'kind', 'class', 'mode', 'min', 'max', 'limit', 'limits', 'env',
  'var', 'arn', 'ref', 'selector', 'question', 'strength', 'rules', 'provider', 'manager', 'store', 'source',
  'param', 'parameter', 'option', 'options', 'input', 'widget', 'icon', 'text', 'title', 'description', 'desc',
  'enabled', 'required', 'changed', 'visible', 'button', 'form', 'view', 'page', 'route', 'screen', 'component',
  'service', 'helper', 'validator', 'schema', 'column', 'index', 'location', 'lookup', 'mapping', 'template', 'id',
  'ids', 'usage', 'used', 'left', 'remaining', 'budget', 'estimate', 'counter', 'position', 'pos', 'start', 'end',
  'kinds', 'list', 'length', 'at', 'in', 'date', 'time', 'timestamp', 'issuer', 'audience', 'scope', 'scopes',
  'secured', 'protected', 'required', 'flag', 'status', 'state', 'str', 'parser', 'stream', 'reader', 'writer',
  'class', 'cls', 'func', 'fn', 'callback', 'handler', 'fixture', 'spec', 'test', 'tests', 'mock', 'example', 'method',
  'methods', 'flow', 'grant', 'response', 'request', 'claim', 'claims', 'arg', 'args', 'through', 'thru',
]);

/** Words a value takes when it is a type, keyword, default or label rather than a secret. */
export const STOP_VALUES = new Set([
  'string', 'str', 'number', 'int', 'integer', 'bool', 'boolean', 'any', 'unknown', 'object', 'none', 'null', 'nil',
  'true', 'false', 'undefined', 'required', 'optional', 'hidden', 'text', 'varchar', 'bytes', 'byte', 'char',
  'admin', 'root', 'user', 'guest', 'default', 'empty', 'blank', 'yes', 'no', 'on', 'off', 'bearer', 'basic',
  'oauth', 'oauth2', 'jwt', 'hmac', 'sha256', 'rsa', 'md5', 'aes', 'postgres', 'mysql', 'redis', 'letmein',
  'welcome', 'welcome1', 'qwerty', 'qwerty123', 'iloveyou', 'monkey', 'dragon', 'master', 'secret1', 'admin123',
  'root123', '12345678', '123456789', '1234567890', 'abc123', 'password', 'changeit', 'hunter2',
]);
