/** Scanning: walk the roots, run every extractor that claims a file, classify what they find. */
import { classify, type Classification } from './classify.ts';
import type { Extractor, FoundReference } from './types.ts';
import { walkFiles, type WalkOptions } from './walk.ts';

export interface ScannedReference extends FoundReference {
  /** The root the file was found under, as given. */
  root: string;
  /** The file's path on disk (for rewriting). */
  path: string;
  /** Absent when the reference could not be resolved or parsed. */
  classification?: Classification;
}

export interface ScanResult {
  references: ScannedReference[];
  filesScanned: number;
  filesRead: number;
}

export async function scanPaths(
  roots: string[],
  extractors: Extractor[],
  options: WalkOptions = {},
): Promise<ScanResult> {
  const result: ScanResult = { references: [], filesScanned: 0, filesRead: 0 };
  for (const root of roots) {
    for await (const file of walkFiles(root, { wanted: mayBeRead, ...options })) {
      result.filesScanned++;
      const claimed = extractors.filter((extractor) => extractor.matches(file.relative, file.head));
      if (claimed.length === 0) continue;
      const content = file.content;
      result.filesRead++;
      const seen = new Set<number>();
      for (const extractor of claimed) {
        let found: FoundReference[];
        try {
          found = extractor.extract(file.relative, content);
        } catch {
          found = [];
        }
        for (const reference of found) {
          // Two extractors may claim one file (a CloudFormation template is also YAML): one report per place.
          if (seen.has(reference.offset)) continue;
          seen.add(reference.offset);
          const scanned: ScannedReference = { ...reference, root, path: file.path };
          const classification = reference.unresolved
            ? undefined
            : classify(reference.resolved ?? reference.text);
          if (classification) scanned.classification = classification;
          result.references.push(scanned);
        }
      }
    }
  }
  return result;
}

/** Every format an extractor reads has one of these names; nothing else is opened. */
const readableNames =
  /(?:^|\/)(?:[^/]*dockerfile[^/]*|containerfile[^/]*|[^/]*\.(?:ya?ml|json|tf|template))$/i;

export function mayBeRead(relative: string): boolean {
  return readableNames.test(relative);
}

export type RiskClass = 'docker-hub' | 'floating' | 'unpinned' | 'unresolved' | 'any';

export function hasRisk(reference: ScannedReference, risk: RiskClass): boolean {
  const classification = reference.classification;
  switch (risk) {
    case 'any':
      return true;
    case 'unresolved':
      return classification === undefined;
    case 'docker-hub':
      return classification?.registryKind === 'docker-hub';
    case 'floating':
      return classification?.floating === true;
    case 'unpinned':
      return classification !== undefined && !classification.pinned;
  }
}
