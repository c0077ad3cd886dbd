/**
 * AWS CDK apps, in every language CDK is written in: the images named in code.
 *
 * - `ContainerImage.fromRegistry(...)` (ECS, Batch) and `DockerImage.fromRegistry(...)` (bundling), in the
 *   TypeScript/JavaScript, Java and C# spelling (`fromRegistry`, `FromRegistry`), Python's `from_registry`
 *   and Go's `ContainerImage_FromRegistry(jsii.String("..."))`;
 * - CodeBuild images: `LinuxBuildImage.fromDockerRegistry(...)` (and the Arm and Windows classes),
 *   `fromCodeBuildImageId(...)`, and the curated image constants (`LinuxBuildImage.STANDARD_7_0`), which are
 *   reported with the image they stand for and classified as CodeBuild's own.
 *
 * A string literal is the reference; a template literal, an f-string or a string joined with an expression
 * is unresolved, and so is a variable, with the expression as the text. Calls in comments are skipped.
 */
import type { Extractor, FoundReference } from './types.ts';
import { positionOf } from './types.ts';

/** Source files CDK apps are written in (declaration files are not code). */
export function isSourceFile(path: string): boolean {
  return /\.(?:[cm]?[jt]s|tsx|py|java|go|cs)$/i.test(path) && !/\.d\.[cm]?ts$/i.test(path);
}

/** A source file is decoded and read only when one of these is in its bytes. */
export const sourceNeedles = ['romRegistry', 'rom_registry', 'BuildImage'];

const BUILD_IMAGE_CLASSES =
  'LinuxBuildImage|LinuxArmBuildImage|WindowsBuildImage|LinuxLambdaBuildImage|LinuxArmLambdaBuildImage';

const CALL = new RegExp(
  `\\b(ContainerImage|DockerImage|${BUILD_IMAGE_CLASSES})(?:\\.|_)(fromRegistry|FromRegistry|from_registry|fromDockerRegistry|FromDockerRegistry|from_docker_registry|fromCodeBuildImageId|FromCodeBuildImageId|from_code_build_image_id)\\s*\\(\\s*`,
  'g',
);

const CONSTANT = new RegExp(`\\b(${BUILD_IMAGE_CLASSES})(?:\\.|_)([A-Z][A-Z0-9_]*[A-Z0-9])\\b`, 'g');

/** The curated image a CDK build image constant stands for (`aws/codebuild/...`), or undefined. */
export function curatedImage(className: string, constant: string): string | undefined {
  const image = (name: string): string => `aws/codebuild/${name}`;
  const version = (digits: string): string => digits.replace(/_/g, '.');
  let match: RegExpExecArray | null;
  switch (className) {
    case 'LinuxBuildImage':
      if ((match = /^STANDARD_(\d+_\d+)$/.exec(constant))) return image(`standard:${version(match[1]!)}`);
      if (constant === 'AMAZON_LINUX_2') return image('amazonlinux2-x86_64-standard:1.0');
      if ((match = /^AMAZON_LINUX_2_(\d+)$/.exec(constant)))
        return image(`amazonlinux2-x86_64-standard:${match[1]!}.0`);
      if ((match = /^AMAZON_LINUX_2023_(\d+)$/.exec(constant)))
        return image(`amazonlinux-x86_64-standard:${match[1]!}.0`);
      if ((match = /^AMAZON_LINUX_2_CORETTO_(\d+)$/.exec(constant)))
        return image(`amazonlinux2-x86_64-standard:corretto${match[1]!}`);
      if ((match = /^AMAZON_LINUX_2023_CORETTO_(\d+)$/.exec(constant)))
        return image(`amazonlinux-x86_64-standard:corretto${match[1]!}`);
      if (constant === 'AMAZON_LINUX_2_ARM') return image('amazonlinux2-aarch64-standard:1.0');
      if ((match = /^AMAZON_LINUX_2_ARM_(\d+)$/.exec(constant)))
        return image(`amazonlinux2-aarch64-standard:${match[1]!}.0`);
      return undefined;
    case 'LinuxArmBuildImage':
      if ((match = /^AMAZON_LINUX_2_STANDARD_(\d+_\d+)$/.exec(constant)))
        return image(`amazonlinux2-aarch64-standard:${version(match[1]!)}`);
      if ((match = /^AMAZON_LINUX_2023_STANDARD_(\d+_\d+)$/.exec(constant)))
        return image(`amazonlinux-aarch64-standard:${version(match[1]!)}`);
      return undefined;
    case 'WindowsBuildImage':
      if (constant === 'WINDOWS_BASE_2_0') return image('windows-base:2.0');
      if (constant === 'WIN_SERVER_CORE_2019_BASE') return image('windows-base:2019-1.0');
      if ((match = /^WIN_SERVER_CORE_2019_BASE_(\d+_\d+)$/.exec(constant)))
        return image(`windows-base:2019-${version(match[1]!)}`);
      if (constant === 'WIN_SERVER_CORE_2022_BASE_3_0') return image('windows-base:2022-1.0');
      return undefined;
    case 'LinuxLambdaBuildImage':
    case 'LinuxArmLambdaBuildImage': {
      const arch = className === 'LinuxLambdaBuildImage' ? 'x86_64' : 'aarch64';
      match = /^AMAZON_LINUX_2023_(NODE|PYTHON|CORRETTO|DOTNET|GO|RUBY)_(\d+(?:_\d+)?)$/.exec(constant);
      if (!match) return undefined;
      const runtime = {
        NODE: 'nodejs',
        PYTHON: 'python',
        CORRETTO: 'corretto',
        DOTNET: 'dotnet',
        GO: 'go',
        RUBY: 'ruby',
      }[match[1] as 'NODE'];
      return image(`amazonlinux-${arch}-lambda-standard:${runtime}${version(match[2]!)}`);
    }
    default:
      return undefined;
  }
}

