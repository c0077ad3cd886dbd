import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type {
  IpPermission,
  ManagedPrefixList,
  NetworkAcl,
  NetworkAclEntry,
  PrefixList,
  RouteTable,
  SecurityGroup,
  Subnet,
  Vpc,
  VpcEndpoint,
} from '@aws-sdk/client-ec2';
import type { Facts, Finding, Lookup, Needs, NetworkFacts } from '../types.ts';
import { networkCheck } from './network.ts';
import { naclDenials } from './network/nacl.ts';
import { routeOut, routeTableForSubnet } from './network/routes.ts';
import { securityGroupsAllow } from './network/security-groups.ts';

// ---------------------------------------------------------------------------------------------------------
// A small builder of EC2 answers, shaped as DescribeVpcs, DescribeSubnets, DescribeRouteTables,
// DescribeSecurityGroups, DescribeNetworkAcls, DescribeVpcEndpoints and DescribeManagedPrefixLists /
// DescribePrefixLists return them.

const region = 'us-east-1';
const account = '123456789012';
const vpcId = 'vpc-0a1b2c3d4e5f60718';
const subnetA = 'subnet-0aa11bb22cc33dd44';
const subnetB = 'subnet-0ee55ff66aa77bb88';
const privateTable = 'rtb-0c1d2e3f4a5b6c7d8';
const mainTable = 'rtb-0f9e8d7c6b5a49382';
const natId = 'nat-05e0a1b2c3d4e5f67';
const igwId = 'igw-0a9b8c7d6e5f4a3b2';
const taskSg = 'sg-0task1111aaaa2222';
const endpointSg = 'sg-0vpce3333bbbb4444';
const aclId = 'acl-0d4c3b2a1f0e9d8c7';
const s3PrefixList = 'pl-63a5400a';
const s3Cidrs = ['16.182.0.0/16', '3.5.0.0/19', '44.192.134.240/28', '52.216.0.0/15', '54.231.0.0/16'];
const defaultPolicy = JSON.stringify({
  Statement: [{ Action: '*', Effect: 'Allow', Principal: '*', Resource: '*' }],
});
const endpointIds = {
  'ecr.api': 'vpce-0api0000000000001',
  'ecr.dkr': 'vpce-0dkr0000000000002',
  logs: 'vpce-0log0000000000003',
  secretsmanager: 'vpce-0sec0000000000004',
  s3: 'vpce-0s3g0000000000005',
} as const;

const found = <T>(value: T): Lookup<T> => ({ state: 'found', value });

// The API answers `available` in lower case, though the SDK's enum spells it `Available`.
const endpointState = (state: string): VpcEndpoint['State'] => state as VpcEndpoint['State'];

function vpc(): Vpc {
  return {
    VpcId: vpcId,
    OwnerId: account,
    State: 'available',
    CidrBlock: '10.0.0.0/16',
    CidrBlockAssociationSet: [
      {
        AssociationId: 'vpc-cidr-assoc-0a1b2c3d',
        CidrBlock: '10.0.0.0/16',
        CidrBlockState: { State: 'associated' },
      },
    ],
    IsDefault: false,
    InstanceTenancy: 'default',
  };
}

function subnet(id: string, cidr: string, zone: string): Subnet {
  return {
    SubnetId: id,
    SubnetArn: `arn:aws:ec2:${region}:${account}:subnet/${id}`,
    VpcId: vpcId,
    CidrBlock: cidr,
    AvailabilityZone: zone,
    AvailabilityZoneId: zone === 'us-east-1a' ? 'use1-az1' : 'use1-az2',
    AvailableIpAddressCount: 250,
    DefaultForAz: false,
    MapPublicIpOnLaunch: false,
    State: 'available',
    OwnerId: account,
    AssignIpv6AddressOnCreation: false,
    Ipv6CidrBlockAssociationSet: [],
    Ipv6Native: false,
  };
}

const localRoute = {
  DestinationCidrBlock: '10.0.0.0/16',
  GatewayId: 'local',
  Origin: 'CreateRouteTable',
  State: 'active',
} as const;

function natRoute(state: 'active' | 'blackhole' = 'active') {
  return {
    DestinationCidrBlock: '0.0.0.0/0',
    NatGatewayId: natId,
    Origin: 'CreateRoute',
    State: state,
  } as const;
}

const igwRoute = {
  DestinationCidrBlock: '0.0.0.0/0',
  GatewayId: igwId,
  Origin: 'CreateRoute',
  State: 'active',
} as const;

const s3Route = {
  DestinationPrefixListId: s3PrefixList,
  GatewayId: endpointIds.s3,
  Origin: 'CreateRoute',
  State: 'active',
} as const;

function routeTable(id: string, subnets: string[], routes: RouteTable['Routes'], main = false): RouteTable {
  return {
    RouteTableId: id,
    VpcId: vpcId,
    OwnerId: account,
    PropagatingVgws: [],
    Tags: [],
    Routes: routes,
    Associations: [
      ...(main
        ? [
            {
              Main: true,
              RouteTableAssociationId: `rtbassoc-main${id.slice(4, 12)}`,
              RouteTableId: id,
              AssociationState: { State: 'associated' as const },
            },
          ]
        : []),
      ...subnets.map((subnetId, index) => ({
        Main: false,
        RouteTableAssociationId: `rtbassoc-0${index}${subnetId.slice(7, 15)}`,
        RouteTableId: id,
        SubnetId: subnetId,
        AssociationState: { State: 'associated' as const },
      })),
    ],
  };
}

function rule(partial: IpPermission): IpPermission {
  return { IpRanges: [], Ipv6Ranges: [], PrefixListIds: [], UserIdGroupPairs: [], ...partial };
}

