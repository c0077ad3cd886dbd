/** The task's CloudWatch Logs setup, checked before its images are pulled (`logs-*`). */
import { wording } from '../wording.ts';
import { make, type Candidate, type Context } from './detector.ts';
import { accountOf, deniedFixes, iamEvidence, networkEvidence, regionOf, roleOf } from './fixes.ts';

export function logsGroupMissing({ text, x }: Context): Candidate[] {
  if (!wording.logsGroupMissing.test(text)) return [];
  const connection = /connection issue/i.test(text);
  const group = x.logGroup ?? '<log group>';
  return [
    make(
      'logs-group-missing',
      connection ? 47 : 15,
      connection ? 'medium' : 'high',
      `Log group ${group} does not exist${x.region ? ` in ${x.region}` : ''}`,
      connection
        ? 'the agent could not tell a missing group from an unreachable API; the network is the likelier cause'
        : 'CloudWatch Logs answered that the group does not exist',
      { logGroup: x.logGroup, region: x.region, errorCode: x.errorCode },
      [
        `create it: \`aws logs create-log-group --log-group-name ${group} --region ${regionOf(x)}\``,
        'or set `awslogs-create-group: "true"` in the container logConfiguration and allow logs:CreateLogGroup to the execution role',
        'check that `awslogs-region` is the region the group is in',
      ],
    ),
  ];
}

export function logsAccess({ text, x }: Context): Candidate[] {
  const action = wording.logsAction.exec(text);
  if (!action || !/not authorized|AccessDenied/i.test(text)) return [];
  const group = x.logGroup ?? '<log group>';
  const resource = `arn:aws:logs:${regionOf(x)}:${accountOf(x)}:log-group:${group}:*`;
  const fixes = deniedFixes(x, `logs:${action[1]}`, resource, 'other');
  if (action[1] === 'CreateLogGroup') {
    fixes.push(
      `or create ${group} once (\`aws logs create-log-group --log-group-name ${group} --region ${regionOf(x)}\`) and remove awslogs-create-group`,
    );
  }
  return [
    make(
      'logs-access',
      20,
      'high',
      `Role ${roleOf(x)} may not call logs:${action[1]}${x.logGroup ? ` on ${x.logGroup}` : ''}`,
      'CloudWatch Logs refused the action: a definite answer',
      { ...iamEvidence(x), logGroup: x.logGroup, region: x.region },
      fixes,
    ),
  ];
}

export function logsNetwork(ctx: Context): Candidate[] {
  const { text, x } = ctx;
  const explicit = wording.logsNetwork.test(text);
  if (!explicit && !(ctx.logs && ctx.transport)) return [];
  return [
    make(
      'logs-network',
      45,
      explicit ? 'high' : 'medium',
      `The task could not reach CloudWatch Logs${x.region ? ` in ${x.region}` : ''}`,
      'a transport failure while setting up the log driver',
      { ...networkEvidence(x), logGroup: x.logGroup, region: x.region },
      [
        `add an interface endpoint com.amazonaws.${regionOf(x)}.logs with private DNS on, its security group admitting 443 from the task, or a NAT gateway route`,
        'allow 443 out in the task security group',
      ],
    ),
  ];
}
