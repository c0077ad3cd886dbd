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
  const build = s.build ? `, build ${s.build}` : '';
  return `${kind} ${s.name}${s.cluster ? ` in cluster ${s.cluster}` : ''}${build} (${where}, ${report.launchType})`;
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

/** A build fails where a task stops: the same report, in the build's words. */
function isBuild(report: DoctorReport): boolean {
  return report.subject.kind === 'codebuild-project';
}

function hopTitle(report: DoctorReport, hop: Hop): string {
  return hop === 'stop-reason' && isBuild(report) ? 'What the build said' : hopTitles[hop];
}

/** Groups in the report's own order: what the task said, what explains it, then one group per hop. */
function grouped(report: DoctorReport): Group[] {
  const groups = new Map<string, Group>();
  for (const f of report.findings) {
    const explains = f.matchesStopReason === true;
    const key = explains ? 'explains' : f.hop;
    let group = groups.get(key);
    if (group === undefined) {
      const title = explains
        ? `What explains the ${isBuild(report) ? "build's failure" : 'stop reason'}`
        : hopTitle(report, f.hop);
      group = { title, findings: [], namesHop: explains };
      groups.set(key, group);
    }
    group.findings.push(f);
  }
  return [...groups.values()];
}

function stopReasonMark(report: DoctorReport, f: Finding): string {
  if (f.matchesStopReason !== true) return '';
  const what = isBuild(report) ? "the build's failure" : 'the stop reason';
  return f.severity === 'unchecked' ? `would confirm ${what} (not checked)` : `explains ${what}`;
}

export function renderText(report: DoctorReport): string {
  const lines = [`pullsafe doctor: ${subjectLine(report)}`, summaryLine(report)];
  for (const group of grouped(report)) {
    lines.push('', `== ${group.title}`);
    for (const f of group.findings) {
      const mark = stopReasonMark(report, f);
      lines.push('', `${marks[f.severity]} [${f.id}] ${f.title}${mark ? `   <- ${mark}` : ''}`);
      lines.push(
        `  cause: ${f.cause} · ${group.namesHop ? `${hopTitle(report, f.hop)} · ` : ''}${f.severity} · ${f.certainty}`,
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
  dockerfile: 'dockerfile',
  reference: 'text',
};

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderMarkdown(report: DoctorReport): string {
  const lines = [`# pullsafe doctor: ${subjectLine(report)}`, '', summaryLine(report)];
  for (const group of grouped(report)) {
    lines.push('', `## ${group.title}`);
    for (const f of group.findings) {
      const mark = stopReasonMark(report, f);
      lines.push(
        '',
        `### ${marks[f.severity]} \`${f.id}\`: ${f.title}`,
        '',
        `Cause \`${f.cause}\`, ${group.namesHop ? `${hopTitle(report, f.hop)}, ` : ''}${f.severity}, ${f.certainty}${mark ? `, ${mark}` : ''}.`,
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