const allTrafficOut = rule({ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] });

function securityGroup(id: string, ingress: IpPermission[], egress: IpPermission[]): SecurityGroup {
  return {
    GroupId: id,
    GroupName: id === taskSg ? 'app-tasks' : 'vpc-endpoints',
    Description: 'managed by terraform',
    OwnerId: account,
    VpcId: vpcId,
    SecurityGroupArn: `arn:aws:ec2:${region}:${account}:security-group/${id}`,
    IpPermissions: ingress,
    IpPermissionsEgress: egress,
    Tags: [],
  };
}

function aclEntry(
  ruleNumber: number,
  egress: boolean,
  action: 'allow' | 'deny',
  cidr = '0.0.0.0/0',
  protocol = '-1',
  ports?: [number, number],
): NetworkAclEntry {
  return {
    RuleNumber: ruleNumber,
    Egress: egress,
    RuleAction: action,
    CidrBlock: cidr,
    Protocol: protocol,
    ...(ports === undefined ? {} : { PortRange: { From: ports[0], To: ports[1] } }),
  };
}

const openAclEntries = [
  aclEntry(100, true, 'allow'),
  aclEntry(32767, true, 'deny'),
  aclEntry(100, false, 'allow'),
  aclEntry(32767, false, 'deny'),
];

function networkAcl(entries: NetworkAclEntry[], subnets = [subnetA, subnetB]): NetworkAcl {
  return {
    NetworkAclId: aclId,
    VpcId: vpcId,
    OwnerId: account,
    IsDefault: true,
    Tags: [],
    Entries: entries,
    Associations: subnets.map((subnetId, index) => ({
      NetworkAclAssociationId: `aclassoc-0${index}${subnetId.slice(7, 14)}`,
      NetworkAclId: aclId,
      SubnetId: subnetId,
    })),
  };
}

type InterfaceService = 'ecr.api' | 'ecr.dkr' | 'logs' | 'secretsmanager';

function interfaceEndpoint(service: InterfaceService, patch: Partial<VpcEndpoint> = {}): VpcEndpoint {
  const id = endpointIds[service];
  return {
    VpcEndpointId: id,
    VpcEndpointType: 'Interface',
    VpcId: vpcId,
    ServiceName: `com.amazonaws.${region}.${service}`,
    State: endpointState('available'),
    PolicyDocument: defaultPolicy,
    RouteTableIds: [],
    SubnetIds: [subnetA, subnetB],
    Groups: [{ GroupId: endpointSg, GroupName: 'vpc-endpoints' }],
    IpAddressType: 'ipv4',
    DnsOptions: { DnsRecordIpType: 'ipv4' },
    PrivateDnsEnabled: true,
    RequesterManaged: false,
    NetworkInterfaceIds: ['eni-0a1a1a1a1a1a1a1a1', 'eni-0b2b2b2b2b2b2b2b2'],
    DnsEntries: [
      { DnsName: `${id}-abcd1234.${service}.${region}.vpce.amazonaws.com`, HostedZoneId: 'Z7HUB22UULQXV' },
    ],
    CreationTimestamp: new Date('2025-11-02T10:00:00Z'),
    OwnerId: account,
    ...patch,
  };
}

function s3Gateway(tables = [privateTable]): VpcEndpoint {
  return {
    VpcEndpointId: endpointIds.s3,
    VpcEndpointType: 'Gateway',
    VpcId: vpcId,
    ServiceName: `com.amazonaws.${region}.s3`,
    State: endpointState('available'),
    PolicyDocument: defaultPolicy,
    RouteTableIds: tables,
    SubnetIds: [],
    Groups: [],
    IpAddressType: 'ipv4',
    PrivateDnsEnabled: false,
    RequesterManaged: false,
    NetworkInterfaceIds: [],
    DnsEntries: [],
    CreationTimestamp: new Date('2025-11-02T10:00:00Z'),
    OwnerId: account,
  };
}

function s3PrefixLists(): (ManagedPrefixList | PrefixList)[] {
  return [{ PrefixListId: s3PrefixList, PrefixListName: `com.amazonaws.${region}.s3`, Cidrs: s3Cidrs }];
}

const allNeeds: Needs = {
  ecrApi: true,
  ecrDkr: true,
  s3Layers: true,
  logs: true,
  secretsmanager: true,
  ssm: false,
  kms: false,
  internetRegistries: [],
};

function facts(network: Partial<NetworkFacts>, patch: Partial<Facts> = {}): Facts {
  return {
    region,
    accountId: account,
    subject: { kind: 'task', name: 'arn:aws:ecs:us-east-1:123456789012:task/prod/0abc', cluster: 'prod' },
    stopReasons: [],
    launchType: 'FARGATE',
    platformVersion: '1.4.0',
    architecture: 'X86_64',
    os: 'LINUX',
    images: [],
    secrets: [],
    logs: [],
    needs: allNeeds,
    failures: [],
    network: {
      region,
      vpcId,
      vpc: found(vpc()),
      dnsSupport: found(true),
      dnsHostnames: found(true),
      subnets: found([
        subnet(subnetA, '10.0.1.0/24', 'us-east-1a'),
        subnet(subnetB, '10.0.2.0/24', 'us-east-1b'),
      ]),
      routeTables: found([
        routeTable(privateTable, [subnetA, subnetB], [localRoute, natRoute()]),
        routeTable(mainTable, [], [localRoute], true),
      ]),
      securityGroups: found([securityGroup(taskSg, [], [allTrafficOut])]),
      networkAcls: found([networkAcl(openAclEntries)]),
      endpoints: found([]),
      endpointSecurityGroups: found([]),
      prefixLists: found(s3PrefixLists()),
      assignPublicIp: false,
      ...network,
    },
    ...patch,
  };
}

