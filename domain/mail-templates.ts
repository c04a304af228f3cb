/** E-mail templates. Pure: (template, values) → subject and text. Secrets (codes, links with
 * tokens) are passed in only by the activity that generated them, never through history.
 *
 * Each text promises only what the service does (test/integration/mail-promises.test.ts follows
 * every instruction and checks every claim): a reset after an administrator's account reset says
 * the old password no longer works; a lock says when it ends and that a reset does not end it; a
 * scheduled deletion says that signing in is not possible and names the reactivation request. */
export type NotificationTemplate =
  | 'email_verification'
  | 'invitation'
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
    case 'invitation':
      return {
        subject: 'You are invited to an account',
        text: `${hello}\n\nAn administrator invited you to an account for this address. To accept, choose your password with this code: ${v.code}\n\nOr open: ${v.link}\n\nThe invitation expires at ${v.expiresAt}; after that, ask the administrator for a new one. If you do not want the account, ignore this message.${sign}`,
      };
    case 'password_reset':
      return {
        subject: 'Reset your password',
        text:
          v.passwordInvalidated === 'yes'
            ? `${hello}\n\nAn administrator reset your account: your old password no longer works, two-step sign-in (if you used it) was removed and every session was signed out. Choose a new password with this code: ${v.code}\n\nOr open: ${v.link}\n\nIt expires at ${v.expiresAt}. After that, ask for a new code with "forgot password".${sign}`
            : `${hello}\n\nUse this code to reset your password: ${v.code}\n\nOr open: ${v.link}\n\nIt expires at ${v.expiresAt}. If you did not ask for this, ignore this message; your password is unchanged.${sign}`,
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
        text: `${hello}\n\nAfter repeated failed sign-ins your account is locked until ${v.until}; you can sign in again after that. If these attempts were not yours, someone may be guessing your password: choose a new one with "forgot password" (the lock still lasts until then).${sign}`,
      };
    case 'account_suspended':
      return {
        subject: 'Your account was suspended',
        text: `${hello}\n\nAn administrator suspended your account: you cannot sign in, and every session was signed out. Contact support for details.${sign}`,
      };
    case 'account_reactivated':
      return { subject: 'Your account is active again', text: `${hello}\n\nYour account is active again: you can sign in with your password.${sign}` };
    case 'deletion_scheduled':
      return {
        subject: 'Your account will be deleted',
        text: `${hello}\n\n${v.by === 'admin' ? 'An administrator scheduled your account for deletion' : 'As you asked, your account is scheduled for deletion'} on ${v.due}. Until then you cannot sign in. To keep it, reactivate it before then with your e-mail address, your password and, if you use two-step sign-in, a code from your authenticator app: apps built on Authflow offer this as "reactivate account" (the request POST /v1/me/reactivate). An account that was suspended cannot be reactivated this way: contact support.${sign}`,
      };
    case 'account_erased':
      return { subject: 'Your account was deleted', text: `${hello}\n\nYour account and its personal data were deleted.${sign}` };
    case 'generic':
      return { subject: v.subject ?? 'Notice', text: `${hello}\n\n${v.body ?? ''}${sign}` };
  }
}
