// The `limits` section (issue #19): its defaults, units, and the bounds that keep a budget from
// refusing every body of the largest allowed size.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';

const gateway = { listen: { gateway: { port: 0 } } };

describe('limits', () => {
  it('has defaults sized for one process in the shipped 1 GiB container', () => {
    expect(parseConfig(gateway).limits).toEqual({
      bufferedBodyBytes: 512 * 1024 * 1024,
      bufferedBodyBytesPerClient: 64 * 1024 * 1024,
      authPending: 64,
      authFailuresPerMinute: 30,
      connectionsPerClient: 512,
    });
  });

  it('takes sizes with units', () => {
    const { limits } = parseConfig({ ...gateway, limits: { bufferedBodyBytes: '1gb', bufferedBodyBytesPerClient: '16mb', authFailuresPerMinute: 0 } });
    expect(limits).toMatchObject({ bufferedBodyBytes: 1024 ** 3, bufferedBodyBytesPerClient: 16 * 1024 ** 2, authFailuresPerMinute: 0 });
  });

  it.each([
    [{ limits: { bufferedBodyBytesPerClient: '4mb' } }, 'limits.bufferedBodyBytesPerClient: must be at least inspect.maxBodyBytes (8388608 bytes)'],
    [{ limits: { bufferedBodyBytes: '32mb' } }, 'limits.bufferedBodyBytes: must be at least limits.bufferedBodyBytesPerClient (67108864 bytes)'],
    [{ limits: { authPending: 0 } }, 'limits.authPending'],
    [{ limits: { authFailuresPerMinute: -1 } }, 'limits.authFailuresPerMinute'],
    [{ limits: { bufferedBodyBytes: 'lots' } }, 'limits.bufferedBodyBytes: must be a size like 512kb or 8mb, got "lots"'],
  ])('refuses %j', (raw, message) => {
    expect(() => parseConfig({ ...gateway, ...raw }, 'aigate.yaml')).toThrow(message);
  });

  it('a smaller maxBodyBytes allows a smaller per-client budget', () => {
    const { limits } = parseConfig({ ...gateway, inspect: { maxBodyBytes: '1mb' }, limits: { bufferedBodyBytesPerClient: '2mb', bufferedBodyBytes: '2mb' } });
    expect(limits.bufferedBodyBytesPerClient).toBe(2 * 1024 * 1024);
  });
});

describe('limits defaults', () => {
  it('grow to a larger inspect.maxBodyBytes when not set (configs from before limits keep working)', () => {
    const { limits } = parseConfig({ ...gateway, inspect: { maxBodyBytes: '100mb' } });
    expect(limits.bufferedBodyBytesPerClient).toBe(100 * 1024 * 1024);
    expect(limits.bufferedBodyBytes).toBe(512 * 1024 * 1024);
    const huge = parseConfig({ ...gateway, inspect: { maxBodyBytes: '1gb' } }).limits;
    expect(huge).toMatchObject({ bufferedBodyBytesPerClient: 1024 ** 3, bufferedBodyBytes: 1024 ** 3 });
  });
});