/** The private-subnet-with-endpoints layout AWS documents, configured right. */
function endpointsOnly(patch: Partial<NetworkFacts> = {}, factsPatch: Partial<Facts> = {}): Facts {
  return facts(
    {
      routeTables: found([
        routeTable(privateTable, [subnetA, subnetB], [localRoute, s3Route]),
        routeTable(mainTable, [], [localRoute], true),
      ]),
      endpoints: found([
        interfaceEndpoint('ecr.api'),
        interfaceEndpoint('ecr.dkr'),
        interfaceEndpoint('logs'),
        interfaceEndpoint('secretsmanager'),
        s3Gateway(),
      ]),
      securityGroups: found([
        securityGroup(
          taskSg,
          [],
          [
            rule({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '10.0.0.0/16' }] }),
            rule({
              IpProtocol: 'tcp',
              FromPort: 443,
              ToPort: 443,
              PrefixListIds: [{ PrefixListId: s3PrefixList }],
            }),
          ],
        ),
      ]),
      endpointSecurityGroups: found([
        securityGroup(
          endpointSg,
          [
            rule({
              IpProtocol: 'tcp',
              FromPort: 443,
              ToPort: 443,
              UserIdGroupPairs: [{ GroupId: taskSg, UserId: account }],
            }),
          ],
          [allTrafficOut],
        ),
      ]),
      ...patch,
    },
    factsPatch,
  );
}

const ids = (findings: Finding[]): string[] => [...new Set(findings.map((finding) => finding.id))].sort();
const only = (findings: Finding[], id: string): Finding[] => findings.filter((finding) => finding.id === id);
const evidenceText = (finding: Finding): string =>
  finding.evidence.map((e) => `${e.label}=${e.value}`).join('\n');
const fixText = (finding: Finding): string =>
  finding.fixes.map((fix) => `${fix.summary}\n${fix.content ?? ''}`).join('\n');

// ---------------------------------------------------------------------------------------------------------

describe('healthy networks produce no finding', () => {
  test('private subnets with a NAT gateway, Docker Hub included', () => {
    const result = networkCheck(
      facts(
        {},
        { needs: { ...allNeeds, ssm: true, kms: true, internetRegistries: ['registry-1.docker.io'] } },
      ),
    );
    assert.deepEqual(result, []);
  });

  test('private subnets with the full set of endpoints configured right', () => {
    assert.deepEqual(networkCheck(endpointsOnly()), []);
  });

  test('a public subnet with an internet gateway route and a public IP', () => {
    const result = networkCheck(
      facts({
        routeTables: found([routeTable(mainTable, [], [localRoute, igwRoute], true)]),
        assignPublicIp: true,
      }),
    );
    assert.deepEqual(result, []);
  });

  test('no network facts (no awsvpc) and no needs are no findings', () => {
    assert.deepEqual(networkCheck({ ...facts({}), network: undefined }), []);
    assert.deepEqual(
      networkCheck(
        facts(
          {},
          {
            needs: {
              ...allNeeds,
              ecrApi: false,
              ecrDkr: false,
              s3Layers: false,
              logs: false,
              secretsmanager: false,
            },
          },
        ),
      ),
      [],
    );
  });
});

