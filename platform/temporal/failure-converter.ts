/**
 * Failure converter for the client, the worker and the workflow sandbox (loaded by path, so this
 * module must stay free of Node built-ins). `encodeCommonAttributes` moves a failure's message
 * and stack trace into a payload, which the payload codec (platform/temporal/payload-codec.ts) encrypts: an error text
 * that happens to quote an address (an SMTP rejection, say) never lands in history in plaintext.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
