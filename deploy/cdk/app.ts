/**
 * The CDK app: `npx aws-cdk@2 deploy --app 'node deploy/cdk/app.ts' --parameters ImageTag=… …`
 * (docs/deploy.md). Use PullsafeRegistry in your own app for a VPC of yours, other upstreams or sizes.
 */
import { App } from 'aws-cdk-lib';
import { PullsafeStack } from './pullsafe-stack.ts';

const app = new App();
new PullsafeStack(app, 'Pullsafe');
app.synth();