describe('no route out', () => {
  test('no NAT and no endpoints: one no-route-out per needed service, with NAT and endpoint fixes', () => {
    const result = networkCheck(
      facts({ routeTables: found([routeTable(privateTable, [subnetA, subnetB], [localRoute])]) }),
    );
    assert.deepEqual(ids(result), ['no-route-out']);
    const byHop = Object.fromEntries(result.map((finding) => [finding.title, finding.hop]));
    assert.equal(byHop['No route from the task to ecr.api'], 'registry-auth');
    assert.equal(byHop['No route from the task to ecr.dkr'], 'manifest');
    assert.equal(byHop['No route from the task to s3'], 'layers');
    assert.equal(byHop['No route from the task to logs'], 'logs');
    assert.equal(byHop['No route from the task to secretsmanager'], 'secrets');
    assert.equal(result.length, 5);
    for (const finding of result) {
      assert.equal(finding.cause, 'network-no-route');
      assert.equal(finding.severity, 'error');
      assert.match(evidenceText(finding), new RegExp(`subnet=${subnetA}`));
      assert.match(evidenceText(finding), new RegExp(`subnet=${subnetB}`));
      assert.match(evidenceText(finding), new RegExp(`route table ${privateTable}=no default route`));
      assert.match(
        fixText(finding),
        new RegExp(`create-route --region us-east-1 --route-table-id ${privateTable}`),
      );
    }
    const s3 = result.find((finding) => finding.hop === 'layers')!;
    assert.match(
      fixText(s3),
      new RegExp(
        `create-vpc-endpoint --region us-east-1 --vpc-id ${vpcId} --vpc-endpoint-type Gateway ` +
          `--service-name com.amazonaws.us-east-1.s3 --route-table-ids ${privateTable}`,
      ),
    );
    const api = result.find((finding) => finding.hop === 'registry-auth')!;
    assert.match(
      fixText(api),
      /--vpc-endpoint-type Interface --service-name com\.amazonaws\.us-east-1\.ecr\.api/,
    );
    // One subnet per AZ for the interface endpoint, and a security group admitting the task.
    assert.match(fixText(api), new RegExp(`--subnet-ids ${subnetA} ${subnetB} --private-dns-enabled`));
    assert.match(fixText(api), new RegExp(`UserIdGroupPairs=\\[\\{GroupId=${taskSg}\\}\\]`));
    // Run for several endpoints in a row, the security group is created once and then found.
    assert.match(fixText(api), /describe-security-groups .*Name=group-name,Values=vpc-endpoints-https/);
    assert.match(fixText(api), /if \[ "\$SG" = None \]; then/);
  });

  test('the NAT fix reuses a NAT gateway a sibling subnet already routes through', () => {
    const result = networkCheck(
      facts({
        routeTables: found([
          routeTable(privateTable, [subnetA], [localRoute]),
          routeTable(mainTable, [subnetB], [localRoute, natRoute()], true),
        ]),
      }),
    );
    const finding = only(result, 'no-route-out')[0]!;
    assert.deepEqual(
      finding.evidence.filter((e) => e.label === 'subnet').map((e) => e.value),
      [subnetA],
    );
    assert.ok(
      finding.fixes.some(
        (fix) =>
          fix.content ===
          `aws ec2 create-route --region us-east-1 --route-table-id ${privateTable} --destination-cidr-block 0.0.0.0/0 --nat-gateway-id ${natId}`,
      ),
    );
  });

  test('a blackhole NAT route is named, with a replace-route fix', () => {
    const result = networkCheck(
      facts({
        routeTables: found([
          routeTable(privateTable, [subnetA, subnetB], [localRoute, natRoute('blackhole')]),
        ]),
      }),
    );
    assert.deepEqual(ids(result), ['blackhole-route']);
    assert.equal(result.length, 1, 'one finding for the route, listing every service');
    const finding = result[0]!;
    assert.equal(finding.hop, 'registry-auth');
    assert.match(finding.title, new RegExp(`0\\.0\\.0\\.0/0 -> ${natId} \\(blackhole\\) in ${privateTable}`));
    assert.match(finding.detail, /ecr\.api, ecr\.dkr, s3, logs and secretsmanager/);
    assert.match(
      fixText(finding),
      new RegExp(`aws ec2 replace-route --region us-east-1 --route-table-id ${privateTable}`),
    );
  });

  test('public subnet without a public IP on Fargate: public-ip-missing with an update-service fix', () => {
    const result = networkCheck(
      facts(
        { routeTables: found([routeTable(mainTable, [], [localRoute, igwRoute], true)]) },
        { service: { serviceName: 'web', clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/prod' } },
      ),
    );
    assert.deepEqual(ids(result), ['public-ip-missing']);
    const finding = result[0]!;
    assert.equal(finding.severity, 'error');
    assert.equal(finding.cause, 'network-no-route');
    assert.match(evidenceText(finding), /assignPublicIp=DISABLED/);
    assert.match(evidenceText(finding), new RegExp(`default route 0\\.0\\.0\\.0/0 -> ${igwId}`));
    assert.match(
      fixText(finding),
      new RegExp(
        `aws ecs update-service --region us-east-1 --cluster prod --service web --network-configuration ` +
          `'awsvpcConfiguration=\\{subnets=\\[${subnetA},${subnetB}\\],securityGroups=\\[${taskSg}\\],assignPublicIp=ENABLED\\}'`,
      ),
    );
    // The public subnet itself is where a NAT gateway could go.
    assert.match(fixText(finding), new RegExp(`PUBLIC_SUBNET=${subnetA}`));
  });

  test('EC2 launch type in bridge mode with an internet gateway route is only a possible problem', () => {
    const result = networkCheck(
      facts(
        { routeTables: found([routeTable(mainTable, [], [localRoute, igwRoute], true)]) },
        { launchType: 'EC2', taskDefinition: { networkMode: 'bridge' } },
      ),
    );
    assert.deepEqual(ids(result), ['public-ip-missing']);
    assert.equal(result[0]!.severity, 'warning');
    assert.equal(result[0]!.certainty, 'possible');
    const awsvpc = networkCheck(
      facts(
        { routeTables: found([routeTable(mainTable, [], [localRoute, igwRoute], true)]) },
        { launchType: 'EC2', taskDefinition: { networkMode: 'awsvpc' } },
      ),
    );
    assert.equal(awsvpc[0]!.severity, 'error');
    assert.equal(awsvpc[0]!.certainty, 'certain');
  });

  test('a Docker Hub image in a private subnet with endpoints only', () => {
    const result = networkCheck(
      endpointsOnly({}, { needs: { ...allNeeds, internetRegistries: ['registry-1.docker.io'] } }),
    );
    assert.deepEqual(ids(result), ['internet-registry-unreachable']);
    const finding = result[0]!;
    assert.equal(finding.hop, 'manifest');
    assert.equal(finding.cause, 'network-no-route');
    assert.match(finding.title, /registry-1\.docker\.io/);
    assert.match(fixText(finding), /create-nat-gateway/);
    assert.match(fixText(finding), /pull-through cache/);
  });

  test('transit gateway and peering default routes count as a way out', () => {
    for (const route of [
      {
        DestinationCidrBlock: '0.0.0.0/0',
        TransitGatewayId: 'tgw-0123456789abcdef0',
        State: 'active' as const,
      },
      {
        DestinationCidrBlock: '0.0.0.0/0',
        VpcPeeringConnectionId: 'pcx-0123456789abcdef0',
        State: 'active' as const,
      },
    ]) {
      const result = networkCheck(
        facts({ routeTables: found([routeTable(privateTable, [subnetA, subnetB], [localRoute, route])]) }),
      );
      assert.deepEqual(result, []);
    }
  });
});

describe('interface endpoints', () => {
  test('ecr.api missing on Fargate 1.4: endpoint-missing at the registry-auth hop', () => {
    const base = endpointsOnly();
    const network = base.network!;
    const endpoints = network.endpoints.state === 'found' ? network.endpoints.value : [];
    const withoutApi = endpoints.filter((endpoint) => endpoint.VpcEndpointId !== endpointIds['ecr.api']);
    const result = networkCheck({ ...base, network: { ...network, endpoints: found(withoutApi) } });
    assert.deepEqual(ids(result), ['endpoint-missing']);
    const finding = result[0]!;
    assert.equal(finding.hop, 'registry-auth');
    assert.equal(finding.cause, 'network-vpc-endpoint');
    assert.match(finding.detail, /Fargate platform 1\.4\.0/);
    // The new endpoint reuses the security group the other endpoints use.
    assert.match(
      fixText(finding),
      new RegExp(
        `aws ec2 create-vpc-endpoint --region us-east-1 --vpc-id ${vpcId} --vpc-endpoint-type Interface ` +
          `--service-name com.amazonaws.us-east-1.ecr.api --subnet-ids ${subnetA} ${subnetB} --private-dns-enabled ` +
          `--security-group-ids ${endpointSg}`,
      ),
    );
    // Platform 1.3.0 fetches the token outside the task's interface: not needed there.
    assert.deepEqual(
      networkCheck({
        ...base,
        platformVersion: '1.3.0',
        network: { ...network, endpoints: found(withoutApi) },
      }),
      [],
    );
  });

  test('endpoint security group without 443 inbound', () => {
    const result = networkCheck(
      endpointsOnly({
        endpointSecurityGroups: found([
          securityGroup(
            endpointSg,
            [rule({ IpProtocol: 'tcp', FromPort: 80, ToPort: 80, IpRanges: [{ CidrIp: '10.0.0.0/16' }] })],
            [allTrafficOut],
          ),
        ]),
      }),
    );
    assert.deepEqual(ids(result), ['endpoint-sg-no-443']);
    assert.equal(result.length, 4, 'one per endpoint behind that security group');
    const dkr = result.find((finding) => finding.title.includes(endpointIds['ecr.dkr']))!;
    assert.equal(dkr.hop, 'manifest');
    assert.equal(dkr.cause, 'network-vpc-endpoint');
    assert.match(
      evidenceText(dkr),
      new RegExp(`security group ${endpointSg} ingress=tcp 80 from 10\\.0\\.0\\.0/16`),
    );
    assert.equal(
      dkr.fixes[0]!.content,
      `aws ec2 authorize-security-group-ingress --region us-east-1 --group-id ${endpointSg} ` +
        `--ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,UserIdGroupPairs=[{GroupId=${taskSg}}]'`,
    );
  });

  test('an endpoint security group admitting the task subnets by CIDR passes', () => {
    const result = networkCheck(
      endpointsOnly({
        endpointSecurityGroups: found([
          securityGroup(
            endpointSg,
            [
              rule({
                IpProtocol: 'tcp',
                FromPort: 443,
                ToPort: 443,
                IpRanges: [{ CidrIp: '10.0.1.0/24' }, { CidrIp: '10.0.2.0/24' }],
              }),
            ],
            [],
          ),
        ]),
      }),
    );
    assert.deepEqual(result, []);
  });

  test('private DNS off with no route out', () => {
    const base = endpointsOnly();
    const network = base.network!;
    const endpoints = (network.endpoints.state === 'found' ? network.endpoints.value : []).map((endpoint) =>
      endpoint.VpcEndpointId === endpointIds['ecr.dkr']
        ? { ...endpoint, PrivateDnsEnabled: false }
        : endpoint,
    );
    const result = networkCheck({ ...base, network: { ...network, endpoints: found(endpoints) } });
    assert.deepEqual(ids(result), ['endpoint-private-dns-off']);
    assert.equal(result[0]!.hop, 'manifest');
    assert.equal(
      result[0]!.fixes[0]!.content,
      `aws ec2 modify-vpc-endpoint --region us-east-1 --vpc-endpoint-id ${endpointIds['ecr.dkr']} --private-dns-enabled`,
    );
    assert.match(evidenceText(result[0]!), /private DNS off/);
    // With a NAT route the public name works through NAT: nothing to report.
    const viaNat = facts({ endpoints: found(endpoints) });
    assert.deepEqual(networkCheck(viaNat), []);
  });

  test('an endpoint that is not available', () => {
    const base = endpointsOnly();
    const network = base.network!;
    const endpoints = (network.endpoints.state === 'found' ? network.endpoints.value : []).map((endpoint) =>
      endpoint.VpcEndpointId === endpointIds.logs
        ? {
            ...endpoint,
            State: endpointState('pending'),
            LastError: { Code: 'x', Message: 'quota exceeded' },
          }
        : endpoint,
    );
    const result = networkCheck({ ...base, network: { ...network, endpoints: found(endpoints) } });
    assert.deepEqual(ids(result), ['endpoint-not-available']);
    assert.equal(result[0]!.hop, 'logs');
    assert.match(result[0]!.detail, /quota exceeded/);
  });

  test('VPC DNS support off', () => {
    const result = networkCheck(endpointsOnly({ dnsSupport: found(false) }));
    assert.deepEqual(ids(result), ['vpc-dns-off']);
    const finding = result[0]!;
    assert.equal(finding.cause, 'network-dns');
    assert.equal(finding.certainty, 'certain', 'endpoints are relied on');
    assert.match(evidenceText(finding), new RegExp(`vpc ${vpcId} enableDnsSupport=false`));
    assert.deepEqual(
      finding.fixes.map((fix) => fix.content),
      [
        `aws ec2 modify-vpc-attribute --region us-east-1 --vpc-id ${vpcId} --enable-dns-support '{"Value":true}'`,
      ],
    );
    // Behind a NAT it still breaks name resolution, unless DHCP options name another resolver.
    const nat = networkCheck(facts({ dnsSupport: found(false) }));
    assert.deepEqual(ids(nat), ['vpc-dns-off']);
    assert.equal(nat[0]!.certainty, 'likely');
  });

  test('VPC DNS hostnames off only matters where private DNS is relied on', () => {
    const result = networkCheck(endpointsOnly({ dnsHostnames: found(false) }));
    assert.deepEqual(ids(result), ['vpc-dns-off']);
    assert.match(result[0]!.fixes[0]!.content!, /--enable-dns-hostnames/);
    assert.deepEqual(networkCheck(facts({ dnsHostnames: found(false) })), []);
  });

  test('task egress limited to another range blocks the endpoints', () => {
    const result = networkCheck(
      endpointsOnly({
        securityGroups: found([
          securityGroup(
            taskSg,
            [],
            [
              rule({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '10.1.0.0/16' }] }),
              rule({
                IpProtocol: 'tcp',
                FromPort: 443,
                ToPort: 443,
                PrefixListIds: [{ PrefixListId: s3PrefixList }],
              }),
            ],
          ),
        ]),
      }),
    );
    assert.deepEqual(ids(result), ['sg-egress-blocks']);
    assert.equal(result.length, 4);
    const api = result.find((finding) => finding.hop === 'registry-auth')!;
    assert.equal(
      api.fixes[0]!.content,
      `aws ec2 authorize-security-group-egress --region us-east-1 --group-id ${taskSg} ` +
        `--ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,UserIdGroupPairs=[{GroupId=${endpointSg}}]'`,
    );
  });

  test('task egress by reference to the endpoint security group passes', () => {
    const result = networkCheck(
      endpointsOnly({
        securityGroups: found([
          securityGroup(
            taskSg,
            [],
            [
              rule({
                IpProtocol: 'tcp',
                FromPort: 443,
                ToPort: 443,
                UserIdGroupPairs: [{ GroupId: endpointSg }],
              }),
              rule({
                IpProtocol: 'tcp',
                FromPort: 443,
                ToPort: 443,
                PrefixListIds: [{ PrefixListId: s3PrefixList }],
              }),
            ],
          ),
        ]),
      }),
    );
    assert.deepEqual(result, []);
  });
});

