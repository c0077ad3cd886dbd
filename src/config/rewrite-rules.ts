/**
 * `pullsafe rewrite --rules FILE`: which Docker Hub repositories go where, first matching rule wins.
 *
 *   rules:
 *     - match: library/*            # official images
 *       to-ecr-public: true
 *     - match: bitnami/*
 *       to-mirror: mirror.example.com/hub
 *     - match: "**"                 # everything else
 *       to-pull-through: 123456789012.dkr.ecr.us-east-1.amazonaws.com
 *       prefix: docker-hub
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PullsafeError } from '../errors/index.ts';
import { repositoryGlobProblem } from '../shared/glob.ts';
import { describeIssue } from './issues.ts';

/**
 * Why a rule's `match` cannot select Docker Hub repositories, or undefined. Docker Hub names have two
 * components (`library/nginx`, `bitnami/redis`), so a one-component glob without `**` would match none.
 */
function matchProblem(glob: string): string | undefined {
  const problem = repositoryGlobProblem(glob);
  if (problem !== undefined) {
    return `a repository glob such as library/*, bitnami/*, team/app or ** (${problem}; docs/configuration.md#patterns)`;
  }
  if (!glob.includes('/') && !glob.includes('**')) {
    return `"${glob}" matches one path component, and Docker Hub repositories have two (library/nginx): write "**" for every repository, "*/${glob}" or "library/${glob}"`;
  }
  return undefined;
}

const hostPattern = /^[a-z0-9.-]+(?::\d{1,5})?(?:\/[a-z0-9._/-]+)?$/;

const ruleSchema = z
  .strictObject({
    match: z.string().superRefine((glob, context) => {
      const problem = matchProblem(glob);
      if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
    }),
    'to-ecr-public': z.literal(true).optional(),
    'to-pull-through': z
      .string()
      .regex(hostPattern, 'an ECR registry host: <account>.dkr.ecr.<region>.amazonaws.com')
      .optional(),
    prefix: z
      .string()
      .regex(/^[a-z0-9._-]+(?:\/[a-z0-9._-]+)*$/, 'a pull-through rule prefix such as docker-hub')
      .optional(),
    'to-mirror': z
      .string()
      .regex(hostPattern, 'a registry host with an optional path: host[:port][/prefix]')
      .optional(),
  })
  .refine(
    (rule) =>
      [rule['to-ecr-public'], rule['to-pull-through'], rule['to-mirror']].filter(Boolean).length === 1,
    { message: 'give exactly one of to-ecr-public, to-pull-through, to-mirror' },
  )
  .refine((rule) => rule.prefix === undefined || rule['to-pull-through'] !== undefined, {
    message: 'prefix goes with to-pull-through',
  });

export const rewriteRulesSchema = z.strictObject({ rules: z.array(ruleSchema).min(1) });

export type RewriteRulesFile = z.infer<typeof rewriteRulesSchema>;

export function parseRewriteRules(value: unknown, source: string): RewriteRulesFile {
  const result = rewriteRulesSchema.safeParse(value);
  if (!result.success) {
    const lines = result.error.issues.slice(0, 10).map((issue) => describeIssue(issue, rewriteRulesSchema));
    throw new PullsafeError('CONFIG_INVALID', `${source}: invalid rewrite rules\n  ${lines.join('\n  ')}`, {
      hint: 'see docs/scan.md (rewrite --rules) for the format',
    });
  }
  return result.data;
}

export async function loadRewriteRules(file: string): Promise<RewriteRulesFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new PullsafeError(
      'CONFIG_UNREADABLE',
      `cannot read rules file ${file}: ${(error as Error).message}`,
    );
  }
  let value: unknown;
  try {
    value = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    throw new PullsafeError('CONFIG_INVALID', `${file}: not valid YAML or JSON: ${(error as Error).message}`);
  }
  return parseRewriteRules(value, file);
}
