import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cdkExtractor, curatedImage, isSourceFile } from './cdk.ts';
import type { FoundReference } from './types.ts';

/** Every reference's text stands where it says; returns [line, text, resolved or unresolved, codebuild]. */
function summary(path: string, content: string): [number, string, string | undefined, boolean][] {
  const found = cdkExtractor.extract(path, content);
  return found.map((reference: FoundReference) => {
    assert.equal(content.slice(reference.offset, reference.offset + reference.text.length), reference.text);
    const before = content.slice(0, reference.offset).split('\n');
    assert.equal(reference.line, before.length);
    assert.equal(reference.column, before[before.length - 1]!.length + 1);
    assert.equal(reference.kind, 'cdk');
    return [
      reference.line,
      reference.text,
      reference.unresolved ?? reference.resolved,
      reference.codebuild ?? false,
    ];
  });
}

describe('CDK apps', () => {
  it('reads TypeScript: ECS, bundling and CodeBuild images, constants and expressions', () => {
    const stack = [
      "import * as ecs from 'aws-cdk-lib/aws-ecs';", // 1
      "import { DockerImage } from 'aws-cdk-lib';", // 2
      'export class WebStack extends Stack {', // 3
      '  constructor(scope: Construct, id: string, props: WebProps) {', // 4
      "    const web = ecs.ContainerImage.fromRegistry('amazon/amazon-ecs-sample');", // 5
      '    const proxy = ecs.ContainerImage.fromRegistry(', // 6
      '      "public.ecr.aws/nginx/nginx:1.27",', // 7
      '      { credentials },', // 8
      '    );', // 9
      '    const tagged = ecs.ContainerImage.fromRegistry(`nginx:${props.tag}`);', // 10
      '    const chosen = ecs.ContainerImage.fromRegistry(props.image);', // 11
      "    const joined = ecs.ContainerImage.fromRegistry('redis:' + version);", // 12
      "    // ecs.ContainerImage.fromRegistry('commented/out:1')", // 13
      "    const bundling = { image: DockerImage.fromRegistry('public.ecr.aws/sam/build-python3.12') };", // 14
      '    new codebuild.Project(this, "Build", {', // 15
      '      environment: { buildImage: codebuild.LinuxBuildImage.STANDARD_7_0 },', // 16
      '    });', // 17
      "    const custom = codebuild.LinuxBuildImage.fromDockerRegistry('node:20-bookworm');", // 18
      "    const curated = codebuild.LinuxBuildImage.fromCodeBuildImageId('aws/codebuild/standard:6.0');", // 19
      '    const arm = codebuild.LinuxArmBuildImage.AMAZON_LINUX_2_STANDARD_3_0;', // 20
      '  }', // 21
      '}', // 22
      '',
    ].join('\n');
    assert.deepEqual(summary('lib/web-stack.ts', stack), [
      [5, 'amazon/amazon-ecs-sample', undefined, false],
      [7, 'public.ecr.aws/nginx/nginx:1.27', undefined, false],
      [10, 'nginx:${props.tag}', 'uses a template expression (nginx:${props.tag})', false],
      [11, 'props.image', 'comes from the expression props.image', false],
      [12, 'redis:', 'is joined with an expression at run time (redis:…)', false],
      [14, 'public.ecr.aws/sam/build-python3.12', undefined, false],
      [16, 'LinuxBuildImage.STANDARD_7_0', 'aws/codebuild/standard:7.0', true],
      [18, 'node:20-bookworm', undefined, true],
      [19, 'aws/codebuild/standard:6.0', undefined, true],
      [
        20,
        'LinuxArmBuildImage.AMAZON_LINUX_2_STANDARD_3_0',
        'aws/codebuild/amazonlinux2-aarch64-standard:3.0',
        true,
      ],
    ]);
  });

  it('reads the Python, Java, C# and Go spellings', () => {
    const python = [
      'from aws_cdk import aws_ecs as ecs, aws_codebuild as codebuild',
      'image = ecs.ContainerImage.from_registry("amazon/amazon-ecs-sample")',
      'tagged = ecs.ContainerImage.from_registry(f"nginx:{tag}")',
      "build = codebuild.LinuxBuildImage.from_docker_registry('python:3.12')",
      'curated = codebuild.LinuxBuildImage.AMAZON_LINUX_2_5',
      '# ecs.ContainerImage.from_registry("not:this")',
      '',
    ].join('\n');
    assert.deepEqual(summary('app/stack.py', python), [
      [2, 'amazon/amazon-ecs-sample', undefined, false],
      [3, 'nginx:{tag}', 'uses a template expression (nginx:{tag})', false],
      [4, 'python:3.12', undefined, true],
      [5, 'LinuxBuildImage.AMAZON_LINUX_2_5', 'aws/codebuild/amazonlinux2-x86_64-standard:5.0', true],
    ]);
    const java = 'ContainerImage image = ContainerImage.fromRegistry("amazon/amazon-ecs-sample");\n';
    assert.deepEqual(summary('src/main/java/Stack.java', java), [
      [1, 'amazon/amazon-ecs-sample', undefined, false],
    ]);
    const csharp = 'var image = ContainerImage.FromRegistry("mcr.microsoft.com/dotnet/aspnet:8.0");\n';
    assert.deepEqual(summary('src/Stack.cs', csharp), [
      [1, 'mcr.microsoft.com/dotnet/aspnet:8.0', undefined, false],
    ]);
    const go = [
      'image := awsecs.ContainerImage_FromRegistry(jsii.String("amazon/amazon-ecs-sample"), &awsecs.RepositoryImageProps{})',
      'build := awscodebuild.LinuxBuildImage_STANDARD_7_0()',
      '',
    ].join('\n');
    assert.deepEqual(summary('stack.go', go), [
      [1, 'amazon/amazon-ecs-sample', undefined, false],
      [2, 'LinuxBuildImage_STANDARD_7_0', 'aws/codebuild/standard:7.0', true],
    ]);
  });

  it('knows what the curated image constants stand for', () => {
    assert.equal(curatedImage('LinuxBuildImage', 'STANDARD_5_0'), 'aws/codebuild/standard:5.0');
    assert.equal(
      curatedImage('LinuxBuildImage', 'AMAZON_LINUX_2_4'),
      'aws/codebuild/amazonlinux2-x86_64-standard:4.0',
    );
    assert.equal(
      curatedImage('LinuxBuildImage', 'AMAZON_LINUX_2023_5'),
      'aws/codebuild/amazonlinux-x86_64-standard:5.0',
    );
    assert.equal(
      curatedImage('LinuxBuildImage', 'AMAZON_LINUX_2_CORETTO_11'),
      'aws/codebuild/amazonlinux2-x86_64-standard:corretto11',
    );
    assert.equal(
      curatedImage('WindowsBuildImage', 'WIN_SERVER_CORE_2019_BASE_3_0'),
      'aws/codebuild/windows-base:2019-3.0',
    );
    assert.equal(
      curatedImage('LinuxLambdaBuildImage', 'AMAZON_LINUX_2023_PYTHON_3_12'),
      'aws/codebuild/amazonlinux-x86_64-lambda-standard:python3.12',
    );
    assert.equal(curatedImage('LinuxBuildImage', 'UBUNTU_14_04_BASE'), undefined);
    assert.deepEqual(summary('lib/old.ts', 'const image = LinuxBuildImage.UBUNTU_14_04_BASE;\n'), [
      [
        1,
        'LinuxBuildImage.UBUNTU_14_04_BASE',
        'is a CodeBuild image constant pullsafe does not know (LinuxBuildImage.UBUNTU_14_04_BASE)',
        true,
      ],
    ]);
  });

  it('reads source files only, never declaration files', () => {
    for (const path of [
      'lib/a.ts',
      'bin/app.mjs',
      'a.js',
      'stack.py',
      'Stack.java',
      'main.go',
      'Stack.cs',
      'x.tsx',
    ]) {
      assert.equal(isSourceFile(path), true, path);
    }
    for (const path of ['lib/a.d.ts', 'README.md', 'cdk.json', 'stack.pyc'])
      assert.equal(isSourceFile(path), false, path);
    assert.deepEqual(summary('lib/empty.ts', "fromRegistry('x');\nContainerImage.fromRegistry();\n"), []);
  });
});