describe('S3 layers', () => {
  test('endpoints but no S3 gateway endpoint', () => {
    const base = endpointsOnly({
      routeTables: found([routeTable(privateTable, [subnetA, subnetB], [localRoute])]),
    });
    const network = base.network!;
    const endpoints = (network.endpoints.state === 'found' ? network.endpoints.value : []).filter(
      (endpoint) => endpoint.VpcEndpointType !== 'Gateway',
    );
    const result = networkCheck({ ...base, network: { ...network, endpoints: found(endpoints) } });
    assert.deepEqual(ids(result), ['s3-gateway-missing']);
    const finding = result[0]!;
    assert.equal(finding.hop, 'layers');
    assert.equal(finding.cause, 'network-s3-layers');
    assert.equal(
      finding.fixes[0]!.content,
      `aws ec2 create-vpc-endpoint --region us-east-1 --vpc-id ${vpcId} --vpc-endpoint-type Gateway ` +
        `--service-name com.amazonaws.us-east-1.s3 --route-table-ids ${privateTable}`,
    );
  });

  test('S3 gateway endpoint on another route table', () => {
    const result = networkCheck(
      endpointsOnly({
        routeTables: found([routeTable(privateTable, [subnetA, subnetB], [localRoute])]),
        endpoints: found([
          interfaceEndpoint('ecr.api'),
          interfaceEndpoint('ecr.dkr'),
          interfaceEndpoint('logs'),
          interfaceEndpoint('secretsmanager'),
          s3Gateway([mainTable]),
        ]),
      }),
    );
    assert.deepEqual(ids(result), ['s3-gateway-not-on-route-table']);
    const finding = result[0]!;
    assert.equal(finding.hop, 'layers');
    assert.match(evidenceText(finding), new RegExp(`endpoint ${endpointIds.s3}=`));
    assert.equal(
      finding.fixes[0]!.content,
      `aws ec2 modify-vpc-endpoint --region us-east-1 --vpc-endpoint-id ${endpointIds.s3} --add-route-table-ids ${privateTable}`,
    );
  });

  test('S3 gateway but task egress only to the VPC CIDR: the cause the AWS runbook misses', () => {
    const result = networkCheck(
      endpointsOnly({
        securityGroups: found([
          securityGroup(
            taskSg,
            [],
            [rule({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '10.0.0.0/16' }] })],
          ),
        ]),
      }),
    );
    assert.deepEqual(ids(result), ['sg-egress-no-s3-prefix-list']);
    const finding = result[0]!;
    assert.equal(finding.hop, 'layers');
    assert.equal(finding.certainty, 'certain');
    assert.match(
      evidenceText(finding),
      new RegExp(`security group ${taskSg} egress=tcp 443 to 10\\.0\\.0\\.0/16`),
    );
    assert.match(evidenceText(finding), new RegExp(`S3 prefix list=${s3PrefixList}`));
    assert.equal(
      finding.fixes[0]!.content,
      `aws ec2 authorize-security-group-egress --region us-east-1 --group-id ${taskSg} ` +
        `--ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,PrefixListIds=[{PrefixListId=${s3PrefixList}}]'`,
    );
  });

  test('egress to the S3 ranges written out as CIDRs counts like the prefix list', () => {
    const result = networkCheck(
      endpointsOnly({
        securityGroups: found([
          securityGroup(
            taskSg,
            [],
            [
              rule({
                IpProtocol: 'tcp',
                FromPort: 443,
                ToPort: 443,
                IpRanges: ['10.0.0.0/16', ...s3Cidrs].map((cidr) => ({ CidrIp: cidr })),
              }),
            ],
          ),
        ]),
      }),
    );
    assert.deepEqual(result, []);
  });

  test('without the prefix list fetched, the id is read from the gateway route, and the fix still applies', () => {
    const result = networkCheck(
      endpointsOnly({
        prefixLists: found([]),
        securityGroups: found([
          securityGroup(
            taskSg,
            [],
            [rule({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '10.0.0.0/16' }] })],
          ),
        ]),
      }),
    );
    assert.deepEqual(ids(result), ['sg-egress-no-s3-prefix-list']);
    assert.match(result[0]!.fixes[0]!.content!, new RegExp(`PrefixListId=${s3PrefixList}`));
  });
});

