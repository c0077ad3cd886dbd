/** A buildspec as YAML: its env (variables, secrets, parameters) and its phases' command lists. */
import { parse as parseYaml } from 'yaml';
import { parseSecretsManagerReference } from '../../shared/arn.ts';
import type { BuildSecretRef, PlanInput } from '../build-plan.ts';

export interface Buildspec {
  env?: {
    variables?: Record<string, unknown>;
    'parameter-store'?: Record<string, unknown>;
    'secrets-manager'?: Record<string, unknown>;
  };
  phases?: Record<string, { commands?: unknown; finally?: unknown } | null>;
}

export function readBuildspec(text: string): { spec?: Buildspec; error?: string } {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    return { error: `the buildspec is not YAML: ${(error as Error).message.split('\n')[0] ?? ''}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { error: 'the buildspec is not a YAML mapping with version and phases' };
  }
  return { spec: parsed };
}

/** The string (or number) entries of a YAML mapping, as `[key, value]` pairs. */
export function stringEntries(value: unknown): [string, string][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, entry]) =>
    typeof entry === 'string' || typeof entry === 'number' ? [[key, String(entry)] as [string, string]] : [],
  );
}

export function commandList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry) => (typeof entry === 'string' ? [entry] : []));
}

/** The secrets and parameters a build reads: the buildspec's `env`, and the project's variables. */
export function secretRefs(spec: Buildspec | undefined, input: PlanInput): BuildSecretRef[] {
  const refs: BuildSecretRef[] = [];
  for (const [variable, reference] of stringEntries(spec?.env?.['secrets-manager'])) {
    refs.push({
      variable,
      declaredIn: 'buildspec env.secrets-manager',
      service: 'secretsmanager',
      reference,
      ...parseSecretsManagerReference(reference),
    });
  }
  for (const [variable, reference] of stringEntries(spec?.env?.['parameter-store'])) {
    refs.push({
      variable,
      declaredIn: 'buildspec env.parameter-store',
      service: 'ssm',
      reference,
      id: reference,
    });
  }
  for (const variable of input.projectVariables ?? []) {
    if (!variable.name || !variable.value) continue;
    if (variable.type === 'SECRETS_MANAGER') {
      refs.push({
        variable: variable.name,
        declaredIn: 'project environment variable',
        service: 'secretsmanager',
        reference: variable.value,
        ...parseSecretsManagerReference(variable.value),
      });
    } else if (variable.type === 'PARAMETER_STORE') {
      refs.push({
        variable: variable.name,
        declaredIn: 'project environment variable',
        service: 'ssm',
        reference: variable.value,
        id: variable.value,
      });
    }
  }
  return refs;
}
