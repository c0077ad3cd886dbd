/** AWS managed policy documents as AWS publishes them, for the doctor's tests. */
import type { PolicyDocument } from './types.ts';

/** The default version of arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy. */
export const ecsTaskExecutionRolePolicyDocument: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Action: [
        'ecr:GetAuthorizationToken',
        'ecr:BatchCheckLayerAvailability',
        'ecr:GetDownloadUrlForLayer',
        'ecr:BatchGetImage',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ],
      Resource: '*',
    },
  ],
};
