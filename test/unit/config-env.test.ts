// `${VAR}` and `${VAR:-default}` in config strings (SPEC §2) expand as the shell expands them.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const key = (value: string, env: NodeJS.ProcessEnv) => parseConfig({ audit: { fingerprintKey: value } }, 'aigate.yaml', env).audit.fingerprintKey;

describe('environment variables in config values', () => {
  it.each([
    ['${K}', { K: 'secret' }, 'secret'],
    ['${K}', { K: '' }, ''],
    ['${K:-fallback}', { K: 'secret' }, 'secret'],
    ['${K:-fallback}', { K: '' }, 'fallback'],
    ['${K:-fallback}', {}, 'fallback'],
    ['${K:-}', {}, ''],
    ['pre-${K}-${J:-j}', { K: 'k' }, 'pre-k-j'],
  ])('%s with %j is %j', (value, env, expected) => {
    expect(key(value, env)).toBe(expected);
  });

  it('an unset variable without a default stops the start, naming the key and the variable', () => {
    expect(() => key('${K}', {})).toThrow(ConfigError);
    expect(() => key('${K}', {})).toThrow(/audit\.fingerprintKey: environment variable K is not set \(use \$\{K:-default\} for a default\)/);
  });
});
