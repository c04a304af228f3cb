/** Workflow ids, schedule ids and search attributes of every flow. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const UserIdAttr = defineSearchAttributeKey('UserId', SearchAttributeType.KEYWORD);
export const FlowAttr = defineSearchAttributeKey('Flow', SearchAttributeType.KEYWORD);

/** Workflow ids are business keys: one running flow of a kind per subject. */
export const workflowIds = {
  emailVerification: (userId: string) => `email-verification:${userId}`,
  invitation: (userId: string) => `invitation:${userId}`,
  webhookDelivery: (deliveryId: string) => `webhook-delivery:${deliveryId}`,
  notification: (key: string) => `notification:${key}`,
  passwordReset: (userId: string) => `password-reset:${userId}`,
  stepUp: (sessionId: string) => `step-up:${sessionId}`,
  accountDeletion: (userId: string) => `account-deletion:${userId}`,
  /** Vault operations: one on-demand run of each at a time; scheduled runs get the schedule's
   * `<id>-<time>` suffix. */
  keyRotation: (trigger: 'on-demand' | 'scheduled') => `key-rotation:${trigger}`,
  backup: (trigger: 'on-demand' | 'scheduled') => `backup:${trigger}`,
  restoreDrill: (trigger: 'on-demand' | 'scheduled') => `restore-drill:${trigger}`,
};

/** Temporal Schedules the worker registers at start (worker/schedules.ts). */
export const scheduleIds = { keyRotation: 'authflow-key-rotation', backup: 'authflow-backup', restoreDrill: 'authflow-restore-drill' } as const;
/** The UserId search attribute of flows no user started (scheduled operations). */
export const SYSTEM_USER = 'system';
