/** Every extractor, in the order files are offered to them. */
import { cdkExtractor } from './cdk.ts';
import { ciExtractors } from './ci.ts';
import { cloudFormationExtractor } from './cloudformation.ts';
import { composeExtractor } from './compose.ts';
import { dockerfileExtractor } from './dockerfile.ts';
import { ecsTaskDefinitionExtractor } from './ecs.ts';
import { helmValuesExtractor } from './helm.ts';
import { kubernetesExtractor } from './kubernetes.ts';
import { terraformExtractor } from './terraform.ts';
import type { Extractor } from './types.ts';

export const allExtractors: Extractor[] = [
  dockerfileExtractor,
  composeExtractor,
  cloudFormationExtractor,
  kubernetesExtractor,
  helmValuesExtractor,
  ecsTaskDefinitionExtractor,
  terraformExtractor,
  cdkExtractor,
  ...ciExtractors,
];