describe('task security group egress toward the internet', () => {
  test('behind a NAT, egress only to the VPC blocks every service, in one finding', () => {
    const result = networkCheck(
      facts(
        {
          securityGroups: found([
            securityGroup(
              taskSg,
              [],
              [
                rule({
                  IpProtocol: 'tcp',
                  FromPort: 443,
                  ToPort: 443,
                  IpRanges: [{ CidrIp: '10.0.0.0/16' }],
                }),
              ],
            ),
          ]),
        },
        { needs: { ...allNeeds, internetRegistries: ['registry-1.docker.io'] } },
      ),
    );
    assert.deepEqual(ids(result), ['sg-egress-blocks']);
    assert.equal(result.length, 1);
    const finding = result[0]!;
    assert.equal(finding.hop, 'registry-auth');
    assert.match(finding.title, /ecr\.api, ecr\.dkr, s3, logs, secretsmanager and registry-1\.docker\.io/);
    assert.equal(
      finding.fixes[0]!.content,
      `aws ec2 authorize-security-group-egress --region us-east-1 --group-id ${taskSg} ` +
        `--ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=0.0.0.0/0}]'`,
    );
  });
});

describe('network ACLs', () => {
  test('a NACL denying ephemeral inbound', () => {
    const entries = [
      aclEntry(100, true, 'allow'),
      aclEntry(32767, true, 'deny'),
      aclEntry(100, false, 'allow', '10.0.0.0/16'),
      aclEntry(110, false, 'allow', '0.0.0.0/0', '6', [80, 80]),
      aclEntry(32767, false, 'deny'),
    ];
    const result = networkCheck(facts({ networkAcls: found([networkAcl(entries)]) }));
    assert.deepEqual(ids(result), ['nacl-blocks']);
    assert.equal(result.length, 1, 'one finding for the rule, listing every service');
    const finding = result[0]!;
    assert.equal(finding.certainty, 'certain');
    assert.match(finding.title, /denies inbound TCP 32768-60999 from 0\.0\.0\.0\/0/);
    assert.match(
      evidenceText(finding),
      new RegExp(`network ACL ${aclId}=ingress rule \\* \\(default deny\\)`),
    );
    assert.equal(
      finding.fixes[0]!.content,
      `aws ec2 create-network-acl-entry --region us-east-1 --network-acl-id ${aclId} --ingress --rule-number 32766 ` +
        '--protocol tcp --port-range From=32768,To=60999 --cidr-block 0.0.0.0/0 --rule-action allow',
    );
  });

  test('an explicit deny before the allow is named by its rule number', () => {
    const entries = [
      ...openAclEntries.filter((entry) => !entry.Egress),
      aclEntry(50, true, 'deny', '0.0.0.0/0', '6', [443, 443]),
      aclEntry(100, true, 'allow'),
      aclEntry(32767, true, 'deny'),
    ];
    const result = networkCheck(facts({ networkAcls: found([networkAcl(entries)]) }));
    assert.deepEqual(ids(result), ['nacl-blocks']);
    assert.match(evidenceText(result[0]!), /egress rule 50: deny protocol 6 ports 443-443 to 0\.0\.0\.0\/0/);
    assert.match(result[0]!.fixes[0]!.content!, /--egress --rule-number 49 /);
  });

  test('the S3 path must allow the prefix list ranges', () => {
    const entries = [
      aclEntry(100, true, 'allow', '10.0.0.0/16'),
      aclEntry(32767, true, 'deny'),
      aclEntry(100, false, 'allow'),
      aclEntry(32767, false, 'deny'),
    ];
    const result = networkCheck(endpointsOnly({ networkAcls: found([networkAcl(entries)]) }));
    assert.deepEqual(ids(result), ['nacl-blocks']);
    assert.equal(result.length, 1);
    const finding = result[0]!;
    assert.equal(finding.hop, 'layers');
    assert.equal(finding.cause, 'network-s3-layers');
    assert.match(finding.title, /denies outbound TCP 443 to 16\.182\.0\.0\/16, 3\.5\.0\.0\/19/);
    // One allow rule per S3 range, each with its own free rule number before the default deny.
    const numbers = finding.fixes.map((fix) => /--rule-number (\d+)/.exec(fix.content ?? '')?.[1]);
    assert.deepEqual(numbers, ['32766', '32765', '32764', '32763', '32762']);
    for (const cidr of s3Cidrs) {
      assert.ok(
        finding.fixes.some((fix) =>
          fix.content?.includes(`--port-range From=443,To=443 --cidr-block ${cidr} `),
        ),
      );
    }
  });

  test('a deny of private space only does not block the internet', () => {
    const entries = [aclEntry(90, false, 'deny', '192.168.0.0/16'), ...openAclEntries];
    assert.deepEqual(networkCheck(facts({ networkAcls: found([networkAcl(entries)]) })), []);
  });
});

