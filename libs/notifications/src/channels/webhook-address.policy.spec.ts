import { DestinationNotAllowedError } from '../domain/notification.errors';
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
    await expect(strict.destination('127.0.0.1')).rejects.toBeInstanceOf(DestinationNotAllowedError);
    await expect(strict.destination('[::1]')).rejects.toBeInstanceOf(DestinationNotAllowedError);
    await expect(strict.destination('rebind.example')).rejects.toThrow(/10\.0\.0\.5/);
    await expect(strict.destination('hooks.example')).resolves.toEqual({ address: '93.184.216.34', family: 4 });
    await expect(new WebhookAddressPolicy(true, dns).destination('127.0.0.1')).resolves.toEqual({ address: '127.0.0.1', family: 4 });
  });

  it('accepts only absolute http(s) URLs without credentials', () => {
    const policy = new WebhookAddressPolicy(false);
    expect(policy.checkSyntax('https://hooks.example/x?y=1')).toBeNull();
    expect(policy.checkSyntax('ftp://hooks.example/')).toMatch(/http/);
    expect(policy.checkSyntax('https://user:pw@hooks.example/')).toMatch(/credentials/);
    expect(policy.checkSyntax('/relative')).toMatch(/absolute/);
  });
});