/** Whether the text before `offset` on its line makes it a comment. */
function inComment(content: string, offset: number): boolean {
  const lineStart = content.lastIndexOf('\n', offset - 1) + 1;
  const before = content.slice(lineStart, offset).trimStart();
  return /^(?:\/\/|#|\*|\/\*)/.test(before) || /(?:^|\s)\/\/|(?:^|\s)#\s/.test(before);
}

interface Argument {
  offset: number;
  text: string;
  unresolved?: string;
}

/** The first argument of a call, from just after its `(`: a string literal, or an expression. */
function firstArgument(content: string, start: number): Argument | undefined {
  let index = start;
  const go = /^jsii\.String\(\s*/.exec(content.slice(index, index + 40));
  if (go) index += go[0].length;
  const prefix = /^[fFrRuUbB]{0,2}(?=["'`])/.exec(content.slice(index, index + 3))?.[0] ?? '';
  const quote = content[index + prefix.length];
  if (quote === '"' || quote === "'" || quote === '`') {
    const open = index + prefix.length;
    let close = open + 1;
    while (close < content.length && content[close] !== quote && content[close] !== '\n') {
      close += content[close] === '\\' ? 2 : 1;
    }
    if (content[close] !== quote) return undefined;
    const text = content.slice(open + 1, close);
    if (text === '') return undefined;
    const argument: Argument = { offset: open + 1, text };
    const after = content.slice(close + 1, close + 40).trimStart();
    if ((quote === '`' && text.includes('${')) || (/f/i.test(prefix) && text.includes('{'))) {
      argument.unresolved = `uses a template expression (${text})`;
    } else if (/^(?:\+|%|\.format\(|\.concat\()/.test(after)) {
      argument.unresolved = `is joined with an expression at run time (${text}…)`;
    } else if (text.includes('\\')) {
      argument.unresolved = `has escapes pullsafe does not read (${text})`;
    }
    return argument;
  }
  const expression = /^[A-Za-z_$][\w$]*(?:\s*\.\s*[A-Za-z_$][\w$]*|\[[^\]\n]*\]|\(\))*/.exec(
    content.slice(index, index + 200),
  );
  if (!expression) return undefined;
  const text = expression[0];
  return { offset: index, text, unresolved: `comes from the expression ${text}` };
}

function extractCdk(path: string, content: string): FoundReference[] {
  const found: FoundReference[] = [];
  const push = (offset: number, text: string, extra: Partial<FoundReference>): void => {
    const { line, column } = positionOf(content, offset);
    found.push({ file: path, line, column, offset, text, kind: 'cdk', ...extra });
  };
  CALL.lastIndex = 0;
  for (let match = CALL.exec(content); match; match = CALL.exec(content)) {
    if (inComment(content, match.index)) continue;
    const argument = firstArgument(content, match.index + match[0].length);
    if (!argument) continue;
    const className = match[1] ?? '';
    const codebuild = className !== 'ContainerImage' && className !== 'DockerImage';
    const extra: Partial<FoundReference> = { context: `${className}.${match[2] ?? ''}` };
    if (argument.unresolved) extra.unresolved = argument.unresolved;
    if (codebuild) extra.codebuild = true;
    push(argument.offset, argument.text, extra);
  }
  CONSTANT.lastIndex = 0;
  for (let match = CONSTANT.exec(content); match; match = CONSTANT.exec(content)) {
    if (inComment(content, match.index)) continue;
    const className = match[1] ?? '';
    const constant = match[2] ?? '';
    const image = curatedImage(className, constant);
    const extra: Partial<FoundReference> = {
      context: `${className}.${constant}, a CodeBuild curated image`,
      codebuild: true,
    };
    if (image) extra.resolved = image;
    else extra.unresolved = `is a CodeBuild image constant pullsafe does not know (${className}.${constant})`;
    push(match.index, match[0], extra);
  }
  return found.sort((a, b) => a.offset - b.offset);
}

export const cdkExtractor: Extractor = {
  kind: 'cdk',
  matches(path) {
    return isSourceFile(path);
  },
  extract(path, content) {
    try {
      return extractCdk(path, content);
    } catch {
      return [];
    }
  },
};
