/** Renders a doctor report for people (terminal text) or for tickets and pull requests (Markdown). */
import type { DoctorReport } from './doctor.ts';
import { count } from './text.ts';
import type { Finding, Hop } from './types.ts';

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
  const failed = report.failures.length;
  if (report.findings.length === 0) {
    return failed === 0
      ? 'No problem found: every check passed.'
      : `No problem found in what could be checked; ${count(failed, 'call')} failed (see "Could not check").`;
  }
  return `${count(error, 'error')}, ${count(warning, 'warning')}, ${unchecked} not checked, ${count(info, 'note')}`;
}

interface Group {
  title: string;
  findings: Finding[];
  /** The group of findings that explain the stop reason gathers several hops: each line names its own. */
  namesHop: boolean;
}

/** Groups in the report's own order: what the task said, what explains it, then one group per hop. */
function grouped(findings: Finding[]): Group[] {
  const groups = new Map<string, Group>();
  for (const f of findings) {
    const explains = f.matchesStopReason === true;
    const key = explains ? 'explains' : f.hop;
    let group = groups.get(key);
    if (group === undefined) {
      group = { title: explains ? explainsTitle : hopTitles[f.hop], findings: [], namesHop: explains };
      groups.set(key, group);
    }
    group.findings.push(f);
  }
  return [...groups.values()];
}

const explainsTitle = 'What explains the stop reason';

function stopReasonMark(f: Finding): string {
  if (f.matchesStopReason !== true) return '';
  return f.severity === 'unchecked'
    ? 'would confirm the stop reason (not checked)'
    : 'explains the stop reason';
}

export function renderText(report: DoctorReport): string {
  const lines = [`pullsafe doctor: ${subjectLine(report)}`, summaryLine(report)];
  for (const group of grouped(report.findings)) {
    lines.push('', `== ${group.title}`);
    for (const f of group.findings) {
      const mark = stopReasonMark(f);
      lines.push('', `${marks[f.severity]} [${f.id}] ${f.title}${mark ? `   <- ${mark}` : ''}`);
      lines.push(
        `  cause: ${f.cause} · ${group.namesHop ? `${hopTitles[f.hop]} · ` : ''}${f.severity} · ${f.certainty}`,
      );
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
  shell: 'sh',
  buildspec: 'yaml',
  reference: 'text',
};

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderMarkdown(report: DoctorReport): string {
  const lines = [`# pullsafe doctor: ${subjectLine(report)}`, '', summaryLine(report)];
  for (const group of grouped(report.findings)) {
    lines.push('', `## ${group.title}`);
    for (const f of group.findings) {
      const mark = stopReasonMark(f);
      lines.push(
        '',
        `### ${marks[f.severity]} \`${f.id}\`: ${f.title}`,
        '',
        `Cause \`${f.cause}\`, ${group.namesHop ? `${hopTitles[f.hop]}, ` : ''}${f.severity}, ${f.certainty}${mark ? `, ${mark}` : ''}.`,
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
