import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { check, digest } from './extractor.test-support.ts';
import { cloudFormationExtractor } from './cloudformation.ts';

const template = `AWSTemplateFormatVersion: '2010-09-09'
Description: Web service
Parameters:
  WebImage:
    Type: String
    Default: nginx:1.25
  AppTag:
    Type: String
    Default: v42
  WorkerImage:
    Type: String
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  TaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: web
      ContainerDefinitions:
        - Name: web
          Image: !Ref WebImage
        - Name: app
          Image: !Sub '\${AWS::AccountId}.dkr.ecr.\${AWS::Region}.amazonaws.com/app:\${AppTag}'
        - Name: proxy
          Image: !Sub "envoyproxy/envoy:\${AppTag}"
        - Name: worker
          Image: !Ref WorkerImage
        - Name: cache
          Image: "redis:7-alpine"
        - Name: repo
          Image: !GetAtt Repository.RepositoryUri
        - Name: mapped
          Image: !FindInMap [Images, !Ref Env, Web]
        - Name: either
          Image: !If [IsProd, "public.ecr.aws/nginx/nginx:1.25", nginx]
  Build:
    Type: AWS::CodeBuild::Project
    Properties:
      Environment:
        Type: LINUX_CONTAINER
        Image: aws/codebuild/standard:7.0
  Batch:
    Type: AWS::Batch::JobDefinition
    Properties:
      Type: container
      ContainerProperties:
        Image: python:3.12
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      PackageType: Image
      Code:
        ImageUri: !Sub
          - '\${Registry}/lambda:\${Tag}'
          - { Registry: 'registry.example.com:5000', Tag: '1.0' }
`;

describe('CloudFormation', () => {
  it('matches templates', () => {
    assert.equal(cloudFormationExtractor.matches('infra/web.yaml', template), true);
    assert.equal(
      cloudFormationExtractor.matches(
        'infra/web.json',
        '{"Resources": {"T": {"Type": "AWS::ECS::TaskDefinition"}}}',
      ),
      true,
    );
    assert.equal(cloudFormationExtractor.matches('k8s/web.yaml', 'apiVersion: v1\nkind: Pod\n'), false);
  });

  it('explains intrinsics and uses parameter defaults', () => {
    const found = cloudFormationExtractor.extract('infra/web.yaml', template);
    check(template, found, [
      {
        line: 21,
        column: 23,
        offset: 420,
        text: 'WebImage',
        kind: 'cloudformation',
        resolved: 'nginx:1.25',
        unresolved: undefined,
        context:
          'Resources.TaskDefinition (AWS::ECS::TaskDefinition) Properties.ContainerDefinitions[0].Image (container web): comes from parameter WebImage (its Default is nginx:1.25)',
      },
      {
        line: 23,
        column: 24,
        offset: 472,
        text: '${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/app:${AppTag}',
        resolved: undefined,
        unresolved:
          'uses ${AWS::AccountId} (pseudo parameter, known only at deploy time), ${AWS::Region} (pseudo parameter, known only at deploy time)',
      },
      {
        line: 25,
        column: 24,
        offset: 587,
        text: 'envoyproxy/envoy:${AppTag}',
        resolved: 'envoyproxy/envoy:v42',
        unresolved: undefined,
        context:
          'Resources.TaskDefinition (AWS::ECS::TaskDefinition) Properties.ContainerDefinitions[2].Image (container proxy) (Fn::Sub)',
      },
      {
        line: 27,
        column: 23,
        offset: 660,
        text: 'WorkerImage',
        resolved: undefined,
        unresolved: 'comes from parameter WorkerImage, which has no Default',
      },
      {
        line: 29,
        column: 19,
        offset: 712,
        text: 'redis:7-alpine',
        resolved: undefined,
        unresolved: undefined,
      },
      {
        line: 31,
        column: 26,
        offset: 774,
        text: 'Repository.RepositoryUri',
        unresolved: 'comes from a resource attribute (Fn::GetAtt)',
      },
      {
        line: 33,
        column: 29,
        offset: 850,
        text: '[Images, !Ref Env, Web]',
        unresolved: 'comes from a Mappings lookup (Fn::FindInMap)',
      },
      { line: 35, column: 32, offset: 928, text: 'public.ecr.aws/nginx/nginx:1.25', unresolved: undefined },
      { line: 35, column: 66, offset: 962, text: 'nginx', unresolved: undefined },
      {
        line: 41,
        column: 16,
        offset: 1092,
        text: 'aws/codebuild/standard:7.0',
        context: 'Resources.Build (AWS::CodeBuild::Project) Properties.Environment.Image',
        codebuild: true,
      },
      {
        line: 47,
        column: 16,
        offset: 1244,
        text: 'python:3.12',
        context: 'Resources.Batch (AWS::Batch::JobDefinition) Properties.ContainerProperties.Image',
        codebuild: undefined,
      },
      {
        line: 54,
        column: 14,
        offset: 1383,
        text: '${Registry}/lambda:${Tag}',
        resolved: 'registry.example.com:5000/lambda:1.0',
        unresolved: undefined,
      },
    ]);
  });

  it('reads JSON templates with long-form intrinsics', () => {
    const json = `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": { "Image": { "Type": "String", "Default": "httpd:2.4" } },
  "Resources": {
    "Task": {
      "Type": "AWS::ECS::TaskDefinition",
      "Properties": {
        "ContainerDefinitions": [
          { "Name": "a", "Image": { "Ref": "Image" } },
          { "Name": "b", "Image": { "Fn::Sub": "\${AWS::AccountId}.dkr.ecr.us-east-1.amazonaws.com/b:1" } },
          { "Name": "c", "Image": { "Fn::Join": ["", ["a", "b"]] } },
          { "Name": "d", "Image": "memcached@${digest}" }
        ]
      }
    }
  }
}
`;
    const found = cloudFormationExtractor.extract('stack.template.json', json);
    check(json, found, [
      { line: 9, column: 45, offset: 294, text: 'Image', resolved: 'httpd:2.4' },
      {
        line: 10,
        column: 49,
        offset: 354,
        text: '${AWS::AccountId}.dkr.ecr.us-east-1.amazonaws.com/b:1',
        unresolved: 'uses ${AWS::AccountId} (pseudo parameter, known only at deploy time)',
      },
      {
        line: 11,
        column: 49,
        offset: 462,
        text: '["", ["a", "b"]]',
        unresolved: 'is built with Fn::Join at deploy time',
      },
      { line: 12, column: 36, offset: 519, text: `memcached@${digest}`, unresolved: undefined },
    ]);
  });

  it('keeps offsets exact with CRLF and never throws', () => {
    const crlf = template.replace(/\n/g, '\r\n');
    const found = cloudFormationExtractor.extract('infra/web.yaml', crlf);
    assert.equal(found.length, 12);
    check(crlf, found.slice(0, 1), [{ line: 21, column: 23, offset: 440, text: 'WebImage' }]);
    for (const bad of [
      '',
      'Resources: [',
      'Resources:\n  T: !Ref\n',
      '{"Resources": 1}',
      'Resources:\n  T:\n    Type: AWS::ECS::TaskDefinition\n    Properties:\n      ContainerDefinitions: {}\n',
    ]) {
      assert.deepEqual(cloudFormationExtractor.extract('bad.yaml', bad), []);
    }
  });
});
