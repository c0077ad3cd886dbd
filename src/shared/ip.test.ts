import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import {
  cidrContains,
  cidrCovered,
  cidrHalves,
  cidrOverlaps,
  formatCidr,
  ipInCidr,
  parseCidr,
  parseIp,
  type Cidr,
} from './ip.ts';

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  assert.ok(parsed, text);
  return parsed;
}

describe('parseIp', () => {
  it('reads IPv4 and every IPv6 form to the same numbers', () => {
    assert.deepEqual(parseIp('10.0.0.1'), { family: 4, value: 0x0a000001n });
    assert.deepEqual(parseIp('255.255.255.255'), { family: 4, value: 0xffffffffn });
    const one = parseIp('2001:db8::1')?.value;
    for (const form of [
      '2001:0db8:0000:0000:0000:0000:0000:0001',
      '2001:DB8::0:1',
      '[2001:db8::1]',
      '2001:db8::1%eth0',
    ]) {
      assert.equal(parseIp(form)?.value, one, form);
    }
    assert.equal(parseIp('::ffff:10.0.0.1')?.value, parseIp('0:0:0:0:0:ffff:a00:1')?.value);
    assert.equal(parseIp('::')?.value, 0n);
    assert.equal(parseIp('::1')?.value, 1n);
    assert.equal(parseIp('1::')?.value, 1n << 112n);
    assert.equal(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')?.value, (1n << 128n) - 1n);
    assert.equal(parseIp('1:2:3:4:5:6:1.2.3.4')?.value, parseIp('1:2:3:4:5:6:102:304')?.value);
  });

  it('refuses what is not an address', () => {
    for (const text of [
      '',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '010.0.0.1',
      ' 1.2.3.4',
      'registry-1.docker.io',
      '1::2::3',
      '::g',
      '1:2:3:4:5:6:7:8:9',
      '[1.2.3.4]',
      '[::1',
      'fe80::1%',
      '10.0.0.0/8',
    ]) {
      assert.equal(parseIp(text), undefined, text);
    }
  });
});

describe('parseCidr and formatCidr', () => {
  it('clear host bits and print as AWS does', () => {
    assert.equal(formatCidr(cidr('10.0.1.77/24')), '10.0.1.0/24');
    assert.equal(formatCidr(cidr('2600:1f18:0:0:0:0:0:1/64')), '2600:1f18::/64');
    assert.equal(formatCidr(cidr('2600:1F18:0:0:1:0:0:0/128')), '2600:1f18:0:0:1::/128');
    assert.equal(formatCidr(cidr('0.0.0.0/0')), '0.0.0.0/0');
    assert.equal(formatCidr(cidr('::/0')), '::/0');
    assert.equal(formatCidr(cidr('1:0:1:0:1:0:1:0/128')), '1:0:1:0:1:0:1:0/128', 'a single zero group stays');
    assert.equal(formatCidr(cidr(' 192.168.1.1 ')), '192.168.1.1/32', 'a bare address is a range of one');
    assert.equal(formatCidr(cidr('2001:db8::1')), '2001:db8::1/128');
  });

  it('refuse malformed ranges', () => {
    for (const bad of [
      '10.0.0.0/33',
      '::/129',
      '10.0.0/16',
      '256.0.0.0/8',
      'abc',
      '1:2:3/64',
      '10.0.0.0/1/2',
      '',
      '10.0.0.0/',
      '10.0.0.0/-1',
      '10.0.0.0/1e1',
      '10.0.0.0/0008',
    ]) {
      assert.equal(parseCidr(bad), undefined, bad);
    }
  });
});

describe('containment and coverage', () => {
  it('contain, overlap and split ranges of both families, which never mix', () => {
    assert.ok(cidrContains(cidr('10.0.0.0/16'), cidr('10.0.1.0/24')));
    assert.ok(!cidrContains(cidr('10.0.1.0/24'), cidr('10.0.0.0/16')));
    assert.ok(cidrContains(cidr('0.0.0.0/0'), cidr('54.231.0.0/16')));
    assert.ok(cidrContains(cidr('2600:1f18::/32'), cidr('2600:1f18:abcd::/48')));
    assert.ok(!cidrContains(cidr('::/0'), cidr('10.0.0.0/8')), 'families never mix');
    assert.ok(cidrContains(cidr('::/0'), cidr('::ffff:10.0.0.1')), 'a mapped address is IPv6');
    assert.ok(!ipInCidr(parseIp('::ffff:10.0.0.1')!, cidr('10.0.0.0/8')));
    assert.ok(cidrOverlaps(cidr('10.0.0.0/8'), cidr('10.1.0.0/16')));
    assert.ok(!cidrOverlaps(cidr('10.0.0.0/16'), cidr('10.1.0.0/16')));
    assert.deepEqual(cidrHalves(cidr('10.0.0.0/8')).map(formatCidr), ['10.0.0.0/9', '10.128.0.0/9']);
    assert.deepEqual(cidrHalves(cidr('2001:db8::/32')).map(formatCidr), [
      '2001:db8::/33',
      '2001:db8:8000::/33',
    ]);
  });

  it('cover a range by a union of ranges', () => {
    assert.ok(cidrCovered(cidr('0.0.0.0/0'), [cidr('0.0.0.0/1'), cidr('128.0.0.0/1')]));
    assert.ok(!cidrCovered(cidr('10.0.0.0/16'), [cidr('10.0.0.0/17')]));
    assert.ok(
      cidrCovered(cidr('2001:db8::/32'), [
        cidr('2001:db8::/33'),
        cidr('2001:db8:8000::/34'),
        cidr('2001:db8:c000::/34'),
      ]),
    );
    assert.ok(!cidrCovered(cidr('2001:db8::/32'), [cidr('2001:db8::/33'), cidr('10.0.0.0/8')]));
  });

  it('agree with node:net BlockList on addresses at and around range edges', () => {
    let seed = 7;
    const random = (bits: number): bigint => {
      let value = 0n;
      for (let i = 0; i < bits; i += 16) {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        value = (value << 16n) | BigInt(seed & 0xffff);
      }
      return value & ((1n << BigInt(bits)) - 1n);
    };
    const text = (family: 4 | 6, value: bigint): string =>
      formatCidr({ family, base: value, prefix: family === 4 ? 32 : 128 }).split('/')[0]!;
    let checked = 0;
    for (let round = 0; round < 500; round++) {
      const family = round % 2 === 0 ? 4 : 6;
      const bits = family === 4 ? 32 : 128;
      const prefix = Number(random(8) % BigInt(bits + 1));
      const range = cidr(`${text(family, random(bits))}/${prefix}`);
      const list = new BlockList();
      list.addSubnet(text(family, range.base), prefix, family === 4 ? 'ipv4' : 'ipv6');
      const size = 1n << BigInt(bits - prefix);
      const top = (1n << BigInt(bits)) - 1n;
      for (const value of [
        range.base,
        range.base + size - 1n,
        range.base - 1n,
        range.base + size,
        random(bits),
      ]) {
        if (value < 0n || value > top) continue;
        // BlockList matches IPv4-mapped IPv6 addresses against IPv4 ranges; here families never mix.
        if (family === 6 && value >> 32n === 0xffffn) continue;
        const address = text(family, value);
        assert.equal(
          ipInCidr(parseIp(address)!, range),
          list.check(address, family === 4 ? 'ipv4' : 'ipv6'),
          `${address} in ${formatCidr(range)}`,
        );
        checked++;
      }
    }
    assert.ok(checked > 1500, `${checked} addresses checked`);
  });
});