describe('failed lookups', () => {
  test('a failed lookup is reported unchecked and never treated as a pass or a failure', () => {
    const result = networkCheck(
      facts({
        routeTables: {
          state: 'failed',
          failure: {
            service: 'ec2',
            operation: 'DescribeRouteTables',
            code: 'UnauthorizedOperation',
            message: 'You are not authorized to perform this operation.',
          },
        },
      }),
    );
    assert.deepEqual(ids(result), ['network-unchecked']);
    assert.equal(result[0]!.severity, 'unchecked');
    assert.match(result[0]!.title, /ec2:DescribeRouteTables failed \(UnauthorizedOperation\)/);
  });

  test('failed endpoint security groups skip the ingress check only', () => {
    const failed: Lookup<SecurityGroup[]> = {
      state: 'failed',
      failure: {
        service: 'ec2',
        operation: 'DescribeSecurityGroups',
        code: 'ThrottlingException',
        message: 'Rate exceeded',
      },
    };
    const result = networkCheck(endpointsOnly({ endpointSecurityGroups: failed }));
    assert.deepEqual(ids(result), ['network-unchecked']);
    assert.match(result[0]!.title, /endpoints' security groups/);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('helpers', () => {
  test('route table selection and default route kinds', () => {
    const explicit = routeTable(privateTable, [subnetA], [localRoute, natRoute()]);
    const main = routeTable(mainTable, [], [localRoute, igwRoute], true);
    assert.equal(routeTableForSubnet(subnetA, [main, explicit])?.RouteTableId, privateTable);
    assert.equal(routeTableForSubnet(subnetB, [main, explicit])?.RouteTableId, mainTable);
    assert.equal(routeOut(explicit).kind, 'nat-gateway');
    assert.equal(routeOut(main).kind, 'internet-gateway');
    assert.equal(routeOut(routeTable(privateTable, [], [localRoute])).kind, 'none');
    assert.equal(routeOut(routeTable(privateTable, [], [natRoute('blackhole')])).kind, 'blackhole');
    assert.equal(
      routeOut(
        routeTable(privateTable, [], [{ DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: 'eni-0abc' }]),
      ).kind,
      'nat-instance',
    );
  });

  test('security group evaluation: protocol -1, port ranges, prefix lists, references', () => {
    const peer = { cidrs: ['0.0.0.0/0'] };
    assert.ok(securityGroupsAllow([allTrafficOut], 443, peer));
    assert.ok(
      securityGroupsAllow(
        [rule({ IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, IpRanges: [{ CidrIp: '0.0.0.0/0' }] })],
        443,
        peer,
      ),
    );
    assert.ok(
      !securityGroupsAllow(
        [rule({ IpProtocol: 'udp', FromPort: 0, ToPort: 65535, IpRanges: [{ CidrIp: '0.0.0.0/0' }] })],
        443,
        peer,
      ),
    );
    assert.ok(
      !securityGroupsAllow(
        [rule({ IpProtocol: 'tcp', FromPort: 80, ToPort: 80, IpRanges: [{ CidrIp: '0.0.0.0/0' }] })],
        443,
        peer,
      ),
    );
    assert.ok(!securityGroupsAllow([], 443, peer));
    const viaList = rule({
      IpProtocol: 'tcp',
      FromPort: 443,
      ToPort: 443,
      PrefixListIds: [{ PrefixListId: s3PrefixList }],
    });
    assert.ok(securityGroupsAllow([viaList], 443, { cidrs: ['54.231.0.0/16'] }, s3PrefixLists()));
    assert.ok(!securityGroupsAllow([viaList], 443, { cidrs: ['54.231.0.0/16'] }), 'unknown list contents');
    const viaGroup = rule({ IpProtocol: '-1', UserIdGroupPairs: [{ GroupId: endpointSg }] });
    assert.ok(securityGroupsAllow([viaGroup], 443, { cidrs: ['10.0.0.0/16'], groupIds: [endpointSg] }));
    assert.ok(!securityGroupsAllow([viaGroup], 443, { cidrs: ['10.0.0.0/16'], groupIds: [taskSg] }));
    const v6 = rule({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, Ipv6Ranges: [{ CidrIpv6: '::/0' }] });
    assert.ok(securityGroupsAllow([v6], 443, { cidrs: ['::/0'] }));
    assert.ok(!securityGroupsAllow([v6], 443, peer));
  });

  test('NACL evaluation: rule order, first match wins, default deny, partial ranges', () => {
    const acl = networkAcl([
      aclEntry(200, false, 'allow'),
      aclEntry(100, false, 'deny', '54.231.0.0/16', '6', [1024, 65535]),
      aclEntry(32767, false, 'deny'),
    ]);
    assert.deepEqual(naclDenials(acl, 'ingress', '54.231.0.0/16', 32768, 60999), [
      { cidr: '54.231.0.0/16', from: 32768, to: 60999, ruleNumber: 100 },
    ]);
    assert.deepEqual(naclDenials(acl, 'ingress', '52.216.0.0/15', 32768, 60999), []);
    const partial = naclDenials(acl, 'ingress', '0.0.0.0/0', 32768, 60999);
    assert.deepEqual(partial, [{ cidr: '54.231.0.0/16', from: 32768, to: 60999, ruleNumber: 100 }]);
    assert.deepEqual(naclDenials(acl, 'egress', '0.0.0.0/0', 443, 443), [
      { cidr: '0.0.0.0/0', from: 443, to: 443, ruleNumber: '*' },
    ]);
    const split = networkAcl([
      aclEntry(10, true, 'allow', '0.0.0.0/0', '6', [0, 1000]),
      aclEntry(32767, true, 'deny'),
    ]);
    assert.deepEqual(naclDenials(split, 'egress', '0.0.0.0/0', 900, 1100), [
      { cidr: '0.0.0.0/0', from: 1001, to: 1100, ruleNumber: 32767 },
    ]);
  });
});
