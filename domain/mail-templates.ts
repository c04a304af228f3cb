/** E-mail templates. Pure: (template, values) → subject and text. Secrets (codes, links with
 * tokens) are passed in only by the activity that generated them, never through history. */
export type NotificationTemplate =
  | 'email_verification'
  | 'password_reset'
  | 'password_changed'
  | 'step_up_code'
  | 'session_revoked'
  | 'account_locked'
  | 'account_suspended'
  | 'account_reactivated'
  | 'deletion_scheduled'
  | 'account_erased'
  | 'generic';

export interface Rendered {
  subject: string;
  text: string;
}

export function render(template: NotificationTemplate, v: Record<string, string>): Rendered {
  // Names are validated as one printable line on input; older rows are flattened here all the same.
  const name = v.name?.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu, ' ').trim();
  const hello = name ? `Hello ${name},` : 'Hello,';
  const sign = '\n\n— Authflow';
  switch (template) {
    case 'email_verification':
      return {
        subject: 'Verify your e-mail address',
        text: `${hello}\n\nYour verification code is: ${v.code}\n\nOr open: ${v.link}\n\nIt expires at ${v.expiresAt}. ${v.choosePassword ? 'This address was registered more than once before it was verified, so no password was kept: you choose your password when you verify. ' : ''}If you did not sign up, ignore this message.${sign}`,
      };
    case 'password_reset':
      return {
        subject: 'Reset your password',
        text: `${hello}\n\nUse this code to reset your password: ${v.code}\n\nOr open: ${v.link}\n\nIt expires at ${v.expiresAt}. If you did not ask for this, ignore this message; your password is unchanged.${sign}`,
      };
    case 'password_changed':
      return {
        subject: 'Your password was changed',
        text: `${hello}\n\nThe password of your account was changed${v.when ? ` at ${v.when}` : ''}. If this was not you, reset it now and contact support.${sign}`,
      };
    case 'step_up_code':
      return {
        subject: 'Confirm a sign-in from a new device',
        text: `${hello}\n\nA sign-in from a device we do not recognise${v.device ? ` (${v.device})` : ''} needs confirming. Your code is: ${v.code}\n\nIt expires at ${v.expiresAt}. If this was not you, change your password.${sign}`,
      };
    case 'session_revoked':
      return {
        subject: 'A session of your account was ended',
        text: `${hello}\n\nWe ended a session of your account${v.reason ? ` (${v.reason})` : ''}. If this was not you, change your password.${sign}`,
      };
    case 'account_locked':
      return {
        subject: 'Your account was locked',
        text: `${hello}\n\nAfter repeated failed sign-ins your account is locked until ${v.until}. If this was not you, consider resetting your password.${sign}`,
      };
    case 'account_suspended':
      return { subject: 'Your account was suspended', text: `${hello}\n\nAn administrator suspended your account. Contact support for details.${sign}` };
    case 'account_reactivated':
      return { subject: 'Your account is active again', text: `${hello}\n\nYour account is active again.${sign}` };
    case 'deletion_scheduled':
      return {
        subject: 'Your account will be deleted',
        text: `${hello}\n\nYour account is scheduled for deletion on ${v.due}. Sign in and reactivate it before then to keep it.${sign}`,
      };
    case 'account_erased':
      return { subject: 'Your account was deleted', text: `${hello}\n\nYour account and its personal data were deleted.${sign}` };
    case 'generic':
      return { subject: v.subject ?? 'Notice', text: `${hello}\n\n${v.body ?? ''}${sign}` };
  }
}
