/** awslogs: the log group must exist in the configured region, unless the task may create it. */
import type { Check, Finding } from '../types.ts';

export const logsCheck: Check = (facts) => {
  const findings: Finding[] = [];
  for (const log of facts.logs) {
    const evidence = [
      { label: 'container', value: log.container },
      { label: 'awslogs-group', value: log.group },
      { label: 'awslogs-region', value: log.region },
      { label: 'awslogs-create-group', value: String(log.createGroup) },
    ];
    if (log.exists.state === 'failed') {
      findings.push({
        id: 'log-group-unchecked',
        cause: 'unknown',
        hop: 'logs',
        severity: 'unchecked',
        certainty: 'possible',
        title: `could not check log group ${log.group}`,
        detail: `logs:DescribeLogGroups failed (${log.exists.failure.code}).`,
        evidence: [...evidence, { label: 'error', value: log.exists.failure.message }],
        fixes: [{ kind: 'text', summary: 'allow the identity running doctor logs:DescribeLogGroups' }],
      });
      continue;
    }
    if (log.exists.state === 'missing' && !log.createGroup) {
      findings.push({
        id: 'log-group-missing',
        cause: 'logs-group-missing',
        hop: 'logs',
        severity: 'error',
        certainty: 'certain',
        title: `log group ${log.group} does not exist in ${log.region}`,
        detail:
          'The task fails to start when its awslogs group is missing and awslogs-create-group is not set.',
        evidence,
        fixes: [
          {
            kind: 'aws-cli',
            summary: 'create the log group',
            content: `aws logs create-log-group --log-group-name ${log.group} --region ${log.region}`,
          },
          {
            kind: 'task-definition-patch',
            summary: `or let the task create it (the execution role then needs logs:CreateLogGroup)`,
            content: JSON.stringify(
              { logConfiguration: { options: { 'awslogs-create-group': 'true' } } },
              null,
              2,
            ),
          },
        ],
      });
    }
  }
  return findings;
};
