/** Renders a doctor report for people (terminal text) or for tickets and pull requests (Markdown). */
import type { DoctorReport } from './doctor.ts';
import { hopOrder, type Finding, type Hop } from './types.ts';

const hopTitles: Record<Hop, string> = {
  'stop-reason': 'What the task said',
  image: 'Image references',
  'registry-auth': 'Registry authentication',
  manifest: 'Manifest',
  layers: 'Layers',
  secrets: 'Secrets and parameters',
  logs: 'Logs',
  build: 'Build',
  'rate-limit': 'Rate limits',
};

const marks = { error: '✗', warning: '!', unchecked: '?', info: 'i' } as const;

function subjectLine(report: DoctorReport): string {
  const s = report.subject;
  const where = `${report.region}${report.accountId ? `, account ${report.accountId}` : ''}`;
  const kind = s.kind === 'codebuild-project' ? 'CodeBuild project' : s.kind.replace('-', ' ');
  return `${kind} ${s.name}${s.cluster ? ` in cluster ${s.cluster}` : ''} (${where}, ${report.launchType})`;
}

function summaryLine(report: DoctorReport): string {
  const { error, warning, unchecked, info } = report.summary;
  if (report.findings.length === 0) return 'No problem found: every check passed.';
  return `${error} error(s), ${warning} warning(s), ${unchecked} not checked, ${info} note(s)`;
}

function grouped(findings: Finding[]): [Hop, Finding[]][] {
  return hopOrder
    .map((hop) => [hop, findings.filter((f) => f.hop === hop)] as [Hop, Finding[]])
    .filter(([, list]) => list.length > 0);
}

export function renderText(report: DoctorReport): string {
  const lines = [`pullsafe doctor: ${subjectLine(report)}`, summaryLine(report)];
  for (const [hop, findings] of grouped(report.findings)) {
    lines.push('', `== ${hopTitles[hop]}`);
    for (const f of findings) {
      lines.push(
        '',
        `${marks[f.severity]} [${f.id}] ${f.title}${f.matchesStopReason ? '   <- explains the stop reason' : ''}`,
      );
      lines.push(`  cause: ${f.cause} · ${f.severity} · ${f.certainty}`);
      lines.push(`  ${f.detail}`);
      for (const e of f.evidence) lines.push(`  - ${e.label}: ${e.value}`);
      f.fixes.forEach((fix, index) => {
        lines.push(`  fix ${index + 1}: ${fix.summary}`);
        if (fix.content) for (const line of fix.content.split('\n')) lines.push(`      ${line}`);
      });
    }
  }
  if (report.failures.length > 0) {
    lines.push('', '== Could not check');
    for (const failure of report.failures) {
      lines.push(`  ? ${failure.service}:${failure.operation}: ${failure.code}: ${failure.message}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const fence: Record<string, string> = {
  'iam-policy': 'json',
  'repository-policy': 'json',
  'task-definition-patch': 'json',
  'aws-cli': 'sh',
  buildspec: 'yaml',
  reference: 'text',
};

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderMarkdown(report: DoctorReport): string {
  const lines = [`# pullsafe doctor: ${subjectLine(report)}`, '', summaryLine(report)];
  for (const [hop, findings] of grouped(report.findings)) {
    lines.push('', `## ${hopTitles[hop]}`);
    for (const f of findings) {
      lines.push(
        '',
        `### ${marks[f.severity]} \`${f.id}\`: ${f.title}`,
        '',
        `Cause \`${f.cause}\`, ${f.severity}, ${f.certainty}${f.matchesStopReason ? ', explains the stop reason' : ''}.`,
        '',
        f.detail,
      );
      if (f.evidence.length > 0) {
        lines.push('', '| evidence | value |', '| --- | --- |');
        for (const e of f.evidence) lines.push(`| ${escapeCell(e.label)} | ${escapeCell(e.value)} |`);
      }
      f.fixes.forEach((fix, index) => {
        lines.push('', `**Fix ${index + 1}.** ${fix.summary}`);
        if (fix.content) lines.push('', `\`\`\`${fence[fix.kind] ?? ''}`, fix.content, '```');
      });
    }
  }
  if (report.failures.length > 0) {
    lines.push('', '## Could not check', '');
    for (const failure of report.failures) {
      lines.push(
        `- \`${failure.service}:${failure.operation}\`: ${failure.code}: ${escapeCell(failure.message)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
