import { expect, test } from 'vitest';
import { ipBucket } from '../../src/core/ip.js';

test.each([
  ['203.0.113.9', 64, '203.0.113.9'],
  ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64, '2001:db8:1:2:0:0:0:0/64'],
  ['2001:db8:1:2::1', 64, '2001:db8:1:2:0:0:0:0/64'],
  ['2001:DB8:1:2::ffff', 64, '2001:db8:1:2:0:0:0:0/64'],
  ['2001:db8:1:2::1', 56, '2001:db8:1:0:0:0:0:0/56'],
  ['2001:db8:1:2ff::1', 56, '2001:db8:1:200:0:0:0:0/56'],
  ['2001:db8::1', 128, '2001:db8::1'],
  ['::ffff:1.2.3.4', 96, '0:0:0:0:0:ffff:0:0/96'],
  ['::1', 64, '0:0:0:0:0:0:0:0/64'],
])('%s /%i → %s', (ip, prefix, bucket) => {
  expect(ipBucket(ip, prefix)).toBe(bucket);
});

import { ipv4Number, ipv4Ranges } from '../../src/core/ip.js';
import { isIPv4 } from 'node:net';

test.each(['10.0.0.1', '255.255.255.255', '0.0.0.0', '192.168.1.10', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1..2.3', '::1', '1.2.3.4:80', ' 1.2.3.4', '1.2.3.4 ', '', '1.2.3.04', '9.99.199.250'])(
  'ipv4Number(%j) agrees with net.isIPv4',
  (s) => {
    expect(ipv4Number(s) !== null).toBe(isIPv4(s));
  },
);

test('ipv4Ranges matches CIDRs with integer masks', () => {
  const trusted = ipv4Ranges([{ ip: '10.0.0.0', prefix: 8 }, { ip: '192.168.1.128', prefix: 25 }, { ip: '203.0.113.7', prefix: 32 }]);
  const t = (s: string) => trusted(ipv4Number(s)!);
  expect([t('10.255.0.1'), t('11.0.0.1'), t('192.168.1.200'), t('192.168.1.100'), t('203.0.113.7'), t('203.0.113.8')]).toEqual([true, false, true, false, true, false]);
  expect(ipv4Ranges([{ ip: '0.0.0.0', prefix: 0 }])(ipv4Number('8.8.8.8')!)).toBe(true);
});
