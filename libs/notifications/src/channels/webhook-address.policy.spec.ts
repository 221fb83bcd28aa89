import { DestinationRefusedError } from '../domain/notification.errors';
import { isInternalAddress, WebhookAddressPolicy } from './webhook-address.policy';

describe('WebhookAddressPolicy', () => {
  it.each([
    '127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '::1', '::', 'fe80::1', 'fd00:ec2::254', 'fc00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::a00:1', '224.0.0.1',
  ])('treats %s as internal', (address) => {
    expect(isInternalAddress(address)).toBe(true);
  });

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])('treats %s as public', (address) => {
    expect(isInternalAddress(address)).toBe(false);
  });

  it('refuses internal literals and names that resolve to them, allows them when told to', async () => {
    const dns = async (host: string) =>
      host === 'rebind.example' ? [{ address: '93.184.216.34', family: 4 as const }, { address: '10.0.0.5', family: 4 as const }] : [{ address: '93.184.216.34', family: 4 as const }];
    const strict = new WebhookAddressPolicy(false, dns);
    await expect(strict.destination('127.0.0.1')).rejects.toBeInstanceOf(DestinationRefusedError);
    await expect(strict.destination('[::1]')).rejects.toBeInstanceOf(DestinationRefusedError);
    await expect(strict.destination('localhost')).rejects.toBeInstanceOf(DestinationRefusedError);
    await expect(strict.destination('rebind.example')).rejects.toMatchObject({ reason: expect.stringMatching(/10\.0\.0\.5/) });
    await expect(strict.destination('hooks.example')).resolves.toEqual({ address: '93.184.216.34', family: 4 });
    await expect(new WebhookAddressPolicy(true, dns).destination('127.0.0.1')).resolves.toEqual({ address: '127.0.0.1', family: 4 });
  });

  it('refuses a name that does not resolve and one that resolves internally with the same error and message', async () => {
    const dns = async (host: string) => {
      if (host === 'internal.example') return [{ address: '10.0.0.5', family: 4 as const }];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    const strict = new WebhookAddressPolicy(false, dns);
    const outcome = async (host: string) => {
      const error = (await strict.destination(host).catch((e: unknown) => e)) as DestinationRefusedError;
      expect(error).toBeInstanceOf(DestinationRefusedError);
      return { name: error.name, message: error.message.replace(host, '<host>'), reason: error.reason };
    };
    const [missing, internal] = await Promise.all([outcome('missing.example'), outcome('internal.example')]);
    expect(missing.message).toBe('destination refused: <host> has no address webhooks may reach');
    expect({ ...missing, reason: undefined }).toEqual({ ...internal, reason: undefined });
    // The operator's logs still tell them apart.
    expect(missing.reason).toMatch(/ENOTFOUND/);
    expect(internal.reason).toMatch(/10\.0\.0\.5/);
  });

  it('checks literal addresses and localhost names without DNS when a URL is saved', () => {
    const strict = new WebhookAddressPolicy(false, () => Promise.reject(new Error('DNS must not be asked')));
    for (const host of ['127.0.0.1', '[::1]', '169.254.169.254', '[::ffff:7f00:1]', 'localhost', 'api.localhost', 'LOCALHOST.']) {
      expect(strict.isInternalLiteral(host)).toBe(true);
    }
    for (const host of ['93.184.216.34', 'does-not-exist.invalid', 'intranet.corp', 'localhost.example.com']) {
      expect(strict.isInternalLiteral(host)).toBe(false);
    }
    expect(new WebhookAddressPolicy(true).isInternalLiteral('127.0.0.1')).toBe(false);
  });

  it('accepts only absolute http(s) URLs without credentials', () => {
    const policy = new WebhookAddressPolicy(false);
    expect(policy.checkSyntax('https://hooks.example/x?y=1')).toBeNull();
    expect(policy.checkSyntax('ftp://hooks.example/')).toMatch(/http/);
    expect(policy.checkSyntax('https://user:pw@hooks.example/')).toMatch(/credentials/);
    expect(policy.checkSyntax('/relative')).toMatch(/absolute/);
  });
});
