/** The path to the registry and to the layers: DNS, TLS, VPC endpoints, routes, cut connections (`network-*`). */
import { wording } from '../wording.ts';
import { make, type Candidate, type Context } from './detector.ts';
import { common, imageLabel, networkEvidence, regionOf } from './fixes.ts';

export function dns({ text, x }: Context): Candidate[] {
  if (!wording.dns.test(text)) return [];
  const host = x.lookupHost ?? x.registry ?? '<host>';
  const aws = /\.amazonaws\.com(?:\.cn)?$/.test(host);
  const endpointService = /\.dkr\.ecr\./.test(host)
    ? 'ecr.dkr'
    : /api\.ecr\./.test(host)
      ? 'ecr.api'
      : /(?:^|\.)s3[.-]/.test(host)
        ? 's3'
        : /secretsmanager/.test(host)
          ? 'secretsmanager'
          : /^logs\./.test(host)
            ? 'logs'
            : undefined;
  const fixes: string[] = [];
  if (/\.amazon\.aws\.com|us-[a-z]+-\d[a-z]\./.test(host))
    fixes.push(`the host name ${host} looks mistyped (expected <account>.dkr.ecr.<region>.amazonaws.com)`);
  if (aws && endpointService) {
    fixes.push(
      endpointService === 's3'
        ? `if you use a com.amazonaws.${regionOf(x)}.s3 interface endpoint, turn its private DNS on; the S3 gateway endpoint needs no DNS of its own`
        : `if you use a com.amazonaws.${regionOf(x)}.${endpointService} interface endpoint, turn its private DNS on (\`aws ec2 modify-vpc-endpoint --vpc-endpoint-id <id> --private-dns-enabled\`)`,
    );
  }
  if (!aws) fixes.push(`check the spelling of ${host}`);
  fixes.push(
    'turn on enableDnsSupport and enableDnsHostnames on the VPC (`aws ec2 modify-vpc-attribute --vpc-id <vpc> --enable-dns-support`)',
  );
  fixes.push(
    aws
      ? 'custom DHCP options or resolvers must resolve (or forward) amazonaws.com names'
      : `custom DHCP options or resolvers must resolve ${host}: for a name only a private DNS knows, forward its domain there (a Route 53 Resolver outbound rule)`,
  );
  return [
    make(
      'network-dns',
      40,
      'high',
      `${host} does not resolve`,
      'name resolution failed before any connection',
      { ...networkEvidence(x), region: x.region },
      fixes,
    ),
  ];
}

export function tls({ text, x }: Context): Candidate[] {
  if (!wording.tls.test(text)) return [];
  const host = x.hosts?.[0] ?? x.registry ?? 'the registry';
  const general = [
    'if a proxy intercepts TLS, exempt the registry and S3 hosts or add its CA to the host',
    'check the registry host name: a certificate "valid for" other names means the name points elsewhere',
    'a handshake timeout often is a firewall dropping traffic: check security groups, NACLs and proxies',
  ];
  const clock = `check the clock of the host that pulls: sync it with NTP (chrony; on EC2 the Amazon Time Sync Service at 169.254.169.123)`;
  const evidence = {
    ...networkEvidence(x),
    registry: x.registry,
    clockTime: x.clockTime,
    certNotBefore: x.certNotBefore,
    certNotAfter: x.certNotAfter,
  };
  if (x.clockTime && x.certNotBefore) {
    return [
      make(
        'network-tls',
        40,
        'high',
        `The clock of the pulling host is wrong: it says ${x.clockTime}, before the certificate of ${host} became valid (${x.certNotBefore})`,
        'a certificate in use is not valid yet by this clock: the clock is behind',
        evidence,
        [`${clock}: it says ${x.clockTime}`, ...general],
      ),
    ];
  }
  if (x.clockTime && x.certNotAfter) {
    return [
      make(
        'network-tls',
        40,
        'high',
        `The certificate of ${host} expired at ${x.certNotAfter} (the pulling host's clock says ${x.clockTime})`,
        'the certificate is past its end date by this clock: an expired certificate, or a clock that is ahead',
        evidence,
        [
          `renew the certificate of ${host} (or of the proxy that intercepts TLS on the way)`,
          `if ${x.clockTime} is not the time now, ${clock}`,
          ...general,
        ],
      ),
    ];
  }
  return [
    make(
      'network-tls',
      40,
      'high',
      `TLS to ${host} failed`,
      'the connection reached something that did not complete a valid TLS handshake',
      evidence,
      general,
    ),
  ];
}

