/** Every workflow type the worker runs. Deterministic code only: no I/O, no clocks, no randomness
 * beyond what @temporalio/workflow provides. */
export { notificationWorkflow } from './notification';
export { emailVerificationWorkflow } from './email-verification';
export * from './invitation';
export * from './webhook-delivery';
export * from './account-deletion';
export * from './password-reset';
export * from './step-up';
export * from './key-rotation';
export * from './backups';
