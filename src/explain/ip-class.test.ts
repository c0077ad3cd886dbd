import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyIp, s3RangesFromIpRanges } from './ip-class.ts';

describe('classifyIp', () => {
  test('private, CGNAT, link-local and IPv6 ULA addresses are private', () => {
    for (const ip of [
      '10.0.12.34',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.3.9',
      '169.254.169.254',
      'fd12:3456::1',
      'fe80::1',
    ]) {
      assert.equal(classifyIp(ip)?.class, 'private', ip);
    }
  });

  test('addresses just outside the private blocks are public', () => {
    for (const ip of ['172.32.0.1', '100.128.0.1', '11.0.0.1', '44.205.64.79', '2600:1f18::1']) {
      assert.equal(classifyIp(ip)?.class, 'public', ip);
    }
  });

  test('embedded Amazon S3 prefixes are recognised', () => {
    for (const ip of ['52.216.20.5', '52.217.255.255', '54.231.0.1', '3.5.0.9', '16.182.44.1']) {
      assert.equal(classifyIp(ip)?.class, 'amazon-s3', ip);
    }
    assert.equal(classifyIp('52.215.255.255')?.class, 'public');
  });

  test('a supplied table replaces the embedded one and carries the region', () => {
    const ranges = [
      { prefix: '52.216.0.0/15', region: 'us-east-1' },
      { prefix: '52.216.8.0/24', region: 'us-east-2' },
      { prefix: '2600:1fa0:8000::/39', region: 'us-east-1' },
    ];
    assert.deepEqual(classifyIp('52.216.8.7', ranges), { class: 'amazon-s3', region: 'us-east-2' });
    assert.deepEqual(classifyIp('52.216.9.7', ranges), { class: 'amazon-s3', region: 'us-east-1' });
    assert.deepEqual(classifyIp('2600:1fa0:80a0::1', ranges), { class: 'amazon-s3', region: 'us-east-1' });
    assert.equal(classifyIp('3.5.0.9', ranges)?.class, 'public');
  });

  test('text that is not an address gives undefined', () => {
    for (const text of ['', '256.1.1.1', '1.2.3', 'registry-1.docker.io', '1::2::3', '::g']) {
      assert.equal(classifyIp(text), undefined, text);
    }
  });

  test('every IPv6 form of an address is classified alike', () => {
    for (const ip of ['fd12:3456::1', 'FD12:3456:0:0:0:0:0:1', '[fd12:3456::1]', 'fd12:3456::1%eth0']) {
      assert.equal(classifyIp(ip)?.class, 'private', ip);
    }
  });
});

describe('s3RangesFromIpRanges', () => {
  test('keeps the S3 prefixes of both families with their regions', () => {
    const document = {
      syncToken: '1',
      prefixes: [
        { ip_prefix: '52.216.0.0/15', region: 'us-east-1', service: 'S3' },
        { ip_prefix: '52.216.0.0/15', region: 'us-east-1', service: 'AMAZON' },
        { ip_prefix: '3.5.0.0/19', region: 'us-west-2', service: 'S3' },
        { ip_prefix: 'nonsense', region: 'us-west-2', service: 'S3' },
      ],
      ipv6_prefixes: [{ ipv6_prefix: '2600:1fa0:8000::/39', region: 'us-east-1', service: 'S3' }],
    };
    assert.deepEqual(s3RangesFromIpRanges(document), [
      { prefix: '52.216.0.0/15', region: 'us-east-1' },
      { prefix: '3.5.0.0/19', region: 'us-west-2' },
      { prefix: '2600:1fa0:8000::/39', region: 'us-east-1' },
    ]);
  });

  test('rejects what is not an ip-ranges.json document', () => {
    for (const value of [null, 'x', [], { prefixes: 'no' }]) {
      assert.throws(() => s3RangesFromIpRanges(value), TypeError);
    }
  });
});