export function s3Layers(ctx: Context): Candidate[] {
  const { x } = ctx;
  if (!ctx.layers) return [];
  if (!ctx.transport && x.httpStatus !== 403 && !/EOF|reset/.test(ctx.text)) return [];
  const region = regionOf(x);
  const bucket = `prod-${region}-starport-layer-bucket`;
  const forbidden = x.httpStatus === 403;
  return [
    make(
      'network-s3-layers',
      forbidden ? 38 : 42,
      x.ipClass === 'amazon-s3' || /starport/.test(ctx.text) ? 'high' : 'medium',
      `Layers of ${imageLabel(x)} could not be downloaded from Amazon S3${x.dialIp ? ` (${x.dialIp})` : ''}`,
      x.ipClass === 'amazon-s3'
        ? `the connection went to an Amazon S3 address: the manifest was fetched, the layers were not`
        : 'the failing request is the layer download from the ECR layer bucket',
      { ...common(x), ...networkEvidence(x), layerBucket: bucket, layerUrlRedacted: x.layerUrlRedacted },
      [
        `add an S3 gateway endpoint on the task subnets' route tables: \`aws ec2 create-vpc-endpoint --vpc-id <vpc> --vpc-endpoint-type Gateway --service-name com.amazonaws.${region}.s3 --route-table-ids <route table ids>\``,
        `allow 443 out to the S3 prefix list in the task security group: \`aws ec2 authorize-security-group-egress --group-id <task sg> --ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,PrefixListIds=[{PrefixListId=<pl id of com.amazonaws.${region}.s3>}]'\``,
        `if the gateway endpoint has a policy, allow s3:GetObject on arn:aws:s3:::${bucket}/*`,
        'or route the subnets through a NAT gateway',
      ],
    ),
  ];
}

export function vpcEndpoint(ctx: Context): Candidate[] {
  const { x } = ctx;
  if (!ctx.transport || ctx.layers || ctx.secrets || ctx.logs) return [];
  const privateIp = x.ipClass === 'private';
  if (!privateIp && !(ctx.ecrHost && x.dialIp === undefined)) return [];
  const service = /api\.ecr\.|GetAuthorizationToken|registry auth/i.test(ctx.text) ? 'ecr.api' : 'ecr.dkr';
  const region = regionOf(x);
  return [
    make(
      'network-vpc-endpoint',
      privateIp ? 44 : 62,
      privateIp ? 'high' : 'low',
      privateIp
        ? `The interface endpoint at ${x.dialIp} did not answer on port ${x.dialPort ?? 443}`
        : `If the VPC uses ECR interface endpoints, the task cannot use them`,
      privateIp
        ? 'the name resolved to a private address (an interface endpoint) and the connection timed out'
        : 'a timeout to ECR without an address: the endpoint is one possibility among the network ones',
      { ...networkEvidence(x), region: x.region },
      [
        `the endpoint security group must admit TCP 443 from the task subnets or security group: \`aws ec2 authorize-security-group-ingress --group-id <endpoint sg> --protocol tcp --port 443 --source-group <task sg>\``,
        'the task security group must allow 443 out; NACLs must allow 443 out and the ephemeral ports back in',
        `Fargate platform 1.4+ needs both com.amazonaws.${region}.ecr.api and com.amazonaws.${region}.ecr.dkr (private DNS on), plus the S3 gateway endpoint for layers${service === 'ecr.api' ? '; this failure was on ecr.api' : ''}`,
      ],
    ),
  ];
}

export function noRoute(ctx: Context): Candidate[] {
  const { x, text } = ctx;
  if (!ctx.transport || ctx.layers || x.ipClass === 'private') return [];
  if ((ctx.secrets || ctx.logs) && !ctx.ecrHost && !x.registry) return [];
  const host = x.hosts?.find((h) => !/starport|\.s3[.-]/.test(h)) ?? x.registry ?? 'the registry';
  const explicit = /connection issue between the task and (?:the registry|Amazon ECR)/i.test(text);
  return [
    make(
      'network-no-route',
      50,
      x.ipClass === 'public' || explicit ? 'high' : 'medium',
      `No network path from the task to ${host}${x.dialIp ? ` (${x.dialIp}:${x.dialPort ?? 443})` : ''}`,
      x.ipClass === 'public'
        ? 'the connection to a public address never got an answer: no route out'
        : x.sdkStatusCode === 0
          ? 'the SDK call got no HTTP answer (StatusCode 0): transport, not permissions'
          : 'the request timed out or was cancelled before an answer',
      { ...common(x), ...networkEvidence(x) },
      [
        "private subnets: a route 0.0.0.0/0 to a NAT gateway in the subnets' route table",
        'public subnets: assignPublicIp=ENABLED in the service network configuration and a 0.0.0.0/0 route to an internet gateway',
        `or, for ECR only, VPC endpoints: com.amazonaws.${regionOf(x)}.ecr.api, com.amazonaws.${regionOf(x)}.ecr.dkr (private DNS on) and the com.amazonaws.${regionOf(x)}.s3 gateway endpoint`,
        'the task security group must allow 443 out, and the NACLs 443 out and ephemeral ports in',
      ],
    ),
  ];
}

export function interrupted({ text, x }: Context): Candidate[] {
  if (!wording.interrupted.test(text)) return [];
  return [
    make(
      'network-interrupted',
      55,
      'medium',
      `The connection to ${x.hosts?.[0] ?? x.registry ?? 'the registry'} broke during the transfer`,
      'data was flowing and the connection closed; usually transient',
      { ...common(x), ...networkEvidence(x) },
      [
        'retry the deployment; if it repeats, look at NAT gateway, proxy or firewall idle timeouts and connection limits',
        'mirror the image closer to the task (ECR in the same region) so the transfer is short',
      ],
    ),
  ];
}
